// The chaos test (`make chaos`, docs/reliability.md "Chaos"): thousands of prompt tasks with model
// latency run on real `synaps api` and `synaps worker` processes while a driver, at random,
// kill -9s and SIGSTOPs workers, restarts (or crashes) PostgreSQL and NATS, and freezes the
// workers' database connections. At the end every run has succeeded, every task completed exactly
// once (ledger), each run was submitted once (Idempotency-Key on retries), and no process is hung
// (every process it did not kill still runs and its probes answer).
//
// Not in `make test` (it takes minutes): built as `chaos_test`, run by `make chaos`, which writes
// the report this test produces into docs/reliability.md. Knobs (environment):
//   SYNAPS_CHAOS_TASKS (5000), SYNAPS_CHAOS_WORKERS (3), SYNAPS_CHAOS_LATENCY_MS (100),
//   SYNAPS_CHAOS_SUBMIT_PER_SECOND (50), SYNAPS_CHAOS_SEED (time), SYNAPS_CHAOS_DEADLINE_SECONDS
//   (1200), SYNAPS_CHAOS_REPORT (a Markdown file to write).
#include <gtest/gtest.h>

#include <signal.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <thread>

#include "core/config.h"
#include "support/cluster.h"
#include "support/freeze_proxy.h"
#include "support/test_stack.h"

