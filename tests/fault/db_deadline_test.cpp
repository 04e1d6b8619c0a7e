// PostgreSQL deadlines (docs/reliability.md, "PostgreSQL deadlines"), in process, with a real
// PostgreSQL behind a proxy that freezes established connections (support/freeze_proxy.h):
// a call on a frozen connection fails within its deadline and the connection is replaced; a
// silent server fails the connect within the connect timeout; the server's statement_timeout
// ends a slow statement; a frozen transaction's locks are released by the server; a pool, a DB
// lane and the outbox relay each recover on new connections by themselves.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <mutex>
#include <set>
#include <thread>

#include "api/outbox_relay.h"
#include "bus/nats_bus.h"
#include "db/connection.h"
#include "db/pool.h"
#include "support/cluster.h"
#include "support/freeze_proxy.h"
#include "support/test_stack.h"
#include "worker/db_lane.h"

namespace synaps {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;
using testing::Eventually;
using testing::FreezeProxy;

// Small bounds so that the tests are fast: a call waits 300 + 200 ms at most.
db::ConnectOptions Fast() {
  db::ConnectOptions o;
  o.connect_timeout = milliseconds(1000);
  o.statement_timeout = milliseconds(300);
  o.deadline_grace = milliseconds(200);
  return o;
}

class DbDeadlineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto& stack = testing::TestStack::Get();
    url_ = stack.FreshDatabase();
    proxy_ = std::make_unique<FreezeProxy>("127.0.0.1", stack.postgres().port());
    proxied_ = proxy_->Rewrite(url_);
  }

  db::Connection Direct() {
    auto c = db::Connection::Connect(url_);
    EXPECT_TRUE(c) << c.error().message;
    return std::move(*c);
  }

  std::string url_, proxied_;
  std::unique_ptr<FreezeProxy> proxy_;
};

int64_t BackendPid(db::Connection& conn) {
  auto r = conn.Exec("SELECT pg_backend_pid()");
  return r ? r->GetInt(0, 0) : -1;
}

TEST_F(DbDeadlineTest, AFrozenConnectionFailsWithinItsDeadlineAndIsClosed) {
  auto conn = db::Connection::Connect(proxied_, Fast());
  ASSERT_TRUE(conn) << conn.error().message;
  ASSERT_TRUE(conn->Exec("SELECT 1"));
  ASSERT_EQ(proxy_->FreezeEstablished(), 1);
  auto start = steady_clock::now();
  auto r = conn->Exec("SELECT 1");
  auto waited = steady_clock::now() - start;
  ASSERT_FALSE(r) << "a frozen connection answered";
  EXPECT_EQ(r.error().code, ErrorCode::kDeadlineExceeded) << r.error().message;
  EXPECT_NE(r.error().message.find("did not answer within 500 ms"), std::string::npos)
      << r.error().message;
  EXPECT_GE(waited, milliseconds(450));
  EXPECT_LT(waited, milliseconds(3000));
  EXPECT_FALSE(conn->healthy());
  auto again = conn->Exec("SELECT 1");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ErrorCode::kUnavailable);
  // New connections still get through the same path.
  auto fresh = db::Connection::Connect(proxied_, Fast());
  ASSERT_TRUE(fresh) << fresh.error().message;
  EXPECT_TRUE(fresh->Exec("SELECT 1"));
}

TEST_F(DbDeadlineTest, ASilentServerFailsTheConnectWithinTheConnectTimeout) {
  // A listener that never accepts: the TCP handshake completes, the startup packet is never
  // answered.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 8), 0);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  auto options = Fast();
  options.connect_timeout = milliseconds(300);
  auto start = steady_clock::now();
  auto c = db::Connection::Connect(
      "postgresql://postgres@127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/x", options);
  auto waited = steady_clock::now() - start;
  ::close(fd);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(c.error().message.find("no answer within 300 ms"), std::string::npos)
      << c.error().message;
  EXPECT_LT(waited, milliseconds(2000));
}

TEST_F(DbDeadlineTest, TheServerEndsASlowStatementAndTheConnectionStays) {
  auto conn = db::Connection::Connect(url_, Fast());
  ASSERT_TRUE(conn) << conn.error().message;
  auto r = conn->Exec("SELECT pg_sleep(5)");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kDeadlineExceeded) << r.error().message;
  EXPECT_NE(r.error().message.find("57014"), std::string::npos) << r.error().message;
  EXPECT_TRUE(conn->healthy());
  EXPECT_TRUE(conn->Exec("SELECT 1"));
}

TEST_F(DbDeadlineTest, AFrozenTransactionsLocksAreReleasedByTheServer) {
  auto setup = Direct();
  ASSERT_TRUE(setup.Exec("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)"));
  auto frozen = db::Connection::Connect(proxied_, Fast());
  ASSERT_TRUE(frozen);
  ASSERT_TRUE(frozen->Exec("BEGIN"));
  ASSERT_TRUE(frozen->Exec("SELECT id FROM t WHERE id = 1 FOR UPDATE"));
  proxy_->FreezeEstablished();
  // idle_in_transaction_session_timeout (the client's deadline) ends the frozen session.
  EXPECT_TRUE(Eventually(
      [&] { return setup.Exec("SELECT id FROM t WHERE id = 1 FOR UPDATE NOWAIT").has_value(); },
      5));
}

