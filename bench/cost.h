// What a phase of work costs the database server, from its own counters (issue #13): bytes of
// write-ahead log, transactions committed and top-level statements, per unit of work (a task,
// a job). These are the stable numbers on a shared machine, where rates are noisy.
//
// WAL is the whole server's (pg_current_wal_lsn), so a phase is measured while nothing else
// runs; a phase starts right after a CHECKPOINT, so the full-page images its first writes log
// are counted alike for every queue measured. Commits are the database's
// (pg_stat_database.xact_commit, which a backend reports when it exits or has been idle a
// second: a phase ends after the workers have disconnected). Statements are
// pg_stat_statements' top-level calls in the database (BEGIN and COMMIT included), less the
// calls whose text matches `monitor_like` (the benchmark's own progress polls, also taken off
// the commits) and the foreign-key checks PostgreSQL runs itself (pg_stat_statements records
// them as top-level when a client's statement fires them, but not when a function's does).
#pragma once

#include <cstdint>
#include <string>

#include "stack.h"

namespace synaps::bench {

struct CostReading {
  std::string lsn;
  int64_t commits = 0;
  int64_t statements = 0;
  int64_t monitor_calls = 0;
};

// Reads the counters of `db`. At a phase's start (`start`), after a CHECKPOINT. At its end,
// once at most `staying` client connections remain in the database (the workers' are gone, so
// their commits have reached pg_stat_database), waiting up to 10 s for the others to close.
CostReading ReadCost(Stack& stack, const std::string& db, const std::string& monitor_like,
                     bool start, int staying = 0);

// {"wal_bytes", "commits", "statements"} per unit between two readings; `from_lsn` (when not
// empty) replaces from.lsn (a phase whose WAL starts later than its counters, e.g. after a
// peer has installed its schema).
json CostPerUnit(const CostReading& from, const CostReading& to, int units,
                 const std::string& from_lsn = "");

}  // namespace synaps::bench
