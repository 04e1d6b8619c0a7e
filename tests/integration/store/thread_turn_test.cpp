// Thread turns against a real PostgreSQL (docs/flow-control.md, docs/queue.md "Lock order"):
// the lock order between a worker's completion and a thread's interrupt, idempotency keys of
// concurrent interrupts, and a dead letter requeued on a thread that has moved on. Interleavings
// are made deterministic with a second connection that holds a lock while the other statement
// waits for it (seen in pg_stat_activity).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <optional>
#include <thread>

#include "store/queue_store.h"
#include "store/run_store.h"
#include "support/pg.h"
#include "support/test_stack.h"

namespace synaps::store {
namespace {

using nlohmann::json;

using testing::Connect;

using testing::QueryText;

// submit_command's answer for a one-task prompt, on `thread` when given.
json Submit(db::Connection& conn, const std::string& text, const std::string& thread = {},
            const std::string& on_busy = {}, const std::string& key = {}) {
  json command = {
      {"kind", "prompt"},
      {"payload", {{"text", text}}},
      {"tasks",
       json::array(
           {{{"name", "main"}, {"kind", "prompt"}, {"spec", {{"input", {{"text", text}}}}}}})}};
  if (!thread.empty()) command["threadId"] = thread;
  if (!on_busy.empty()) command["onThreadBusy"] = on_busy;
  auto r =
      conn.Exec("SELECT synaps.submit_command('t', 'test', nullif($1, ''), md5($2), $2::jsonb)",
                {key, command.dump()});
  EXPECT_TRUE(r) << r.error().message;
  return r ? json::parse(r->Get(0, 0)) : json();
}

// submit_command's answer for tenant `tenant`'s one-task prompt on `thread` (an attacker's
// submit naming a thread it does not own).
json SubmitAs(db::Connection& conn, const std::string& tenant, const std::string& thread) {
  json command = {{"kind", "prompt"},
                  {"payload", {{"text", "x"}}},
                  {"threadId", thread},
                  {"tasks", json::array({{{"name", "main"}, {"kind", "prompt"}, {"spec", {}}}})}};
  auto r = conn.Exec("SELECT synaps.submit_command($1, 'test', NULL, 'h', $2::jsonb)",
                     {tenant, command.dump()});
  EXPECT_TRUE(r) << r.error().message;
  return r ? json::parse(r->Get(0, 0)) : json();
}

// A one-task prompt of tenant "t" for SubmitCommands, on `thread`.
SubmitRequest BatchItem(const std::string& text, const std::string& thread) {
  SubmitRequest req;
  req.tenant_id = "t";
  req.actor = "test";
  req.kind = "prompt";
  req.payload = {{"text", text}};
  req.request_hash = text;
  req.thread_id = thread;
  req.tasks = {{"main", "prompt", json{{"input", {{"text", text}}}}, {}}};
  return req;
}

// Waits until some other backend of this database waits for a lock.
void WaitForALockWait(db::Connection& conn) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (QueryText(conn,
                   "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                   " AND wait_event_type = 'Lock'") == "0") {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "nobody waited for the lock";
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

TEST(ThreadTurnTest, InterruptsLandingAsTheRunningTaskCompletesNeverDeadlock) {
  // A completion and an interrupt of the same run started together, many times: each time the
  // run ends exactly once (succeeded, or cancelled with the completion told so) and neither
  // side fails. Before 0036 the interrupt locked the run and then its item while the completion
  // locked the item and then the run: PostgreSQL aborted one of them (40P01) in some rounds.
  std::string url = testing::TestStack::Get().FreshDatabase();
  auto conn = Connect(url);
  auto worker = Connect(url);
  auto user = Connect(url);
  int cancelled = 0;
  for (int round = 0; round < 40; ++round) {
    json first = Submit(conn, "first");
    auto items = ClaimQueueItems(conn, "w", {"default"}, 1, 60);
    ASSERT_TRUE(items && items->size() == 1);
    std::atomic<int> ready{0};
    auto go = [&] {
      ready.fetch_add(1);
      while (ready.load() < 2) {
      }
    };
    std::optional<Result<std::vector<CompleteState>>> completed;
    std::thread w([&] {
      TaskBatch batch;
      batch.completions = {
          {{(*items)[0].item_id, (*items)[0].lease_epoch}, json{{"text", "x"}}, {}}};
      go();
      completed = WriteTaskBatch(worker, batch);
    });
    go();
    json answer = Submit(user, "interrupting", first["threadId"], "interrupt");
    w.join();
    ASSERT_TRUE(answer.contains("runId")) << "round " << round << ": " << answer.dump();
    ASSERT_TRUE(completed->has_value()) << "round " << round << ": " << completed->error().message;
    const std::string status = QueryText(conn, "SELECT status FROM synaps.runs WHERE id = $1::uuid",
                                         {first["runId"].get<std::string>()});
    const bool done = (**completed)[0] == CompleteState::kCompleted;
    EXPECT_EQ(status, done ? "succeeded" : "cancelled") << "round " << round;
    if (!done) ++cancelled;
    // The interrupting run is claimed and finished so that the next round starts clean.
    auto next = ClaimQueueItems(conn, "w", {"default"}, 5, 60);
    ASSERT_TRUE(next);
    TaskBatch rest;
    for (const auto& it : *next)
      rest.completions.push_back({{it.item_id, it.lease_epoch}, json{{"text", "y"}}, {}});
    ASSERT_TRUE(WriteTaskBatch(conn, rest));
  }
  std::printf("interrupts that cancelled the run: %d of 40\n", cancelled);
}

TEST(ThreadTurnTest, TwoInterruptsWithOneKeyCancelNothingForTheLoser) {
  std::string url = testing::TestStack::Get().FreshDatabase();
  auto conn = Connect(url);
  json a = Submit(conn, "a");
  json b = Submit(conn, "b");
  // The first interrupt with key K, on thread A, is not committed yet...
  auto first = Connect(url);
  ASSERT_TRUE(first.Exec("BEGIN"));
  ASSERT_TRUE(Submit(first, "one body", a["threadId"], "interrupt", "K").contains("runId"));
  // ...when a second one with K and another body arrives on thread B: it waits for the key.
  json second;
  std::thread other([&] {
    auto c = Connect(url);
    second = Submit(c, "another body", b["threadId"], "interrupt", "K");
  });
  WaitForALockWait(conn);
  ASSERT_TRUE(first.Exec("COMMIT"));
  other.join();
  EXPECT_EQ(second["error"], "idempotency_conflict") << second.dump();
  EXPECT_EQ(QueryText(conn, "SELECT status FROM synaps.runs WHERE id = $1::uuid",
                      {b["runId"].get<std::string>()}),
            "queued")
      << "the refused interrupt cancelled thread B's run";
  EXPECT_EQ(QueryText(conn, "SELECT status FROM synaps.runs WHERE id = $1::uuid",
                      {a["runId"].get<std::string>()}),
            "cancelled");
}

TEST(ThreadTurnTest, RejectAndReplayLeaveTheThreadAsItWas) {
  std::string url = testing::TestStack::Get().FreshDatabase();
  auto conn = Connect(url);
  json first = Submit(conn, "first", {}, {}, "k1");
  const std::string thread = first["threadId"];
  json busy = Submit(conn, "second", thread, "reject");
  EXPECT_EQ(busy["error"], "thread_busy") << busy.dump();
  EXPECT_EQ(busy["runId"], first["runId"]);
  EXPECT_EQ(busy["queuedBehind"], 0);
  EXPECT_EQ(
      QueryText(conn, "SELECT last_run_seq FROM synaps.threads WHERE id = $1::uuid", {thread}),
      "1");
  // The next run takes the next place: no gap left by the refusal.
  json queued = Submit(conn, "third", thread);
  EXPECT_EQ(QueryText(conn, "SELECT thread_seq FROM synaps.runs WHERE id = $1::uuid",
                      {queued["runId"].get<std::string>()}),
            "2");
  json replay = Submit(conn, "third", thread, {}, "k3");
  json again = Submit(conn, "third", thread, {}, "k3");
  EXPECT_EQ(again["replayed"], true) << again.dump();
  EXPECT_EQ(again["runId"], replay["runId"]);
  EXPECT_EQ(
      QueryText(conn, "SELECT last_run_seq FROM synaps.threads WHERE id = $1::uuid", {thread}),
      "3");
}

std::string ThreadRows(db::Connection& conn) {
  return QueryText(conn, "SELECT count(*) FROM synaps.threads");
}

TEST(ThreadTurnTest, ALoneRunHasNoThreadRowUntilItsOwnTenantNamesTheThread) {
  // 0045: a submit without threadId writes no thread row; the thread exists through its run.
  std::string url = testing::TestStack::Get().FreshDatabase();
  auto conn = Connect(url);
  json first = Submit(conn, "first");
  const std::string thread = first["threadId"];
  EXPECT_EQ(ThreadRows(conn), "0");
  auto read = GetThread(conn, "t", thread);
  ASSERT_TRUE(read) << read.error().message;
  EXPECT_EQ((*read)["id"], thread);
  ASSERT_EQ((*read)["runs"].size(), 1u) << read->dump();
  EXPECT_EQ((*read)["runs"][0]["id"], first["runId"]);
  EXPECT_FALSE((*read)["createdAt"].is_null());

  // Another tenant cannot read it, queue behind it or give it a row, one by one or in a batch.
  auto foreign = GetThread(conn, "other", thread);
  ASSERT_FALSE(foreign.has_value());
  EXPECT_EQ(foreign.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(SubmitAs(conn, "other", thread)["error"], "thread_not_found");
  SubmitRequest attack = BatchItem("attack", thread);
  attack.tenant_id = "other";
  auto batch = SubmitCommands(conn, "other", "test", {&attack});
  ASSERT_TRUE(batch) << batch.error().message;
  ASSERT_FALSE((*batch)[0].has_value());
  EXPECT_EQ((*batch)[0].error().code, ErrorCode::kNotFound);
  EXPECT_EQ(ThreadRows(conn), "0");
  EXPECT_EQ(
      QueryText(conn, "SELECT count(*) FROM synaps.runs WHERE thread_id = $1::uuid", {thread}),
      "1");

  // Its own tenant names it: the row is written with the run's place, the new run takes the next.
  json second = Submit(conn, "second", thread);
  EXPECT_EQ(second["waiting"]["runId"], first["runId"]) << second.dump();
  EXPECT_EQ(QueryText(conn,
                      "SELECT tenant_id || ':' || last_run_seq FROM synaps.threads"
                      " WHERE id = $1::uuid",
                      {thread}),
            "t:2");
  // A batch naming another lone thread does the same.
  json lone = Submit(conn, "lone");
  SubmitRequest a = BatchItem("a", lone["threadId"]), b = BatchItem("b", lone["threadId"]);
  auto got = SubmitCommands(conn, "t", "test", {&a, &b});
  ASSERT_TRUE(got && (*got)[0] && (*got)[1]);
  EXPECT_EQ(QueryText(conn,
                      "SELECT string_agg(thread_seq::text, ',' ORDER BY thread_seq)"
                      "  FROM synaps.runs WHERE thread_id = $1::uuid",
                      {lone["threadId"].get<std::string>()}),
            "1,2,3");
  EXPECT_EQ(QueryText(conn, "SELECT last_run_seq FROM synaps.threads WHERE id = $1::uuid",
                      {lone["threadId"].get<std::string>()}),
            "3");
}

TEST(ThreadTurnTest, TwoSubmitsNamingALoneThreadAtOnceTakeTheNextPlacesInTurn) {
  // Both write the thread's row: the second waits for the first's and writes nothing.
  std::string url = testing::TestStack::Get().FreshDatabase();
  auto conn = Connect(url);
  json lone = Submit(conn, "lone");
  const std::string thread = lone["threadId"];
  auto first = Connect(url);
  ASSERT_TRUE(first.Exec("BEGIN"));
  json a = Submit(first, "a", thread);
  json b;
  std::thread other([&] {
    auto second = Connect(url);
    b = Submit(second, "b", thread);
  });
  WaitForALockWait(conn);
  ASSERT_TRUE(first.Exec("COMMIT"));
  other.join();
  EXPECT_EQ(a["waiting"]["runId"], lone["runId"]) << a.dump();
  EXPECT_EQ(b["waiting"]["runId"], lone["runId"]) << b.dump();
  EXPECT_EQ(QueryText(conn,
                      "SELECT string_agg(thread_seq::text, ',' ORDER BY thread_seq)"
                      "  FROM synaps.runs WHERE thread_id = $1::uuid",
                      {thread}),
            "1,2,3");
  EXPECT_EQ(ThreadRows(conn), "1");
}

TEST(ThreadTurnTest, ALoneRunsDeadLetterIsRequeued) {
  std::string url = testing::TestStack::Get().FreshDatabase();
  auto conn = Connect(url);
  json lone = Submit(conn, "lone");
  auto claimed = ClaimQueueItems(conn, "w", {"default"}, 5, 60);
  ASSERT_TRUE(claimed && claimed->size() == 1);
  const ClaimedItem dead = (*claimed)[0];
  ASSERT_TRUE(FailQueueItem(conn, {dead.item_id, dead.lease_epoch}, json{{"code", "boom"}},
                            /*retryable=*/false, BackoffPolicy{}));
  auto requeued = RequeueDeadItem(conn, "t", dead.item_id, "op");
  EXPECT_TRUE(requeued.has_value()) << requeued.error().message;
  EXPECT_EQ(QueryText(conn, "SELECT status FROM synaps.queue_items WHERE id = $1::bigint",
                      {std::to_string(dead.item_id)}),
            "ready");
  // The requeue locked the thread through its row, written then.
  EXPECT_EQ(ThreadRows(conn), "1");
}

TEST(ThreadTurnTest, ADeadLetterIsRequeuedOnlyWhenItsThreadIsIdle) {
  std::string url = testing::TestStack::Get().FreshDatabase();
  auto conn = Connect(url);
  json first = Submit(conn, "first");
  const std::string thread = first["threadId"];
  json second = Submit(conn, "second", thread);
  ASSERT_EQ(second["waiting"]["runId"], first["runId"]) << second.dump();
  auto claimed = ClaimQueueItems(conn, "w", {"default"}, 5, 60);
  ASSERT_TRUE(claimed && claimed->size() == 1);
  const ClaimedItem dead = (*claimed)[0];
  auto failed = FailQueueItem(conn, {dead.item_id, dead.lease_epoch}, json{{"code", "boom"}},
                              /*retryable=*/false, BackoffPolicy{});
  ASSERT_TRUE(failed) << failed.error().message;
  // The failed run handed the thread to the second one, which is now unfinished.
  auto refused = RequeueDeadItem(conn, "t", dead.item_id, "op");
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, ErrorCode::kConflict);
  EXPECT_NE(refused.error().message.find(second["runId"].get<std::string>()), std::string::npos)
      << refused.error().message;
  EXPECT_EQ(QueryText(conn, "SELECT status FROM synaps.runs WHERE id = $1::uuid",
                      {first["runId"].get<std::string>()}),
            "failed");
  // Once the thread is idle the dead letter goes back, after the runs that came since.
  claimed = ClaimQueueItems(conn, "w", {"default"}, 5, 60);
  ASSERT_TRUE(claimed && claimed->size() == 1);
  TaskBatch batch;
  batch.completions = {
      {{(*claimed)[0].item_id, (*claimed)[0].lease_epoch}, json{{"text", "ok"}}, {}}};
  ASSERT_TRUE(WriteTaskBatch(conn, batch));
  auto requeued = RequeueDeadItem(conn, "t", dead.item_id, "op");
  EXPECT_TRUE(requeued.has_value()) << requeued.error().message;
  // A submit now waits for the requeued run.
  json third = Submit(conn, "third", thread);
  EXPECT_EQ(third["waiting"]["runId"], first["runId"]) << third.dump();
}

TEST(ThreadTurnTest, CancellingAWaitingRunKeepsTheOrderAndCancellingTheHolderHandsTheThreadOn) {
  std::string url = testing::TestStack::Get().FreshDatabase();
  auto conn = Connect(url);
  json r1 = Submit(conn, "one");
  const std::string thread = r1["threadId"];
  json r2 = Submit(conn, "two", thread);
  json r3 = Submit(conn, "three", thread);
  json r4 = Submit(conn, "four", thread);
  auto status_of = [&](const json& run) {
    return QueryText(
        conn,
        "SELECT string_agg(q.status, ',') FROM synaps.queue_items q WHERE q.run_id = $1::uuid",
        {run["runId"].get<std::string>()});
  };
  auto claimed = ClaimQueueItems(conn, "w", {"default"}, 5, 60);
  ASSERT_TRUE(claimed && claimed->size() == 1) << "only the thread's first run is claimable";
  // A waiting run in the middle is cancelled: the others keep waiting, in order.
  EXPECT_EQ(QueryText(conn, "SELECT synaps.cancel_run('t', $1::uuid, 'op')",
                      {r2["runId"].get<std::string>()}),
            "cancelled");
  EXPECT_EQ(status_of(r3), "parked");
  // The holder finishes: the next unfinished run (three, not the cancelled two) gets the thread.
  TaskBatch batch;
  batch.completions = {
      {{(*claimed)[0].item_id, (*claimed)[0].lease_epoch}, json{{"text", "1"}}, {}}};
  ASSERT_TRUE(WriteTaskBatch(conn, batch));
  EXPECT_EQ(status_of(r3), "ready");
  EXPECT_EQ(status_of(r4), "parked");
  // Cancelling the holder hands the thread on too.
  EXPECT_EQ(QueryText(conn, "SELECT synaps.cancel_run('t', $1::uuid, 'op')",
                      {r3["runId"].get<std::string>()}),
            "cancelled");
  EXPECT_EQ(status_of(r4), "ready");
}

TEST(ThreadTurnTest, ABatchOntoABusyThreadWaitsInTheBatchsOrder) {
  std::string url = testing::TestStack::Get().FreshDatabase();
  auto conn = Connect(url);
  json holder = Submit(conn, "holder");
  const std::string thread = holder["threadId"];
  auto claimed = ClaimQueueItems(conn, "w", {"default"}, 5, 60);
  ASSERT_TRUE(claimed && claimed->size() == 1);
  SubmitRequest a = BatchItem("a", thread), b = BatchItem("b", thread);
  auto got = SubmitCommands(conn, "t", "test", {&a, &b});
  ASSERT_TRUE(got) << got.error().message;
  ASSERT_TRUE((*got)[0] && (*got)[1]);
  // Both wait, naming the run that holds the thread (as a single submit does), in the batch's
  // order behind it.
  EXPECT_EQ((*got)[0]->response["waiting"]["runId"], holder["runId"]) << (*got)[0]->response.dump();
  EXPECT_EQ((*got)[1]->response["waiting"]["runId"], holder["runId"]) << (*got)[1]->response.dump();
  EXPECT_EQ(
      QueryText(conn,
                "SELECT string_agg(thread_seq::text, ',' ORDER BY thread_seq) FROM synaps.runs"
                " WHERE thread_id = $1::uuid",
                {thread}),
      "1,2,3");
  EXPECT_EQ(QueryText(conn, "SELECT count(*) FROM synaps.queue_items WHERE status = 'parked'"),
            "2");
  // The holder finishes: only the batch's first run gets the thread.
  TaskBatch batch;
  batch.completions = {
      {{(*claimed)[0].item_id, (*claimed)[0].lease_epoch}, json{{"text", "h"}}, {}}};
  ASSERT_TRUE(WriteTaskBatch(conn, batch));
  EXPECT_EQ(QueryText(conn, "SELECT q.status FROM synaps.queue_items q WHERE q.run_id = $1::uuid",
                      {(*got)[0]->response["runId"].get<std::string>()}),
            "ready");
  EXPECT_EQ(QueryText(conn, "SELECT q.status FROM synaps.queue_items q WHERE q.run_id = $1::uuid",
                      {(*got)[1]->response["runId"].get<std::string>()}),
            "parked");
}

}  // namespace
}  // namespace synaps::store
