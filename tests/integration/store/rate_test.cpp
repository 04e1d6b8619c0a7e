// Provider rate limits shared by every worker (docs/flow-control.md) against a real PostgreSQL:
// the two statements of a worker's ask (rate_reserve, rate_park; db/migrations/0041_rate_fair.sql),
// what a parked task keeps (no slot), tokensPerMinute and rate_settle, cancelling a parked
// task, and resetting a route's limiter by changing its control item.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <thread>

#include "db/pool.h"
#include "store/queue_store.h"
#include "store/rate_store.h"
#include "support/pg.h"
#include "support/test_stack.h"

namespace synaps::store {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

using testing::Connect;

void Submit(db::Connection& conn, const std::string& tenant, int n) {
  json command = {{"kind", "prompt"},
                  {"payload", json::object()},
                  {"tasks", {{{"name", "main"}, {"kind", "prompt"}, {"spec", json::object()}}}}};
  auto r = conn.Exec(
      "SELECT synaps.submit_command($1, 'test', NULL, 'h' || g, $2::jsonb)"
      "  FROM generate_series(1, $3::integer) g",
      {tenant, command.dump(), std::to_string(n)});
  ASSERT_TRUE(r) << r.error().message;
}

ClaimedItem ClaimOne(db::Connection& conn) {
  auto items = ClaimQueueItems(conn, "w", {"default"}, 1, 600);
  EXPECT_TRUE(items && items->size() == 1) << (items ? "no item" : items.error().message);
  return items && !items->empty() ? items->front() : ClaimedItem{};
}

// One call of 60 per minute (a slot a second); `item` set: it may park.
RateAsk Ask(const std::string& route, const ClaimedItem* item = nullptr) {
  RateAsk ask{.route = route, .tenant = "a", .requests_per_minute = 60, .park_after_ms = 250};
  if (item != nullptr) {
    ask.tenant = item->tenant_id;
    ask.lease = LeaseRef{item->item_id, item->lease_epoch};
  }
  return ask;
}

int64_t Scalar(db::Connection& conn, const std::string& sql) {
  auto r = conn.Exec(sql);
  EXPECT_TRUE(r) << r.error().message;
  return r && r->rows() == 1 && !r->IsNull(0, 0) ? r->GetInt(0, 0) : -1;
}

// The route's next request slot, in milliseconds since the epoch (-1: no row). An absolute
// time: it moves only when a slot is reserved, never because the test ran slowly, so
// "nothing was reserved" is an exact comparison on a loaded machine.
int64_t SlotAtMs(db::Connection& conn, const std::string& route) {
  auto r = conn.Exec(
      "SELECT floor(extract(epoch FROM request_tat) * 1000)::bigint"
      "  FROM synaps.rate_limits WHERE route = $1",
      {route});
  EXPECT_TRUE(r) << r.error().message;
  return r && r->rows() == 1 && !r->IsNull(0, 0) ? r->GetInt(0, 0) : -1;
}

// The database's clock in milliseconds since the epoch: the clock rate_reserve reads.
int64_t NowMs(db::Connection& conn) {
  return Scalar(conn, "SELECT floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint");
}

// A wait the limiter computed at some moment in [asked_ms, answered_ms] for a slot known to
// lie in [slot_from_ms, slot_to_ms] (rate_reserve rounds it up to the millisecond): bounds
// that hold however slowly the test ran between its clock reads.
void ExpectWaitFor(int64_t wait_ms, int64_t slot_from_ms, int64_t slot_to_ms, int64_t asked_ms,
                   int64_t answered_ms) {
  EXPECT_GE(wait_ms, slot_from_ms - answered_ms - 1);
  EXPECT_LE(wait_ms, slot_to_ms - asked_ms + 1);
}

// Makes the route busy for `seconds` (slots reserved by calls that wait in place).
void Book(db::Connection& conn, const std::string& route, int seconds) {
  for (int i = 0; i < seconds; ++i) ASSERT_TRUE(AcquireRate(conn, Ask(route)));
}

TEST(RateStoreTest, AParkedTaskKeepsNoSlotAndAsksAgainOnTheRouteItCalls) {
  auto conn = Connect(testing::TestStack::Get().FreshDatabase());
  Submit(conn, "a", 1);
  Book(conn, "x", 3);
  const int64_t before = SlotAtMs(conn, "x");
  ClaimedItem item = ClaimOne(conn);
  auto parked = AcquireRate(conn, Ask("x", &item));
  ASSERT_TRUE(parked) << parked.error().message;
  EXPECT_TRUE(parked->parked);
  EXPECT_GT(parked->wait_ms, 250);  // more than it may hold in place (park_after_ms)
  // Nothing was reserved for it: the route's next slot did not move.
  EXPECT_EQ(SlotAtMs(conn, "x"), before);
  EXPECT_EQ(Scalar(conn,
                   "SELECT count(*) FROM synaps.queue_items WHERE status = 'ready'"
                   " AND rate_route = 'x' AND rate_slot = available_at"),
            1);
  EXPECT_EQ(Scalar(conn,
                   "SELECT count(*) FROM synaps.ledger_events WHERE type = 'task.waiting'"
                   " AND data->>'reason' = 'rateLimit' AND data->>'reserved' = 'false'"),
            1);

  // Claimed again, its call goes to route y (a control change, a fallback): it asks y and
  // spends nothing of x; the mark of its wait for x is gone.
  ASSERT_TRUE(conn.Exec("UPDATE synaps.queue_items SET available_at = now()"));
  ClaimedItem again = ClaimOne(conn);
  ASSERT_EQ(again.item_id, item.item_id);
  const int64_t asked = NowMs(conn);
  auto on_y = AcquireRate(conn, Ask("y", &again));
  const int64_t answered = NowMs(conn);
  ASSERT_TRUE(on_y) << on_y.error().message;
  EXPECT_FALSE(on_y->parked);
  EXPECT_EQ(on_y->wait_ms, 0);
  EXPECT_EQ(SlotAtMs(conn, "x"), before) << "route x's slots were spent by a y call";
  // y's next slot is one interval (1 s) after the moment it was asked.
  EXPECT_GE(SlotAtMs(conn, "y"), asked + 1000 - 1);
  EXPECT_LE(SlotAtMs(conn, "y"), answered + 1000 + 1);
  EXPECT_EQ(Scalar(conn,
                   "SELECT count(*) FROM synaps.queue_items WHERE rate_route IS NOT NULL"
                   " OR rate_slot IS NOT NULL"),
            0);
}

TEST(RateStoreTest, TheRoutesRowIsNotHeldWhileATaskParks) {
  // A park waits for its run's lock (here: a transaction holding it, as a worker's completion
  // of another task of the run would). Meanwhile other workers' asks on the route must go through: the route's
  // row is locked only by the short reserve statement, never across the park's writes.
  const std::string url = testing::TestStack::Get().FreshDatabase();
  auto conn = Connect(url);
  Submit(conn, "a", 1);
  Book(conn, "x", 3);
  ClaimedItem item = ClaimOne(conn);
  auto holder = Connect(url);
  ASSERT_TRUE(holder.Exec("BEGIN"));
  ASSERT_TRUE(
      holder.Exec("SELECT 1 FROM synaps.runs WHERE id = $1::uuid FOR UPDATE", {item.run_id}));
  auto parking = std::async(std::launch::async, [&] {
    auto c = Connect(url);
    return AcquireRate(c, Ask("x", &item));
  });
  // The park is now waiting for the run.
  const auto deadline = SteadyClock::now() + std::chrono::seconds(10);
  while (Scalar(conn,
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND query LIKE '%rate_park%'") < 1 &&
         SteadyClock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(20));
  }
  ASSERT_EQ(parking.wait_for(milliseconds(0)), std::future_status::timeout);
  auto other = Connect(url);
  // The park holds what it locked until the holder commits, below: an ask that waited for it
  // would end by this timeout instead of answering.
  ASSERT_TRUE(other.Exec("SET statement_timeout = 10000"));
  auto r = AcquireRate(other, Ask("x"));
  ASSERT_TRUE(r) << "another worker's ask waited for the park: " << r.error().message;
  ASSERT_TRUE(holder.Exec("COMMIT"));
  auto p = parking.get();
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_TRUE(p->parked);
}

TEST(RateStoreTest, ACancelledParkedTaskLeavesWithoutASlot) {
  auto conn = Connect(testing::TestStack::Get().FreshDatabase());
  Submit(conn, "a", 1);
  Book(conn, "x", 3);
  ClaimedItem item = ClaimOne(conn);
  auto parked = AcquireRate(conn, Ask("x", &item));
  ASSERT_TRUE(parked && parked->parked);
  const int64_t before = SlotAtMs(conn, "x");
  ASSERT_TRUE(CancelRun(conn, "a", item.run_id, "test"));
  EXPECT_EQ(Scalar(conn, "SELECT count(*) FROM synaps.queue_items"), 0);
  // The route's next slots are those booked before, none more; the next ask gets the slot
  // after them.
  EXPECT_EQ(SlotAtMs(conn, "x"), before);
  const int64_t asked = NowMs(conn);
  auto next = AcquireRate(conn, Ask("x"));
  const int64_t answered = NowMs(conn);
  ASSERT_TRUE(next);
  ExpectWaitFor(next->wait_ms, before, before, asked, answered);
}

TEST(RateStoreTest, TokensPerMinuteAreChargedUpFrontAndSettled) {
  auto conn = Connect(testing::TestStack::Get().FreshDatabase());
  // 6,000 tokens per minute: 100 a second. A call estimated at 1,000 tokens pays for 10 s.
  RateAsk ask{.route = "t", .tenant = "a", .tokens_per_minute = 6000, .tokens = 1000};
  const int64_t first_asked = NowMs(conn);
  auto first = AcquireRate(conn, ask);
  const int64_t first_answered = NowMs(conn);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->wait_ms, 0);
  // It used 100 tokens, not 1,000: 9 s are given back, and the next call waits until 1 s after
  // the first, not 10. (The first's moment is known to lie between its two clock reads.)
  ASSERT_TRUE(SettleRate(conn, "t", 6000, -900));
  ask.tokens = 100;
  auto second = AcquireRate(conn, ask);
  const int64_t second_answered = NowMs(conn);
  ASSERT_TRUE(second);
  ExpectWaitFor(second->wait_ms, first_asked + 1000, first_answered + 1000, first_answered,
                second_answered);
  // The second used 400, 300 more than charged: the route's tokens move on by 3 s.
  ASSERT_TRUE(SettleRate(conn, "t", 6000, 300));
  auto third = AcquireRate(conn, ask);
  const int64_t third_answered = NowMs(conn);
  ASSERT_TRUE(third);
  // 100 + 400 tokens after the first's 100: 5 s after the first.
  ExpectWaitFor(third->wait_ms, first_asked + 5000, first_answered + 5000, second_answered,
                third_answered);
}

