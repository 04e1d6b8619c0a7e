// Fault tests with real processes: workers killed and frozen, NATS and PostgreSQL going away,
// cancellation, dead letters, fan-out and idempotency under load. Every test asserts the
// promise users rely on: every task completes, and completes exactly once.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <set>
#include <thread>

#include "support/cluster.h"
#include "support/synaps_process.h"
#include "support/test_stack.h"

namespace synaps {
namespace {

using nlohmann::json;
using testing::Cluster;
using testing::Eventually;

constexpr const char* kCompletedPerTask =
    "SELECT count(*) FROM (SELECT task_id FROM synaps.ledger_events WHERE type = 'task.completed'"
    " GROUP BY task_id HAVING count(*) > 1) x";

std::vector<std::string> SubmitMany(Cluster& c, int n, const std::string& prefix) {
  std::vector<std::string> runs;
  for (int i = 0; i < n; ++i) {
    json r = c.SubmitText(prefix + " " + std::to_string(i));
    runs.push_back(r["runId"].get<std::string>());
  }
  return runs;
}

void ExpectAllSucceededOnce(Cluster& c, const std::vector<std::string>& runs) {
  for (const auto& id : runs) {
    json run = c.WaitFinished(id, 90);
    EXPECT_EQ(run["status"], "succeeded") << run.dump();
  }
  EXPECT_EQ(c.Scalar(kCompletedPerTask), 0) << "a task completed more than once";
  EXPECT_EQ(c.Scalar("SELECT count(*) FROM synaps.ledger_events WHERE type = 'task.completed'"),
            static_cast<int64_t>(runs.size()));
}

// Two pods starting at once each run `synaps migrate` first (the chart's init step): racing
// processes on an empty database apply each migration exactly once and all succeed.
TEST(FaultTest, RacingMigrateProcessesApplyEachMigrationOnce) {
  auto& stack = testing::TestStack::Get();
  std::string name = "migrate_race";
  ASSERT_TRUE(stack.postgres().CreateDatabase(name));
  std::string url = stack.postgres().Url(name);
  std::string dir = stack.TempDir("migrate-race");
  std::vector<ChildProcess> procs;
  for (int i = 0; i < 4; ++i) {
    procs.push_back(testing::StartSynaps("migrate", {{"SYNAPS_DATABASE_URL", url}},
                                         dir + "/migrate" + std::to_string(i) + ".log"));
  }
  for (size_t i = 0; i < procs.size(); ++i) {
    auto status = procs[i].Wait(std::chrono::seconds(120));
    ASSERT_TRUE(status.has_value()) << "migrate " << i << " did not finish";
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
        << "migrate " << i << ": " << testing::ReadFile(dir + "/migrate" + std::to_string(i) + ".log");
  }
  auto conn = db::Connection::Connect(url);
  ASSERT_TRUE(conn) << conn.error().message;
  auto r = conn->Exec(
      "SELECT count(*), count(DISTINCT name) FROM synaps_meta.schema_migrations");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_GT(r->GetInt(0, 0), 10);
  EXPECT_EQ(r->GetInt(0, 0), r->GetInt(0, 1)) << "a migration was recorded twice";
  auto runs = conn->Exec("SELECT count(*) FROM synaps.runs");
  EXPECT_TRUE(runs) << "the schema is in place";
}

TEST(FaultTest, KilledWorkerWorkIsFinishedByAnother) {
  Cluster c;
  c.StartApi();
  size_t a = c.StartWorker({{"SYNAPS_LOCAL_LATENCY_MS", "60000"}, {"SYNAPS_LEASE_SECONDS", "2"}});
  auto runs = SubmitMany(c, 10, "survive kill -9");
  c.WaitForCount("SELECT count(*) FROM synaps.tasks WHERE status = 'running'", 10);
  c.worker(a).Signal(SIGKILL);
  c.StartWorker({{"SYNAPS_LEASE_SECONDS", "2"}});
  ExpectAllSucceededOnce(c, runs);
  EXPECT_EQ(c.Scalar("SELECT min(attempt) FROM synaps.tasks"), 2)
      << "every task was reclaimed after the killed worker's lease expired";
}

TEST(FaultTest, FrozenWorkerIsFencedOutAfterItsLease) {
  Cluster c;
  c.StartApi();
  size_t slow = c.StartWorker({{"SYNAPS_LOCAL_LATENCY_MS", "4000"}, {"SYNAPS_LEASE_SECONDS", "2"}});
  auto runs = SubmitMany(c, 5, "freeze");
  c.WaitForCount("SELECT count(*) FROM synaps.tasks WHERE status = 'running'", 5);
  c.worker(slow).Signal(SIGSTOP);
  c.StartWorker({{"SYNAPS_LEASE_SECONDS", "30"}});
  ExpectAllSucceededOnce(c, runs);
  c.worker(slow).Signal(SIGCONT);
  // The stale worker wakes up, tries to renew or complete with its old epoch, and is refused.
  EXPECT_TRUE(Eventually([&] {
    std::string log = testing::ReadFile(c.WorkerLog(slow));
    return log.find("lease lost to another worker") != std::string::npos ||
           log.find("is stale") != std::string::npos;
  })) << testing::ReadFile(c.WorkerLog(slow));
  std::this_thread::sleep_for(std::chrono::seconds(5));  // past the stale worker's answer time
  EXPECT_EQ(c.Scalar(kCompletedPerTask), 0);
  EXPECT_EQ(c.Scalar("SELECT count(*) FROM synaps.ledger_events WHERE type = 'task.completed'"), 5);
  EXPECT_EQ(c.Scalar("SELECT count(*) FROM synaps.ledger_events WHERE type = 'task.completed'"
                     " AND attempt = 1"),
            0);
}

TEST(FaultTest, NatsDownWorkCompletesByPolling) {
  Cluster c;
  c.StartApi();
  c.StartWorker();
  auto& nats = testing::TestStack::Get().nats();
  nats.Stop();
  ASSERT_TRUE(Eventually([&] {
    auto r = c.Call("GET", "/readyz");
    return r.status == 200 && json::parse(r.body)["nats"] == "down";
  })) << "readyz must stay 200 and report nats down";
  auto runs = SubmitMany(c, 5, "no nats");
  ExpectAllSucceededOnce(c, runs);
  ASSERT_TRUE(nats.Restart());
  EXPECT_TRUE(Eventually([&] {
    auto r = c.Call("GET", "/readyz");
    return r.status == 200 && json::parse(r.body)["nats"] == "ok";
  }));
  // Rows written while NATS was down are published after it returns.
  c.WaitForCount("SELECT (count(*) = 0)::int FROM synaps.outbox WHERE published_at IS NULL", 1);
}

TEST(FaultTest, PostgresRestartMidRunCompletesEverythingOnce) {
  Cluster c;
  c.StartApi();
  c.StartWorker({{"SYNAPS_LOCAL_LATENCY_MS", "300"}, {"SYNAPS_WORKER_CONCURRENCY", "4"}});
  c.StartWorker({{"SYNAPS_LOCAL_LATENCY_MS", "300"}, {"SYNAPS_WORKER_CONCURRENCY", "4"}});
  auto runs = SubmitMany(c, 30, "pg restart");
  c.WaitForCount("SELECT count(*) FROM synaps.runs WHERE status = 'succeeded'", 3);
  ASSERT_TRUE(testing::TestStack::Get().postgres().Restart());
  ExpectAllSucceededOnce(c, runs);
  // The API's pool healed as well.
  json after = c.SubmitText("after the restart");
  EXPECT_EQ(c.WaitFinished(after["runId"])["status"], "succeeded");
}

TEST(FaultTest, CancelAbortsInFlightWorkAndRefusesFinishedRuns) {
  Cluster c;
  c.StartApi();
  size_t w = c.StartWorker({{"SYNAPS_LOCAL_LATENCY_MS", "60000"}});
  json run = c.SubmitText("cancel me");
  std::string id = run["runId"];
  c.WaitForCount("SELECT count(*) FROM synaps.tasks WHERE status = 'running'", 1);
  auto cancelled = c.Call("POST", "/v1/runs/" + id + "/cancel");
  ASSERT_EQ(cancelled.status, 200) << cancelled.body;
  EXPECT_EQ(json::parse(cancelled.body)["status"], "cancelled");
  // The notice on synaps.run.<id> aborts it at once; a lease renewal (every lease/3 s) would too.
  EXPECT_TRUE(Eventually([&] {
    return testing::ReadFile(c.WorkerLog(w)).find("was cancelled") != std::string::npos;
  })) << "worker log:\n" << testing::ReadFile(c.WorkerLog(w)) << "\napi log:\n"
      << testing::ReadFile(c.api_log());
  c.WaitForCount("SELECT (count(*) = 0)::int FROM synaps.queue_items", 1);
  EXPECT_EQ(c.Scalar("SELECT count(*) FROM synaps.ledger_events WHERE type = 'run.cancelled'"), 1);
  EXPECT_EQ(c.Scalar("SELECT count(*) FROM synaps.ledger_events WHERE type = 'task.completed'"), 0);
  auto again = c.Call("POST", "/v1/runs/" + id + "/cancel");
  EXPECT_EQ(again.status, 409) << again.body;
  EXPECT_EQ(c.Call("POST", "/v1/runs/00000000-0000-4000-8000-000000000000/cancel").status, 404);

  // A queued (never claimed) run is cancelled too, and its item removed.
  c.worker(w).Signal(SIGKILL);
  json queued = c.Submit({{"kind", "prompt"}, {"input", {{"text", "later"}}},
                          {"notBefore", "2099-01-01T00:00:00Z"}});
  auto r = c.Call("POST", "/v1/runs/" + queued["runId"].get<std::string>() + "/cancel");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(c.Scalar("SELECT count(*) FROM synaps.queue_items WHERE run_id = $1::uuid",
                     {queued["runId"].get<std::string>()}),
            0);
}

TEST(FaultTest, DeadLettersAreListedAndRequeued) {
  Cluster c;
  c.StartApi();
  json run = c.SubmitText("fails first");
  std::string id = run["runId"];
  // Stand in for a worker whose provider refused the task for good.
  auto& db = c.db();
  auto claimed = db.Exec("SELECT item_id, lease_epoch FROM synaps.claim_queue_items("
                         "'test', ARRAY['default'], 1, 30)");
  ASSERT_TRUE(claimed && claimed->rows() == 1);
  ASSERT_TRUE(db.Exec("SELECT synaps.fail_queue_item($1::bigint, $2::bigint,"
                      " '{\"code\":\"invalid_argument\",\"message\":\"bad model\"}', false, 1, 1)",
                      {claimed->GetString(0, 0), claimed->GetString(0, 1)}));
  EXPECT_EQ(c.WaitFinished(id)["status"], "failed");

  auto dead = c.Call("GET", "/v1/queue/dead");
  ASSERT_EQ(dead.status, 200) << dead.body;
  json items = json::parse(dead.body)["items"];
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0]["runId"], id);
  EXPECT_EQ(items[0]["error"]["message"], "bad model");
  std::string item = std::to_string(items[0]["itemId"].get<int64_t>());

