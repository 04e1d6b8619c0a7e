// 3. API intake: submits/s through `synaps api` under wrk (keep-alive, 64 connections), versus
//    pgbench running the statement the API runs (SELECT synaps.submit_command(...), a
//    transaction of its own) as a custom script on the same server.
#include <fstream>
#include <regex>
#include <thread>

#include "benchmarks.h"

namespace synaps::bench {

namespace {

const char* kToken = "bench-admin-token-0123456789abcdef";

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

}  // namespace

json RunIntake(Stack& stack, const BenchOptions& options) {
  const int seconds = options.quick ? 5 : 10;
  const int connections = 64;
  const std::vector<int> pgbench_clients = {16, 64};
  json out = {{"seconds", seconds}, {"connections", connections}, {"wrk_threads", 2},
              {"pgbench_clients", pgbench_clients}, {"reps", options.reps}};
  json wrk_runs = json::array();
  json pgbench_runs = json::object();

  // The same command JSON the API builds for the wrk body (store::SubmitCommand).
  std::string script_path = stack.root() + "/submit.sql";
  {
    std::ofstream script(script_path);
    std::string cmd = CommandJson("bench");
    script << "SELECT synaps.submit_command('bench', 'admin', NULL, "
              "'0000000000000000000000000000000000000000000000000000000000000000', '"
           << cmd << "'::jsonb);\n";
  }
  for (int rep = 0; rep < options.reps; ++rep) {
    {
      std::string db = stack.FreshSynapsDb();
      uint16_t port = Must(PickFreePort(), "port");
      std::string base_url = "http://127.0.0.1:" + std::to_string(port);
      std::map<std::string, std::string> env = {
          {"SYNAPS_DATABASE_URL", stack.Url(db)},
          {"SYNAPS_NATS_URL", stack.nats().Url()},
          {"SYNAPS_OBJECT_STORE", "file://" + stack.TempDir("objects")},
          {"SYNAPS_LISTEN", "127.0.0.1:" + std::to_string(port)},
          {"SYNAPS_ADMIN_TOKEN", kToken},
          {"SYNAPS_RATE_LIMIT_RPS", "0"},
          {"SYNAPS_API_ADDRESS_RPS", "0"},
      };
      ChildProcess api = StartSynaps("api", env, stack.root() + "/intake-api-" + db + ".log");
      WaitUntilReady(base_url);
      std::map<std::string, std::string> wrk_env = {{"SYNAPS_BENCH_TOKEN", kToken}};
      std::vector<std::string> wrk = {"wrk", "-t2", "-c" + std::to_string(connections),
                                      "--latency", "-s", options.bench_dir + "/wrk/submit.lua"};
      // Warm-up: the pool's connections and prepared statements.
      auto warm = wrk;
      warm.insert(warm.end(), {"-d2s", base_url + "/v1/commands/submit"});
      RunTool(warm, wrk_env, stack.root() + "/wrk-warm.log", std::chrono::seconds(60));
      Log("intake rep " + std::to_string(rep + 1) + ": wrk " + std::to_string(seconds) + " s");
      auto run = wrk;
      run.insert(run.end(), {"-d" + std::to_string(seconds) + "s",
                             base_url + "/v1/commands/submit"});
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
      wrk_runs.push_back(sample);
      Log("  " + std::to_string(rps) + " submits/s (" + std::to_string(non2xx) + " non-2xx)");
      api.Stop(std::chrono::seconds(10));
      stack.DropDb(db);
    }
    for (int clients : pgbench_clients) {
      std::string db = stack.FreshSynapsDb();
      Log("intake rep " + std::to_string(rep + 1) + ": pgbench -c " + std::to_string(clients));
      std::vector<std::string> base = {"pgbench", "-n", "-M", "prepared", "-f", script_path,
                                       "-c", std::to_string(clients), "-j", "2"};
      auto warm = base;
      warm.insert(warm.end(), {"-T", "2", stack.Url(db)});
      RunTool(warm, {}, stack.root() + "/pgbench-warm.log", std::chrono::seconds(60));
      auto run = base;
      run.insert(run.end(), {"-T", std::to_string(seconds), stack.Url(db)});
      std::string text = RunTool(run, {}, stack.root() + "/pgbench-" + db + ".log",
                                 std::chrono::seconds(seconds + 60));
      double tps = Match(text, R"(tps = ([0-9.]+) \(without initial)", "tps");
      double lat = Match(text, R"(latency average = ([0-9.]+) ms)", "latency");
      pgbench_runs[std::to_string(clients)].push_back({{"tps", tps}, {"latency_avg_ms", lat}});
      Log("  " + std::to_string(tps) + " tx/s");
      stack.DropDb(db);
    }
  }
  out["wrk"] = wrk_runs;
  out["pgbench"] = pgbench_runs;
  return out;
}

}  // namespace synaps::bench
