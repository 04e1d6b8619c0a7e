// Flow control inside the claim (docs/flow-control.md) against a real PostgreSQL: fair sharing
// of the free slots between tenants and fairness keys, weights from `concurrency` control items,
// priority inside a tenant only; concurrency limits per key with their strategies. Most claims
// here are never completed, so every claimed item keeps holding its slot and the shares are
// exact.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "api/flow_sweep.h"
#include "db/pool.h"
#include "store/queue_store.h"
#include "store/run_store.h"
#include "support/pg.h"
#include "support/test_stack.h"

namespace synaps::store {
namespace {

using nlohmann::json;

using testing::Connect;

// `n` one-task commands of `tenant`, submitted as the API would.
void Submit(db::Connection& conn, const std::string& tenant, int n, const json& extra = {}) {
  json command = {{"kind", "prompt"},
                  {"payload", json::object()},
                  {"tasks", {{{"name", "main"}, {"kind", "prompt"}, {"spec", json::object()}}}}};
  if (extra.is_object()) command.update(extra);
  auto r = conn.Exec(
      "SELECT synaps.submit_command($1, 'test', NULL, 'h' || g, $2::jsonb)"
      "  FROM generate_series(1, $3::integer) g",
      {tenant, command.dump(), std::to_string(n)});
  ASSERT_TRUE(r) << r.error().message;
}

void PutConcurrency(db::Connection& conn, const std::string& name, const json& spec) {
  auto r = conn.Exec(
      "SELECT synaps.control_write('concurrency', $1, 'put', $2::jsonb, NULL, 'test', NULL, 'x')",
      {name, spec.dump()});
  ASSERT_TRUE(r) << r.error().message;
}

// Claims `rounds` batches of `batch` without completing any; returns claims per tenant (and
// per "tenant/fairnessKey" when `by_key`).
std::map<std::string, int> ClaimRounds(db::Connection& conn, int rounds, int batch,
                                       bool fair = true, bool by_key = false) {
  std::map<std::string, int> got;
  for (int i = 0; i < rounds; ++i) {
    auto items = ClaimQueueItems(conn, "w", {"default"}, batch, 600, std::nullopt, fair);
    EXPECT_TRUE(items) << items.error().message;
    if (!items) break;
    for (const auto& it : *items) {
      std::string group = it.tenant_id;
      if (by_key) {
        auto k = conn.Exec("SELECT fairness_key FROM synaps.queue_items WHERE id = $1",
                           {std::to_string(it.item_id)});
        EXPECT_TRUE(k);
        group += "/" + std::string(k->Get(0, 0));
      }
      ++got[group];
    }
  }
  return got;
}

TEST(FairShareTest, TwoTenantsShareTheSlotsWhateverTheirBacklogs) {
  auto conn = Connect(testing::TestStack::Get().FreshDatabase());
  Submit(conn, "a", 500);  // a's backlog is older than all of b's work
  Submit(conn, "b", 30);
  auto got = ClaimRounds(conn, 10, 4);
  EXPECT_EQ(got["a"], 20);
  EXPECT_EQ(got["b"], 20);
}

TEST(FairShareTest, OffClaimsByPriorityAndAgeAlone) {
  auto conn = Connect(testing::TestStack::Get().FreshDatabase());
  Submit(conn, "a", 100);
  Submit(conn, "b", 30);
  auto got = ClaimRounds(conn, 10, 4, /*fair=*/false);
  EXPECT_EQ(got["a"], 40);
  EXPECT_EQ(got["b"], 0);
}

TEST(FairShareTest, OperatorWeightsSplitTheSlots) {
  auto conn = Connect(testing::TestStack::Get().FreshDatabase());
  PutConcurrency(conn, "a-weight", {{"match", {{"tenant", "a"}}}, {"weight", 3}});
  Submit(conn, "a", 200);
  Submit(conn, "b", 200);
  auto got = ClaimRounds(conn, 10, 4);
  EXPECT_EQ(got["a"], 30);
  EXPECT_EQ(got["b"], 10);

  // A weight that is deleted no longer counts: from here on b catches up to a's 30.
  auto r = conn.Exec(
      "SELECT synaps.control_write('concurrency', 'a-weight', 'delete', NULL, NULL, 't', NULL, "
      "'x')");
  ASSERT_TRUE(r) << r.error().message;
  got = ClaimRounds(conn, 5, 4);
  EXPECT_EQ(got["a"], 0);
  EXPECT_EQ(got["b"], 20);
}

TEST(FairShareTest, FairnessKeysShareATenantsSlots) {
  auto conn = Connect(testing::TestStack::Get().FreshDatabase());
  Submit(conn, "a", 300, {{"fairnessKey", "big"}});
  Submit(conn, "a", 30, {{"fairnessKey", "small"}});
  Submit(conn, "b", 100);
  auto got = ClaimRounds(conn, 10, 4, true, /*by_key=*/true);
  // Tenants first (20 each), then a's keys (10 each): a's many keys do not outweigh b.
  EXPECT_EQ(got["b/"], 20);
  EXPECT_EQ(got["a/big"], 10);
  EXPECT_EQ(got["a/small"], 10);

  PutConcurrency(conn, "big-keys", {{"match", {{"fairnessKey", "bi*"}}}, {"weight", 3}});
  got = ClaimRounds(conn, 10, 4, true, true);
  EXPECT_EQ(got["b/"], 20);
  // a's 20 new slots bring its keys to 40 held in the ratio 3:1: 30 and 10.
  EXPECT_EQ(got["a/big"], 20);
  EXPECT_EQ(got["a/small"], 0);
}

TEST(FairShareTest, PriorityOrdersInsideATenantNotAcrossTenants) {
  auto conn = Connect(testing::TestStack::Get().FreshDatabase());
  Submit(conn, "a", 20, {{"priority", 0}});
  Submit(conn, "a", 20, {{"priority", 10}});
  Submit(conn, "b", 40, {{"priority", 0}});
  std::vector<int> a_priorities;
  std::map<std::string, int> got;
  for (int i = 0; i < 5; ++i) {
    auto items = ClaimQueueItems(conn, "w", {"default"}, 4, 600);
    ASSERT_TRUE(items) << items.error().message;
    for (const auto& it : *items) {
      ++got[it.tenant_id];
      if (it.tenant_id != "a") continue;
      auto p = conn.Exec("SELECT priority FROM synaps.queue_items WHERE id = $1",
                         {std::to_string(it.item_id)});
      ASSERT_TRUE(p);
      a_priorities.push_back(static_cast<int>(p->GetInt(0, 0)));
    }
  }
  EXPECT_EQ(got["a"], 10) << "a's priority 10 does not take b's share";
  EXPECT_EQ(got["b"], 10);
  for (int p : a_priorities) EXPECT_EQ(p, 10) << "a's own priority-10 work goes first";
}

TEST(FairShareTest, ConcurrentFairClaimersNeverShareAnItemAndMissNone) {
  std::string url = testing::TestStack::Get().FreshDatabase();
  auto setup = Connect(url);
  Submit(setup, "a", 600);
  Submit(setup, "b", 300, {{"fairnessKey", "x"}});
  Submit(setup, "c", 100);
  std::mutex mu;
  std::map<int64_t, int> claims;
  std::vector<std::thread> claimers;
  for (int w = 0; w < 6; ++w) {
    claimers.emplace_back([&, w] {
      auto conn = Connect(url);
      while (true) {
        auto items = ClaimQueueItems(conn, "w" + std::to_string(w), {"default"}, 5, 60);
        ASSERT_TRUE(items) << items.error().message;
        if (items->empty()) return;
        std::vector<Completion> batch;
        {
          std::lock_guard lock(mu);
          for (const auto& it : *items) {
            ++claims[it.item_id];
            batch.push_back({{it.item_id, it.lease_epoch}, json{{"text", "ok"}}, {}});
          }
        }
        auto states = CompleteQueueItems(conn, batch);
        ASSERT_TRUE(states) << states.error().message;
      }
    });
  }
  for (auto& t : claimers) t.join();
  EXPECT_EQ(claims.size(), 1000u);
  for (const auto& [item, n] : claims) EXPECT_EQ(n, 1) << "item " << item;
  auto left = setup.Exec("SELECT count(*) FROM synaps.queue_items");
  ASSERT_TRUE(left);
  EXPECT_EQ(left->GetInt(0, 0), 0);
}

int64_t Count(db::Connection& conn, const std::string& sql) {
  auto r = conn.Exec(sql);
  EXPECT_TRUE(r) << r.error().message;
  return r ? r->GetInt(0, 0) : -1;
}

std::string TenantName(int i) {
  char name[8];
  std::snprintf(name, sizeof name, "t%03d", i);
  return name;
}

// More groups than a claim's window (2 * batch + 16): each claim ranks a window from a start
// that moves on, so the slots still go round every tenant, and a tenant with a long backlog
// still gets no more than its share.
TEST(FairShareTest, ManyTenantsTakeTurnsThroughTheWindow) {
  auto conn = Connect(testing::TestStack::Get().FreshDatabase());
  Submit(conn, "heavy", 300);  // older than everything else
  for (int i = 0; i < 200; ++i) Submit(conn, TenantName(i), 3);
  EXPECT_EQ(Count(conn, "SELECT count(*) FROM synaps.flow_windows(ARRAY['default'], NULL, 18)"), 18)
      << "a window is bounded, however many groups have work";

  auto got = ClaimRounds(conn, 201, 1);
  EXPECT_EQ(got.size(), 201u) << "every tenant got a slot";
  for (const auto& [tenant, n] : got) EXPECT_EQ(n, 1) << tenant;

  got = ClaimRounds(conn, 50, 4);
  EXPECT_LE(got["heavy"], 2) << "the old backlog does not take the slots of 200 others";
  int most = 0;
  for (const auto& [tenant, n] : got) most = std::max(most, n);
  EXPECT_LE(most, 2);
}

// Groups whose items are all leased or not yet available do not fill a window: a claim finds
// the one group with claimable work however many such groups sort before it.
TEST(FairShareTest, GroupsWithNothingClaimableDoNotHideWork) {
  auto conn = Connect(testing::TestStack::Get().FreshDatabase());
  for (int i = 0; i < 40; ++i) Submit(conn, TenantName(i), 1);
  for (int i = 40; i < 80; ++i) {
    Submit(conn, TenantName(i), 1, {{"notBefore", "2999-01-01T00:00:00Z"}});
  }
  EXPECT_EQ(ClaimRounds(conn, 1, 40).size(), 40u);  // t000..t039 now hold their only item
  Submit(conn, "zz", 2);
  auto got = ClaimRounds(conn, 1, 1);
  EXPECT_EQ(got["zz"], 1);
}

// A tenant's own claim (a remote worker's) shares between the tenant's fairness keys through
// the same window, and never takes another tenant's work.
TEST(FairShareTest, ATenantsClaimTakesTurnsBetweenItsManyKeys) {
  auto conn = Connect(testing::TestStack::Get().FreshDatabase());
  for (int i = 0; i < 60; ++i) Submit(conn, "a", 2, {{"fairnessKey", TenantName(i)}});
  Submit(conn, "b", 50);
  std::map<std::string, int> per_key;
  for (int i = 0; i < 60; ++i) {
    auto items = ClaimQueueItems(conn, "w", {"default"}, 1, 600, std::string("a"), true);
    ASSERT_TRUE(items) << items.error().message;
    ASSERT_EQ(items->size(), 1u);
    EXPECT_EQ((*items)[0].tenant_id, "a");
    auto k = conn.Exec("SELECT fairness_key FROM synaps.queue_items WHERE id = $1",
                       {std::to_string((*items)[0].item_id)});
    ASSERT_TRUE(k);
    ++per_key[std::string(k->Get(0, 0))];
  }
  EXPECT_EQ(per_key.size(), 60u) << "each of a's keys got one slot";
}

// Claims one batch; returns how many items of each concurrency key ("-" for none) it got.
std::map<std::string, int> ClaimKeys(db::Connection& conn, int batch,
                                     std::vector<ClaimedItem>* items_out = nullptr) {
  std::map<std::string, int> got;
  auto items = ClaimQueueItems(conn, "w", {"default"}, batch, 600);
  EXPECT_TRUE(items) << items.error().message;
  if (!items) return got;
  for (const auto& it : *items) {
    auto k =
        conn.Exec("SELECT coalesce(concurrency_key, '-') FROM synaps.queue_items WHERE id = $1",
                  {std::to_string(it.item_id)});
    EXPECT_TRUE(k);
    ++got[std::string(k->Get(0, 0))];
  }
  if (items_out != nullptr) *items_out = *items;
  return got;
}

TEST(ConcurrencyLimitTest, QueueHoldsTheRestUntilASlotFrees) {
  auto conn = Connect(testing::TestStack::Get().FreshDatabase());
  PutConcurrency(conn, "per-key", {{"match", {{"key", "k*"}}}, {"maxRunning", 2}});
  Submit(conn, "a", 6, {{"concurrencyKey", "k1"}});
  Submit(conn, "a", 3, {{"concurrencyKey", "k2"}});
  Submit(conn, "a", 3);
  std::vector<ClaimedItem> first;
  auto got = ClaimKeys(conn, 20, &first);
  EXPECT_EQ(got["k1"], 2);
  EXPECT_EQ(got["k2"], 2);
  EXPECT_EQ(got["-"], 3);
  EXPECT_EQ(Count(conn, "SELECT count(*) FROM synaps.queue_items WHERE status = 'limited'"), 5);
  EXPECT_EQ(Count(conn,
                  "SELECT count(*) FROM synaps.ledger_events WHERE type = 'task.waiting'"
                  " AND data @> '{\"reason\":\"limit\",\"maxRunning\":2,\"limit\":\"per-key\"}'"),
            5);
  EXPECT_TRUE(ClaimKeys(conn, 20).empty()) << "nothing frees, nothing more runs";

  // One k1 completes: exactly one waiting k1 becomes claimable.
  for (const auto& it : first) {
    auto k = conn.Exec("SELECT concurrency_key FROM synaps.queue_items WHERE id = $1",
                       {std::to_string(it.item_id)});
    ASSERT_TRUE(k);
    if (k->IsNull(0, 0) || std::string(k->Get(0, 0)) != "k1") continue;
    auto done =
        CompleteQueueItems(conn, {{{it.item_id, it.lease_epoch}, json{{"text", "ok"}}, {}}});
    ASSERT_TRUE(done) << done.error().message;
    break;
  }
  got = ClaimKeys(conn, 20);
  EXPECT_EQ(got.size(), 1u);
  EXPECT_EQ(got["k1"], 1);
}

TEST(ConcurrencyLimitTest, KeysArePerTenantAndPatternsAreLiteral) {
  auto conn = Connect(testing::TestStack::Get().FreshDatabase());
  PutConcurrency(conn, "one", {{"match", {{"key", "a_b"}}}, {"maxRunning", 1}});
  Submit(conn, "a", 3, {{"concurrencyKey", "a_b"}});
  Submit(conn, "b", 3, {{"concurrencyKey", "a_b"}});
  Submit(conn, "a", 3, {{"concurrencyKey", "axb"}});  // '_' is not a wildcard
  auto got = ClaimKeys(conn, 20);
  EXPECT_EQ(got["a_b"], 2) << "one for each tenant";
  EXPECT_EQ(got["axb"], 3) << "no limit matches axb";
}

TEST(ConcurrencyLimitTest, RaisingALimitLetsWaitingTasksGo) {
  auto conn = Connect(testing::TestStack::Get().FreshDatabase());
  PutConcurrency(conn, "solo", {{"maxRunning", 1}});
  Submit(conn, "a", 5, {{"concurrencyKey", "job"}});
  EXPECT_EQ(ClaimKeys(conn, 10)["job"], 1);
  EXPECT_TRUE(ClaimKeys(conn, 10).empty());
  PutConcurrency(conn, "solo", {{"maxRunning", 3}});
  EXPECT_EQ(ClaimKeys(conn, 10)["job"], 2);
}

TEST(ConcurrencyLimitTest, CancelInProgressReplacesTheRunningRun) {
  auto conn = Connect(testing::TestStack::Get().FreshDatabase());
  PutConcurrency(conn, "latest", {{"maxRunning", 1}, {"strategy", "cancelInProgress"}});
  Submit(conn, "a", 1, {{"concurrencyKey", "doc"}});
  std::vector<ClaimedItem> old;
  EXPECT_EQ(ClaimKeys(conn, 10, &old)["doc"], 1);
  ASSERT_EQ(old.size(), 1u);
  // Two newer ones arrive: the newest runs; the running one and the one between are cancelled.
  auto r = conn.Exec(
      "SELECT synaps.submit_command('a', 'test', NULL, 'n' || g, $1::jsonb)"
      "  FROM generate_series(1, 2) g",
      {json({{"kind", "prompt"},
             {"payload", json::object()},
             {"concurrencyKey", "doc"},
             {"tasks", {{{"name", "main"}, {"kind", "prompt"}, {"spec", json::object()}}}}})
           .dump()});
  ASSERT_TRUE(r) << r.error().message;
  std::vector<ClaimedItem> now;
  EXPECT_EQ(ClaimKeys(conn, 10, &now)["doc"], 1);
  ASSERT_EQ(now.size(), 1u);
  EXPECT_EQ(Count(conn,
                  "SELECT count(*) FROM synaps.runs WHERE status = 'cancelled'"
                  " AND error->>'message' = 'cancelled by concurrency:latest'"),
            2);
  auto newest = conn.Exec("SELECT run_id FROM synaps.queue_items WHERE status = 'leased'");
  ASSERT_TRUE(newest);
  ASSERT_EQ(newest->rows(), 1);
  EXPECT_EQ(std::string(newest->Get(0, 0)), now[0].run_id);
  EXPECT_EQ(Count(conn, "SELECT count(*) FROM synaps.runs r WHERE r.id = '" + now[0].run_id +
                            "' AND r.created_at = (SELECT max(created_at) FROM synaps.runs)"),
            1)
      << "the newest command is the one that runs";
}

TEST(ConcurrencyLimitTest, CancelNewestRefusesTheSubmitAndWritesNothing) {
  auto conn = Connect(testing::TestStack::Get().FreshDatabase());
  PutConcurrency(conn, "one-at-a-time",
                 {{"match", {{"key", "solo"}}}, {"maxRunning", 1}, {"strategy", "cancelNewest"}});
  SubmitRequest req;
  req.tenant_id = "a";
  req.actor = "test";
  req.kind = "prompt";
  req.payload = {{"n", 1}};
  req.request_hash = "h1";
  req.idempotency_key = "first";
  req.concurrency_key = "solo";
  req.tasks = {{"main", "prompt", json::object(), {}}};
  auto first = SubmitCommandWithinLimits(conn, req);
  ASSERT_TRUE(first) << first.error().message;
  auto replay = SubmitCommandWithinLimits(conn, req);
  ASSERT_TRUE(replay) << replay.error().message;
  EXPECT_TRUE(replay->replayed) << "a replay is answered, not refused";

  SubmitRequest second = req;
  second.idempotency_key = "second";
  second.request_hash = "h2";
  auto refused = SubmitCommandWithinLimits(conn, second);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kConflict);
  EXPECT_EQ(refused.error().field, "concurrencyKey");
  EXPECT_NE(refused.error().message.find("one-at-a-time"), std::string::npos)
      << refused.error().message;
  EXPECT_EQ(Count(conn, "SELECT count(*) FROM synaps.commands"), 1);

