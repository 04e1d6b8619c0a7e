// 7. Fair sharing (issue #15): one `synaps worker` drains N queued tasks spread over several
//    tenants with fair sharing off (priority and age alone) and on (the default), in alternating
//    repetitions on clones of one queued database; then the same with 1,000 tenants, where every
//    claim finds 1,000 groups with work. Also times single claims of each kind on such a queue.
#include <algorithm>
#include <string>

#include "benchmarks.h"

namespace synaps::bench {

namespace {

// Spreads the queued tasks round-robin over `tenants` tenants (runs, tasks and queue items).
std::string SpreadOver(int tenants) {
  const std::string n = std::to_string(tenants);
  return "UPDATE synaps.queue_items SET tenant_id = 't' || (id % " + n +
         ");"
         "UPDATE synaps.tasks t SET tenant_id = q.tenant_id FROM synaps.queue_items q"
         " WHERE q.task_id = t.id;"
         "UPDATE synaps.runs r SET tenant_id = q.tenant_id FROM synaps.queue_items q"
         " WHERE q.run_id = r.id;";
}

// Milliseconds of `claims` single-item claims (never completed) on a clone of the queued
// database spread over `tenants` tenants, timed by the client: {p50, p99}.
json ClaimLatency(Stack& stack, int tasks, int tenants, bool fair, int claims) {
  std::string db = stack.QueuedSynapsDb(tasks);
  auto conn = stack.Connect(db);
  Must(conn.Exec(SpreadOver(tenants)), "spread " + db);
  Must(conn.Exec("VACUUM ANALYZE"), "vacuum " + db);
  std::vector<double> ms;
  const std::string sql = std::string(
                              "SELECT count(*) FROM synaps.claim_queue_items('bench', "
                              "ARRAY['default'], 1, 600, NULL, ") +
                          (fair ? "true" : "false") + ")";
  for (int i = 0; i < claims; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    Must(conn.Exec(sql), "claim");
    ms.push_back(Seconds(std::chrono::steady_clock::now() - t0) * 1000);
  }
  std::sort(ms.begin(), ms.end());
  conn = db::Connection();
  stack.DropDb(db);
  return {{"p50", ms[ms.size() / 2]}, {"p99", ms[std::min(ms.size() - 1, ms.size() * 99 / 100)]}};
}

}  // namespace

json RunFairness(Stack& stack, const BenchOptions& options) {
  const int tasks = options.quick ? 5000 : 20000;
  const int concurrency = 16;
  json out = {{"tasks", tasks}, {"concurrency", concurrency}, {"reps", options.reps}};
  for (int tenants : {4, 1000}) {
    DrainVariant off{.env = {{"SYNAPS_FAIR_SHARE", "off"}}, .prepare_sql = SpreadOver(tenants)};
    DrainVariant on{.env = {}, .prepare_sql = SpreadOver(tenants)};
    json samples_off = json::array(), samples_on = json::array();
    for (int rep = 0; rep < options.reps; ++rep) {
      for (bool fair : {false, true}) {
        Log("fairness " + std::to_string(tenants) + " tenants, rep " + std::to_string(rep + 1) +
            ": " + (fair ? "on" : "off"));
        DrainSample s = DrainSynaps(stack, 1, tasks, concurrency, false, fair ? on : off);
        json sample = {
            {"seconds", s.seconds}, {"rate", tasks / s.seconds}, {"worker_cpu", s.worker_cpu}};
        (fair ? samples_on : samples_off).push_back(sample);
        Log("  " + std::to_string(tasks / s.seconds) + " tasks/s");
      }
    }
    json claim = {{"off", ClaimLatency(stack, tasks, tenants, false, 200)},
                  {"on", ClaimLatency(stack, tasks, tenants, true, 200)}};
    out["tenants_" + std::to_string(tenants)] = {
        {"tenants", tenants}, {"off", samples_off}, {"on", samples_on}, {"claim_ms", claim}};
  }
  return out;
}

}  // namespace synaps::bench
