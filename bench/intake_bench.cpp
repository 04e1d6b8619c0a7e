// 3. API intake: submits/s through `synaps api` under wrk (keep-alive, 64 connections), versus
//    pgbench running the statement the API runs (SELECT synaps.submit_command(...), a
//    transaction of its own) as a custom script on the same server. Then bulk intake: wrk
//    POSTs batches of 1,000 commands (bench/wrk/submit_batch.lua) on 4 connections, versus
//    pgbench running the batch statement (store::SubmitCommands) on 4 clients.
#include <fstream>
#include <regex>
#include <thread>

#include "benchmarks.h"

namespace synaps::bench {

namespace {

constexpr int kBatch = 1000;          // commands per batch submit
constexpr int kBatchConnections = 4;  // concurrent batch requests

double Match(const std::string& text, const std::string& pattern, const std::string& what) {
  std::smatch m;
  if (!std::regex_search(text, m, std::regex(pattern))) {
    throw BenchError("no " + what + " in output:\n" + text.substr(0, 1500));
  }
  return std::stod(m[1]);
}

double WrkLatencyMs(const std::string& text) {
  std::smatch m;
  if (!std::regex_search(text, m, std::regex(R"(Latency\s+([0-9.]+)(us|ms|s)\b)"))) return 0;
  double v = std::stod(m[1]);
  if (m[2] == "us") return v / 1000;
  if (m[2] == "s") return v * 1000;
  return v;
}

// A fresh database and `synaps api`; wrk runs `script` against the submit route for 2 s to warm
// up, then for `seconds`. {rps, non2xx, latency_avg_ms, latency_p99_ms?}.
json WrkSubmit(Stack& stack, const BenchOptions& options, const std::string& script,
               int connections, int seconds) {
  std::string db = stack.FreshSynapsDb();
  uint16_t port = Must(PickFreePort(), "port");
  std::string base_url = "http://127.0.0.1:" + std::to_string(port);
  std::map<std::string, std::string> env = ApiEnv(stack, db, port);
  ChildProcess api = StartSynaps("api", env, stack.root() + "/intake-api-" + db + ".log");
  WaitUntilReady(base_url);
  std::map<std::string, std::string> wrk_env = {{"SYNAPS_BENCH_TOKEN", kBenchToken},
                                                {"SYNAPS_BENCH_BATCH", std::to_string(kBatch)}};
  // A batch takes longer than wrk's default 2 s socket timeout allows under load.
  std::vector<std::string> wrk = {
      "wrk", "-t2", "-c" + std::to_string(connections),  "--latency", "--timeout",
      "30s", "-s",  options.bench_dir + "/wrk/" + script};
  // Warm-up: the pool's connections and prepared statements.
  auto warm = wrk;
  warm.insert(warm.end(), {"-d2s", base_url + "/v1/commands/submit"});
  RunTool(warm, wrk_env, stack.root() + "/wrk-warm.log", std::chrono::seconds(60));
  auto run = wrk;
  run.insert(run.end(), {"-d" + std::to_string(seconds) + "s", base_url + "/v1/commands/submit"});
  std::string text = RunTool(run, wrk_env, stack.root() + "/wrk-" + db + ".log",
                             std::chrono::seconds(seconds + 60));
  double rps = Match(text, R"(Requests/sec:\s+([0-9.]+))", "Requests/sec");
  std::smatch m;
  double non2xx = 0;
  if (std::regex_search(text, m, std::regex(R"(Non-2xx or 3xx responses:\s+([0-9]+))"))) {
    non2xx = std::stod(m[1]);
  }
  json sample = {{"rps", rps}, {"non2xx", non2xx}, {"latency_avg_ms", WrkLatencyMs(text)}};
  std::smatch p99;
  if (std::regex_search(text, p99, std::regex(R"(99%\s+([0-9.]+)(us|ms|s))"))) {
    double v = std::stod(p99[1]);
    sample["latency_p99_ms"] = p99[2] == "us" ? v / 1000 : p99[2] == "s" ? v * 1000 : v;
  }
  api.Stop(std::chrono::seconds(10));
  stack.DropDb(db);
  return sample;
}

// pgbench runs `script` with `clients` on a fresh database: {tps, latency_avg_ms}.
json Pgbench(Stack& stack, const std::string& script, int clients, int seconds) {
  std::string db = stack.FreshSynapsDb();
  std::vector<std::string> base = {
      "pgbench", "-n", "-M", "prepared", "-f", script, "-c", std::to_string(clients), "-j", "2"};
  auto warm = base;
  warm.insert(warm.end(), {"-T", "2", stack.Url(db)});
  RunTool(warm, {}, stack.root() + "/pgbench-warm.log", std::chrono::seconds(60));
  auto run = base;
  run.insert(run.end(), {"-T", std::to_string(seconds), stack.Url(db)});
  std::string text = RunTool(run, {}, stack.root() + "/pgbench-" + db + ".log",
                             std::chrono::seconds(seconds + 60));
  double tps = Match(text, R"(tps = ([0-9.]+) \(without initial)", "tps");
  double lat = Match(text, R"(latency average = ([0-9.]+) ms)", "latency");
  stack.DropDb(db);
  return {{"tps", tps}, {"latency_avg_ms", lat}};
}

// The statement store::SubmitCommands runs for a batch of kBatch commands, as the API builds it
// from bench/wrk/submit_batch.lua's body.
std::string BatchScript() {
  json items = json::array();
  for (int i = 1; i <= kBatch; ++i) {
    items.push_back({{"hash", std::string(64, '0')},
                     {"command", json::parse(CommandJson("bulk " + std::to_string(i)))}});
  }
  return "SELECT count(*) FROM (SELECT item_answer FROM synaps.submit_commands('bench', 'admin', "
         "'" +
         items.dump() + "'::jsonb) ORDER BY item_n) s;\n";
}

}  // namespace

json RunIntake(Stack& stack, const BenchOptions& options) {
  const int seconds = options.quick ? 5 : 10;
  const int connections = 64;
  const std::vector<int> pgbench_clients = {16, 64};
  json out = {{"seconds", seconds},
              {"connections", connections},
              {"wrk_threads", 2},
              {"pgbench_clients", pgbench_clients},
              {"reps", options.reps},
              {"batch", kBatch},
              {"batch_connections", kBatchConnections}};
  json wrk_runs = json::array();
  json pgbench_runs = json::object();
  json batch_runs = json::array();
  json batch_pgbench_runs = json::array();

  // The same command JSON the API builds for the wrk body (store::SubmitCommand).
  std::string script_path = stack.root() + "/submit.sql";
  {
    std::ofstream script(script_path);
    std::string cmd = CommandJson("bench");
    script << "SELECT synaps.submit_command('bench', 'admin', NULL, "
              "'0000000000000000000000000000000000000000000000000000000000000000', '"
           << cmd << "'::jsonb);\n";
  }
  std::string batch_script_path = stack.root() + "/submit_batch.sql";
  {
    std::ofstream script(batch_script_path);
    script << BatchScript();
  }
  for (int rep = 0; rep < options.reps; ++rep) {
    const std::string r = "intake rep " + std::to_string(rep + 1) + ": ";
    Log(r + "wrk " + std::to_string(seconds) + " s");
    json sample = WrkSubmit(stack, options, "submit.lua", connections, seconds);
    wrk_runs.push_back(sample);
    Log("  " + std::to_string(sample["rps"].get<double>()) + " submits/s (" +
        std::to_string(sample["non2xx"].get<double>()) + " non-2xx)");
    for (int clients : pgbench_clients) {
      Log(r + "pgbench -c " + std::to_string(clients));
      json p = Pgbench(stack, script_path, clients, seconds);
      pgbench_runs[std::to_string(clients)].push_back(p);
      Log("  " + std::to_string(p["tps"].get<double>()) + " tx/s");
    }
    // Bulk intake: batches of kBatch commands per request.
    Log(r + "wrk batches of " + std::to_string(kBatch));
    json batch = WrkSubmit(stack, options, "submit_batch.lua", kBatchConnections, seconds);
    batch["commands_per_s"] = batch["rps"].get<double>() * kBatch;
    batch_runs.push_back(batch);
    Log("  " + std::to_string(batch["commands_per_s"].get<double>()) + " commands/s");
    Log(r + "pgbench, the batch statement, -c " + std::to_string(kBatchConnections));
    json pb = Pgbench(stack, batch_script_path, kBatchConnections, seconds);
    pb["commands_per_s"] = pb["tps"].get<double>() * kBatch;
    batch_pgbench_runs.push_back(pb);
    Log("  " + std::to_string(pb["commands_per_s"].get<double>()) + " commands/s");
  }
  out["wrk"] = wrk_runs;
  out["pgbench"] = pgbench_runs;
  out["batch_wrk"] = batch_runs;
  out["batch_pgbench"] = batch_pgbench_runs;
  return out;
}

}  // namespace synaps::bench
