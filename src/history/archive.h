// Archives of expired runs in the object store (issue #18; docs/storage.md, "Archives").
//
// An archive segment holds a batch of one tenant's runs that expire on one UTC day: everything a
// run's story needs (its thread, command, run, tasks, queue items, ledger events, artifacts and
// artifact versions with their object keys), as the rows' own JSON, one row per line (JSON Lines),
// gzip-compressed with zlib. Each run is its own gzip member, so `zcat` reads the whole file and
// one run can be read without the others: PostgreSQL records each run's member (offset, length,
// SHA-256; synaps.archived_runs), and a reader fetches only those bytes (a ranged read) and
// inflates at most a cap. A segment holds at most ArchiveRequest::max_segment_bytes of
// uncompressed lines (a larger batch becomes several segments). Keys:
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

#include <cstddef>
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
// The most runs one ArchiveRuns call takes (its runs' stories are loaded in memory at once).
inline constexpr size_t kMaxRunsPerSegment = 1000;
// A segment is closed before its uncompressed lines would exceed this (64 MiB); a run larger
// than that alone makes a segment of its own.
inline constexpr size_t kMaxSegmentBytes = size_t{64} << 20;
// The most one archived run's story may inflate to when it is read (ReadArchivedRun, the API's
// GET /v1/runs/{id}/archive): 64 MiB. Restore takes up to kMaxRestoreRunBytes (1 GiB).
inline constexpr size_t kMaxReadRunBytes = size_t{64} << 20;
inline constexpr size_t kMaxRestoreRunBytes = size_t{1} << 30;
// The most a segment's manifest may hold when it is read (16 MiB; one written by Synaps lists at
// most kMaxRunsPerSegment runs in about 150 bytes each). The bucket may be writable by others, so
// a larger one is refused (kArchiveTooLarge) having received not much more than this.
inline constexpr size_t kMaxManifestBytes = size_t{16} << 20;
// Error::field of the kInternal errors that refuse stored archive data: damaged, or not what
// PostgreSQL recorded (a checksum, a missing or short object, a story of another run), and
// larger than the reader's cap. The API answers them 502 with the field as the code.
inline constexpr const char* kArchiveCorrupt = "archive_corrupt";
inline constexpr const char* kArchiveTooLarge = "archive_too_large";
// True for those refusals (kInternal with field kArchiveCorrupt or kArchiveTooLarge): the
// stored data is at fault, and callers report them by that field (the API as 502).
inline bool IsArchiveDataError(const Error& e) {
  return e.code == ErrorCode::kInternal &&
         (e.field == kArchiveCorrupt || e.field == kArchiveTooLarge);
}
// The prefix of every archive object; `synaps gc` never deletes under it.
inline constexpr const char* kArchivePrefix = "archives/";

// True for a real calendar date written YYYY-MM-DD.
bool IsArchiveDay(const std::string& day);

struct ArchiveRequest {
  std::string tenant_id;             // core::IsTenantId
  std::string day;                   // "YYYY-MM-DD", the UTC day the caller expires
  std::vector<std::string> run_ids;  // 1..kMaxRunsPerSegment uuids, finished runs of tenant_id
  size_t max_segment_bytes = kMaxSegmentBytes;  // uncompressed lines per segment (tests lower it)
  // Stories are loaded this many runs at a time, and a segment's are let go once it is written:
  // the archiver holds at most one segment's stories (max_segment_bytes, or one larger run) and
  // one read's (tests lower it).
  size_t stories_per_read = 16;
};

struct ArchiveResult {
  std::string data_key;      // of the first segment
  std::string manifest_key;  // of the first segment
  int64_t segments = 0;      // more than 1 when the runs exceed max_segment_bytes
  int64_t runs = 0;
  int64_t tasks = 0;
  int64_t events = 0;
  int64_t artifacts = 0;
  int64_t bytes = 0;              // compressed size of the data objects
  bool already_archived = false;  // every segment had been archived and recorded before
  // Each run (lower-case id) and the ledger position (runs.last_seq) the segment is named by.
  // The segment holds each run at this position or later; a run whose runs.last_seq is still
  // this one is held exactly as it is now (last_seq only grows).
  ArchivedSeqs last_seqs;
};

// Writes the runs of `request` to the store as segments (one unless they exceed
// max_segment_bytes), each its data, then its manifest, then its record in PostgreSQL (its own
// transaction). Returns Ok only after all of them: then, and only then, may the caller delete
// the runs. Any error means nothing may be deleted; calling again
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
// to_jsonb renders it. `tenant_id` empty: any tenant (installation scope). Fetches only the
// run's member when PostgreSQL records where it is (archives since migration 0044; older ones:
// the whole segment, checked against its manifest) and inflates at most `max_bytes`.
// kNotFound when no archive of that tenant holds the run; kInternal with field kArchiveCorrupt
// when the stored bytes are not what PostgreSQL recorded (or do not inflate, or are another
// run's), with field kArchiveTooLarge when the run inflates past `max_bytes`; the store's
// errors otherwise (kUnavailable when it cannot be reached).
Result<nlohmann::json> ReadArchivedRun(db::Connection& conn, objstore::ObjectStore& store,
                                       const std::string& tenant_id, const std::string& run_id,
                                       size_t max_bytes = kMaxReadRunBytes);

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

// Restores one run from the segment PostgreSQL records for it (synaps.archived_runs): reads only
// its member (or, for archives before migration 0044, that segment's manifest and data), checked
// against the record, inflating at most kMaxRestoreRunBytes. `tenant_id` empty: any tenant.
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
