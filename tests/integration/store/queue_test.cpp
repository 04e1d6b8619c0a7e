// The queue functions against a real PostgreSQL: leases, fencing, exactly-once completion.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "store/queue_store.h"
#include "store/run_store.h"
#include "support/pg.h"
#include "support/test_stack.h"

namespace synaps::store {
namespace {

using nlohmann::json;

using testing::Connect;

void SubmitMany(db::Connection& conn, int n, const std::string& queue = "default") {
  auto r = conn.Exec(
      "SELECT synaps.submit_command('t', 'test', NULL, 'h' || g,"
      " jsonb_build_object('kind', 'prompt', 'payload', '{}'::jsonb, 'queue', $2::text,"
      "  'tasks', jsonb_build_array(jsonb_build_object('name', 'main', 'kind', 'prompt',"
      "   'spec', jsonb_build_object('input', jsonb_build_object('text', 'n' || g))))))"
      " FROM generate_series(1, $1::integer) g",
      {std::to_string(n), queue});
  ASSERT_TRUE(r) << r.error().message;
}

int64_t Scalar(db::Connection& conn, const std::string& sql) {
  auto r = conn.Exec(sql);
  EXPECT_TRUE(r) << r.error().message;
  return r && r->rows() > 0 ? r->GetInt(0, 0) : -1;
}

// Waits (polling the database clock) until every lease has expired.
void WaitForLeaseExpiry(db::Connection& conn) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (Scalar(conn,
                "SELECT count(*) FROM synaps.queue_items WHERE status = 'leased'"
                " AND lease_expires_at > now()") > 0) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

TEST(QueueTest, EightClaimersNeverShareAnItem) {
  std::string url = testing::TestStack::Get().FreshDatabase();
  auto setup = Connect(url);
  SubmitMany(setup, 1000);

  std::mutex mu;
  std::map<int64_t, int> claims;  // item -> times claimed
  std::atomic<int> completed{0};
  std::vector<std::thread> claimers;
  for (int w = 0; w < 8; ++w) {
    claimers.emplace_back([&, w] {
      auto conn = Connect(url);
      while (true) {
        auto items = ClaimQueueItems(conn, "w" + std::to_string(w), {"default"}, 7, 60);
        ASSERT_TRUE(items) << items.error().message;
        if (items->empty()) return;
        std::vector<Completion> batch;
        {
          std::lock_guard lock(mu);
          for (const auto& it : *items) {
            ++claims[it.item_id];
            EXPECT_EQ(it.lease_epoch, 1);
            batch.push_back({{it.item_id, it.lease_epoch}, json{{"text", "ok"}}, {}});
          }
        }
        auto states = CompleteQueueItems(conn, batch);
        ASSERT_TRUE(states) << states.error().message;
        for (auto s : *states) {
          EXPECT_EQ(s, CompleteState::kCompleted);
          if (s == CompleteState::kCompleted) ++completed;
        }
      }
    });
  }
  for (auto& t : claimers) t.join();
  EXPECT_EQ(claims.size(), 1000u);
  for (const auto& [item, n] : claims) EXPECT_EQ(n, 1) << "item " << item << " claimed twice";
  EXPECT_EQ(completed.load(), 1000);
  EXPECT_EQ(Scalar(setup, "SELECT count(*) FROM synaps.queue_items"), 0);
  EXPECT_EQ(Scalar(setup, "SELECT count(*) FROM synaps.runs WHERE status = 'succeeded'"), 1000);
  EXPECT_EQ(
      Scalar(setup, "SELECT count(*) FROM synaps.ledger_events WHERE type = 'task.completed'"),
      1000);
}

TEST(QueueTest, StaleEpochCannotRenewCompleteOrFail) {
  std::string url = testing::TestStack::Get().FreshDatabase();
  auto conn = Connect(url);
  SubmitMany(conn, 1);
  auto first = ClaimQueueItems(conn, "slow", {"default"}, 1, 1);
  ASSERT_TRUE(first && first->size() == 1);
  LeaseRef stale{(*first)[0].item_id, (*first)[0].lease_epoch};
  WaitForLeaseExpiry(conn);

  auto second = ClaimQueueItems(conn, "fast", {"default"}, 1, 60);
  ASSERT_TRUE(second && second->size() == 1);
  EXPECT_EQ((*second)[0].item_id, stale.item_id);
  EXPECT_EQ((*second)[0].lease_epoch, stale.lease_epoch + 1);
  EXPECT_EQ((*second)[0].attempt, 2);
  LeaseRef current{(*second)[0].item_id, (*second)[0].lease_epoch};

  auto renew = RenewLeases(conn, {stale, current}, 60);
  ASSERT_TRUE(renew);
  ASSERT_EQ(renew->size(), 2u);
  EXPECT_EQ((*renew)[0].state, RenewState::kLost);
  EXPECT_EQ((*renew)[1].state, RenewState::kOk);

  auto fail = FailQueueItem(conn, stale, json{{"code", "x"}}, true, {});
  ASSERT_TRUE(fail);
  EXPECT_EQ(*fail, FailState::kLeaseLost);

  auto stale_done = CompleteQueueItems(conn, {{stale, json{{"text", "stale"}}, {}}});
  ASSERT_TRUE(stale_done);
  EXPECT_EQ((*stale_done)[0], CompleteState::kLeaseLost);

  auto done = CompleteQueueItems(conn, {{current, json{{"text", "fresh"}}, {}}});
  ASSERT_TRUE(done);
  EXPECT_EQ((*done)[0], CompleteState::kCompleted);
  auto out = conn.Exec("SELECT output->>'text' FROM synaps.tasks");
  ASSERT_TRUE(out);
  EXPECT_EQ(out->GetString(0, 0), "fresh");
  EXPECT_EQ(Scalar(conn, "SELECT count(*) FROM synaps.ledger_events WHERE type = 'task.completed'"),
            1);
}

TEST(QueueTest, CompletionIsRecordedOncePerAttemptEvenIfForced) {
  std::string url = testing::TestStack::Get().FreshDatabase();
  auto conn = Connect(url);
  SubmitMany(conn, 1);
  auto items = ClaimQueueItems(conn, "w", {"default"}, 1, 60);
  ASSERT_TRUE(items && items->size() == 1);
  ASSERT_TRUE(CompleteQueueItems(
      conn, {{{(*items)[0].item_id, (*items)[0].lease_epoch}, json::object(), {}}}));
  // A second task.completed for the same attempt is refused by the database itself.
  auto dup = conn.Exec(
      "SELECT synaps.append_event(run_id, id, 'task.completed', attempt, '{}') FROM synaps.tasks");
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code, ErrorCode::kAlreadyExists);
}

TEST(QueueTest, RetryableFailureBacksOffThenDeadLetters) {
  std::string url = testing::TestStack::Get().FreshDatabase();
  auto conn = Connect(url);
  SubmitMany(conn, 1);
  BackoffPolicy fast{.base_ms = 1, .cap_ms = 5};
  for (int attempt = 1; attempt <= 3; ++attempt) {
    std::vector<ClaimedItem> items;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (items.empty()) {
      auto c = ClaimQueueItems(conn, "w", {"default"}, 1, 60);
      ASSERT_TRUE(c);
      items = std::move(*c);
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "retry never became claimable";
    }
    EXPECT_EQ(items[0].attempt, attempt);
    auto r = FailQueueItem(conn, {items[0].item_id, items[0].lease_epoch},
                           json{{"code", "unavailable"}, {"message", "provider down"}}, true, fast);
    ASSERT_TRUE(r);
    EXPECT_EQ(*r, attempt < 3 ? FailState::kRetryScheduled : FailState::kDeadLettered);
  }
  EXPECT_EQ(Scalar(conn, "SELECT count(*) FROM synaps.runs WHERE status = 'failed'"), 1);
  EXPECT_EQ(Scalar(conn, "SELECT count(*) FROM synaps.queue_items WHERE status = 'dead'"), 1);
  EXPECT_EQ(Scalar(conn,
                   "SELECT count(*) FROM synaps.ledger_events"
                   " WHERE type = 'task.retry_scheduled'"),
            2);
  EXPECT_EQ(Scalar(conn, "SELECT count(*) FROM synaps.ledger_events WHERE type = 'run.failed'"), 1);
}

TEST(QueueTest, NonRetryableFailureDeadLettersAtOnce) {
  std::string url = testing::TestStack::Get().FreshDatabase();
  auto conn = Connect(url);
  SubmitMany(conn, 1);
  auto items = ClaimQueueItems(conn, "w", {"default"}, 1, 60);
  ASSERT_TRUE(items && items->size() == 1);
  auto r = FailQueueItem(conn, {(*items)[0].item_id, (*items)[0].lease_epoch},
                         json{{"code", "invalid_argument"}}, false, {});
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, FailState::kDeadLettered);
  EXPECT_EQ(Scalar(conn, "SELECT count(*) FROM synaps.tasks WHERE status = 'failed'"), 1);
}

