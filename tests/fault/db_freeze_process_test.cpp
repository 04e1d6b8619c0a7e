// PostgreSQL deadlines with real processes (docs/reliability.md, "PostgreSQL deadlines"): a
// worker and an API whose database path goes silent (support/freeze_proxy.h) recover on new
// connections by themselves, every task completes exactly once, requests meanwhile get a clear
// JSON error, and the worker's probes say what Kubernetes needs to know.
#include <gtest/gtest.h>

#include <thread>

#include "support/cluster.h"
#include "support/freeze_proxy.h"
#include "support/test_stack.h"

namespace synaps {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::steady_clock;
using testing::Cluster;
using testing::Eventually;
using testing::FreezeProxy;

constexpr const char* kCompletedTwice =
    "SELECT count(*) FROM (SELECT task_id FROM synaps.ledger_events WHERE type = 'task.completed'"
    " GROUP BY task_id HAVING count(*) > 1) x";

// Each DB call of the processes below waits 500 + 300 ms at most.
const std::map<std::string, std::string> kFastDeadlines = {
    {"SYNAPS_WORKER_STATEMENT_TIMEOUT_MS", "500"},
    {"SYNAPS_API_STATEMENT_TIMEOUT_MS", "500"},
    {"SYNAPS_RELAY_STATEMENT_TIMEOUT_MS", "500"},
    {"SYNAPS_DB_DEADLINE_GRACE_MS", "300"},
    {"SYNAPS_DB_CONNECT_TIMEOUT_MS", "1000"},
};

uint16_t FreePort() {
  auto port = PickFreePort();
  EXPECT_TRUE(port);
  return port.value_or(0);
}

// GET on the worker's probe port: status and JSON body.
std::pair<long, json> Probe(uint16_t port, const std::string& path) {
  auto r = http::Send({.url = "http://127.0.0.1:" + std::to_string(port) + path,
                       .timeout = std::chrono::seconds(5)});
  if (!r) return {0, json()};
  return {r->status, json::parse(r->body, nullptr, false)};
}

std::vector<std::string> SubmitMany(Cluster& c, int n, const std::string& prefix) {
  std::vector<std::string> runs;
  for (int i = 0; i < n; ++i) {
    runs.push_back(c.SubmitText(prefix + " " + std::to_string(i))["runId"].get<std::string>());
  }
  return runs;
}

void ExpectAllSucceededOnce(Cluster& c, const std::vector<std::string>& runs) {
  for (const auto& id : runs) {
    json run = c.WaitFinished(id, 90);
    EXPECT_EQ(run["status"], "succeeded") << run.dump();
  }
  EXPECT_EQ(c.Scalar(kCompletedTwice), 0) << "a task completed more than once";
  EXPECT_EQ(c.Scalar("SELECT count(*) FROM synaps.ledger_events WHERE type = 'task.completed'"),
            static_cast<int64_t>(runs.size()));
}

class DbFreezeTest : public ::testing::Test {
 protected:
  DbFreezeTest()
      : proxy_("127.0.0.1", testing::TestStack::Get().postgres().port()),
        cluster_(kFastDeadlines) {}