  second.concurrency_key = "other";
  EXPECT_TRUE(SubmitCommandWithinLimits(conn, second));
}

TEST(ConcurrencyLimitTest, CancelNewestRefusesBatchItemsOverTheLimitInTheBatchsOrder) {
  auto conn = Connect(testing::TestStack::Get().FreshDatabase());
  PutConcurrency(conn, "pairs",
                 {{"match", {{"key", "pair"}}}, {"maxRunning", 2}, {"strategy", "cancelNewest"}});
  auto command = [](const std::string& key, const std::string& hash,
                    std::optional<std::string> concurrency_key) {
    SubmitRequest req;
    req.tenant_id = "a";
    req.actor = "test";
    req.kind = "prompt";
    req.payload = {{"n", hash}};
    req.request_hash = hash;
    req.idempotency_key = key;
    req.concurrency_key = std::move(concurrency_key);
    req.tasks = {{"main", "prompt", json::object(), {}}};
    return req;
  };
  SubmitRequest first = command("first", "h1", "pair");
  auto running = SubmitCommandWithinLimits(conn, first);
  ASSERT_TRUE(running) << running.error().message;
  const std::string running_run = running->response.value("runId", "");

  SubmitRequest fits = command("fits", "h2", "pair");
  SubmitRequest other = command("other", "h3", "elsewhere");
  SubmitRequest over = command("over", "h4", "pair");
  SubmitRequest also_over = command("also-over", "h5", "pair");
  auto got = SubmitCommands(conn, "a", "test", {&first, &fits, &other, &over, &also_over});
  ASSERT_TRUE(got) << got.error().message;
  ASSERT_EQ(got->size(), 5u);
  ASSERT_TRUE((*got)[0]);
  EXPECT_TRUE((*got)[0]->replayed) << "a replay is answered, not refused";
  ASSERT_TRUE((*got)[1]) << (*got)[1].error().message;
  EXPECT_FALSE((*got)[1]->replayed) << "the key had room for one more";
  ASSERT_TRUE((*got)[2]) << (*got)[2].error().message;
  for (int i : {3, 4}) {
    ASSERT_FALSE((*got)[i]) << "item " << i << " is over the limit";
    const synaps::Error& e = (*got)[i].error();
    EXPECT_EQ(e.code, ErrorCode::kConflict);
    EXPECT_EQ(e.field, "concurrencyKey");
    EXPECT_NE(e.message.find("pairs"), std::string::npos) << e.message;
    EXPECT_NE(e.message.find("run " + running_run), std::string::npos)
        << "names the run holding the key: " << e.message;
  }
  EXPECT_EQ(Count(conn, "SELECT count(*) FROM synaps.commands"), 3) << "nothing of a refused item";
  EXPECT_EQ(Count(conn, "SELECT count(*) FROM synaps.runs"), 3);
  EXPECT_EQ(Count(conn, "SELECT count(*) FROM synaps.commands WHERE idempotency_key LIKE '%over'"),
            0);
}

TEST(ConcurrencyLimitTest, ConcurrentClaimersNeverExceedTheLimit) {
  std::string url = testing::TestStack::Get().FreshDatabase();
  auto setup = Connect(url);
  PutConcurrency(setup, "hot", {{"match", {{"key", "hot"}}}, {"maxRunning", 3}});
  Submit(setup, "a", 150, {{"concurrencyKey", "hot"}});
  Submit(setup, "a", 50);
  std::mutex mu;
  int running = 0, most = 0, done = 0;
  std::vector<std::thread> claimers;
  for (int w = 0; w < 6; ++w) {
    claimers.emplace_back([&, w] {
      auto conn = Connect(url);
      std::mt19937 rng(w);
      for (int idle = 0; idle < 50;) {
        auto items = ClaimQueueItems(conn, "w" + std::to_string(w), {"default"}, 4, 60);
        ASSERT_TRUE(items) << items.error().message;
        if (items->empty()) {
          ++idle;
          std::this_thread::sleep_for(std::chrono::milliseconds(5));
          continue;
        }
        idle = 0;
        std::vector<Completion> batch;
        int hot = 0;
        for (const auto& it : *items) {
          auto k = conn.Exec("SELECT concurrency_key FROM synaps.queue_items WHERE id = $1",
                             {std::to_string(it.item_id)});
          ASSERT_TRUE(k);
          if (!k->IsNull(0, 0)) ++hot;
          batch.push_back({{it.item_id, it.lease_epoch}, json{{"text", "ok"}}, {}});
        }
        {
          std::lock_guard lock(mu);
          running += hot;
          most = std::max(most, running);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 5));
        {
          // Still leased in the database until the completion commits: never more than it.
          std::lock_guard lock(mu);
          running -= hot;
          done += static_cast<int>(batch.size());
        }
        auto states = CompleteQueueItems(conn, batch);
        ASSERT_TRUE(states) << states.error().message;
      }
    });
  }
  for (auto& t : claimers) t.join();
  EXPECT_EQ(done, 200);
  EXPECT_LE(most, 3);
  EXPECT_EQ(most, 3) << "the limit was also used in full";
  EXPECT_EQ(Count(setup, "SELECT count(*) FROM synaps.queue_items"), 0);
}

