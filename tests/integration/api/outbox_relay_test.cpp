// The outbox relay against real PostgreSQL and NATS JetStream.
#include "api/outbox_relay.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include "bus/nats_bus.h"
#include "db/pool.h"
#include "store/outbox_store.h"
#include "support/cluster.h"
#include "support/test_stack.h"

namespace synaps::api {
namespace {

class OutboxRelayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto& stack = testing::TestStack::Get();
    url_ = stack.FreshDatabase();
    pool_ = std::make_unique<db::Pool>(url_, 4);
    bus_ = std::make_unique<bus::NatsBus>(
        bus::NatsOptions{.url = stack.nats().Url(), .name = "relay-test"});
    ASSERT_TRUE(testing::Eventually([&] { return bus_->connected(); }));
    // A unique subject per test so counts are not mixed up with other tests' messages.
    subject_ = "synaps.test." + std::to_string(reinterpret_cast<uintptr_t>(this));
    auto sub = bus_->Subscribe(subject_, [this](const std::string&, const std::string& payload) {
      std::lock_guard lock(mu_);
      received_.push_back(payload);
      return Ok();
    });
    ASSERT_TRUE(sub);
    sub_ = std::move(*sub);
  }

  db::Connection Connect() {
    auto c = db::Connection::Connect(url_);
    EXPECT_TRUE(c);
    return std::move(*c);
  }

  int64_t Insert(db::Connection& conn, const std::string& payload) {
    auto r = conn.Exec(
        "INSERT INTO synaps.outbox (subject, payload) VALUES ($1, $2::jsonb) RETURNING id",
        {subject_, payload});
    EXPECT_TRUE(r) << r.error().message;
    return r->GetInt(0, 0);
  }

  size_t Received() {
    std::lock_guard lock(mu_);
    return received_.size();
  }

  std::string url_;
  std::unique_ptr<db::Pool> pool_;
  std::unique_ptr<bus::NatsBus> bus_;
  std::string subject_;
  std::unique_ptr<bus::Subscription> sub_;
  std::mutex mu_;
  std::vector<std::string> received_;
};

TEST_F(OutboxRelayTest, LowerIdCommittingLateIsStillPublished) {
  OutboxRelay relay({.sweep_interval_ms = 50}, bus_.get(), pool_.get());
  auto slow = Connect();
  auto fast = Connect();
  ASSERT_TRUE(slow.Exec("BEGIN"));
  int64_t low = Insert(slow, R"({"n":"low"})");
  int64_t high = Insert(fast, R"({"n":"high"})");  // autocommit: visible first
  ASSERT_LT(low, high);
  auto first = relay.SweepOnce();
  ASSERT_TRUE(first);
  EXPECT_EQ(*first, 1);
  ASSERT_TRUE(slow.Exec("COMMIT"));
  auto second = relay.SweepOnce();
  ASSERT_TRUE(second);
  EXPECT_EQ(*second, 1) << "the late-committing lower id must not be skipped";
  auto conn = Connect();
  auto left = conn.Exec("SELECT count(*) FROM synaps.outbox WHERE published_at IS NULL");
  EXPECT_EQ(left->GetInt(0, 0), 0);
  EXPECT_TRUE(testing::Eventually([&] { return Received() == 2; }));
}

TEST_F(OutboxRelayTest, RepublishAfterCrashIsDroppedByMsgId) {
  auto conn = Connect();
  Insert(conn, R"({"n":"crash"})");
  auto before = bus_->StreamMessageCount();
  ASSERT_TRUE(before);
  // A relay publishes the row and crashes before marking it.
  auto locked = db::InTransaction(conn, [&] { return store::LockUnpublished(conn, 10); });
  ASSERT_TRUE(locked && locked->size() == 1);
  const auto& m = (*locked)[0];
  ASSERT_TRUE(bus_->Publish(m.subject, m.payload, m.msg_id));
  // The next relay finds the row unpublished and publishes it again.
  OutboxRelay relay({}, bus_.get(), pool_.get());
  auto n = relay.SweepOnce();
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 1);
  auto after = bus_->StreamMessageCount();
  ASSERT_TRUE(after);
  EXPECT_EQ(*after, *before + 1) << "JetStream must store the message once";
}

TEST_F(OutboxRelayTest, HandedRowsArePublishedAtOnceAndDeleted) {
  OutboxRelay relay({.sweep_interval_ms = 60000}, bus_.get(), pool_.get());
  relay.Start();
  auto conn = Connect();
  int64_t id = Insert(conn, R"({"n":"fast"})");
  auto row = conn.Exec("SELECT msg_id FROM synaps.outbox WHERE id = $1::bigint",
                       {std::to_string(id)});
  relay.Notify({{id, subject_, R"({"n":"fast"})", row->GetString(0, 0)}});
  EXPECT_TRUE(testing::Eventually([&] { return Received() >= 1; }, 5));
  EXPECT_TRUE(testing::Eventually(
      [&] {
        auto r = conn.Exec("SELECT count(*) FROM synaps.outbox WHERE id = $1::bigint",
                           {std::to_string(id)});
        return r && r->GetInt(0, 0) == 0;
      },
      5));
  relay.Stop();
}