TEST_F(DbDeadlineTest, APoolRecoversFromFrozenConnections) {
  db::Pool pool(proxied_, 3, Fast());
  {
    // Open all three, so that every idle connection is frozen below.
    auto a = pool.Acquire(), b = pool.Acquire(), c = pool.Acquire();
    ASSERT_TRUE(a && b && c);
    for (auto* p : {&a, &b, &c}) ASSERT_TRUE((**p)->Exec("SELECT 1"));
  }
  ASSERT_EQ(proxy_->FreezeEstablished(), 3);
  auto start = steady_clock::now();
  int timeouts = 0, ok = 0;
  while (ok < 5) {
    ASSERT_LT(steady_clock::now() - start, std::chrono::seconds(10)) << "the pool did not recover";
    auto conn = pool.Acquire();
    ASSERT_TRUE(conn) << conn.error().message;
    auto r = (*conn)->Exec("SELECT 1");
    if (r) {
      ++ok;
    } else {
      EXPECT_EQ(r.error().code, ErrorCode::kDeadlineExceeded) << r.error().message;
      ++timeouts;
    }
  }
  // Each frozen connection costs one call one deadline, once.
  EXPECT_LE(timeouts, 3);
  EXPECT_GE(proxy_->accepted(), 4);
}

TEST_F(DbDeadlineTest, ADbLaneRecoversOnANewConnection) {
  boost::asio::io_context io;
  worker::DbLane lane("frozen", proxied_, io.get_executor(), Fast());
  auto call = [&](auto work) {
    std::optional<Result<int64_t>> out;
    lane.Call(work, [&](Result<int64_t> r) { out = std::move(r); }, "test job");
    auto deadline = steady_clock::now() + std::chrono::seconds(10);
    while (!out && steady_clock::now() < deadline) {
      io.run_for(milliseconds(10));
      io.restart();
    }
    EXPECT_TRUE(out.has_value()) << "the lane did not answer";
    return out.value_or(Fail(ErrorCode::kInternal, "no answer"));
  };
  auto pid = [](db::Connection& c) -> Result<int64_t> { return BackendPid(c); };
  auto first = call(pid);
  ASSERT_TRUE(first);
  int64_t reached = lane.last_reached_ms();
  EXPECT_GT(reached, 0);
  proxy_->FreezeEstablished();
  // While the job waits on the frozen socket, the watchdog sees the lane busy.
  std::atomic<int64_t> busiest{0};
  std::jthread watch([&](std::stop_token stop) {
    while (!stop.stop_requested()) {
      busiest = std::max(busiest.load(), lane.busy_ms());
      std::this_thread::sleep_for(milliseconds(10));
    }
  });
  auto frozen = call([](db::Connection& c) -> Result<int64_t> {
    ASSIGN_OR_RETURN(auto r, c.Exec("SELECT 2"));
    return r.GetInt(0, 0);
  });
  watch.request_stop();
  watch.join();
  ASSERT_FALSE(frozen);
  EXPECT_EQ(frozen.error().code, ErrorCode::kDeadlineExceeded) << frozen.error().message;
  EXPECT_GE(busiest.load(), 300);
  EXPECT_EQ(lane.busy_ms(), 0);
  auto second = call(pid);
  ASSERT_TRUE(second) << second.error().message;
  EXPECT_NE(*second, *first) << "the lane kept its frozen connection";
  EXPECT_GE(lane.last_reached_ms(), reached);
}

TEST_F(DbDeadlineTest, TheOutboxRelayRecoversAndPublishesEverythingOnce) {
  auto& stack = testing::TestStack::Get();
  bus::NatsBus bus(bus::NatsOptions{.url = stack.nats().Url(), .name = "relay-freeze-test"});
  ASSERT_TRUE(Eventually([&] { return bus.connected(); }));
  std::string subject = "synaps.test.freeze." + std::to_string(getpid());
  std::mutex mu;
  std::multiset<std::string> received;
  auto sub = bus.Subscribe(subject, [&](const std::string&, const std::string& payload) {
    std::lock_guard lock(mu);
    received.insert(payload);
    return Ok();
  });
  ASSERT_TRUE(sub);
  // The stream is created by the first publish: none yet counts as empty.
  uint64_t before = bus.StreamMessageCount().value_or(0);
  db::Pool pool(proxied_, 2, Fast());
  api::OutboxRelay relay({.sweep_interval_ms = 50}, &bus, &pool);
  relay.Start();
  auto writer = Direct();
  auto insert = [&](int from, int to) {
    for (int i = from; i < to; ++i) {
      ASSERT_TRUE(writer.Exec(
          "INSERT INTO synaps.outbox (subject, payload) VALUES ($1, $2::jsonb)",
          {subject, "{\"n\":" + std::to_string(i) + "}"}));
    }
  };
  auto unpublished = [&] {
    auto r = writer.Exec("SELECT count(*) FROM synaps.outbox WHERE published_at IS NULL");
    return r ? r->GetInt(0, 0) : -1;
  };
  insert(0, 20);
  ASSERT_TRUE(Eventually([&] { return unpublished() == 0; }, 10));
  ASSERT_GE(proxy_->FreezeEstablished(), 1);
  insert(20, 40);
  EXPECT_TRUE(Eventually([&] { return unpublished() == 0; }, 15))
      << unpublished() << " rows still unpublished behind the frozen connection";
  relay.Stop();
  auto after = bus.StreamMessageCount();
  ASSERT_TRUE(after);
  EXPECT_EQ(*after - before, 40u) << "JetStream must hold each row once";
  std::lock_guard lock(mu);
  std::set<std::string> distinct(received.begin(), received.end());
  EXPECT_EQ(distinct.size(), 40u);
}

}  // namespace
}  // namespace synaps