// The release trigger skips waiting items another transaction holds locked at that moment (a
// claim or another release does, briefly); a key can then be left with waiting tasks and
// nothing running. The API's periodic sweep (api::FlowSweep) finds such a key and makes as
// many waiting tasks ready as the limit has room for.
TEST(ConcurrencyLimitTest, TheSweepReleasesWaitingTasksWhoseReleaseWasSkipped) {
  std::string url = testing::TestStack::Get().FreshDatabase();
  auto conn = Connect(url);
  PutConcurrency(conn, "one-at-a-time", {{"match", {{"key", "k*"}}}, {"maxRunning", 1}});
  Submit(conn, "a", 3, {{"concurrencyKey", "k1"}});
  std::vector<ClaimedItem> running;
  EXPECT_EQ(ClaimKeys(conn, 5, &running)["k1"], 1);
  ASSERT_EQ(running.size(), 1u);
  ASSERT_EQ(Count(conn, "SELECT count(*) FROM synaps.queue_items WHERE status = 'limited'"), 2);

  auto locker = Connect(url);
  ASSERT_TRUE(locker.Exec("BEGIN"));
  ASSERT_TRUE(locker.Exec("SELECT id FROM synaps.queue_items WHERE status = 'limited' FOR UPDATE"));
  auto done = CompleteQueueItems(
      conn, {{{running[0].item_id, running[0].lease_epoch}, json{{"text", "ok"}}, {}}});
  ASSERT_TRUE(done) << done.error().message;
  ASSERT_TRUE(locker.Exec("COMMIT"));
  EXPECT_EQ(Count(conn, "SELECT count(*) FROM synaps.queue_items WHERE status = 'limited'"), 2)
      << "the completion's release skipped the locked rows";
  EXPECT_TRUE(ClaimKeys(conn, 5).empty()) << "stuck: nothing runs, nothing would release";

  db::Pool pool(url, 1);
  api::FlowSweep sweep(&pool, std::chrono::milliseconds(100));
  sweep.Start();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (Count(conn, "SELECT count(*) FROM synaps.queue_items WHERE status = 'ready'") == 0 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  sweep.Stop();
  EXPECT_EQ(Count(conn, "SELECT count(*) FROM synaps.queue_items WHERE status = 'ready'"), 1)
      << "room for one: one made ready";
  EXPECT_EQ(ClaimKeys(conn, 5)["k1"], 1);
  auto again = SweepConcurrencyKeys(conn);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(*again, 0) << "the key is at its limit again";
  EXPECT_EQ(Count(conn, "SELECT count(*) FROM synaps.queue_items WHERE status = 'limited'"), 1);
}

}  // namespace
}  // namespace synaps::store