  EXPECT_EQ(c.Call("POST", "/v1/queue/items/999999/retry").status, 404);
  auto retried = c.Call("POST", "/v1/queue/items/" + item + "/retry");
  ASSERT_EQ(retried.status, 200) << retried.body;
  EXPECT_EQ(c.Call("POST", "/v1/queue/items/" + item + "/retry").status, 409);
  c.StartWorker();
  json done = c.WaitFinished(id);
  EXPECT_EQ(done["status"], "succeeded") << done.dump();
  EXPECT_EQ(json::parse(c.Call("GET", "/v1/queue/dead").body)["items"].size(), 0u);
}

TEST(FaultTest, FanOutRunsTasksInDependencyOrder) {
  Cluster c;
  c.StartApi();
  c.StartWorker();
  c.StartWorker();
  json body = {{"kind", "prompt"},
               {"tasks",
                {{{"name", "d"}, {"input", {{"text", "join"}}}, {"dependsOn", {"b", "c"}}},
                 {{"name", "a"}, {"input", {{"text", "root"}}}},
                 {{"name", "b"}, {"input", {{"text", "left"}}}, {"dependsOn", {"a"}}},
                 {{"name", "c"}, {"input", {{"text", "right"}}}, {"dependsOn", {"a"}}}}}};
  json created = c.Submit(body);
  json run = c.WaitFinished(created["runId"]);
  ASSERT_EQ(run["status"], "succeeded") << run.dump();
  ASSERT_EQ(run["tasks"].size(), 4u);
  std::map<std::string, std::string> name_of;
  for (const auto& t : run["tasks"]) name_of[t["id"]] = t["name"];
  std::map<std::string, int64_t> claimed, completed;
  for (const auto& e : run["events"]) {
    if (e["type"] == "task.claimed") claimed[name_of[e["taskId"]]] = e["seq"];
    if (e["type"] == "task.completed") completed[name_of[e["taskId"]]] = e["seq"];
  }
  EXPECT_LT(completed["a"], claimed["b"]);
  EXPECT_LT(completed["a"], claimed["c"]);
  EXPECT_LT(completed["b"], claimed["d"]);
  EXPECT_LT(completed["c"], claimed["d"]);

  auto cycle = c.Call("POST", "/v1/commands/submit",
                      json{{"kind", "prompt"},
                           {"tasks",
                            {{{"name", "x"}, {"input", {{"text", "1"}}}, {"dependsOn", {"y"}}},
                             {{"name", "y"}, {"input", {{"text", "2"}}}, {"dependsOn", {"x"}}}}}}
                          .dump());
  EXPECT_EQ(cycle.status, 400) << cycle.body;
  EXPECT_NE(cycle.body.find("cycle"), std::string::npos);
}

