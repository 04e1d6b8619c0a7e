// The SQL of run archives (src/history/archive.h, migrations 0029, 0033, 0038): reading a run's
// whole story as rows, recording archived segments, finding the segment that holds a run, and
// inserting archived rows back. Callers validate tenant ids, days and run ids before calling.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "db/connection.h"

namespace synaps::store {

// One run's story: every row it spans, as one JSON object rendered by PostgreSQL
// ({"schemaVersion", "thread", "command", "run", "tasks", "queueItems", "events", "artifacts",
// "artifactVersions"}, each row as to_jsonb renders it). `json` is PostgreSQL's text, kept as it
// is: parsing and printing it again could change numbers no double holds.
struct RunStory {
  std::string run_id;
  std::string json;
  int64_t tasks = 0, events = 0, artifacts = 0;
  std::string created_at, finished_at;   // ISO 8601, UTC
  std::vector<std::string> object_keys;  // the artifact versions' objects
};

// The stories of `run_ids`, in the order given, from one snapshot in one round trip.
// kNotFound when a run does not exist or is not `tenant_id`'s; kConflict when a run has not
// finished (queued, running or awaiting approval).
Result<std::vector<RunStory>> LoadRunStories(db::Connection& conn, const std::string& tenant_id,
                                             const std::vector<std::string>& run_ids);

// A recorded segment (a row of synaps.archives).
struct ArchiveRecord {
  int64_t id = 0;
  std::string tenant_id;
  std::string day;      // YYYY-MM-DD
  std::string segment;  // 16 hex digits
  std::string data_key;
  std::string manifest_key;
  int schema_version = 0;
  int64_t runs = 0, tasks = 0, events = 0, artifacts = 0, bytes = 0;
  std::string sha256;
  std::optional<std::string> first_at, last_at;
  std::vector<std::string> object_keys;
  std::string archived_at;
};

// A session advisory lock per tenant, held around archiving a batch of its runs and deleting
// them, so that two processes (API replicas, `synaps archive create`) never archive and expire
// one tenant's runs at once. Reentrant on one connection (PostgreSQL counts session locks):
// each TryLock that returned true needs one Unlock on the same connection; a connection that
// closes releases it. true when taken, false when another session holds it.
Result<bool> TryLockTenantArchive(db::Connection& conn, const std::string& tenant_id);
Status UnlockTenantArchive(db::Connection& conn, const std::string& tenant_id);

// Holds TryLockTenantArchive for its lifetime, on a connection that must outlive it.
class TenantArchiveLock {
 public:
  // nullopt when another session holds the tenant's lock.
  static Result<std::optional<TenantArchiveLock>> Try(db::Connection& conn,
                                                      const std::string& tenant_id);
  TenantArchiveLock(TenantArchiveLock&& other) noexcept
      : conn_(std::exchange(other.conn_, nullptr)), tenant_id_(std::move(other.tenant_id_)) {}
  TenantArchiveLock(const TenantArchiveLock&) = delete;
  TenantArchiveLock& operator=(const TenantArchiveLock&) = delete;
  TenantArchiveLock& operator=(TenantArchiveLock&&) = delete;
  // Unlocks; a failure is logged (the lock then goes with the connection).
  ~TenantArchiveLock();

 private:
  TenantArchiveLock(db::Connection* conn, std::string tenant_id)
      : conn_(conn), tenant_id_(std::move(tenant_id)) {}
  db::Connection* conn_;
  std::string tenant_id_;
};

// Each run's last ledger sequence number, in the order given (part of a segment's name: a run
// that changed gets a new segment), refused as LoadRunStories refuses: kNotFound for a run that
// does not exist or is not `tenant_id`'s, kConflict for one that has not finished. One small
// row per run: ArchiveRuns checks the whole batch with it before it loads any story.
Result<std::vector<int64_t>> RunLastSeqs(db::Connection& conn, const std::string& tenant_id,
                                         const std::vector<std::string>& run_ids);

// The record of (tenant, day, segment), nullopt when there is none.
Result<std::optional<ArchiveRecord>> FindArchive(db::Connection& conn, const std::string& tenant_id,
                                                 const std::string& day,
                                                 const std::string& segment);

// Where one run's story is in its segment's data object: a gzip member of its own
// (synaps.archived_runs, migration 0044).
struct ArchivedMember {
  std::string run_id;
  int64_t offset = 0;  // of the member's first byte in the data object
  int64_t length = 0;  // compressed bytes
  std::string sha256;  // of those compressed bytes, lower-case hex
};

// Records a segment and points each member's run at it, in one transaction of its own.
// Recording the same segment again replaces every column of its record (the objects in the
// store are the last writer's, so the record must be too).
Status RecordArchive(db::Connection& conn, const ArchiveRecord& record,
                     const std::vector<ArchivedMember>& members);

// An archived run: its segment, and where in the segment's data it is (nullopt for runs
// archived before migration 0044, whose segment must be read whole).
struct ArchivedRun {
  std::string run_id;  // lower-case
  ArchiveRecord segment;
  std::optional<ArchivedMember> member;
};

// The segment that holds `run_id`; `tenant_id` empty: of any tenant. kNotFound when none.
Result<ArchivedRun> FindArchivedRun(db::Connection& conn, const std::string& tenant_id,
                                    const std::string& run_id);

// Segments of a tenant, optionally of one day, oldest day first.
Result<std::vector<ArchiveRecord>> ListArchives(db::Connection& conn, const std::string& tenant_id,
                                                const std::optional<std::string>& day);

// What restoring one story did (synaps.restore_archived_story, migration 0038).
struct RestoredStory {
  bool restored = false;  // false: the run was in PostgreSQL already, nothing was written
  // The command's idempotency key when a command made since the run expired holds it: the
  // command came back without it. nullopt otherwise.
  std::optional<std::string> key_dropped;
  // Archived artifacts put under the row their thread has under the same name now.
  int64_t artifacts_mapped = 0;
};

// Inserts one story's rows (RunStory::json) with their original ids, inside the caller's
// transaction. Rows that exist are left alone; an artifact goes under the row its thread has
// under that name. Errors: kInvalidArgument when a row is not the run's (naming it),
// kAlreadyExists when an artifact version number is taken by a run written since.
Result<RestoredStory> RestoreRunStory(db::Connection& conn, const std::string& story_json);

}  // namespace synaps::store
