// Schema migrations: db/migrations/*.sql, embedded in the binary at build time, applied in
// file-name order, each once, each in its own transaction, recorded in
// synaps_meta.schema_migrations with a checksum. A session-level advisory lock makes concurrent
// runs (two pods starting at once) wait for each other instead of racing; the wait is bounded
// (SYNAPS_MIGRATE_LOCK_TIMEOUT_MS), so a migrate stuck elsewhere holding the lock cannot hang
// every starting pod for ever. Statements are bounded by the connection's deadlines.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "db/connection.h"

namespace synaps::db {

struct MigrationSource {
  std::string name;  // file name, e.g. 0001_schema.sql
  std::string sql;
};

// The migrations compiled into this binary, in order.
const std::vector<MigrationSource>& EmbeddedMigrations();

struct MigrationReport {
  std::vector<std::string> applied;   // newly applied now
  std::vector<std::string> skipped;   // already applied earlier
};

// Applies what is missing. An already-applied migration whose text changed is an error
// (kConflict): migrations are append-only. Waits up to `lock_timeout` for another run holding
// the migration lock, then fails with kDeadlineExceeded; the runner that waited finds that run's
// migrations applied and skips them.
Result<MigrationReport> Migrate(Connection& conn, const std::vector<MigrationSource>& migrations,
                                std::chrono::milliseconds lock_timeout = std::chrono::minutes(2));

}  // namespace synaps::db
