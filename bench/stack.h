// The benchmark stack: one private PostgreSQL and one nats-server (the same devstack code that
// `synaps dev` and the tests use) in a temporary directory, on ports the OS picks, plus helpers
// to clone databases, run the real `synaps` binary and outside tools, and summarize samples.
//
// Not thread-safe: the driver runs one benchmark at a time on its main thread.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/process.h"
#include "db/connection.h"
#include "devstack/nats_server.h"
#include "devstack/postgres_server.h"

namespace synaps::bench {

using nlohmann::json;

// What `make bench` asked for. BENCH_QUICK=1 shrinks counts and repetitions.
struct BenchOptions {
  bool quick = false;
  int reps = 3;
  std::vector<std::string> only;  // benchmark names; empty = all
  std::string results_path;       // JSON with every sample
  std::string report_path;        // docs/benchmarks.md
  std::string svg_dir;            // docs/benchmarks/
  std::string node_modules;       // tools/node/node_modules
  std::string bench_dir;          // bench/ (scripts)
  int history_tasks = 0;          // finished tasks of the history benchmark; 0 = its default
  bool history_usage = true;      // the history benchmark also times GET /v1/usage on it
  int expiry_tasks = 0;           // tasks of the day the expiry benchmark expires; 0 = default
  std::vector<int> inflight_levels;  // the in-flight benchmark's concurrencies; empty = all
  int inflight_waves = 0;            // tasks per level = waves × concurrency; 0 = its default
  bool Wants(const std::string& name) const;
};

// Thrown when a benchmark cannot run at all (a server does not start, a tool is missing).
struct BenchError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Unwraps a Result or throws BenchError with `what` in the message.
template <class T>
T Must(Result<T> r, const std::string& what) {
  if (!r) throw BenchError(what + ": " + r.error().message);
  return std::move(*r);
}
void Must(const Status& s, const std::string& what);

class Stack {
 public:
  // Starts PostgreSQL (durable: fsync and synchronous_commit on, as in production) and NATS.
  explicit Stack(bool durable);
  ~Stack();

  const std::string& root() const { return root_; }
  devstack::PostgresServer& postgres() { return *postgres_; }
  devstack::NatsServer& nats() { return *nats_; }
  std::string Url(const std::string& db) const { return postgres_->Url(db); }
  db::Connection Connect(const std::string& db);
  // The same for bulk loads: statements (and the client's wait for them) may run for up to
  // `statement_timeout` instead of Connect's 10 minutes (a 10M history's steps run for longer).
  db::Connection ConnectForLoad(
      const std::string& db, std::chrono::milliseconds statement_timeout = std::chrono::hours(8));

  // A new migrated Synaps database, cloned from a template (made once).
  std::string FreshSynapsDb();
  // A migrated Synaps database with `n` queued single-task commands (queue `default`), cloned
  // from a template made once per n.
  std::string QueuedSynapsDb(int n);
  // What submitting the template's n commands cost per command (bench/cost.h), once it is made.
  json SubmitCost(int n) const {
    auto it = submit_costs_.find(n);
    return it == submit_costs_.end() ? json() : it->second;
  }
  // An empty database (for the peers).
  std::string FreshEmptyDb(const std::string& prefix);
  void DropDb(const std::string& name);

  // Settings and version of the server, for the report.
  json ServerFacts();
  // A new empty directory under the stack's root.
  std::string TempDir(const std::string& prefix);

 private:
  std::string NextName(const std::string& prefix);
  void CloneDb(const std::string& from, const std::string& to);

  std::string root_;
  std::unique_ptr<devstack::PostgresServer> postgres_;
  std::unique_ptr<devstack::NatsServer> nats_;
  std::map<int, std::string> queued_templates_;
  std::map<int, json> submit_costs_;
  bool base_template_ = false;
  int counter_ = 0;
};

// Inserts `n` single-task commands through synaps.submit_command in bulk SQL (as the tests do),
// in statements of at most 2,000.
void SubmitBulk(db::Connection& conn, int n, const std::string& queue = "default");

// The command JSON that `POST /v1/commands/submit {"kind":"prompt","input":{"text":T}}` hands
// to synaps.submit_command (store::SubmitCommand builds the same shape).
std::string CommandJson(const std::string& text, const std::string& queue = "default");

// The admin token of every `synaps api` the benchmarks start.
inline constexpr const char* kBenchToken = "bench-admin-token-0123456789abcdef";

// The environment of a `synaps api` (and its workers) on database `db` of `stack`, listening on
// 127.0.0.1:`port`, with kBenchToken and no rate limits (the benchmarks measure the system, not
// its limits).
std::map<std::string, std::string> ApiEnv(Stack& stack, const std::string& db, uint16_t port);

// Runs `synaps <verb>` with `env` (merged over the environment), logging to `log`.
ChildProcess StartSynaps(const std::string& verb, const std::map<std::string, std::string>& env,
                         const std::string& log);
// Runs a command to completion (bounded by `timeout`); returns its combined output.
std::string RunTool(const std::vector<std::string>& argv,
                    const std::map<std::string, std::string>& env, const std::string& log,
                    std::chrono::seconds timeout);
// Polls `condition` every `every` until it holds; throws BenchError after `timeout`.
void WaitUntil(const std::function<bool()>& condition, std::chrono::milliseconds timeout,
               const std::string& what,
               std::chrono::milliseconds every = std::chrono::milliseconds(50));
// Polls GET url/readyz until 200.
void WaitUntilReady(const std::string& base_url);

int64_t Scalar(db::Connection& conn, const std::string& sql, const db::Params& params = {});
double ScalarDouble(db::Connection& conn, const std::string& sql, const db::Params& params = {});

// /proc facts about a process: peak resident set (VmHWM) in MiB, CPU seconds (user + system).
double PeakRssMiB(pid_t pid);
double CpuSeconds(pid_t pid);

// Median, min, max, percentiles of samples.
struct Summary {
  double median = 0, min = 0, max = 0, p50 = 0, p95 = 0, p99 = 0, mean = 0;
  size_t n = 0;
};
Summary Summarize(std::vector<double> samples);
json ToJson(const Summary& s);

double Seconds(std::chrono::steady_clock::duration d);
void Log(const std::string& line);

}  // namespace synaps::bench
