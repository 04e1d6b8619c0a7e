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

namespace {

// A WAL position as PostgreSQL prints it ("16/B374D848": the high and low 32 bits in hex) as
// the byte offset it stands for.
uint64_t LsnBytes(const std::string& lsn) {
  const auto slash = lsn.find('/');
  if (slash == std::string::npos) throw BenchError("not a WAL position: '" + lsn + "'");
  return (std::stoull(lsn.substr(0, slash), nullptr, 16) << 32) |
         std::stoull(lsn.substr(slash + 1), nullptr, 16);
}

}  // namespace

json CostPerUnit(const CostReading& from, const CostReading& to, int units,
                 const std::string& from_lsn) {
  const double wal =
      static_cast<double>(LsnBytes(to.lsn) - LsnBytes(from_lsn.empty() ? from.lsn : from_lsn));
  const int64_t polls = to.monitor_calls - from.monitor_calls;
  const double n = units;
  return {{"wal_bytes", wal / n},
          {"commits", static_cast<double>(to.commits - from.commits - polls) / n},
          {"statements", static_cast<double>(to.statements - from.statements - polls) / n}};
}

}  // namespace synaps::bench
