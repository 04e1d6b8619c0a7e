// Archives of expired runs in the object store (issue #18; docs/storage.md, "Archives").
//
// An archive segment holds a batch of one tenant's runs that expire on one UTC day: everything a
// run's story needs (its thread, command, run, tasks, queue items, ledger events, artifacts and
// artifact versions with their object keys), as the rows' own JSON, one row per line (JSON Lines),
// gzip-compressed with zlib. Each run is its own gzip member, so `zcat` reads the whole file and
// one run can be read without inflating the others. Keys:
//
//   archives/v1/<tenant>/<YYYY-MM-DD>/<segment>.jsonl.gz        the data
//   archives/v1/<tenant>/<YYYY-MM-DD>/<segment>.manifest.json   written last: the "done" mark
//
// `segment` is derived from the sorted run ids and each run's last ledger seq, so archiving the
// same unchanged batch again writes the same keys (idempotent), and a run that changed since is
// archived anew rather than taken as archived. A data object without its manifest is never
// considered done: readers and restore refuse it, and a repeat writes both again. PostgreSQL
// records a segment (synaps.archives, synaps.archived_runs) only after its manifest is stored; that
// record is what `synaps gc` reads to keep the archived runs' artifact objects, and what `synaps
// runs get --archived` looks up.
//
// Thread safety: free functions; each call uses the connection and store it is given (a
// Connection is used by one thread at a time; ObjectStore is thread-safe).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "db/connection.h"
#include "history/expiry.h"
#include "objstore/object_store.h"

namespace synaps::history {

// The format of a segment's lines and manifest; a reader refuses versions it does not know.
inline constexpr int kArchiveSchemaVersion = 1;
// The most runs one ArchiveRuns call takes (a segment is built in memory).
inline constexpr size_t kMaxRunsPerSegment = 1000;
// The prefix of every archive object; `synaps gc` never deletes under it.
inline constexpr const char* kArchivePrefix = "archives/";

// True for a real calendar date written YYYY-MM-DD.
bool IsArchiveDay(const std::string& day);

struct ArchiveRequest {
  std::string tenant_id;             // core::IsTenantId
  std::string day;                   // "YYYY-MM-DD", the UTC day the caller expires
  std::vector<std::string> run_ids;  // 1..kMaxRunsPerSegment uuids, finished runs of tenant_id
};

struct ArchiveResult {
  std::string data_key;
  std::string manifest_key;
  int64_t runs = 0;
  int64_t tasks = 0;
  int64_t events = 0;
  int64_t artifacts = 0;
  int64_t bytes = 0;              // compressed size of the data object
  bool already_archived = false;  // this exact batch had been archived and recorded before
  // Each run (lower-case id) and the ledger position (runs.last_seq) the segment is named by.
  // The segment holds each run at this position or later; a run whose runs.last_seq is still
  // this one is held exactly as it is now (last_seq only grows).
  ArchivedSeqs last_seqs;
};

// Writes the runs of `request` to the store as one segment, then its manifest, then records the
// segment in PostgreSQL (its own transaction). Returns Ok only after all three: then, and only
// then, may the caller delete the runs. Any error means nothing may be deleted; calling again
// with the same request is safe (the same keys are written again).
// Holds the tenant's archive lock (store::TenantArchiveLock) while it works.
// Errors: kInvalidArgument (bad tenant, day or run id; a run that is not the tenant's, or is not
// finished — queued, running or awaiting approval), kNotFound (a run id that does not exist),
// kConflict (another session holds the tenant's archive lock), the store's and the database's
// errors otherwise.
Result<ArchiveResult> ArchiveRuns(db::Connection& conn, objstore::ObjectStore& store,
                                  const ArchiveRequest& request);

// One archived run as stored: {"archive": {tenant, day, segment, dataKey, manifestKey, archivedAt},
// "thread": {...}, "command": {...}, "run": {...}, "tasks": [...], "queueItems": [...],
// "events": [...], "artifacts": [...], "artifactVersions": [...]} — each row as PostgreSQL's
// to_jsonb renders it. `tenant_id` empty: any tenant (installation scope). kNotFound when no
// archive of that tenant holds the run; kInternal when the object does not match its manifest.
Result<nlohmann::json> ReadArchivedRun(db::Connection& conn, objstore::ObjectStore& store,
                                       const std::string& tenant_id, const std::string& run_id);

struct RestoreResult {
  int64_t runs = 0;     // runs inserted
  int64_t skipped = 0;  // runs that were already in PostgreSQL (left as they are)
  // Runs whose command came back without its idempotency key (a command made after the run
  // expired holds it): run id -> the key.
  std::vector<std::pair<std::string, std::string>> keys_dropped;
  // Archived artifacts put under the row their thread has under that name now.
  int64_t artifacts_mapped = 0;
};

struct RestoreOptions {
  // Mark every restored run to keep (runs.keep, audited as `actor`): without it a restored run
  // is expired again by the next expiry pass if its retention has passed.
  bool keep = false;
  std::string actor = "cli:archive-restore";
  // Restore segments that PostgreSQL has no record of (its records were lost), trusting the
  // object store's manifest alone. Without it such a segment is refused (kConflict):
  // a recorded segment's data is checked against the record's key and checksum.
  bool unrecorded = false;
};

// Inserts archived runs back into PostgreSQL with their original ids, one transaction per run:
// `run_ids` empty restores the whole segment set of (tenant, day). A run that is in PostgreSQL
// already is left exactly as it is (nothing of its archive is written), so a restore can be
// repeated. PostgreSQL refuses a story whose rows do not all belong to its run and tenant
// (synaps.restore_archived_story, migrations 0033 and 0038): kInvalidArgument naming the row;
// kAlreadyExists when the run's thread was used after the run expired and holds one of its
// artifact version numbers already. A command whose idempotency key was taken meanwhile comes
// back without it (RestoreResult::keys_dropped).
Result<RestoreResult> RestoreRuns(db::Connection& conn, objstore::ObjectStore& store,
                                  const std::string& tenant_id, const std::string& day,
                                  const std::vector<std::string>& run_ids,
                                  const RestoreOptions& options = {});

// Restores one run from the segment PostgreSQL records for it (synaps.archived_runs): reads that
// segment's manifest and data only, checked against the record. `tenant_id` empty: any tenant.
// kNotFound when no record holds the run; errors otherwise as RestoreRuns.
Result<RestoreResult> RestoreArchivedRun(db::Connection& conn, objstore::ObjectStore& store,
                                         const std::string& tenant_id, const std::string& run_id,
                                         const RestoreOptions& options = {});

// The retention expiry's archiver (history/expiry.h) over ArchiveRuns: a batch of one tenant's
// runs of one day becomes segments of at most kMaxRunsPerSegment runs. `store` must outlive it.
// Thread-safe (no state of its own).
class ObjectStoreArchiver final : public RunArchiver {
 public:
  explicit ObjectStoreArchiver(objstore::ObjectStore* store) : store_(store) {}
  Result<ArchivedSeqs> Archive(db::Connection& conn, const std::string& tenant,
                               const std::string& day,
                               const std::vector<std::string>& run_ids) override;

 private:
  objstore::ObjectStore* const store_;
};

}  // namespace synaps::history
