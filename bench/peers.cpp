#include "peers.h"

#include <fstream>

#include "cost.h"

namespace synaps::bench {

namespace {

json RunNode(Stack& stack, const BenchOptions& options, const std::string& script,
             const std::string& db, const std::vector<std::string>& args,
             std::chrono::seconds timeout) {
  std::vector<std::string> argv = {"node", options.bench_dir + "/node/" + script};
  argv.insert(argv.end(), args.begin(), args.end());
  std::string log = stack.root() + "/" + script + "-" + db + ".log";
  std::string output = RunTool(argv,
                               {{"NODE_PATH", options.node_modules},
                                {"DATABASE_URL", stack.Url(db)},
                                {"NODE_ENV", "production"}},
                               log, timeout);
  // The script's last line is its JSON result.
  auto end = output.find_last_not_of("\n");
  auto start = output.rfind('\n', end);
  std::string last = output.substr(start == std::string::npos ? 0 : start + 1,
                                   end == std::string::npos ? 0 : end - start);
  json result = json::parse(last, nullptr, false);
  if (result.is_discarded()) throw BenchError(script + " printed no result; see " + log);
  return result;
}

// Runs a peer's drain script on a fresh database, adding its cost per job (bench/cost.h): the
// WAL from the LSN the script printed once its schema was installed (`schema_lsn`) to its
// exit, the commits and statements of its whole run (the schema's few included) less the
// script's own progress polls (`monitor_like`).
json PeerDrain(Stack& stack, const BenchOptions& options, const std::string& peer,
               const std::string& script, const std::string& monitor_like, int jobs,
               int concurrency) {
  std::string db = stack.FreshEmptyDb(peer);
  CostReading before = ReadCost(stack, db, monitor_like, /*start=*/true);
  json r = RunNode(stack, options, script, db, {std::to_string(jobs), std::to_string(concurrency)},
                   std::chrono::minutes(15));
  r["cost"] = CostPerUnit(before, ReadCost(stack, db, monitor_like, /*start=*/false), jobs,
                          r.value("schema_lsn", ""));
  stack.DropDb(db);
  return r;
}

}  // namespace

json GraphileDrain(Stack& stack, const BenchOptions& options, int jobs, int concurrency) {
  return PeerDrain(stack, options, "graphile", "graphile_drain.cjs",
                   "%count(*)::int AS n FROM graphile_worker._private_jobs%", jobs, concurrency);
}

json PgBossDrain(Stack& stack, const BenchOptions& options, int jobs, int concurrency) {
  return PeerDrain(stack, options, "pgboss", "pgboss_drain.cjs", "", jobs, concurrency);
}

std::vector<double> GraphileWakeup(Stack& stack, const BenchOptions& options, int count) {
  std::string db = stack.FreshEmptyDb("graphile");
  RunNode(stack, options, "graphile_wakeup.cjs", db, {std::to_string(count)},
          std::chrono::minutes(10));
  auto conn = stack.Connect(db);
  auto r = Must(conn.Exec("SELECT extract(epoch FROM locked_at - created_at) * 1000"
                          " FROM bench_job_locks ORDER BY id"),
                "graphile latencies");
  std::vector<double> out;
  for (int i = 0; i < r.rows(); ++i) out.push_back(std::stod(r.GetString(i, 0)));
  conn = db::Connection();
  stack.DropDb(db);
  return out;
}

std::string PeerVersion(const BenchOptions& options, const std::string& package) {
  std::ifstream in(options.node_modules + "/" + package + "/package.json");
  json j = json::parse(in, nullptr, false);
  return j.is_object() ? j.value("version", "?") : "?";
}

}  // namespace synaps::bench