TEST(QueueTest, ExpiredLastAttemptIsDeadLetteredNotReissued) {
  std::string url = testing::TestStack::Get().FreshDatabase();
  auto conn = Connect(url);
  SubmitMany(conn, 1);
  ASSERT_TRUE(conn.Exec("UPDATE synaps.queue_items SET max_attempts = 1"));
  auto items = ClaimQueueItems(conn, "vanishing", {"default"}, 1, 1);
  ASSERT_TRUE(items && items->size() == 1);
  WaitForLeaseExpiry(conn);
  auto again = ClaimQueueItems(conn, "other", {"default"}, 1, 60);
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->empty());
  EXPECT_EQ(Scalar(conn, "SELECT count(*) FROM synaps.runs WHERE status = 'failed'"), 1);
}

TEST(QueueTest, ClaimsOnlyTheNamedQueues) {
  std::string url = testing::TestStack::Get().FreshDatabase();
  auto conn = Connect(url);
  SubmitMany(conn, 2, "gpu");
  auto none = ClaimQueueItems(conn, "w", {"default"}, 10, 60);
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
  auto some = ClaimQueueItems(conn, "w", {"default", "gpu"}, 10, 60);
  ASSERT_TRUE(some);
  EXPECT_EQ(some->size(), 2u);
}

}  // namespace
}  // namespace synaps::store

