#include "db/migrate.h"

#include <algorithm>
#include <map>
#include <thread>

#include "core/ids.h"

namespace synaps::db {
namespace {

// An arbitrary constant naming "Synaps schema migration" among advisory locks.
constexpr const char* kLockKey = "7340032017";

Result<MigrationReport> ApplyLocked(Connection& conn,
                                    const std::vector<MigrationSource>& migrations) {
  RETURN_IF_ERROR(conn.Exec(
      "CREATE SCHEMA IF NOT EXISTS synaps_meta;"
      "CREATE TABLE IF NOT EXISTS synaps_meta.schema_migrations ("
      "  name text PRIMARY KEY, checksum text NOT NULL,"
      "  applied_at timestamptz NOT NULL DEFAULT now())"));
  ASSIGN_OR_RETURN(PgResult done,
                   conn.Exec("SELECT name, checksum FROM synaps_meta.schema_migrations"));
  std::map<std::string, std::string> applied;
  for (int i = 0; i < done.rows(); ++i) applied[done.GetString(i, 0)] = done.GetString(i, 1);

  MigrationReport report;
  for (const auto& m : migrations) {
    std::string checksum = Sha256Hex(m.sql);
    auto it = applied.find(m.name);
    if (it != applied.end()) {
      if (it->second != checksum) {
        return Fail(ErrorCode::kConflict,
                    "migration " + m.name +
                        " was changed after it was applied; add a new migration instead");
      }
      report.skipped.push_back(m.name);
      continue;
    }
    auto result = InTransaction(conn, [&]() -> Status {
      RETURN_IF_ERROR(conn.Exec(m.sql));
      RETURN_IF_ERROR(conn.Exec(
          "INSERT INTO synaps_meta.schema_migrations (name, checksum) VALUES ($1, $2)",
          {m.name, checksum}));
      return Ok();
    });
    if (!result) {
      return Fail(result.error().code, "migration " + m.name + " failed: " + result.error().message);
    }
    report.applied.push_back(m.name);
  }
  return report;
}

// Takes the migration lock, trying again with growing pauses until `timeout` has passed. A
// pg_try_advisory_lock loop rather than pg_advisory_lock under lock_timeout: the wait stays
// ours to bound, whatever the session's statement_timeout.
Status Lock(Connection& conn, std::chrono::milliseconds timeout) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + timeout;
  auto pause = std::chrono::milliseconds(50);
  while (true) {
    ASSIGN_OR_RETURN(PgResult r,
                     conn.Exec(std::string("SELECT pg_try_advisory_lock(") + kLockKey + ")"));
    if (r.GetBool(0, 0)) return Ok();
    auto left = deadline - Clock::now();
    if (left <= Clock::duration::zero()) {
      return Fail(ErrorCode::kDeadlineExceeded,
                  "another migration run has held the migration lock for more than " +
                      std::to_string(timeout.count()) +
                      " ms (SYNAPS_MIGRATE_LOCK_TIMEOUT_MS); try again when it has finished");
    }
    std::this_thread::sleep_for(std::min<Clock::duration>(pause, left));
    pause = std::min(pause * 2, std::chrono::milliseconds(1000));
  }
}

}  // namespace

Result<MigrationReport> Migrate(Connection& conn, const std::vector<MigrationSource>& migrations,
                                std::chrono::milliseconds lock_timeout) {
  // CREATE SCHEMA IF NOT EXISTS can still race on the catalog; the lock comes first.
  RETURN_IF_ERROR(Lock(conn, lock_timeout));
  auto report = ApplyLocked(conn, migrations);
  auto unlock = conn.Exec(std::string("SELECT pg_advisory_unlock(") + kLockKey + ")");
  if (report && !unlock) return std::unexpected(unlock.error());
  return report;
}

}  // namespace synaps::db