TEST(FaultTest, FiftyParallelSubmitsWithOneKeyCreateOneCommand) {
  Cluster c;
  c.StartApi();
  std::string body = json{{"kind", "prompt"}, {"input", {{"text", "exactly once"}}}}.dump();
  std::vector<std::thread> threads;
  std::vector<http::Response> responses(50);
  for (int i = 0; i < 50; ++i) {
    threads.emplace_back([&, i] {
      responses[i] = c.Call("POST", "/v1/commands/submit", body, {"Idempotency-Key: same-key"});
    });
  }
  for (auto& t : threads) t.join();
  int created = 0;
  std::set<std::string> bodies;
  for (const auto& r : responses) {
    ASSERT_TRUE(r.status == 201 || r.status == 200) << r.status << " " << r.body;
    if (r.status == 201) ++created;
    bodies.insert(json::parse(r.body)["runId"].get<std::string>());
  }
  EXPECT_EQ(created, 1);
  EXPECT_EQ(bodies.size(), 1u) << "every duplicate got the same run";
  EXPECT_EQ(c.Scalar("SELECT count(*) FROM synaps.commands"), 1);
  EXPECT_EQ(c.Scalar("SELECT count(*) FROM synaps.runs"), 1);
}

}  // namespace
}  // namespace synaps
