// 6. Expiry (docs/history.md): the time to expire one day of finished tasks, with the day's
//    ledger partition (its events go by dropping it) and without (the same events in the default
//    partition, deleted row by row), one expiry pass each (what `synaps expire` runs).
#include "benchmarks.h"
#include "history/expiry.h"

namespace synaps::bench {

namespace {

// Expires a day of `tasks` finished tasks created ten days ago; `partitioned`: the day has its
// own ledger partition.
json ExpireADay(Stack& stack, int tasks, bool partitioned) {
  std::string db = stack.FreshSynapsDb();
  auto conn = stack.ConnectForLoad(db);
  std::string day = Must(conn.Exec("SELECT (date_trunc('day', now(), 'UTC') - interval '10 days'"
                                   " + interval '1 second')::text"),
                         "day")
                        .GetString(0, 0);
  auto t0 = std::chrono::steady_clock::now();
  // Spread over 86,000 s of that day.
  GenerateHistory(conn, tasks, day, std::to_string(86000.0 / tasks) + " seconds", partitioned);
  json out = {{"tasks", tasks},
              {"partitioned", partitioned},
              {"generate_seconds", Seconds(std::chrono::steady_clock::now() - t0)}};
  Must(conn.Exec("SELECT synaps.set_retention('*', 3, false, false, 'bench', NULL)"), "retention");
  Must(conn.Exec("UPDATE synaps.usage_rollup SET last_event_id ="
                 " (SELECT max(id) FROM synaps.ledger_events)"),
       "rollup");
  Must(conn.Exec("VACUUM ANALYZE"), "vacuum");
  Must(conn.Exec("CHECKPOINT"), "checkpoint");
  out["database_bytes_before"] = Scalar(conn, "SELECT pg_database_size(current_database())");
  // WAL of the whole server during the pass (nothing else runs on it meanwhile).
  const std::string lsn =
      Must(conn.Exec("SELECT pg_current_wal_lsn()::text"), "wal position").GetString(0, 0);
  t0 = std::chrono::steady_clock::now();
  auto report = Must(history::ExpireOnce(conn, nullptr, {}), "expire");
  out["expire_seconds"] = Seconds(std::chrono::steady_clock::now() - t0);
  out["wal_bytes"] =
      Scalar(conn, "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)::bigint", {lsn});
  out["report"] = report.ToJson();
  out["ledger_rows_after"] = Scalar(conn, "SELECT count(*) FROM synaps.ledger_events");
  out["database_bytes_after"] = Scalar(conn, "SELECT pg_database_size(current_database())");
  stack.DropDb(db);
  return out;
}

}  // namespace

json RunExpiry(Stack& stack, const BenchOptions& options) {
  const int tasks =
      options.expiry_tasks > 0 ? options.expiry_tasks : (options.quick ? 100000 : 1000000);
  json out = {{"tasks", tasks}, {"reps", options.reps}};
  out["partitioned"] = json::array();
  out["rows"] = json::array();
  // ABBA: even repetitions expire with the partition first, odd ones without first.
  for (int rep = 0; rep < options.reps; ++rep) {
    for (bool first : {true, false}) {
      const bool partitioned = (rep % 2 == 0) == first;
      Log("expiry rep " + std::to_string(rep + 1) + ": a day of " + std::to_string(tasks) +
          " tasks, " +
          (partitioned ? "with its partition" : "without (rows in the default partition)"));
      json r = ExpireADay(stack, tasks, partitioned);
      r["rep"] = rep;
      Log("  expired in " + std::to_string(r["expire_seconds"].get<double>()) + " s, " +
          std::to_string(r["wal_bytes"].get<int64_t>() / 1000000) + " MB of WAL");
      out[partitioned ? "partitioned" : "rows"].push_back(r);
    }
  }
  return out;
}

}  // namespace synaps::bench
