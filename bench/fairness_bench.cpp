// 7. Fair sharing (issue #15): one `synaps worker` drains N queued tasks spread over several
//    tenants with fair sharing off (priority and age alone) and on (the default), in alternating
//    repetitions on clones of one queued database; then the same with 1,000 tenants, where every
//    claim finds 1,000 groups with work. Also times single claims of each kind on such a queue,
//    and on a queue of one tenant whose tasks carry 1,000 fairness keys.
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

// Spreads the queued tasks (all of one tenant) round-robin over `keys` fairness keys.
std::string SpreadOverKeys(int keys) {
  return "UPDATE synaps.queue_items SET fairness_key = 'k' || (id % " + std::to_string(keys) + ")";
}

// Milliseconds of `claims` single-item claims (never completed) on a clone of the queued
// database prepared by `spread_sql`, timed by the client: {p50, p99}.
json ClaimLatency(Stack& stack, int tasks, const std::string& spread_sql, bool fair, int claims) {
  std::string db = stack.QueuedSynapsDb(tasks);
  auto conn = stack.Connect(db);
  Must(conn.Exec(spread_sql), "spread " + db);
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
      // ABBA: off, on, on, off, ... so that a trend in the machine's load falls on both.
      for (bool second : {false, true}) {
        const bool fair = second != (rep % 2 == 1);
        Log("fairness " + std::to_string(tenants) + " tenants, rep " + std::to_string(rep + 1) +
            ": " + (fair ? "on" : "off"));
        DrainSample s = DrainSynaps(stack, 1, tasks, concurrency, false, fair ? on : off);
        json sample = {
            {"seconds", s.seconds}, {"rate", tasks / s.seconds}, {"worker_cpu", s.worker_cpu}};
        (fair ? samples_on : samples_off).push_back(sample);
        Log("  " + std::to_string(tasks / s.seconds) + " tasks/s");
      }
    }
    json claim = {{"off", ClaimLatency(stack, tasks, SpreadOver(tenants), false, 200)},
                  {"on", ClaimLatency(stack, tasks, SpreadOver(tenants), true, 200)}};
    out["tenants_" + std::to_string(tenants)] = {
        {"tenants", tenants}, {"off", samples_off}, {"on", samples_on}, {"claim_ms", claim}};
  }
  out["keys_1000"] = {{"keys", 1000},
                      {"claim_ms",
                       {{"off", ClaimLatency(stack, tasks, SpreadOverKeys(1000), false, 200)},
                        {"on", ClaimLatency(stack, tasks, SpreadOverKeys(1000), true, 200)}}}};
  return out;
}

}  // namespace synaps::bench
