// synaps_bench: runs the benchmarks of docs/benchmarks.md and writes that report.
//
//   synaps_bench [options]      (`synaps_bench --help` lists them: kUsage below)
//
// Every sample goes to the results JSON; the report is drawn from it, so `--report-only` redraws
// without re-running. For a before/after of one in-flight level (--inflight-levels), read the
// results JSON: the report's target lines read 0 for the 2,000 and 10,000 levels when they were
// not run. Issue #18's history target is --history-tasks 10000000 (about 40 GB of disk; its
// GET /v1/usage timings take 18 minutes at that size, --history-no-usage skips them).
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "benchmarks.h"
#include "peers.h"

namespace synaps::bench {
namespace {

std::string ReadFirstLine(const std::string& path, const std::string& prefix) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) == 0) {
      auto colon = line.find(':');
      std::string v = colon == std::string::npos ? line : line.substr(colon + 1);
      while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.erase(0, 1);
      return v;
    }
  }
  return "?";
}

std::string CommandOutput(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return "?";
  char buf[256];
  while (fgets(buf, sizeof buf, p)) out += buf;
  pclose(p);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out.empty() ? "?" : out;
}

json MachineFacts(const BenchOptions& options) {
  struct utsname u;
  uname(&u);
  json m;
  m["cores"] = sysconf(_SC_NPROCESSORS_ONLN);
  m["cpu"] = ReadFirstLine("/proc/cpuinfo", "model name");
  double mem_kb = std::stod(ReadFirstLine("/proc/meminfo", "MemTotal"));
  m["memory_gib"] = mem_kb / 1024 / 1024;
  m["kernel"] = std::string(u.release);
  std::string os = ReadFirstLine("/etc/os-release", "PRETTY_NAME");
  if (auto eq = os.find('='); eq != std::string::npos) os = os.substr(eq + 1);
  os.erase(std::remove(os.begin(), os.end(), '"'), os.end());
  m["os"] = os;
  m["node"] = CommandOutput("node --version 2>/dev/null");
  m["wrk"] = CommandOutput("wrk --version 2>&1 | head -1 | cut -d' ' -f1-2");
  m["nats_server"] = CommandOutput("nats-server --version 2>/dev/null");
  m["graphile_worker"] = PeerVersion(options, "graphile-worker");
  m["pg_boss"] = PeerVersion(options, "pg-boss");
  m["load_before"] = ReadFirstLine("/proc/loadavg", "");
  return m;
}

std::vector<std::string> Split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

}  // namespace
}  // namespace synaps::bench

namespace synaps::bench {
namespace {

constexpr const char* kUsage =
    "usage: synaps_bench [--help] [--quick] [--reps N] [--only NAMES] [--results FILE]\n"
    "                    [--report FILE] [--svg-dir DIR] [--report-only] [--history-tasks N]\n"
    "                    [--history-no-usage] [--expiry-tasks N] [--inflight-levels 2000,10000]\n"
    "                    [--inflight-waves N]\n"
    "Runs the benchmarks of docs/benchmarks.md and writes that report.\n"
    "  --only NAMES        some of drain,wakeup,intake,inflight,history,export,fairness,expiry\n"
    "  --quick             fewer tasks, one repetition (also BENCH_QUICK=1)\n"
    "  --reps N            repetitions (default 3; also BENCH_REPS)\n"
    "  --results FILE      every sample, as JSON (the report is drawn from it)\n"
    "  --report FILE       the Markdown report (default docs/benchmarks.md)\n"
    "  --svg-dir DIR       the report's charts\n"
    "  --report-only       redraw the report from --results without running anything\n"
    "  --history-tasks N   the history benchmark's finished tasks (default 1,000,000)\n"
    "  --history-no-usage  skip the history benchmark's GET /v1/usage timings\n"
    "  --expiry-tasks N    the day the expiry benchmark expires (default 1,000,000)\n"
    "  --inflight-levels L the in-flight benchmark's concurrencies (default 100,1000,2000,10000)\n"
    "  --inflight-waves N  its tasks per level, as multiples of the concurrency (default 3)\n"
    "SYNAPS_BENCH_BINARY runs another `synaps` build under the same harness.\n";

// The options from the command line and environment; exits with 0 after --help and with 2 on
// a mistake.
BenchOptions ParseOptions(int argc, char** argv, bool& report_only) {
  BenchOptions options;
  std::string source = SYNAPS_SOURCE_DIR;
  options.results_path = SYNAPS_BENCH_RESULTS;
  options.report_path = source + "/docs/benchmarks.md";
  options.svg_dir = source + "/docs/benchmarks";
  options.node_modules = source + "/tools/node/node_modules";
  options.bench_dir = source + "/bench";
  const char* quick_env = getenv("BENCH_QUICK");
  options.quick = quick_env && std::string(quick_env) == "1";
  int reps = -1;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << a << " needs a value\n" << kUsage;
        exit(2);
      }
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      std::cout << kUsage;
      exit(0);
    } else if (a == "--quick") {
      options.quick = true;
    } else if (a == "--reps") {
      reps = std::stoi(next());
    } else if (a == "--only") {
      options.only = Split(next());
    } else if (a == "--results") {
      options.results_path = next();
    } else if (a == "--report") {
      options.report_path = next();
    } else if (a == "--svg-dir") {
      options.svg_dir = next();
    } else if (a == "--report-only") {
      report_only = true;
    } else if (a == "--history-tasks") {
      options.history_tasks = std::stoi(next());
    } else if (a == "--history-no-usage") {
      options.history_usage = false;
    } else if (a == "--expiry-tasks") {
      options.expiry_tasks = std::stoi(next());
    } else if (a == "--inflight-levels") {
      for (const auto& level : Split(next())) options.inflight_levels.push_back(std::stoi(level));
    } else if (a == "--inflight-waves") {
      options.inflight_waves = std::stoi(next());
    } else {
      std::cerr << "unknown argument " << a << "\n" << kUsage;
      exit(2);
    }
  }
  options.reps = reps > 0 ? reps : (options.quick ? 1 : 3);
  if (const char* r = getenv("BENCH_REPS"); r && reps <= 0) options.reps = std::atoi(r);
  return options;
}

