// The SQL of run archives (src/history/archive.h, migration 0023): reading a run's whole story
// as rows, recording archived segments, finding the segment that holds a run, and inserting
// archived rows back. Callers validate tenant ids, days and run ids before calling.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
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

// The record of (tenant, day, segment), nullopt when there is none.
Result<std::optional<ArchiveRecord>> FindArchive(db::Connection& conn, const std::string& tenant_id,
                                                 const std::string& day,
                                                 const std::string& segment);

// Records a segment and points each of `run_ids` at it, in one transaction of its own. Recording
// the same segment again changes nothing.
Status RecordArchive(db::Connection& conn, const ArchiveRecord& record,
                     const std::vector<std::string>& run_ids);

// The segment that holds `run_id`; `tenant_id` empty: of any tenant. kNotFound when none.
Result<ArchiveRecord> FindArchivedRun(db::Connection& conn, const std::string& tenant_id,
                                      const std::string& run_id);

// Segments of a tenant, optionally of one day, oldest day first.
Result<std::vector<ArchiveRecord>> ListArchives(db::Connection& conn, const std::string& tenant_id,
                                                const std::optional<std::string>& day);

// Inserts one story's rows (RunStory::json) with their original ids, inside the caller's
// transaction (synaps.restore_archived_run). Rows that exist are left alone. Returns whether the
// run row was new (false: the run was in PostgreSQL already).
Result<bool> RestoreRunStory(db::Connection& conn, const std::string& story_json);

}  // namespace synaps::store
