// DbLane against a real PostgreSQL: jobs run in order off the event loop, results come back on
// it, a down database fails fast, Stop() runs what was posted, a job that throws fails alone.
// (Frozen connections: tests/fault/db_deadline_test.cpp.)
#include "worker/db_lane.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

#include "support/test_stack.h"

namespace synaps::worker {
namespace {

namespace asio = boost::asio;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

Result<int64_t> SelectNumber(db::Connection& conn, int64_t n, double sleep_seconds = 0) {
  ASSIGN_OR_RETURN(db::PgResult r, conn.Exec("SELECT $1::bigint FROM pg_sleep($2::float8)",
                                             {std::to_string(n), std::to_string(sleep_seconds)}));
  return r.GetInt(0, 0);
}

// Runs `io` until `done()` or a deadline; fails the test on the deadline.
template <class Pred>
void RunUntil(asio::io_context& io, Pred done, milliseconds limit = milliseconds(10000)) {
  auto deadline = steady_clock::now() + limit;
  while (!done()) {
    ASSERT_LT(steady_clock::now(), deadline) << "timed out";
    io.run_for(milliseconds(10));
    io.restart();
  }
}

TEST(DbLaneTest, RunsJobsInOrderAndAnswersOnTheLoop) {
  std::string url = testing::TestStack::Get().FreshDatabase();
  asio::io_context io;
  DbLane lane("test", url, io.get_executor());
  std::vector<int64_t> answers;
  std::vector<std::thread::id> threads;
  for (int i = 1; i <= 5; ++i) {
    lane.Call([i](db::Connection& conn) { return SelectNumber(conn, i); },
              [&](Result<int64_t> r) {
                ASSERT_TRUE(r) << r.error().message;
                answers.push_back(*r);
                threads.push_back(std::this_thread::get_id());
              });
  }
  RunUntil(io, [&] { return answers.size() == 5; });
  EXPECT_EQ(answers, (std::vector<int64_t>{1, 2, 3, 4, 5}));
  for (auto id : threads) EXPECT_EQ(id, std::this_thread::get_id());
  // A job counts until its thread returns from it, which may be just after its answer ran here.
  RunUntil(
      io, [&] { return lane.backlog() == 0; }, milliseconds(2000));
}

TEST(DbLaneTest, ASlowStatementDoesNotBlockTheLoop) {
  std::string url = testing::TestStack::Get().FreshDatabase();
  asio::io_context io;
  DbLane lane("test", url, io.get_executor());
  bool answered = false, timer_fired_first = false;
  lane.Call([](db::Connection& conn) { return SelectNumber(conn, 7, 0.5); },
            [&](Result<int64_t> r) {
              ASSERT_TRUE(r) << r.error().message;
              answered = true;
            });
  asio::steady_timer timer(io, milliseconds(20));
  timer.async_wait([&](const boost::system::error_code&) { timer_fired_first = !answered; });
  RunUntil(io, [&] { return answered; });
  EXPECT_TRUE(timer_fired_first) << "the loop waited for the statement";
}

TEST(DbLaneTest, TwoLanesOverlap) {
  // Each lane's job waits (up to 10 s) for the other lane's job to have started: lanes that ran
  // one after another would leave the first waiting in vain. No timing threshold, so a loaded
  // machine cannot fail it.
  std::string url = testing::TestStack::Get().FreshDatabase();
  asio::io_context io;
  DbLane a("a", url, io.get_executor()), b("b", url, io.get_executor());
  std::atomic<int> started{0};
  int answered = 0, met = 0;
  for (DbLane* lane : {&a, &b}) {
    lane->Call(
        [&started](db::Connection& conn) -> Result<int64_t> {
          ++started;
          auto give_up = steady_clock::now() + std::chrono::seconds(10);
          while (started.load() < 2 && steady_clock::now() < give_up) {
            std::this_thread::sleep_for(milliseconds(1));
          }
          if (started.load() < 2) return 0;
          return SelectNumber(conn, 1);
        },
        [&](Result<int64_t> r) {
          ASSERT_TRUE(r) << r.error().message;
          ++answered;
          met += *r == 1 ? 1 : 0;
        });
  }
  RunUntil(
      io, [&] { return answered == 2; }, milliseconds(30000));
  EXPECT_EQ(met, 2) << "the lanes ran one after another";
}

TEST(DbLaneTest, ADownDatabaseFailsFastAndTheLaneRecovers) {
  asio::io_context io;
  // Port 1 refuses connections at once.
  DbLane lane("test", "postgresql://127.0.0.1:1/none", io.get_executor());
  std::vector<Error> errors;
  for (int i = 0; i < 20; ++i) {
    lane.Call([](db::Connection& conn) { return SelectNumber(conn, 1); },
              [&](Result<int64_t> r) {
                ASSERT_FALSE(r);
                errors.push_back(r.error());
              });
  }
  auto start = steady_clock::now();
  RunUntil(io, [&] { return errors.size() == 20; });
  // One connection attempt; the others inside the backoff fail without trying.
  EXPECT_LT(steady_clock::now() - start, milliseconds(2000));
  for (const auto& e : errors) EXPECT_EQ(e.code, ErrorCode::kUnavailable) << e.message;
}

TEST(DbLaneTest, ReconnectsAfterItsConnectionIsKilled) {
  std::string url = testing::TestStack::Get().FreshDatabase();
  asio::io_context io;
  DbLane lane("test", url, io.get_executor());
  auto killer = db::Connection::Connect(url);
  ASSERT_TRUE(killer) << killer.error().message;
  std::optional<Result<int64_t>> first, second, third;
  lane.Call(
      [](db::Connection& conn) -> Result<int64_t> {
        ASSIGN_OR_RETURN(db::PgResult r, conn.Exec("SELECT pg_backend_pid()"));
        return r.GetInt(0, 0);
      },
      [&](Result<int64_t> r) { first = std::move(r); });
  RunUntil(io, [&] { return first.has_value(); });
  ASSERT_TRUE(*first) << first->error().message;
  ASSERT_TRUE(killer->Exec("SELECT pg_terminate_backend($1::int)", {std::to_string(**first)}));
  lane.Call([](db::Connection& conn) { return SelectNumber(conn, 2); },
            [&](Result<int64_t> r) { second = std::move(r); });
  RunUntil(io, [&] { return second.has_value(); });
  ASSERT_FALSE(*second) << "the killed connection answered";
  EXPECT_EQ(second->error().code, ErrorCode::kUnavailable) << second->error().message;
  // The next job reconnects (after at most the first backoff).
  auto deadline = steady_clock::now() + std::chrono::seconds(10);
  while (!(third && *third)) {
    ASSERT_LT(steady_clock::now(), deadline);
    third.reset();
    lane.Call([](db::Connection& conn) { return SelectNumber(conn, 3); },
              [&](Result<int64_t> r) { third = std::move(r); });
    RunUntil(io, [&] { return third.has_value(); });
    if (!*third) std::this_thread::sleep_for(milliseconds(50));
  }
  EXPECT_EQ(**third, 3);
}

TEST(DbLaneTest, AJobThatThrowsFailsAloneAndTheLaneGoesOn) {
  std::string url = testing::TestStack::Get().FreshDatabase();
  asio::io_context io;
  std::ostringstream logged;
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>(
      "capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(logged)));
  DbLane lane("test", url, io.get_executor());
  std::optional<Result<int64_t>> thrown, inside_tx, next;
  lane.Call([](db::Connection&) -> Result<int64_t> { throw std::runtime_error("bad row 42"); },
            [&](Result<int64_t> r) { thrown = std::move(r); }, "settle task t-1");
  // A job that throws inside a transaction must not leak it into the next job.
  lane.Call(
      [](db::Connection& conn) -> Result<int64_t> {
        // Only the open transaction matters here; the throw below is what is tested.
        (void)conn.Exec("BEGIN");
        (void)conn.Exec("CREATE TABLE leaked (x int)");
        throw std::logic_error("bug after BEGIN");
      },
      [&](Result<int64_t> r) { inside_tx = std::move(r); }, "write batch");
  lane.Call(
      [](db::Connection& conn) -> Result<int64_t> {
        ASSIGN_OR_RETURN(db::PgResult r,
                         conn.Exec("SELECT count(*) FROM pg_tables WHERE tablename = 'leaked'"));
        return r.GetInt(0, 0);
      },
      [&](Result<int64_t> r) { next = std::move(r); });
  RunUntil(io, [&] { return thrown && inside_tx && next; });
  spdlog::set_default_logger(previous);
  ASSERT_FALSE(*thrown);
  EXPECT_EQ(thrown->error().code, ErrorCode::kInternal);
  EXPECT_EQ(thrown->error().message, "settle task t-1 failed: bad row 42");
  ASSERT_FALSE(*inside_tx);
  EXPECT_EQ(inside_tx->error().code, ErrorCode::kInternal);
  ASSERT_TRUE(*next) << next->error().message;
  EXPECT_EQ(**next, 0) << "the thrown job's transaction was committed or leaked";
  EXPECT_NE(logged.str().find("DB lane test: settle task t-1 threw: bad row 42"), std::string::npos)
      << logged.str();
  EXPECT_NE(logged.str().find("write batch threw: bug after BEGIN"), std::string::npos)
      << logged.str();
}

TEST(DbLaneTest, StopRunsWhatWasPosted) {
  std::string url = testing::TestStack::Get().FreshDatabase();
  asio::io_context io;
  std::atomic<int> ran{0};
  {
    DbLane lane("test", url, io.get_executor());
    for (int i = 0; i < 3; ++i) {
      lane.Call(
          [&ran](db::Connection& conn) {
            auto r = SelectNumber(conn, 1, 0.05);
            ++ran;
            return r;
          },
          [](Result<int64_t>) {});
    }
    lane.Stop();
    EXPECT_EQ(ran.load(), 3);
  }
}

}  // namespace
}  // namespace synaps::worker