namespace synaps::store {
namespace {

// 16 claimers over 20,000 items with short leases and random stalls, so leases expire and items
// are reclaimed. Every claim and every accepted completion is recorded; afterwards the history
// must show: each item completed exactly once, by the holder of its latest epoch, none lost.
TEST(QueueHistoryTest, SixteenClaimersTwentyThousandItems) {
  std::string url = testing::TestStack::Get().FreshDatabase();
  auto setup = Connect(url);
  SubmitMany(setup, 20000);

  struct Claim {
    int64_t item, epoch;
    int worker;
  };
  std::mutex mu;
  std::vector<Claim> claims;
  std::map<int64_t, std::vector<int64_t>> accepted;  // item -> epochs whose completion was accepted
  std::atomic<int> deadlocks{0};                     // batches retried after a deadlock
  std::vector<std::thread> threads;
  for (int w = 0; w < 16; ++w) {
    threads.emplace_back([&, w] {
      auto conn = Connect(url);
      std::mt19937 rng(w);
      int idle = 0;
      bool stalled_once = false;
      while (idle < 3) {
        auto items = ClaimQueueItems(conn, "w" + std::to_string(w), {"default"}, 50, 1);
        ASSERT_TRUE(items) << items.error().message;
        if (items->empty()) {
          // Nothing claimable: leases of stalled claimers may still be running out.
          if (Scalar(conn, "SELECT count(*) FROM synaps.queue_items") == 0) ++idle;
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
          continue;
        }
        {
          std::lock_guard lock(mu);
          for (const auto& it : *items) claims.push_back({it.item_id, it.lease_epoch, w});
        }
        // Now and then a claimer stalls past its 1 s lease, like a GC pause or a frozen VM.
        if (rng() % 40 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1300));
        // Claimer 0 stalls on its first batch until the others have taken it over (an expired
        // lease is claimed after the ready items, so a short stall early on may see none
        // reclaimed): at least one batch is always reclaimed, and its late completion refused.
        if (w == 0 && !stalled_once) {
          stalled_once = true;
          const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(120);
          while (Scalar(conn, "SELECT count(*) FROM synaps.queue_items WHERE lease_owner = 'w0'") >
                     0 &&
                 std::chrono::steady_clock::now() < give_up) {
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
          }
        }
        std::vector<Completion> batch;
        for (const auto& it : *items) {
          batch.push_back({{it.item_id, it.lease_epoch}, nlohmann::json{{"w", w}}, {}});
        }
        // A stale batch can deadlock with the batch of the item's new holder (PostgreSQL aborts
        // one, SQLSTATE 40P01, a kUnavailable error): retried, as the worker retries a batch
        // that failed that way.
        auto states = CompleteQueueItems(conn, batch);
        for (int tries = 1; !states && states.error().code == ErrorCode::kUnavailable && tries < 5;
             ++tries) {
          deadlocks.fetch_add(1);
          states = CompleteQueueItems(conn, batch);
        }
        ASSERT_TRUE(states) << states.error().message;
        std::lock_guard lock(mu);
        for (size_t i = 0; i < batch.size(); ++i) {
          if ((*states)[i] == CompleteState::kCompleted) {
            accepted[batch[i].lease.item_id].push_back(batch[i].lease.lease_epoch);
          }
        }
      }
    });
  }
  for (auto& t : threads) t.join();

