// ReadRouting (api/read_routing.h) against a real PostgreSQL: the "replica" is a plain server
// (not in recovery: it counts as caught up) and the other side is a port that refuses
// connections, so each test can take one of the two away.
#include "api/read_routing.h"

#include <gtest/gtest.h>

#include <thread>

#include "db/pool.h"
#include "support/test_stack.h"

namespace synaps::api {
namespace {

// Nothing listens on port 1: connections are refused at once.
constexpr const char* kDown = "host=127.0.0.1 port=1 connect_timeout=2";

TEST(ReadRoutingTest, AWriteWhoseLsnIsUnknownReadsFromThePrimaryForTheWindow) {
  db::Pool primary(kDown, 1);
  db::Pool replica(testing::TestStack::Get().FreshDatabase(), 2);
  ReadRouting reads(&primary, &replica, std::chrono::milliseconds(1000));

  // The primary cannot tell the write's LSN: the writer must not read the replica...
  EXPECT_FALSE(reads.NoteWrite("writer").has_value());
  auto mine = reads.Acquire("writer", 0);
  ASSERT_FALSE(mine) << "a writer whose LSN is unknown was sent to the replica";
  EXPECT_EQ(mine.error().code, ErrorCode::kUnavailable);
  // ...while anyone else does.
  auto theirs = reads.Acquire("someone else", 0);
  ASSERT_TRUE(theirs) << theirs.error().message;
  EXPECT_TRUE(theirs->on_replica);
  // A client that sends back an LSN beyond anything replayed is served by the primary too.
  EXPECT_FALSE(reads.Acquire("someone else", UINT64_MAX));

  // After the window the writer reads the replica again.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  auto later = reads.Acquire("writer", 0);
  ASSERT_TRUE(later) << later.error().message;
  EXPECT_TRUE(later->on_replica);
}

TEST(ReadRoutingTest, ADownReplicaIsSkippedForTheBreakerThenTriedAgain) {
  db::Pool primary(testing::TestStack::Get().FreshDatabase(), 4);
  db::Pool replica(kDown, 1);
  ReadRouting reads(&primary, &replica, std::chrono::seconds(60), 1000, std::chrono::seconds(3));
  EXPECT_FALSE(reads.ReplicaSkipped());
  auto first = reads.Acquire("reader", 0);
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_FALSE(first->on_replica);
  EXPECT_TRUE(reads.ReplicaSkipped()) << "the failure did not open the breaker";
  auto second = reads.Acquire("reader", 0);
  ASSERT_TRUE(second) << second.error().message;
  EXPECT_FALSE(second->on_replica);
  std::this_thread::sleep_for(std::chrono::milliseconds(3100));
  EXPECT_FALSE(reads.ReplicaSkipped());
  // Tried again (and still down: skipped again).
  auto third = reads.Acquire("reader", 0);
  ASSERT_TRUE(third) << third.error().message;
  EXPECT_FALSE(third->on_replica);
  EXPECT_TRUE(reads.ReplicaSkipped());
}

}  // namespace
}  // namespace synaps::api