TEST(RateStoreTest, ChangingTheRouteResetsItsLimiterAndReleasesItsWaitingTasks) {
  auto conn = Connect(testing::TestStack::Get().FreshDatabase());
  Submit(conn, "a", 1);
  Book(conn, "x", 5);
  ASSERT_TRUE(BlockRate(conn, "x", 600000));  // a provider's 429 asked for 10 minutes
  ClaimedItem item = ClaimOne(conn);
  auto parked = AcquireRate(conn, Ask("x", &item));
  ASSERT_TRUE(parked && parked->parked);
  EXPECT_GT(parked->wait_ms, 500000);
  ASSERT_TRUE(conn.Exec(
      "SELECT synaps.control_write('routes', 'x', 'put', $1::jsonb, NULL, 'test', NULL, 'r')",
      {json{{"provider", "local"}, {"model", "echo"}, {"limits", {{"requestsPerMinute", 120}}}}
           .dump()}));
  EXPECT_EQ(Scalar(conn, "SELECT count(*) FROM synaps.rate_limits WHERE route = 'x'"), 0);
  EXPECT_EQ(Scalar(conn, "SELECT count(*) FROM synaps.rate_waits WHERE route = 'x'"), 0);
  EXPECT_EQ(Scalar(conn,
                   "SELECT count(*) FROM synaps.queue_items WHERE available_at <= now()"
                   " AND rate_route IS NULL AND rate_slot IS NULL"),
            1);
  ClaimedItem again = ClaimOne(conn);
  ASSERT_EQ(again.item_id, item.item_id);
  auto now = AcquireRate(conn, Ask("x", &again));
  ASSERT_TRUE(now);
  EXPECT_FALSE(now->parked);
  EXPECT_EQ(now->wait_ms, 0);
  // Another route's change leaves x alone.
  ASSERT_TRUE(conn.Exec(
      "SELECT synaps.control_write('routes', 'z', 'put', $1::jsonb, NULL, 'test', NULL, 'r')",
      {json{{"provider", "local"}, {"model", "echo"}}.dump()}));
  EXPECT_EQ(Scalar(conn, "SELECT count(*) FROM synaps.rate_limits WHERE route = 'x'"), 1);
}

}  // namespace
}  // namespace synaps::store
