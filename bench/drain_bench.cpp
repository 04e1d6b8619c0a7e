// 1. Drain throughput: N queued tasks, `local` provider at zero latency, drained by 1, 2 and 4
//    `synaps worker` processes; graphile-worker and pg-boss drain N no-op jobs on the same
//    PostgreSQL in the same repetition. Each drain's cost per task (WAL, commits, statements:
//    bench/cost.h) is recorded, and Synaps' submit of the N commands once.
#include <thread>

#include "benchmarks.h"
#include "cost.h"
#include "peers.h"
#include "worker/worker.h"

namespace synaps::bench {

DrainSample DrainSynaps(Stack& stack, int workers, int tasks, int concurrency, bool count_rows,
                        const DrainVariant& variant) {
  std::string db = stack.QueuedSynapsDb(tasks);
  if (!variant.prepare_sql.empty()) {
    auto conn = stack.Connect(db);
    Must(conn.Exec(variant.prepare_sql), "prepare " + db);
    Must(conn.Exec("VACUUM ANALYZE"), "vacuum " + db);
  }
  std::string objects = stack.TempDir("objects");
  std::map<std::string, std::string> env = {
      {"SYNAPS_DATABASE_URL", stack.Url(db)},
      {"SYNAPS_NATS_URL", stack.nats().Url()},
      {"SYNAPS_OBJECT_STORE", "file://" + objects},
      {"SYNAPS_WORKER_CONCURRENCY", std::to_string(concurrency)},
      {"SYNAPS_LOCAL_LATENCY_MS", "0"},
  };
  for (const auto& [k, v] : variant.env) env[k] = v;
  // The benchmark's own progress poll below, not the workers' work.
  const std::string kPoll = "%FROM synaps.runs WHERE status IN%";
  CostReading before = ReadCost(stack, db, kPoll, /*start=*/true);
  std::vector<ChildProcess> procs;
  for (int i = 0; i < workers; ++i) {
    procs.push_back(StartSynaps("worker", env,
                                stack.root() + "/drain-" + db + "-w" + std::to_string(i) + ".log"));
  }
  auto conn = stack.Connect(db);
  WaitUntil(
      [&] {
        return Scalar(conn, "SELECT count(*) FROM synaps.runs WHERE status IN "
                            "('succeeded', 'failed')") >= tasks;
      },
      std::chrono::minutes(15), "drain of " + db, std::chrono::milliseconds(100));
  DrainSample s;
  for (auto& p : procs) s.worker_cpu += CpuSeconds(p.pid());
  for (auto& p : procs) p.Stop(std::chrono::seconds(30));
  s.cost = CostPerUnit(before, ReadCost(stack, db, kPoll, /*start=*/false, /*staying=*/1), tasks);
  int64_t failed = Scalar(conn, "SELECT count(*) FROM synaps.runs WHERE status <> 'succeeded'");
  if (failed > 0) throw BenchError(std::to_string(failed) + " runs did not succeed in " + db);
  // Database clock on both ends: first claim to last run finished.
  s.seconds = ScalarDouble(
      conn,
      "SELECT extract(epoch FROM (SELECT max(finished_at) FROM synaps.runs) -"
      " (SELECT min(created_at) FROM synaps.ledger_events WHERE type = 'task.claimed'))");
  if (count_rows) {
    json rows;
    for (const char* table : {"threads", "commands", "runs", "tasks", "queue_items",
                              "ledger_events", "artifacts", "artifact_versions", "outbox"}) {
      rows[table] = static_cast<double>(Scalar(conn, std::string("SELECT count(*) FROM synaps.") +
                                                         table)) /
                    tasks;
    }
    auto types = Must(conn.Exec("SELECT type, count(*) FROM synaps.ledger_events GROUP BY 1 "
                                "ORDER BY 1"),
                      "ledger types");
    json by_type;
    for (int i = 0; i < types.rows(); ++i) {
      by_type[types.GetString(i, 0)] = static_cast<double>(types.GetInt(i, 1)) / tasks;
    }
    rows["ledger_by_type"] = by_type;
    s.rows = rows;
  }
  conn = db::Connection();
  stack.DropDb(db);
  return s;
}

json RunDrain(Stack& stack, const BenchOptions& options) {
  const int tasks = options.quick ? 5000 : 20000;
  const int concurrency = worker::WorkerOptions{}.concurrency;  // the default; the peers' too
  const int graphile_issue_concurrency = 32;  // issue #13's graphile-worker setting, run as well
  const std::vector<int> worker_counts = {1, 2, 4};
  json out = {{"tasks", tasks},
              {"concurrency", concurrency},
              {"reps", options.reps},
              {"graphile_issue_concurrency", graphile_issue_concurrency}};
  json synaps = json::object();
  json graphile = json::array();
  json graphile_issue = json::array();
  json pgboss = json::array();
  for (int rep = 0; rep < options.reps; ++rep) {
    for (int w : worker_counts) {
      Log("drain rep " + std::to_string(rep + 1) + ": synaps, " + std::to_string(w) +
          " worker(s)");
      DrainSample s = DrainSynaps(stack, w, tasks, concurrency, rep == 0 && w == 1, {});
      Log("  " + std::to_string(tasks / s.seconds) + " tasks/s");
      json sample = {{"seconds", s.seconds},
                     {"rate", tasks / s.seconds},
                     {"worker_cpu", s.worker_cpu},
                     {"cost", s.cost}};
      synaps[std::to_string(w)].push_back(sample);
      if (!s.rows.is_null()) out["rows_per_task"] = s.rows;
    }
    Log("drain rep " + std::to_string(rep + 1) + ": graphile-worker");
    json g = GraphileDrain(stack, options, tasks, concurrency);
    Log("  " + std::to_string(g["rate"].get<double>()) + " jobs/s");
    graphile.push_back(g);
    Log("drain rep " + std::to_string(rep + 1) + ": graphile-worker, concurrency " +
        std::to_string(graphile_issue_concurrency));
    json g2 = GraphileDrain(stack, options, tasks, graphile_issue_concurrency);
    Log("  " + std::to_string(g2["rate"].get<double>()) + " jobs/s");
    graphile_issue.push_back(g2);
    Log("drain rep " + std::to_string(rep + 1) + ": pg-boss");
    json b = PgBossDrain(stack, options, tasks, concurrency);
    Log("  " + std::to_string(b["rate"].get<double>()) + " jobs/s");
    pgboss.push_back(b);
  }
  out["synaps"] = synaps;
  out["synaps_submit_cost"] = stack.SubmitCost(tasks);
  out["graphile"] = graphile;
  out["graphile_issue"] = graphile_issue;
  out["pgboss"] = pgboss;
  return out;
}

}  // namespace synaps::bench
