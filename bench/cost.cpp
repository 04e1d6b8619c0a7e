#include "cost.h"

namespace synaps::bench {

CostReading ReadCost(Stack& stack, const std::string& db, const std::string& monitor_like,
                     bool start, int staying) {
  auto conn = stack.Connect("postgres");
  if (start) {
    Must(conn.Exec("CHECKPOINT"), "checkpoint");
  } else {
    WaitUntil(
        [&] {
          return Scalar(conn,
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = $1"
                        " AND backend_type = 'client backend'",
                        {db}) <= staying;
        },
        std::chrono::seconds(10), "the connections to " + db + " to close");
  }
  auto r =
      Must(conn.Exec("SELECT pg_current_wal_lsn()::text,"
                     " (SELECT xact_commit FROM pg_stat_database WHERE datname = $1),"
                     " (SELECT coalesce(sum(calls), 0) FROM pg_stat_statements s"
                     "   JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = $1 AND s.toplevel"
                     // Foreign-key checks: PostgreSQL's own queries, recorded as top-level
                     // when a client's statement fires them (not when a function's does).
                     "    AND s.query NOT LIKE '%FOR KEY SHARE OF x'),"
                     " (SELECT coalesce(sum(calls), 0) FROM pg_stat_statements s"
                     "   JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = $1 AND s.toplevel"
                     "    AND $2 <> '' AND s.query LIKE $2)",
                     {db, monitor_like}),
           "cost counters of " + db);
  CostReading reading;
  reading.lsn = r.GetString(0, 0);
  reading.commits = r.IsNull(0, 1) ? 0 : r.GetInt(0, 1);
  reading.statements = r.GetInt(0, 2);
  reading.monitor_calls = r.GetInt(0, 3);
  return reading;
}

json CostPerUnit(Stack& stack, const CostReading& from, const CostReading& to, int units,
                 const std::string& from_lsn) {
  auto conn = stack.Connect("postgres");
  const double wal = ScalarDouble(conn, "SELECT pg_wal_lsn_diff($1::pg_lsn, $2::pg_lsn)",
                                  {to.lsn, from_lsn.empty() ? from.lsn : from_lsn});
  const int64_t polls = to.monitor_calls - from.monitor_calls;
  const double n = units;
  return {{"wal_bytes", wal / n},
          {"commits", static_cast<double>(to.commits - from.commits - polls) / n},
          {"statements", static_cast<double>(to.statements - from.statements - polls) / n}};
}

}  // namespace synaps::bench