  std::map<int64_t, int64_t> max_epoch;
  std::set<std::pair<int64_t, int64_t>> seen;
  for (const auto& c : claims) {
    EXPECT_TRUE(seen.insert({c.item, c.epoch}).second)
        << "item " << c.item << " epoch " << c.epoch << " handed out twice";
    max_epoch[c.item] = std::max(max_epoch[c.item], c.epoch);
  }
  EXPECT_EQ(accepted.size(), 20000u) << "items lost";
  for (const auto& [item, epochs] : accepted) {
    ASSERT_EQ(epochs.size(), 1u) << "item " << item << " completed twice";
    EXPECT_EQ(epochs[0], max_epoch[item]) << "a stale lease completed item " << item;
  }
  EXPECT_EQ(
      Scalar(setup, "SELECT count(*) FROM synaps.ledger_events WHERE type = 'task.completed'"),
      20000);
  EXPECT_EQ(Scalar(setup, "SELECT count(*) FROM synaps.runs WHERE status = 'succeeded'"), 20000);
  EXPECT_GT(claims.size(), 20000u) << "the test should have provoked some reclaims";
  std::printf("batches retried after a deadlock: %d\n", deadlocks.load());
}

TEST(QueueTest, HigherPriorityFirstAndNotBeforeRespected) {
  std::string url = testing::TestStack::Get().FreshDatabase();
  auto conn = Connect(url);
  for (auto [p, nb] : std::vector<std::pair<int, std::string>>{
           {0, ""}, {5, ""}, {9, "2099-01-01T00:00:00Z"}, {1, ""}}) {
    SubmitRequest req;
    req.tenant_id = "t";
    req.actor = "test";
    req.request_hash = "h";
    req.kind = "prompt";
    req.payload = nlohmann::json::object();
    req.priority = p;
    if (!nb.empty()) req.not_before = nb;
    req.tasks.push_back({"main", "prompt", nlohmann::json{{"p", p}}, {}});
    ASSERT_TRUE(SubmitCommand(conn, req));
  }
  auto items = ClaimQueueItems(conn, "w", {"default"}, 10, 60);
  ASSERT_TRUE(items);
  ASSERT_EQ(items->size(), 3u) << "the delayed item is not claimable yet";
  EXPECT_EQ((*items)[0].spec["p"], 5);
  EXPECT_EQ((*items)[1].spec["p"], 1);
  EXPECT_EQ((*items)[2].spec["p"], 0);
}

TEST(QueueTest, RetryDelayIsWithinTheJitterBound) {
  std::string url = testing::TestStack::Get().FreshDatabase();
  auto conn = Connect(url);
  SubmitMany(conn, 50);
  auto items = ClaimQueueItems(conn, "w", {"default"}, 50, 60);
  ASSERT_TRUE(items && items->size() == 50);
  BackoffPolicy policy{.base_ms = 1000, .cap_ms = 60000};
  for (const auto& it : *items) {
    auto r = FailQueueItem(conn, {it.item_id, it.lease_epoch}, nlohmann::json{{"code", "x"}}, true,
                           policy);
    ASSERT_TRUE(r && *r == FailState::kRetryScheduled);
  }
  // Attempt 1 failed: delay uniformly in [0, base * 2^0] = [0, 1000] ms.
  auto r = conn.Exec(
      "SELECT min((data->>'delayMs')::float8), max((data->>'delayMs')::float8),"
      " bool_and(abs(extract(epoch FROM (data->>'nextAttemptAt')::timestamptz - created_at) * 1000"
      "   - (data->>'delayMs')::float8) < 5)"
      " FROM synaps.ledger_events WHERE type = 'task.retry_scheduled'");
  ASSERT_TRUE(r);
  EXPECT_GE(std::stod(r->GetString(0, 0)), 0.0);
  EXPECT_LE(std::stod(r->GetString(0, 1)), 1000.0);
  EXPECT_GT(std::stod(r->GetString(0, 1)), std::stod(r->GetString(0, 0))) << "no jitter";
  EXPECT_TRUE(r->GetBool(0, 2)) << "nextAttemptAt must be created_at + delay";
}

// One write batch (synaps.write_task_batch): events and progress of tasks in flight, then
// completions, in one commit; stale leases' rows dropped; the ledger dense and in that order.
TEST(QueueTest, WriteTaskBatchWritesEventsProgressThenCompletionsInOrder) {
  std::string url = testing::TestStack::Get().FreshDatabase();
  auto conn = Connect(url);
  SubmitMany(conn, 3);
  auto items = ClaimQueueItems(conn, "w", {"default"}, 3, 60);
  ASSERT_TRUE(items && items->size() == 3);
  LeaseRef a{(*items)[0].item_id, (*items)[0].lease_epoch};
  LeaseRef b{(*items)[1].item_id, (*items)[1].lease_epoch};
  LeaseRef c{(*items)[2].item_id, (*items)[2].lease_epoch};
  LeaseRef stale{c.item_id, c.lease_epoch - 1};

  TaskBatch batch;
  batch.events = {{a, "tool.called", json{{"tool", "k8s.pods"}}},
                  {stale, "tool.called", json::object()}};
  batch.progress = {{a, "hel"}, {a, "lo"}, {b, "still going"}, {stale, "dropped"}};
  batch.completions = {{a,
                        json{{"text", "hello"}, {"provider", "local"}},
                        {{"answer.md", "text/markdown", "objects/sha256/aa", 5, "aa"}}},
                       {stale, json{{"text", "stale"}}, {}}};
  auto states = WriteTaskBatch(conn, batch);
  ASSERT_TRUE(states) << states.error().message;
  ASSERT_EQ(states->size(), 2u);
  EXPECT_EQ((*states)[0], CompleteState::kCompleted);
  EXPECT_EQ((*states)[1], CompleteState::kLeaseLost);

  auto ledger = conn.Exec(
      "SELECT string_agg(e.type, ',' ORDER BY e.seq), bool_and(e.seq = e.rn), max(e.seq)"
      "  FROM (SELECT type, seq, row_number() OVER (ORDER BY seq) AS rn FROM synaps.ledger_events"
      "         WHERE run_id = (SELECT run_id FROM synaps.tasks WHERE id = $1::uuid)) e",
      {(*items)[0].task_id});
  ASSERT_TRUE(ledger) << ledger.error().message;
  EXPECT_EQ(ledger->GetString(0, 0),
            "run.created,task.queued,task.claimed,tool.called,task.progress,task.progress,"
            "task.completed,run.succeeded");
  EXPECT_TRUE(ledger->GetBool(0, 1)) << "sequence numbers must be dense";
  EXPECT_EQ(Scalar(conn, "SELECT max(last_seq) FROM synaps.runs WHERE status = 'succeeded'"), 8);
  EXPECT_EQ(Scalar(conn,
                   "SELECT count(*) FROM synaps.ledger_events WHERE type = 'task.progress'"
                   " AND data->>'text' = 'still going'"),
            1);
  EXPECT_EQ(
      Scalar(conn, "SELECT count(*) FROM synaps.ledger_events WHERE data->>'text' = 'dropped'"), 0);
  EXPECT_EQ(Scalar(conn, "SELECT count(*) FROM synaps.queue_items"), 2);
  // The run of `b` keeps going; its seq counter matches its rows.
  EXPECT_EQ(Scalar(conn,
                   "SELECT count(*) FROM synaps.runs r WHERE r.last_seq <>"
                   " (SELECT count(*) FROM synaps.ledger_events e WHERE e.run_id = r.id)"),
            0);
}

TEST(QueueTest, ArtifactVersionsCountUpPerThreadAndName) {
  std::string url = testing::TestStack::Get().FreshDatabase();
  auto conn = Connect(url);
  auto thread = conn.Exec(
      "INSERT INTO synaps.threads (id, tenant_id) VALUES (gen_random_uuid(), 't')"
      " RETURNING id");
  ASSERT_TRUE(thread) << thread.error().message;
  std::string thread_id = thread->GetString(0, 0);
  for (int i = 1; i <= 3; ++i) {
    auto submit = conn.Exec(
        "SELECT synaps.submit_command('t', 'test', NULL, 'h' || $2::text,"
        " jsonb_build_object('kind', 'prompt', 'payload', '{}'::jsonb, 'threadId', $1::text,"
        "  'tasks', jsonb_build_array(jsonb_build_object('name', 'main', 'kind', 'prompt',"
        "   'spec', jsonb_build_object('input', jsonb_build_object('text', 'x'))))))",
        {thread_id, std::to_string(i)});
    ASSERT_TRUE(submit) << submit.error().message;
    auto items = ClaimQueueItems(conn, "w", {"default"}, 1, 60);
    ASSERT_TRUE(items && items->size() == 1);
    TaskBatch batch;
    batch.completions = {{{(*items)[0].item_id, (*items)[0].lease_epoch},
                          json{{"text", "v"}},
                          {{"answer.md", "text/markdown", "objects/sha256/" + std::to_string(i), 1,
                            std::to_string(i)}}}};
    auto states = WriteTaskBatch(conn, batch);
    ASSERT_TRUE(states) << states.error().message;
    EXPECT_EQ((*states)[0], CompleteState::kCompleted);
  }
  EXPECT_EQ(Scalar(conn, "SELECT count(*) FROM synaps.artifacts"), 1);
  EXPECT_EQ(Scalar(conn, "SELECT latest_version FROM synaps.artifacts"), 3);
  auto versions = conn.Exec(
      "SELECT string_agg(version || ':' || object_key, ',' ORDER BY version)"
      " FROM synaps.artifact_versions");
  ASSERT_TRUE(versions);
  EXPECT_EQ(versions->GetString(0, 0), "1:objects/sha256/1,2:objects/sha256/2,3:objects/sha256/3");
}

// A claim of many items across runs: one task.claimed per item, dense sequence numbers per run,
// runs marked running once.
TEST(QueueTest, BatchClaimRecordsOneClaimEventPerItem) {
  std::string url = testing::TestStack::Get().FreshDatabase();
  auto conn = Connect(url);
  SubmitMany(conn, 40);
  auto items = ClaimQueueItems(conn, "w", {"default"}, 25, 60);
  ASSERT_TRUE(items) << items.error().message;
  ASSERT_EQ(items->size(), 25u);
  std::set<int64_t> ids;
  for (const auto& it : *items) {
    ids.insert(it.item_id);
    EXPECT_EQ(it.attempt, 1);
    EXPECT_EQ(it.lease_epoch, 1);
    EXPECT_EQ(it.spec["input"]["text"].get<std::string>().substr(0, 1), "n");
  }
  EXPECT_EQ(ids.size(), 25u);
  EXPECT_EQ(Scalar(conn, "SELECT count(*) FROM synaps.ledger_events WHERE type = 'task.claimed'"),
            25);
  EXPECT_EQ(Scalar(conn,
                   "SELECT count(*) FROM synaps.runs WHERE status = 'running'"
                   " AND started_at IS NOT NULL"),
            25);
  EXPECT_EQ(
      Scalar(conn, "SELECT count(*) FROM synaps.tasks WHERE status = 'running' AND attempt = 1"),
      25);
  EXPECT_EQ(Scalar(conn,
                   "SELECT count(*) FROM synaps.runs r WHERE r.last_seq <>"
                   " (SELECT count(*) FROM synaps.ledger_events e WHERE e.run_id = r.id)"),
            0);
  // Oldest first: the 25 claimed are the first 25 submitted.
  EXPECT_EQ(*ids.rbegin() - *ids.begin(), 24);
}

// Two tasks of one run (one thread) completed in one batch, both writing answer.md: versions
// 1 and 2 in batch order, dense sequence numbers, one run.succeeded after both.
TEST(QueueTest, OneBatchCompletesTwoTasksOfARunWithTheSameArtifact) {
  std::string url = testing::TestStack::Get().FreshDatabase();
  auto conn = Connect(url);
  auto submit = conn.Exec(
      "SELECT synaps.submit_command('t', 'test', NULL, 'h',"
      " jsonb_build_object('kind', 'prompt', 'payload', '{}'::jsonb, 'tasks', jsonb_build_array("
      "  jsonb_build_object('name', 'a', 'kind', 'prompt', 'spec', '{}'::jsonb),"
      "  jsonb_build_object('name', 'b', 'kind', 'prompt', 'spec', '{}'::jsonb))))");
  ASSERT_TRUE(submit) << submit.error().message;
  auto items = ClaimQueueItems(conn, "w", {"default"}, 2, 60);
  ASSERT_TRUE(items && items->size() == 2);
  TaskBatch batch;
  for (const auto& it : *items) {
    batch.completions.push_back(
        {{it.item_id, it.lease_epoch},
         json{{"text", it.task_name}},
         {{"answer.md", "text/markdown", "objects/" + it.task_name, 1, it.task_name}}});
  }
  auto states = WriteTaskBatch(conn, batch);
  ASSERT_TRUE(states) << states.error().message;
  EXPECT_EQ(*states,
            (std::vector<CompleteState>{CompleteState::kCompleted, CompleteState::kCompleted}));
  auto versions = conn.Exec(
      "SELECT string_agg(version || ':' || object_key, ',' ORDER BY version)"
      " FROM synaps.artifact_versions");
  ASSERT_TRUE(versions);
  EXPECT_EQ(versions->GetString(0, 0),
            "1:objects/" + (*items)[0].task_name + ",2:objects/" + (*items)[1].task_name);
  auto ledger = conn.Exec(
      "SELECT string_agg(type, ',' ORDER BY seq), max(seq), count(*)"
      " FROM synaps.ledger_events");
  ASSERT_TRUE(ledger);
  EXPECT_EQ(ledger->GetString(0, 0),
            "run.created,task.queued,task.queued,task.claimed,task.claimed,task.completed,"
            "task.completed,run.succeeded");
  EXPECT_EQ(ledger->GetInt(0, 1), ledger->GetInt(0, 2));
  EXPECT_EQ(Scalar(conn, "SELECT count(*) FROM synaps.runs WHERE status = 'succeeded'"), 1);
}

// synaps.run.<id> carries cancellations alone (migration 0046): a run that succeeds, one that
// fails, one held for approval write their ledger events and no outbox row; a cancelled run
// writes one run.cancelled row, which the workers holding its leases act on.
TEST(QueueTest, OnlyACancellationGoesOnTheBus) {
  std::string url = testing::TestStack::Get().FreshDatabase();
  auto conn = Connect(url);
  SubmitMany(conn, 4);
  auto items = ClaimQueueItems(conn, "w", {"default"}, 4, 60);
  ASSERT_TRUE(items && items->size() == 4);
  TaskBatch batch;
  batch.completions.push_back(
      {{(*items)[0].item_id, (*items)[0].lease_epoch}, json{{"text", "ok"}}});
  Completion held{{(*items)[1].item_id, (*items)[1].lease_epoch}, json{{"text", "check me"}}};
  held.hold = true;
  batch.completions.push_back(held);
  auto states = WriteTaskBatch(conn, batch);
  ASSERT_TRUE(states) << states.error().message;
  EXPECT_EQ(*states, (std::vector<CompleteState>{CompleteState::kCompleted, CompleteState::kHeld}));
  auto failed = FailQueueItem(conn, {(*items)[2].item_id, (*items)[2].lease_epoch},
                              json{{"code", "invalid_argument"}, {"message", "bad"}}, false, {});
  ASSERT_TRUE(failed);
  EXPECT_EQ(*failed, FailState::kDeadLettered);
  Status cancelled = CancelRun(conn, "t", (*items)[3].run_id, "test");
  ASSERT_TRUE(cancelled) << cancelled.error().message;

  EXPECT_EQ(Scalar(conn,
                   "SELECT count(*) FROM synaps.ledger_events WHERE type IN"
                   " ('run.succeeded', 'task.awaiting_approval', 'run.failed', 'run.cancelled')"),
            4);
  auto bus = conn.Exec(
      "SELECT string_agg(subject || ' ' || (payload->>'type'), ',')"
      " FROM synaps.outbox WHERE subject LIKE 'synaps.run.%'");
  ASSERT_TRUE(bus);
  EXPECT_EQ(bus->GetString(0, 0), "synaps.run." + (*items)[3].run_id + " run.cancelled");
}

// The batch that ends a run updates its runs row once (the events' numbers and its end together:
// each update is a new row version in the write-ahead log), and the ledger's ids follow its seqs.
TEST(QueueTest, TheBatchThatEndsARunUpdatesItsRowOnce) {
  std::string url = testing::TestStack::Get().FreshDatabase();
  auto conn = Connect(url);
  SubmitMany(conn, 3);
  auto items = ClaimQueueItems(conn, "w", {"default"}, 3, 60);
  ASSERT_TRUE(items && items->size() == 3);
  ASSERT_TRUE(conn.Exec("BEGIN"));
  // The transaction's counts, plus those of earlier ones this backend has not reported yet.
  const std::string runs_updated =
      "SELECT n_tup_upd FROM pg_stat_xact_user_tables"
      " WHERE schemaname = 'synaps' AND relname = 'runs'";
  int64_t updated_before = Scalar(conn, runs_updated);
  TaskBatch batch;
  for (const auto& it : *items) {
    batch.completions.push_back({{it.item_id, it.lease_epoch},
                                 json{{"text", "done"}},
                                 {{"answer.md", "text/markdown", "objects/x", 4, "x"}}});
  }
  auto states = WriteTaskBatch(conn, batch);
  ASSERT_TRUE(states) << states.error().message;
  EXPECT_EQ(Scalar(conn, runs_updated) - updated_before, 3) << "one update per run";
  ASSERT_TRUE(conn.Exec("COMMIT"));
  EXPECT_EQ(Scalar(conn,
                   "SELECT count(*) FROM synaps.runs WHERE status = 'succeeded'"
                   " AND finished_at IS NOT NULL AND error IS NULL AND last_seq = 5"),
            3);
  auto order = conn.Exec(
      "SELECT string_agg(type, ',' ORDER BY id) = string_agg(type, ',' ORDER BY seq),"
      " string_agg(type, ',' ORDER BY seq), string_agg(id || type, ',' ORDER BY id)"
      " FROM synaps.ledger_events GROUP BY run_id");
  ASSERT_TRUE(order && order->rows() == 3);
  for (int r = 0; r < 3; ++r) {
    EXPECT_TRUE(order->GetBool(r, 0)) << "ids follow seqs: " << order->GetString(r, 2);
    EXPECT_EQ(order->GetString(r, 1),
              "run.created,task.queued,task.claimed,task.completed,run.succeeded");
  }
  EXPECT_EQ(Scalar(conn, "SELECT count(*) FROM synaps.outbox WHERE subject LIKE 'synaps.run.%'"),
            0);
}

// A batch that completes the last task of a run whose other task was dead-lettered fails the
// run with that task's error; a batch that completes a dependency releases its dependent.
TEST(QueueTest, BatchCompletionSettlesFailedRunsAndReleasesDependents) {
  std::string url = testing::TestStack::Get().FreshDatabase();
  auto conn = Connect(url);
  auto submit = conn.Exec(
      "SELECT synaps.submit_command('t', 'test', NULL, 'h' || g,"
      " jsonb_build_object('kind', 'prompt', 'payload', '{}'::jsonb, 'tasks', CASE WHEN g = 1 THEN"
      "  jsonb_build_array(jsonb_build_object('name', 'bad', 'kind', 'prompt', 'spec', "
      "'{}'::jsonb),"
      "                    jsonb_build_object('name', 'good', 'kind', 'prompt', 'spec', "
      "'{}'::jsonb))"
      " ELSE jsonb_build_array(jsonb_build_object('name', 'first', 'kind', 'prompt', 'spec', "
      "'{}'::jsonb),"
      "  jsonb_build_object('name', 'second', 'kind', 'prompt', 'spec', '{}'::jsonb,"
      "                     'dependsOn', jsonb_build_array('first'))) END))"
      " FROM generate_series(1, 2) g");
  ASSERT_TRUE(submit) << submit.error().message;
  auto items = ClaimQueueItems(conn, "w", {"default"}, 10, 60);
  ASSERT_TRUE(items);
  ASSERT_EQ(items->size(), 3u);    // bad, good, first; second waits
  for (const auto& it : *items) {  // no dependencies, each a thread's first turn (migration 0047)
    EXPECT_EQ(it.upstream, json::object()) << it.task_name;
    EXPECT_EQ(it.history, json::array()) << it.task_name;
  }
  TaskBatch batch;
  for (const auto& it : *items) {
    if (it.task_name == "bad") {
      auto f = FailQueueItem(conn, {it.item_id, it.lease_epoch}, json{{"code", "boom"}}, false, {});
      ASSERT_TRUE(f && *f == FailState::kDeadLettered);
    } else {
      batch.completions.push_back({{it.item_id, it.lease_epoch}, json{{"text", "ok"}}, {}});
    }
  }
  auto states = WriteTaskBatch(conn, batch);
  ASSERT_TRUE(states) << states.error().message;
  auto runs = conn.Exec(
      "SELECT string_agg(r.status || ':' || coalesce(r.error->>'task', '') || ':' ||"
      " coalesce(r.error->>'code', ''), ',' ORDER BY r.status) FROM synaps.runs r");
  ASSERT_TRUE(runs);
  EXPECT_EQ(runs->GetString(0, 0), "failed:bad:boom,running::");
  EXPECT_EQ(Scalar(conn, "SELECT count(*) FROM synaps.queue_items WHERE status = 'ready'"), 1);
  EXPECT_EQ(Scalar(conn,
                   "SELECT count(*) FROM synaps.outbox WHERE subject = 'synaps.wakeup.default'"
                   " AND payload->>'runId' = (SELECT run_id::text FROM synaps.tasks"
                   "                           WHERE name = 'second')"),
            2);  // the submit's, and the release's
  auto next = ClaimQueueItems(conn, "w", {"default"}, 10, 60);
  ASSERT_TRUE(next && next->size() == 1);
  EXPECT_EQ((*next)[0].task_name, "second");
  EXPECT_EQ((*next)[0].upstream["first"]["text"], "ok");
}

// A batch that holds one task of a run and completes the other leaves the run awaiting
// approval.
TEST(QueueTest, BatchLeavingOnlyAHeldTaskMakesTheRunAwaitApproval) {
  std::string url = testing::TestStack::Get().FreshDatabase();
  auto conn = Connect(url);
  auto submit = conn.Exec(
      "SELECT synaps.submit_command('t', 'test', NULL, 'h',"
      " jsonb_build_object('kind', 'prompt', 'payload', '{}'::jsonb, 'tasks', jsonb_build_array("
      "  jsonb_build_object('name', 'held', 'kind', 'prompt', 'spec', '{}'::jsonb),"
      "  jsonb_build_object('name', 'done', 'kind', 'prompt', 'spec', '{}'::jsonb))))");
  ASSERT_TRUE(submit) << submit.error().message;
  auto items = ClaimQueueItems(conn, "w", {"default"}, 2, 60);
  ASSERT_TRUE(items && items->size() == 2);
  TaskBatch batch;
  for (const auto& it : *items) {
    Completion c{{it.item_id, it.lease_epoch}, json{{"text", it.task_name}}, {}};
    c.hold = it.task_name == "held";
    batch.completions.push_back(std::move(c));
  }
  auto states = WriteTaskBatch(conn, batch);
  ASSERT_TRUE(states) << states.error().message;
  for (size_t i = 0; i < items->size(); ++i) {
    EXPECT_EQ((*states)[i],
              (*items)[i].task_name == "held" ? CompleteState::kHeld : CompleteState::kCompleted);
  }
  auto run = conn.Exec("SELECT status FROM synaps.runs");
  ASSERT_TRUE(run);
  EXPECT_EQ(run->GetString(0, 0), "awaiting_approval");
}

// One completion path (migration 0016): a held task with an artifact, approved, is settled by
// settle_tasks as a worker's completion would be: task.completed naming its artifact right after
// task.approved, the artifact versioned, the run succeeded.
TEST(QueueTest, AnApprovedHeldTaskSettlesAsAWorkerCompletionWould) {
  std::string url = testing::TestStack::Get().FreshDatabase();
  auto conn = Connect(url);
  SubmitMany(conn, 1);
  auto items = ClaimQueueItems(conn, "w", {"default"}, 1, 60);
  ASSERT_TRUE(items && items->size() == 1);
  const auto& it = (*items)[0];
  Completion held{{it.item_id, it.lease_epoch},
                  json{{"text", "answer"}, {"model", "m"}},
                  {{"answer.md", "text/markdown", "objects/k", 6, "abc"}}};
  held.hold = true;
  auto states = WriteTaskBatch(conn, TaskBatch{.completions = {held}});
  ASSERT_TRUE(states) << states.error().message;
  ASSERT_EQ((*states)[0], CompleteState::kHeld);
  EXPECT_EQ(Scalar(conn, "SELECT count(*) FROM synaps.artifact_versions"), 0);

  auto decided = DecideTask(conn, "t", it.task_id, true, "alice", "");
  ASSERT_TRUE(decided) << decided.error().message;
  EXPECT_EQ(*decided, it.run_id);
  auto tail = conn.Exec(
      "SELECT string_agg(type || ' ' || data::text, E'\\n' ORDER BY seq) FROM synaps.ledger_events"
      " WHERE seq > (SELECT seq FROM synaps.ledger_events WHERE type = 'task.awaiting_approval')");
  ASSERT_TRUE(tail) << tail.error().message;
  std::string events = tail->GetString(0, 0);
  EXPECT_NE(events.find("task.approved {\"by\": \"alice\"}\n"
                        "task.completed {\"model\": \"m\", \"artifacts\": [{"),
            std::string::npos)
      << events;
  EXPECT_NE(
      events.find("\"name\": \"answer.md\", \"size\": 6, \"sha256\": \"abc\", \"version\": 1"),
      std::string::npos)
      << events;
  EXPECT_NE(events.find("}]}\nrun.succeeded {}"), std::string::npos) << events;
  EXPECT_EQ(
      Scalar(conn, "SELECT count(*) FROM synaps.ledger_events WHERE type = 'artifact.created'"), 0);
  EXPECT_EQ(Scalar(conn, "SELECT count(*) FROM synaps.artifact_versions WHERE version = 1"), 1);
  EXPECT_EQ(Scalar(conn, "SELECT count(*) FROM synaps.queue_items"), 0);
  auto task = conn.Exec("SELECT status, output->>'text' FROM synaps.tasks");
  ASSERT_TRUE(task);
  EXPECT_EQ(task->GetString(0, 0), "succeeded");
  EXPECT_EQ(task->GetString(0, 1), "answer");
}

// task.completed names the artifacts its completion produced (data.artifacts, one entry per
// artifact in the order given); an output's own `artifacts` field stays in the event, as
// `outputArtifacts`, and in the task's output as it was.
TEST(QueueTest, TaskCompletedNamesItsArtifactsAndKeepsTheOutputsOwn) {
  std::string url = testing::TestStack::Get().FreshDatabase();
  auto conn = Connect(url);
  SubmitMany(conn, 1);
  auto items = ClaimQueueItems(conn, "w", {"default"}, 1, 60);
  ASSERT_TRUE(items && items->size() == 1);
  const auto& it = (*items)[0];
  Completion done{{it.item_id, it.lease_epoch},
                  json{{"text", "answer"}, {"artifacts", "mine"}},
                  {{"a.md", "text/markdown", "objects/a", 1, "aa"},
                   {"b.md", "text/markdown", "objects/b", 2, "bb"}}};
  auto states = WriteTaskBatch(conn, TaskBatch{.completions = {done}});
  ASSERT_TRUE(states) << states.error().message;
  ASSERT_EQ((*states)[0], CompleteState::kCompleted);
  auto ev = conn.Exec(
      "SELECT e.data->>'outputArtifacts', jsonb_array_length(e.data->'artifacts'),"
      "       e.data #>> '{artifacts,0,name}', e.data #>> '{artifacts,1,name}',"
      "       e.data #>> '{artifacts,1,size}', e.data #>> '{artifacts,1,sha256}',"
      "       (SELECT count(*) FROM synaps.artifact_versions v"
      "         WHERE v.artifact_id::text IN (e.data #>> '{artifacts,0,artifactId}',"
      "                                        e.data #>> '{artifacts,1,artifactId}')),"
      "       e.data ? 'text', (SELECT output->>'artifacts' FROM synaps.tasks)"
      "  FROM synaps.ledger_events e WHERE e.type = 'task.completed'");
  ASSERT_TRUE(ev && ev->rows() == 1) << (ev ? "" : ev.error().message);
  EXPECT_EQ(ev->GetString(0, 0), "mine");
  EXPECT_EQ(ev->GetInt(0, 1), 2);
  EXPECT_EQ(ev->GetString(0, 2), "a.md");
  EXPECT_EQ(ev->GetString(0, 3), "b.md");
  EXPECT_EQ(ev->GetString(0, 4), "2");
  EXPECT_EQ(ev->GetString(0, 5), "bb");
  EXPECT_EQ(ev->GetInt(0, 6), 2) << "each entry names its artifact's version";
  EXPECT_FALSE(ev->GetBool(0, 7));
  EXPECT_EQ(ev->GetString(0, 8), "mine");
  EXPECT_EQ(Scalar(conn, "SELECT max(seq) FROM synaps.ledger_events"), 5);
}

}  // namespace
}  // namespace synaps::store