namespace synaps {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;
using testing::Cluster;
using testing::Eventually;
using testing::FreezeProxy;
using testing::TestStack;

struct ChaosOptions {
  int tasks = static_cast<int>(config::EnvInt("SYNAPS_CHAOS_TASKS", 5000, 1, 1'000'000));
  int workers = static_cast<int>(config::EnvInt("SYNAPS_CHAOS_WORKERS", 3, 1, 32));
  int latency_ms = static_cast<int>(config::EnvInt("SYNAPS_CHAOS_LATENCY_MS", 100, 0, 60'000));
  int submit_per_second =
      static_cast<int>(config::EnvInt("SYNAPS_CHAOS_SUBMIT_PER_SECOND", 50, 1, 100'000));
  uint64_t seed = static_cast<uint64_t>(config::EnvInt(
      "SYNAPS_CHAOS_SEED", std::chrono::system_clock::now().time_since_epoch().count() % 1'000'000,
      0, INT64_MAX));
  int deadline_seconds =
      static_cast<int>(config::EnvInt("SYNAPS_CHAOS_DEADLINE_SECONDS", 1200, 10, 86'400));
  std::string report = config::EnvOr("SYNAPS_CHAOS_REPORT", "");
};

// Short database deadlines and leases so that every fault is noticed and recovered from within
// seconds (the bounds are the production mechanisms, scaled down).
const std::map<std::string, std::string> kChaosEnv = {
    {"SYNAPS_WORKER_STATEMENT_TIMEOUT_MS", "2000"},
    {"SYNAPS_API_STATEMENT_TIMEOUT_MS", "2000"},
    {"SYNAPS_RELAY_STATEMENT_TIMEOUT_MS", "2000"},
    {"SYNAPS_DB_DEADLINE_GRACE_MS", "500"},
    {"SYNAPS_DB_CONNECT_TIMEOUT_MS", "2000"},
    {"SYNAPS_LEASE_SECONDS", "5"},
    {"SYNAPS_POLL_INTERVAL_MS", "300"},
};

constexpr const char* kCompletedTwice =
    "SELECT count(*) FROM (SELECT task_id FROM synaps.ledger_events WHERE type = 'task.completed'"
    " GROUP BY task_id HAVING count(*) > 1) x";

long ProbeStatus(uint16_t port, const std::string& path) {
  auto r = http::Send({.url = "http://127.0.0.1:" + std::to_string(port) + path,
                       .timeout = seconds(5)});
  return r ? r->status : 0;
}

// What the driver did and saw; printed as the report.
struct Tally {
  std::map<std::string, int> injected;
  std::atomic<int> submit_retries{0};
  std::atomic<int> submitted{0};
  double submit_seconds = 0;
  double total_seconds = 0;
};

// One worker slot: the process in the cluster (replaced after a kill) and its probe port.
struct WorkerSlot {
  size_t index = 0;
  uint16_t probe_port = 0;
  bool stopped = false;  // SIGSTOPped, to be continued at `resume_at`
  steady_clock::time_point resume_at;
};

class ChaosDriver {
 public:
  ChaosDriver(const ChaosOptions& o, Cluster& cluster, FreezeProxy& proxy, Tally& tally)
      : o_(o), cluster_(cluster), proxy_(proxy), tally_(tally), rng_(o.seed) {}

  void StartWorkers() {
    for (int i = 0; i < o_.workers; ++i) slots_.push_back(StartWorker());
  }

  // One random fault; the driver keeps at most one SIGSTOPped worker per slot.
  void InjectOne() {
    ResumeDue();
    int action = std::uniform_int_distribution<int>(0, 99)(rng_);
    if (action < 30) {
      KillWorker();
    } else if (action < 50) {
      StopWorker();
    } else if (action < 65) {
      FreezeConnections();
    } else if (action < 77) {
      RestartNats();
    } else if (action < 89) {
      RestartPostgres(/*crash=*/false);
    } else {
      RestartPostgres(/*crash=*/true);
    }
  }

  void ResumeAll() {
    for (auto& s : slots_) Resume(s);
  }
  void ResumeDue() {
    for (auto& s : slots_) {
      if (s.stopped && steady_clock::now() >= s.resume_at) Resume(s);
    }
  }
  int Between(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  const std::vector<WorkerSlot>& slots() const { return slots_; }

 private:
  WorkerSlot StartWorker() {
    auto port = PickFreePort();
    EXPECT_TRUE(port);
    WorkerSlot s;
    s.probe_port = port.value_or(0);
    s.index = cluster_.StartWorker(
        {{"SYNAPS_DATABASE_URL", proxy_.Rewrite(cluster_.database_url())},
         {"SYNAPS_WORKER_LISTEN", "127.0.0.1:" + std::to_string(s.probe_port)},
         {"SYNAPS_LOCAL_LATENCY_MS", std::to_string(o_.latency_ms)}});
    return s;
  }
  WorkerSlot& Pick() { return slots_[Between(0, static_cast<int>(slots_.size()) - 1)]; }

  void KillWorker() {
    WorkerSlot& s = Pick();
    auto& p = cluster_.worker(s.index);
    p.Signal(SIGKILL);
    p.Wait(seconds(10));
    std::this_thread::sleep_for(milliseconds(Between(200, 2000)));
    s = StartWorker();
    ++tally_.injected["kill -9 a worker, start a new one"];
  }
  void StopWorker() {
    WorkerSlot& s = Pick();
    if (s.stopped) return;
    cluster_.worker(s.index).Signal(SIGSTOP);
    s.stopped = true;
    // Up to 8 s: longer than the 5 s lease, so other workers take its tasks over and its own
    // late writes must be fenced.
    s.resume_at = steady_clock::now() + milliseconds(Between(1000, 8000));
    ++tally_.injected["SIGSTOP a worker for 1-8 s"];
  }
  void Resume(WorkerSlot& s) {
    if (!s.stopped) return;
    cluster_.worker(s.index).Signal(SIGCONT);
    s.stopped = false;
  }
  void FreezeConnections() {
    tally_.injected["freeze every open worker database connection"] += 1;
    proxy_.FreezeEstablished();
  }
  void RestartNats() {
    auto& nats = TestStack::Get().nats();
    nats.Stop();
    std::this_thread::sleep_for(milliseconds(Between(500, 3000)));
    auto st = nats.Restart();
    EXPECT_TRUE(st) << st.error().message;
    ++tally_.injected["stop NATS for 0.5-3 s"];
  }
  void RestartPostgres(bool crash) {
    auto& pg = TestStack::Get().postgres();
    if (crash) pg.Kill(); else pg.Stop();
    std::this_thread::sleep_for(milliseconds(Between(200, 2000)));
    auto st = pg.Restart();
    EXPECT_TRUE(st) << st.error().message;
    ++tally_.injected[crash ? "crash PostgreSQL (SIGKILL), restart" : "restart PostgreSQL (fast shutdown)"];
  }

  const ChaosOptions& o_;
  Cluster& cluster_;
  FreezeProxy& proxy_;
  Tally& tally_;
  std::mt19937_64 rng_;
  std::vector<WorkerSlot> slots_;
};

// Submits `o.tasks` prompt runs at the configured rate; a submit that fails (the API or its
// database is down) is retried with the same Idempotency-Key until it is accepted.
void SubmitAll(const ChaosOptions& o, Cluster& cluster, Tally& tally) {
  auto start = steady_clock::now();
  for (int i = 0; i < o.tasks; ++i) {
    json body = {{"kind", "prompt"},
                 {"input", {{"text", "chaos " + std::to_string(i)}}},
                 {"maxAttempts", 100}};
    std::string key = "Idempotency-Key: chaos-" + std::to_string(o.seed) + "-" + std::to_string(i);
    while (true) {
      auto r = cluster.Call("POST", "/v1/commands/submit", body.dump(), {key});
      if (r.status == 201 || r.status == 200) break;
      ++tally.submit_retries;
      std::this_thread::sleep_for(milliseconds(200));
    }
    ++tally.submitted;
    auto due = start + milliseconds(1000LL * (i + 1) / o.submit_per_second);
    std::this_thread::sleep_until(due);
  }
  tally.submit_seconds = std::chrono::duration<double>(steady_clock::now() - start).count();
}

std::string Report(const ChaosOptions& o, const Tally& t, Cluster& c) {
  std::ostringstream r;
  r << "Last run: " << o.tasks << " prompt tasks (one per run), " << o.workers
    << " workers, model latency " << o.latency_ms << " ms, submitted at " << o.submit_per_second
    << "/s, seed " << o.seed << " (`SYNAPS_CHAOS_SEED` repeats the fault sequence).\n\n";
  r << "| injected | times |\n|---|---|\n";
  for (const auto& [what, n] : t.injected) r << "| " << what << " | " << n << " |\n";
  auto q = [&](const char* sql) { return c.Scalar(sql); };
  r << "\n| observed | value |\n|---|---|\n";
  r << "| runs submitted (each once: `Idempotency-Key` on retries) | "
    << q("SELECT count(*) FROM synaps.runs") << " |\n";
  r << "| submits retried while the API or PostgreSQL was down | " << t.submit_retries << " |\n";
  r << "| runs succeeded | " << q("SELECT count(*) FROM synaps.runs WHERE status = 'succeeded'")
    << " |\n";
  r << "| `task.completed` events | "
    << q("SELECT count(*) FROM synaps.ledger_events WHERE type = 'task.completed'") << " |\n";
  r << "| tasks completed more than once | " << q(kCompletedTwice) << " |\n";
  r << "| tasks that needed more than one attempt (lease lost to a kill, stop or freeze) | "
    << q("SELECT count(*) FROM synaps.tasks WHERE attempt > 1") << " |\n";
  r << "| most attempts of one task | " << q("SELECT coalesce(max(attempt), 0) FROM synaps.tasks")
    << " |\n";
  r << "| submitting took | " << static_cast<int>(t.submit_seconds) << " s |\n";
  r << "| everything finished after | " << static_cast<int>(t.total_seconds) << " s |\n";
  return r.str();
}

TEST(Chaos, EveryTaskCompletesExactlyOnceWhileProcessesAndServersFail) {
  ChaosOptions o;
  std::cout << "chaos: seed " << o.seed << ", " << o.tasks << " tasks" << std::endl;
  FreezeProxy proxy("127.0.0.1", TestStack::Get().postgres().port());
  Cluster cluster(kChaosEnv);
  // The test server runs with synchronous_commit=off for speed, which loses acknowledged commits
  // when PostgreSQL crashes; production runs with it on. Crashes are injected here, so this
  // database gets production's setting (fsync may stay off: the OS cache survives a crash of
  // PostgreSQL itself).
  auto durable = cluster.db().Exec(
      "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET synchronous_commit = on', "
      "current_database()); END $$");
  ASSERT_TRUE(durable) << durable.error().message;
  cluster.StartApi();
  Tally tally;
  ChaosDriver driver(o, cluster, proxy, tally);
  driver.StartWorkers();

  auto start = steady_clock::now();
  std::thread submitter([&] { SubmitAll(o, cluster, tally); });
  auto deadline = start + seconds(o.deadline_seconds);
  int64_t done = 0;
  while (steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(driver.Between(1500, 4000)));
    driver.ResumeDue();
    done = cluster.Scalar("SELECT count(*) FROM synaps.runs WHERE status = 'succeeded'");
    std::cout << "chaos: " << tally.submitted << " submitted, " << done << " succeeded after "
              << std::chrono::duration_cast<seconds>(steady_clock::now() - start).count() << " s"
              << std::endl;
    if (tally.submitted == o.tasks && done >= o.tasks) break;
    // Faults while submitting; afterwards the system is left alone to drain.
    if (tally.submitted < o.tasks) driver.InjectOne();
    else driver.ResumeAll();
  }
  submitter.join();
  driver.ResumeAll();
  tally.total_seconds = std::chrono::duration<double>(steady_clock::now() - start).count();

  EXPECT_EQ(cluster.Scalar("SELECT count(*) FROM synaps.runs"), o.tasks);
  EXPECT_EQ(done, o.tasks) << "not every run succeeded within the deadline";
  EXPECT_EQ(cluster.Scalar(kCompletedTwice), 0) << "a task completed more than once";
  EXPECT_EQ(cluster.Scalar("SELECT count(*) FROM synaps.ledger_events WHERE type = "
                           "'task.completed'"),
            o.tasks);
  // No process hung: every process still runs and its probes answer.
  EXPECT_TRUE(cluster.api().running());
  EXPECT_TRUE(Eventually([&] { return cluster.Call("GET", "/readyz").status == 200; }, 30));
  for (const auto& s : driver.slots()) {
    EXPECT_TRUE(cluster.worker(s.index).running()) << "worker " << s.index << " exited";
    EXPECT_TRUE(Eventually([&] { return ProbeStatus(s.probe_port, "/healthz") == 200; }, 30))
        << "worker " << s.index << " is not live";
    EXPECT_TRUE(Eventually([&] { return ProbeStatus(s.probe_port, "/readyz") == 200; }, 30))
        << "worker " << s.index << " is not ready";
  }

  std::string report = Report(o, tally, cluster);
  std::cout << report;
  if (!o.report.empty()) {
    std::ofstream(o.report) << report
                            << (::testing::Test::HasFailure() ? "\n**Result: FAILED** (see the test log).\n"
                                                              : "\n**Result: passed.**\n");
  }
}

}  // namespace
}  // namespace synaps
