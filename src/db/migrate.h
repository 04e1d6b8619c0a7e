// Schema migrations: db/migrations/*.sql, embedded in the binary at build time, applied in
// file-name order, each once, each in its own transaction, recorded in
// synaps_meta.schema_migrations with a checksum. A session-level advisory lock makes concurrent
// runs (two pods starting at once) wait for each other instead of racing.
#pragma once

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
// (kConflict): migrations are append-only.
Result<MigrationReport> Migrate(Connection& conn,
                                const std::vector<MigrationSource>& migrations);

}  // namespace synaps::db
