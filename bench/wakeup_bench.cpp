// 2. Wakeup latency: submit → claim over the HTTP API, with NATS wakeups and with NATS stopped
//    (polling only); graphile-worker's add → lock latency measured the same way (both ends on
//    PostgreSQL's clock: the claim transaction's start minus the submit transaction's start).
#include <random>
#include <thread>

#include "benchmarks.h"
#include "http/client.h"
#include "peers.h"

namespace synaps::bench {

namespace {

const char* kToken = "bench-admin-token-0123456789abcdef";

struct ApiStack {
  std::string db;
  std::string base_url;
  ChildProcess api;
  ChildProcess worker;
};

std::string Submit(const std::string& base_url, const std::string& text) {
  auto r = http::Send({.method = "POST",
                       .url = base_url + "/v1/commands/submit",
                       .headers = {"Authorization: Bearer " + std::string(kToken),
                                   "Content-Type: application/json"},
                       .body = json{{"kind", "prompt"}, {"input", {{"text", text}}}}.dump(),
                       .timeout = std::chrono::seconds(10)});
  if (!r || r->status != 201) {
    throw BenchError("submit failed: " + (r ? std::to_string(r->status) + " " + r->body
                                            : r.error().message));
  }
  return json::parse(r->body)["runId"].get<std::string>();
}

// Latencies (ms) of the commands whose input text starts with `prefix`.
std::vector<double> ClaimLatencies(db::Connection& conn, const std::string& prefix) {
  auto r = Must(conn.Exec("SELECT extract(epoch FROM e.created_at - c.created_at) * 1000"
                          "  FROM synaps.commands c"
                          "  JOIN synaps.runs r ON r.command_id = c.id"
                          "  JOIN synaps.ledger_events e ON e.run_id = r.id AND e.type = 'task.claimed'"
                          " WHERE c.payload->'input'->>'text' LIKE $1 || '%'",
                          {prefix}),
                "latencies");
  std::vector<double> out;
  for (int i = 0; i < r.rows(); ++i) out.push_back(std::stod(r.GetString(i, 0)));
  return out;
}

void WaitAllSucceeded(db::Connection& conn, const std::string& prefix, int count) {
  WaitUntil(
      [&] {
        return Scalar(conn,
                      "SELECT count(*) FROM synaps.commands c JOIN synaps.runs r ON"
                      " r.command_id = c.id WHERE r.status = 'succeeded'"
                      " AND c.payload->'input'->>'text' LIKE $1 || '%'",
                      {prefix}) >= count;
      },
      std::chrono::minutes(5), "runs of " + prefix, std::chrono::milliseconds(100));
}

}  // namespace

json RunWakeup(Stack& stack, const BenchOptions& options) {
  const int sequential = options.quick ? 200 : 1000;
  const int polled = options.quick ? 200 : 1000;
  const int poll_interval_ms = 1000;  // SYNAPS_POLL_INTERVAL_MS default
  const double polled_gap_ms = 50;    // mean gap between submits while NATS is down
  json out = {{"sequential", sequential},
              {"polled", polled},
              {"poll_interval_ms", poll_interval_ms},
              {"polled_gap_ms", polled_gap_ms},
              {"reps", options.reps}};
  json nats_runs = json::array(), polled_runs = json::array(), graphile_runs = json::array();
  json submit_rtt = json::array();
  for (int rep = 0; rep < options.reps; ++rep) {
    std::string db = stack.FreshSynapsDb();
    uint16_t port = Must(PickFreePort(), "port");
    std::string base_url = "http://127.0.0.1:" + std::to_string(port);
    std::string objects = stack.TempDir("objects");
    std::map<std::string, std::string> env = {
        {"SYNAPS_DATABASE_URL", stack.Url(db)},
        {"SYNAPS_NATS_URL", stack.nats().Url()},
        {"SYNAPS_OBJECT_STORE", "file://" + objects},
        {"SYNAPS_LISTEN", "127.0.0.1:" + std::to_string(port)},
        {"SYNAPS_ADMIN_TOKEN", kToken},
        {"SYNAPS_RATE_LIMIT_RPS", "0"},
        {"SYNAPS_API_ADDRESS_RPS", "0"},
        {"SYNAPS_POLL_INTERVAL_MS", std::to_string(poll_interval_ms)},
    };
    ChildProcess api = StartSynaps("api", env, stack.root() + "/wakeup-api-" + db + ".log");
    ChildProcess worker =
        StartSynaps("worker", env, stack.root() + "/wakeup-worker-" + db + ".log");
    WaitUntilReady(base_url);
    auto conn = stack.Connect(db);
    const std::string status_sql = "SELECT status FROM synaps.runs WHERE id = $1::uuid";
    auto wait_run = [&](const std::string& run_id) {
      WaitUntil(
          [&] {
            auto r = Must(conn.ExecPrepared("run_status", status_sql, {run_id}), "status");
            return r.rows() > 0 && r.Get(0, 0) == "succeeded";
          },
          std::chrono::seconds(30), "run " + run_id, std::chrono::milliseconds(1));
    };
    // Warm up: connections, prepared statements, the worker's NATS subscription.
    for (int i = 0; i < 20; ++i) wait_run(Submit(base_url, "warm-" + std::to_string(i)));

    Log("wakeup rep " + std::to_string(rep + 1) + ": " + std::to_string(sequential) +
        " sequential submits with NATS");
    std::vector<double> rtt;
    std::string prefix = "nats-" + std::to_string(rep) + "-";
    for (int i = 0; i < sequential; ++i) {
      auto t0 = std::chrono::steady_clock::now();
      std::string run = Submit(base_url, prefix + std::to_string(i));
      rtt.push_back(Seconds(std::chrono::steady_clock::now() - t0) * 1000);
      wait_run(run);
    }
    auto lat = ClaimLatencies(conn, prefix);
    nats_runs.push_back(ToJson(Summarize(lat)));
    nats_runs.back()["samples"] = lat;
    submit_rtt.push_back(ToJson(Summarize(rtt)));
    Log("  p50 " + std::to_string(Summarize(lat).p50) + " ms");

    if (rep == 0) {
      // Polling only: NATS stopped under the running API and worker. Submits arrive at random
      // (exponential gaps), so they fall at random points of the worker's poll cycle.
      Log("wakeup: " + std::to_string(polled) + " submits with NATS stopped (poll " +
          std::to_string(poll_interval_ms) + " ms)");
      stack.nats().Stop();
      std::this_thread::sleep_for(std::chrono::seconds(2));
      std::mt19937 rng(42);
      std::exponential_distribution<double> gap(1.0 / polled_gap_ms);
      std::string pprefix = "poll-" + std::to_string(rep) + "-";
      for (int i = 0; i < polled; ++i) {
        Submit(base_url, pprefix + std::to_string(i));
        std::this_thread::sleep_for(std::chrono::microseconds(static_cast<int64_t>(gap(rng) * 1000)));
      }
      WaitAllSucceeded(conn, pprefix, polled);
      auto plat = ClaimLatencies(conn, pprefix);
      polled_runs.push_back(ToJson(Summarize(plat)));
      polled_runs.back()["samples"] = plat;
      Log("  p50 " + std::to_string(Summarize(plat).p50) + " ms, max " +
          std::to_string(Summarize(plat).max) + " ms");
      Must(stack.nats().Restart(), "restart nats");
    }
    worker.Stop(std::chrono::seconds(30));
    api.Stop(std::chrono::seconds(10));
    conn = db::Connection();
    stack.DropDb(db);

    Log("wakeup rep " + std::to_string(rep + 1) + ": graphile-worker, " +
        std::to_string(sequential) + " sequential addJob");
    auto g = GraphileWakeup(stack, options, sequential);
    graphile_runs.push_back(ToJson(Summarize(g)));
    graphile_runs.back()["samples"] = g;
    Log("  p50 " + std::to_string(Summarize(g).p50) + " ms");
  }
  out["nats"] = nats_runs;
  out["polling"] = polled_runs;
  out["graphile"] = graphile_runs;
  out["submit_rtt_ms"] = submit_rtt;
  return out;
}

}  // namespace synaps::bench
