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

TEST_F(OutboxRelayTest, HandedRowsArePublishedAtOnceAndMarked) {
  OutboxRelay relay({.sweep_interval_ms = 60000}, bus_.get(), pool_.get());
  relay.Start();
  auto conn = Connect();
  int64_t id = Insert(conn, R"({"n":"fast"})");
  auto row = conn.Exec("SELECT msg_id FROM synaps.outbox WHERE id = $1::bigint",
                       {std::to_string(id)});
  relay.Notify({{id, subject_, R"({"n":"fast"})", row->GetString(0, 0)}});
  EXPECT_TRUE(testing::Eventually([&] { return Received() >= 1; }, 5));
  EXPECT_TRUE(testing::Eventually([&] {
    auto r = conn.Exec("SELECT published_at IS NOT NULL FROM synaps.outbox WHERE id = $1::bigint",
                       {std::to_string(id)});
    return r && r->GetBool(0, 0);
  }, 5));
  relay.Stop();
}

TEST_F(OutboxRelayTest, PublishedRowsAreCleanedUp) {
  auto conn = Connect();
  Insert(conn, R"({"n":"old"})");
  OutboxRelay relay({}, bus_.get(), pool_.get());
  ASSERT_TRUE(relay.SweepOnce());
  ASSERT_TRUE(conn.Exec("UPDATE synaps.outbox SET published_at = now() - interval '1 hour'"));
  auto deleted = store::DeletePublished(conn, 300);
  ASSERT_TRUE(deleted);
  EXPECT_EQ(*deleted, 1);
  auto lag = store::OutboxLagSeconds(conn);
  ASSERT_TRUE(lag);
  EXPECT_EQ(*lag, 0.0);
}

}  // namespace
}  // namespace synaps::api