  FreezeProxy proxy_;
  Cluster cluster_;
};

TEST_F(DbFreezeTest, AWorkerWhoseConnectionsFreezeRecoversAndCompletesEachTaskOnce) {
  cluster_.StartApi();
  uint16_t probes = FreePort();
  size_t w = cluster_.StartWorker({{"SYNAPS_DATABASE_URL", proxy_.Rewrite(cluster_.database_url())},
                                   {"SYNAPS_WORKER_LISTEN", "127.0.0.1:" + std::to_string(probes)},
                                   {"SYNAPS_LOCAL_LATENCY_MS", "200"},
                                   {"SYNAPS_LEASE_SECONDS", "5"}});
  ASSERT_TRUE(Eventually([&] { return Probe(probes, "/readyz").first == 200; }));
  auto runs = SubmitMany(cluster_, 30, "frozen path");
  cluster_.WaitForCount("SELECT count(*) FROM synaps.tasks WHERE status <> 'queued'", 5);
  int frozen = proxy_.FreezeEstablished();
  EXPECT_GE(frozen, 2) << "the worker's lanes hold their own connections";
  ExpectAllSucceededOnce(cluster_, runs);
  // A second freeze, while idle: heartbeats and claims find new connections again.
  proxy_.FreezeEstablished();
  auto more = SubmitMany(cluster_, 10, "after the second freeze");
  for (const auto& id : more) {
    EXPECT_EQ(cluster_.WaitFinished(id, 60)["status"], "succeeded");
  }
  EXPECT_EQ(cluster_.Scalar(kCompletedTwice), 0);
  // Replacing frozen connections within a deadline keeps the worker ready and live.
  EXPECT_EQ(Probe(probes, "/readyz").first, 200);
  EXPECT_EQ(Probe(probes, "/healthz").first, 200);
  std::string log = testing::ReadFile(cluster_.WorkerLog(w));
  EXPECT_NE(log.find("did not answer within 800 ms"), std::string::npos) << log;
}

TEST_F(DbFreezeTest, AWorkerThatCannotReachPostgresTurnsUnreadyThenReadyAgain) {
  uint16_t probes = FreePort();
  cluster_.StartWorker({{"SYNAPS_DATABASE_URL", proxy_.Rewrite(cluster_.database_url())},
                        {"SYNAPS_WORKER_LISTEN", "127.0.0.1:" + std::to_string(probes)},
                        {"SYNAPS_WORKER_DB_UNREADY_SECONDS", "2"}});
  ASSERT_TRUE(Eventually([&] { return Probe(probes, "/readyz").first == 200; }));
  proxy_.RefuseNew(true);
  proxy_.FreezeEstablished();
  auto lost = steady_clock::now();
  json body;
  ASSERT_TRUE(Eventually([&] {
    auto [status, b] = Probe(probes, "/readyz");
    body = b;
    return status == 503;
  }, 20));
  EXPECT_EQ(body["postgres"], "unreachable") << body.dump();
  // Not before the bound: one failed call does not take a worker out of service.
  EXPECT_GE(steady_clock::now() - lost, milliseconds(1900));
  EXPECT_EQ(Probe(probes, "/healthz").first, 200) << "an unreachable database is not a stuck worker";
  proxy_.RefuseNew(false);
  EXPECT_TRUE(Eventually([&] { return Probe(probes, "/readyz").first == 200; }, 20));
}

TEST_F(DbFreezeTest, AStuckLaneFailsTheLivenessProbeUntilItsDeadline) {
  uint16_t probes = FreePort();
  // A lane's call may wait 3 + 0.3 s here, longer than the 2 s stall bound: the watchdog fires.
  cluster_.StartWorker({{"SYNAPS_DATABASE_URL", proxy_.Rewrite(cluster_.database_url())},
                        {"SYNAPS_WORKER_LISTEN", "127.0.0.1:" + std::to_string(probes)},
                        {"SYNAPS_WORKER_STALL_SECONDS", "2"},
                        {"SYNAPS_WORKER_STATEMENT_TIMEOUT_MS", "3000"}});
  ASSERT_TRUE(Eventually([&] { return Probe(probes, "/readyz").first == 200; }));
  ASSERT_EQ(Probe(probes, "/healthz").first, 200);
  proxy_.FreezeEstablished();
  json body;
  ASSERT_TRUE(Eventually([&] {
    auto [status, b] = Probe(probes, "/healthz");
    body = b;
    return status == 503;
  }, 15));
  EXPECT_EQ(body["status"], "stalled") << body.dump();
  EXPECT_TRUE(body.contains("stuckLane")) << body.dump();
  // The deadline ends the stuck call; the lane moves to a new connection and the probe recovers.
  EXPECT_TRUE(Eventually([&] { return Probe(probes, "/healthz").first == 200; }, 15));
}

TEST_F(DbFreezeTest, TheApiAnswersAClearErrorThenRecovers) {
  cluster_.StartApi({{"SYNAPS_DATABASE_URL", proxy_.Rewrite(cluster_.database_url())},
                     {"SYNAPS_DB_POOL_SIZE", "2"}});
  cluster_.StartWorker();
  auto run = cluster_.SubmitText("before the freeze")["runId"].get<std::string>();
  EXPECT_EQ(cluster_.WaitFinished(run)["status"], "succeeded");
  ASSERT_GE(proxy_.FreezeEstablished(), 1);
  // Every request answers within its deadline: 200, or a JSON 503/504; then 200s again.
  int errors = 0, ok_after = 0;
  auto start = steady_clock::now();
  while (ok_after < 5) {
    ASSERT_LT(steady_clock::now() - start, std::chrono::seconds(20)) << "the API did not recover";
    auto t0 = steady_clock::now();
    auto r = cluster_.Call("GET", "/v1/runs/" + run);
    EXPECT_LT(steady_clock::now() - t0, std::chrono::seconds(5)) << "a request hung";
    if (r.status == 200) {
      ++ok_after;
      continue;
    }
    ++errors;
    EXPECT_TRUE(r.status == 503 || r.status == 504) << r.status << " " << r.body;
    json body = json::parse(r.body, nullptr, false);
    ASSERT_TRUE(body.is_object() && body.contains("error")) << r.body;
  }
  EXPECT_LE(errors, 4) << "each frozen connection should cost one request";
  // Writes go through too, and the relay (behind the same path) still wakes the worker.
  auto after = cluster_.SubmitText("after the freeze")["runId"].get<std::string>();
  EXPECT_EQ(cluster_.WaitFinished(after)["status"], "succeeded");
  EXPECT_EQ(cluster_.Scalar(kCompletedTwice), 0);
}

}  // namespace
}  // namespace synaps
