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

// A fresh database with `synaps api` and `synaps worker` on it.
struct ApiStack {
  std::string db;
  std::string base_url;
  ChildProcess api;
  ChildProcess worker;
};

std::string Submit(const std::string& base_url, const std::string& text) {
  auto r = http::Send({.method = "POST",
                       .url = base_url + "/v1/commands/submit",
                       .headers = {"Authorization: Bearer " + std::string(kBenchToken),
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

ApiStack StartApiStack(Stack& stack, int poll_interval_ms) {
  ApiStack out;
  out.db = stack.FreshSynapsDb();
  uint16_t port = Must(PickFreePort(), "port");
  out.base_url = "http://127.0.0.1:" + std::to_string(port);
  std::map<std::string, std::string> env = ApiEnv(stack, out.db, port);
  env["SYNAPS_POLL_INTERVAL_MS"] = std::to_string(poll_interval_ms);
  out.api = StartSynaps("api", env, stack.root() + "/wakeup-api-" + out.db + ".log");
  out.worker = StartSynaps("worker", env, stack.root() + "/wakeup-worker-" + out.db + ".log");
  WaitUntilReady(out.base_url);
  return out;
}

void WaitRunSucceeded(db::Connection& conn, const std::string& run_id) {
  WaitUntil(
      [&] {
        auto r =
            Must(conn.ExecPrepared("run_status",
                                   "SELECT status FROM synaps.runs WHERE id = $1::uuid", {run_id}),
                 "status");
        return r.rows() > 0 && r.Get(0, 0) == "succeeded";
      },
      std::chrono::seconds(30), "run " + run_id, std::chrono::milliseconds(1));
}

// `count` submits one after the other, each waited for until its run succeeded. Appends each
// submit's HTTP round trip (ms) to `rtt`; returns the claim latencies (ms).
std::vector<double> SequentialSubmits(const ApiStack& api, db::Connection& conn,
                                      const std::string& prefix, int count,
                                      std::vector<double>& rtt) {
  for (int i = 0; i < count; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    std::string run = Submit(api.base_url, prefix + std::to_string(i));
    rtt.push_back(Seconds(std::chrono::steady_clock::now() - t0) * 1000);
    WaitRunSucceeded(conn, run);
  }
  return ClaimLatencies(conn, prefix);
}

// Polling only: NATS stopped under the running API and worker, `count` submits at random
// (exponential gaps of mean `gap_ms`), so they fall at random points of the worker's poll
// cycle. NATS is restarted before returning the claim latencies (ms).
std::vector<double> SubmitsWithNatsStopped(Stack& stack, const ApiStack& api, db::Connection& conn,
                                           const std::string& prefix, int count, double gap_ms) {
  stack.nats().Stop();
  std::this_thread::sleep_for(std::chrono::seconds(2));
  std::mt19937 rng(42);
  std::exponential_distribution<double> gap(1.0 / gap_ms);
  for (int i = 0; i < count; ++i) {
    Submit(api.base_url, prefix + std::to_string(i));
    std::this_thread::sleep_for(std::chrono::microseconds(static_cast<int64_t>(gap(rng) * 1000)));
  }
  WaitAllSucceeded(conn, prefix, count);
  auto latencies = ClaimLatencies(conn, prefix);
  Must(stack.nats().Restart(), "restart nats");
  return latencies;
}

// Summary of `samples` with the samples themselves.
json SummaryWithSamples(const std::vector<double>& samples) {
  json s = ToJson(Summarize(samples));
  s["samples"] = samples;
  return s;
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
    ApiStack api = StartApiStack(stack, poll_interval_ms);
    auto conn = stack.Connect(api.db);
    // Warm up: connections, prepared statements, the worker's NATS subscription.
    for (int i = 0; i < 20; ++i)
      WaitRunSucceeded(conn, Submit(api.base_url, "warm-" + std::to_string(i)));

    Log("wakeup rep " + std::to_string(rep + 1) + ": " + std::to_string(sequential) +
        " sequential submits with NATS");
    std::vector<double> rtt;
    auto lat = SequentialSubmits(api, conn, "nats-" + std::to_string(rep) + "-", sequential, rtt);
    nats_runs.push_back(SummaryWithSamples(lat));
    submit_rtt.push_back(ToJson(Summarize(rtt)));
    Log("  p50 " + std::to_string(Summarize(lat).p50) + " ms");

    if (rep == 0) {
      Log("wakeup: " + std::to_string(polled) + " submits with NATS stopped (poll " +
          std::to_string(poll_interval_ms) + " ms)");
      auto plat = SubmitsWithNatsStopped(stack, api, conn, "poll-" + std::to_string(rep) + "-",
                                         polled, polled_gap_ms);
      polled_runs.push_back(SummaryWithSamples(plat));
      Log("  p50 " + std::to_string(Summarize(plat).p50) + " ms, max " +
          std::to_string(Summarize(plat).max) + " ms");
    }
    api.worker.Stop(std::chrono::seconds(30));
    api.api.Stop(std::chrono::seconds(10));
    conn = db::Connection();
    stack.DropDb(api.db);

    Log("wakeup rep " + std::to_string(rep + 1) + ": graphile-worker, " +
        std::to_string(sequential) + " sequential addJob");
    auto g = GraphileWakeup(stack, options, sequential);
    graphile_runs.push_back(SummaryWithSamples(g));
    Log("  p50 " + std::to_string(Summarize(g).p50) + " ms");
  }
  out["nats"] = nats_runs;
  out["polling"] = polled_runs;
  out["graphile"] = graphile_runs;
  out["submit_rtt_ms"] = submit_rtt;
  return out;
}

}  // namespace synaps::bench