// Several wakeups for one queue handed over together go out as one message (a wakeup says only
// "work in <queue>"); other subjects are published one by one; every row is deleted.
TEST_F(OutboxRelayTest, WakeupsForOneQueueInABatchArePublishedOnce) {
  const std::string queue = "q" + std::to_string(reinterpret_cast<uintptr_t>(this));
  const std::string wakeup_subject = "synaps.wakeup." + queue;
  std::atomic<int> wakeups{0};
  auto sub = bus_->Subscribe(wakeup_subject, [&](const std::string&, const std::string&) {
    ++wakeups;
    return Ok();
  });
  ASSERT_TRUE(sub);
  auto conn = Connect();
  std::vector<store::OutboxMessage> batch;
  auto add = [&](const std::string& subject, const std::string& payload) {
    auto r = conn.Exec(
        "INSERT INTO synaps.outbox (subject, payload) VALUES ($1, $2::jsonb)"
        " RETURNING id, msg_id",
        {subject, payload});
    ASSERT_TRUE(r) << r.error().message;
    batch.push_back({r->GetInt(0, 0), subject, payload, r->GetString(0, 1)});
  };
  const std::string wakeup = R"({"queue":")" + queue + R"(","runId":"r"})";
  add(wakeup_subject, wakeup);
  add(subject_, R"({"n":1})");
  add(wakeup_subject, wakeup);
  add(subject_, R"({"n":2})");
  add(wakeup_subject, wakeup);
  OutboxRelay relay({.sweep_interval_ms = 60000}, bus_.get(), pool_.get());
  relay.Start();
  relay.Notify(batch);
  EXPECT_TRUE(testing::Eventually(
      [&] {
        auto r = conn.Exec("SELECT count(*) FROM synaps.outbox");
        return r && r->GetInt(0, 0) == 0;
      },
      5))
      << "every row, the coalesced wakeups' too, is deleted once published";
  relay.Stop();
  EXPECT_TRUE(testing::Eventually([&] { return Received() == 2; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // a second wakeup would be here
  EXPECT_EQ(wakeups.load(), 1);
}

// A wakeup that stands for earlier ones is what decides their fate: when publishing stops
// before it (JetStream refuses a message), the rows it stands for stay for the next sweep.
TEST_F(OutboxRelayTest, CoalescedWakeupsStayWhenTheirStandInIsNotPublished) {
  auto conn = Connect();
  auto row = [&](const std::string& subject) {
    auto r = conn.Exec(
        "INSERT INTO synaps.outbox (subject, payload) VALUES ($1, '{}'::jsonb)"
        " RETURNING id, msg_id",
        {subject});
    EXPECT_TRUE(r) << r.error().message;
    return store::OutboxMessage{r->GetInt(0, 0), subject, "{}", r->GetString(0, 1)};
  };
  // No JetStream stream holds "unstored.*": its publish is refused. Wakeups of queue a: rows 0
  // and 4 (4 stands for 0); of queue b: rows 1 and 2 (2 stands for 1).
  std::vector<store::OutboxMessage> batch = {row("synaps.wakeup.a"), row("synaps.wakeup.b"),
                                             row("synaps.wakeup.b"), row("unstored.x"),
                                             row("synaps.wakeup.a")};
  OutboxRelay relay({.sweep_interval_ms = 60000}, bus_.get(), pool_.get());
  relay.Start();
  relay.Notify(batch);
  relay.Stop();  // publishes what was handed over, then sweeps once
  auto left = conn.Exec("SELECT id FROM synaps.outbox ORDER BY id");
  ASSERT_TRUE(left);
  std::vector<int64_t> ids;
  for (int i = 0; i < left->rows(); ++i) ids.push_back(left->GetInt(i, 0));
  // b's wakeup went out (rows 1 and 2 deleted); publishing stopped at the refused row, before
  // a's stand-in, so a's first wakeup stays with it.
  EXPECT_EQ(ids, (std::vector<int64_t>{batch[0].id, batch[3].id, batch[4].id}));
}

// Rows an earlier release marked published (and kept) are deleted after the retention period.
TEST_F(OutboxRelayTest, RowsMarkedPublishedByEarlierReleasesAreCleanedUp) {
  auto conn = Connect();
  Insert(conn, R"({"n":"old"})");
  Insert(conn, R"({"n":"recent"})");
  ASSERT_TRUE(
      conn.Exec("UPDATE synaps.outbox SET published_at = now() - interval '1 hour'"
                " WHERE payload->>'n' = 'old'"));
  ASSERT_TRUE(
      conn.Exec("UPDATE synaps.outbox SET published_at = now()"
                " WHERE payload->>'n' = 'recent'"));
  auto deleted = store::DeleteMarkedPublished(conn, 300);
  ASSERT_TRUE(deleted);
  EXPECT_EQ(*deleted, 1);
  auto lag = store::OutboxLagSeconds(conn);
  ASSERT_TRUE(lag);
  EXPECT_EQ(*lag, 0.0);
}

}  // namespace
}  // namespace synaps::api