// The results of an earlier run at `path`, or an empty object.
json LoadResults(const std::string& path) {
  std::ifstream in(path);
  json results = in ? json::parse(in, nullptr, false) : json::object();
  return results.is_object() ? results : json::object();
}

// Runs the benchmarks `options` asks for on one stack, saving `results` after each.
void RunBenchmarks(const BenchOptions& options, json& results) {
  auto started = std::chrono::steady_clock::now();
  results["machine"] = MachineFacts(options);
  if (const char* b = getenv("SYNAPS_BENCH_BINARY"); b && *b) results["binary"] = b;
  results["quick"] = options.quick;
  results["reps"] = options.reps;
  Stack stack(/*durable=*/true);
  results["postgres"] = stack.ServerFacts();
  auto save = [&] {
    std::filesystem::create_directories(std::filesystem::path(options.results_path).parent_path());
    std::ofstream out(options.results_path);
    out << results.dump(1) << "\n";
  };
  struct Entry {
    const char* name;
    json (*run)(Stack&, const BenchOptions&);
  };
  for (const Entry& e :
       {Entry{"drain", RunDrain}, Entry{"wakeup", RunWakeup}, Entry{"intake", RunIntake},
        Entry{"inflight", RunInflight}, Entry{"history", RunHistory}, Entry{"export", RunExport},
        Entry{"fairness", RunFairness}, Entry{"expiry", RunExpiry}}) {
    if (!options.Wants(e.name)) continue;
    auto t0 = std::chrono::steady_clock::now();
    try {
      results[e.name] = e.run(stack, options);
      results[e.name]["wall_seconds"] = Seconds(std::chrono::steady_clock::now() - t0);
    } catch (const BenchError& err) {
      Log(std::string(e.name) + " failed: " + err.what());
      results[e.name] = {{"error", err.what()}};
    }
    save();
  }
  results["total_seconds"] = Seconds(std::chrono::steady_clock::now() - started);
  results["finished_at"] = static_cast<int64_t>(time(nullptr));
  save();
}

}  // namespace
}  // namespace synaps::bench

int main(int argc, char** argv) {
  using namespace synaps::bench;
  bool report_only = false;
  BenchOptions options = ParseOptions(argc, argv, report_only);
  json results = LoadResults(options.results_path);
  if (!report_only) {
    try {
      RunBenchmarks(options, results);
    } catch (const std::exception& err) {
      Log(std::string("benchmark stack failed: ") + err.what());
      return 1;
    }
  }
  WriteReport(results, options);
  Log("report written to " + options.report_path);
  return 0;
}