namespace synaps::store {
namespace {

// A stored value that does not read back (jsonb keeps 1e400, which no double holds) marks its
// one item invalid; the claim, and every other item in it, stands (docs/reliability.md, "Bus and
// thread barriers").
TEST(QueueTest, AClaimedItemWhoseSpecDoesNotReadIsMarkedInvalidAlone) {
  std::string url = testing::TestStack::Get().FreshDatabase();
  auto conn = Connect(url);
  SubmitMany(conn, 3);
  ASSERT_TRUE(
      conn.Exec("UPDATE synaps.tasks SET spec = '{\"input\": {\"text\": \"x\"}, \"n\": 1e400}'"
                " WHERE spec->'input'->>'text' = 'n2'"));
  auto items = ClaimQueueItems(conn, "w", {"default"}, 10, 60);
  ASSERT_TRUE(items) << items.error().message;
  ASSERT_EQ(items->size(), 3u);
  int invalid = 0;
  for (const auto& it : *items) {
    if (!it.invalid) {
      EXPECT_TRUE(it.spec.is_object());
      continue;
    }
    ++invalid;
    EXPECT_EQ(it.invalid->code, ErrorCode::kInternal);
    EXPECT_NE(it.invalid->message.find("task " + it.task_id +
                                       "'s spec stored in PostgreSQL does "
                                       "not read as JSON"),
              std::string::npos)
        << it.invalid->message;
  }
  EXPECT_EQ(invalid, 1);
}

}  // namespace
}  // namespace synaps::store
