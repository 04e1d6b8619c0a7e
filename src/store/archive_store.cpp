#include "store/archive_store.h"

#include <spdlog/spdlog.h>

#include "core/barrier.h"
#include "store/detail/json_column.h"

namespace synaps::store {

using nlohmann::json;

namespace {

constexpr const char* kUtc = "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'";

// One row per requested id, in the order given; the story only for runs that may be archived.
const std::string kLoadStories = std::string(R"SQL(
SELECT i.id::text, r.id IS NOT NULL AND r.tenant_id = $2, r.status,
       CASE WHEN r.tenant_id = $2 THEN jsonb_build_object(
         'schemaVersion', 1,
         'thread', (SELECT to_jsonb(t) FROM synaps.threads t WHERE t.id = r.thread_id),
         'command', (SELECT to_jsonb(c) FROM synaps.commands c WHERE c.id = r.command_id),
         'run', to_jsonb(r),
         'tasks', coalesce((SELECT jsonb_agg(to_jsonb(t) ORDER BY t.created_at, t.id)
                              FROM synaps.tasks t WHERE t.run_id = r.id), '[]'),
         'queueItems', coalesce((SELECT jsonb_agg(to_jsonb(q) ORDER BY q.id)
                                   FROM synaps.queue_items q WHERE q.run_id = r.id), '[]'),
         'events', coalesce((SELECT jsonb_agg(to_jsonb(e) ORDER BY e.seq)
                               FROM synaps.ledger_events e WHERE e.run_id = r.id), '[]'),
         'artifacts', coalesce((SELECT jsonb_agg(to_jsonb(a) ORDER BY a.created_at, a.id)
                                  FROM synaps.artifacts a
                                 WHERE a.run_id = r.id
                                    OR a.id IN (SELECT v.artifact_id FROM synaps.artifact_versions v
                                                 WHERE v.run_id = r.id)), '[]'),
         'artifactVersions', coalesce((SELECT jsonb_agg(to_jsonb(v) ORDER BY v.artifact_id, v.version)
                                         FROM synaps.artifact_versions v WHERE v.run_id = r.id), '[]')
       )::text END,
       (SELECT count(*) FROM synaps.tasks t WHERE t.run_id = r.id),
       (SELECT count(*) FROM synaps.ledger_events e WHERE e.run_id = r.id),
       (SELECT count(*) FROM synaps.artifact_versions v WHERE v.run_id = r.id),
       to_char(r.created_at AT TIME ZONE 'UTC', )SQL") +
                                 kUtc + R"SQL(),
       to_char(r.finished_at AT TIME ZONE 'UTC', )SQL" +
                                 kUtc + R"SQL(),
       coalesce((SELECT jsonb_agg(DISTINCT v.object_key) FROM synaps.artifact_versions v
                  WHERE v.run_id = r.id), '[]')::text
  FROM unnest($1::uuid[]) WITH ORDINALITY i(id, n)
  LEFT JOIN synaps.runs r ON r.id = i.id
 ORDER BY i.n)SQL";

const std::string kArchiveColumns =
    std::string(
        "a.id, a.tenant_id, a.day::text, a.segment, a.data_key, a.manifest_key, a.schema_version,"
        " a.runs, a.tasks, a.events, a.artifacts, a.bytes, a.sha256,"
        " to_char(a.first_at AT TIME ZONE 'UTC', ") +
    kUtc +
    "),"
    " to_char(a.last_at AT TIME ZONE 'UTC', " +
    kUtc +
    "),"
    " to_jsonb(a.object_keys)::text,"
    " to_char(a.archived_at AT TIME ZONE 'UTC', " +
    kUtc + ")";

Result<std::vector<std::string>> StringArray(std::string_view text, std::string_view what) {
  ASSIGN_OR_RETURN(json parsed, detail::ParseColumn(text, what));
  std::vector<std::string> out;
  if (!parsed.is_array()) return out;
  for (const auto& item : parsed) {
    if (item.is_string()) out.push_back(item.get<std::string>());
  }
  return out;
}

Result<ArchiveRecord> ReadRecord(const db::PgResult& rows, int i) {
  ArchiveRecord r;
  r.id = rows.GetInt(i, 0);
  r.tenant_id = rows.GetString(i, 1);
  r.day = rows.GetString(i, 2);
  r.segment = rows.GetString(i, 3);
  r.data_key = rows.GetString(i, 4);
  r.manifest_key = rows.GetString(i, 5);
  r.schema_version = static_cast<int>(rows.GetInt(i, 6));
  r.runs = rows.GetInt(i, 7);
  r.tasks = rows.GetInt(i, 8);
  r.events = rows.GetInt(i, 9);
  r.artifacts = rows.GetInt(i, 10);
  r.bytes = rows.GetInt(i, 11);
  r.sha256 = rows.GetString(i, 12);
  r.first_at = rows.GetOptional(i, 13);
  r.last_at = rows.GetOptional(i, 14);
  ASSIGN_OR_RETURN(r.object_keys, StringArray(rows.Get(i, 15), "synaps.archives.object_keys"));
  r.archived_at = rows.GetString(i, 16);
  return r;
}

// Why run `id` (of `tenant_id` when `exists`, with `status`) cannot be archived; Ok() when it can.
Status ArchivableRun(const std::string& id, bool exists, const std::string& status,
                     const std::string& tenant_id) {
  if (!exists) {
    return Fail(ErrorCode::kNotFound, "run " + id + " does not exist in tenant " + tenant_id);
  }
  if (status != "succeeded" && status != "failed" && status != "cancelled") {
    return Fail(ErrorCode::kConflict,
                "run " + id + " is " + status + ": only finished runs can be archived");
  }
  return Ok();
}

}  // namespace

Result<std::vector<RunStory>> LoadRunStories(db::Connection& conn, const std::string& tenant_id,
                                             const std::vector<std::string>& run_ids) {
  ASSIGN_OR_RETURN(auto rows, conn.Exec(kLoadStories, {db::ArrayLiteral(run_ids), tenant_id}));
  std::vector<RunStory> stories;
  for (int i = 0; i < rows.rows(); ++i) {
    const std::string id = rows.GetString(i, 0);
    RETURN_IF_ERROR(ArchivableRun(id, rows.GetBool(i, 1), rows.GetString(i, 2), tenant_id));
    RunStory story;
    story.run_id = id;
    story.json = rows.GetString(i, 3);
    story.tasks = rows.GetInt(i, 4);
    story.events = rows.GetInt(i, 5);
    story.artifacts = rows.GetInt(i, 6);
    story.created_at = rows.GetString(i, 7);
    story.finished_at = rows.GetOptional(i, 8).value_or(story.created_at);
    ASSIGN_OR_RETURN(story.object_keys, StringArray(rows.Get(i, 9), "artifact object keys"));
    stories.push_back(std::move(story));
  }
  return stories;
}

namespace {

// The advisory lock key space of tenant archives (two-int form; the second int is the tenant's
// hash). An arbitrary constant; the expiry's own lock uses the one-bigint form.
constexpr const char* kTenantLockClass = "7340033";

}  // namespace

Result<bool> TryLockTenantArchive(db::Connection& conn, const std::string& tenant_id) {
  ASSIGN_OR_RETURN(auto rows, conn.Exec(std::string("SELECT pg_try_advisory_lock(") +
                                            kTenantLockClass + ", hashtext($1))",
                                        {tenant_id}));
  return rows.GetBool(0, 0);
}

Status UnlockTenantArchive(db::Connection& conn, const std::string& tenant_id) {
  RETURN_IF_ERROR(
      conn.Exec(std::string("SELECT pg_advisory_unlock(") + kTenantLockClass + ", hashtext($1))",
                {tenant_id}));
  return Ok();
}

Result<std::optional<TenantArchiveLock>> TenantArchiveLock::Try(db::Connection& conn,
                                                                const std::string& tenant_id) {
  ASSIGN_OR_RETURN(bool taken, TryLockTenantArchive(conn, tenant_id));
  if (!taken) return std::optional<TenantArchiveLock>();
  return std::optional<TenantArchiveLock>(TenantArchiveLock(&conn, tenant_id));
}

TenantArchiveLock::~TenantArchiveLock() {
  if (conn_ == nullptr) return;
  if (auto done = UnlockTenantArchive(*conn_, tenant_id_); !done) {
    spdlog::warn("archive lock of tenant {} not released: {}", tenant_id_, done.error().message);
  }
}

Result<std::vector<int64_t>> RunLastSeqs(db::Connection& conn, const std::string& tenant_id,
                                         const std::vector<std::string>& run_ids) {
  ASSIGN_OR_RETURN(auto rows, conn.Exec("SELECT i.id::text, r.last_seq, r.status"
                                        "  FROM unnest($1::uuid[]) WITH ORDINALITY i(id, n)"
                                        "  LEFT JOIN synaps.runs r ON r.id = i.id"
                                        "   AND r.tenant_id = $2"
                                        " ORDER BY i.n",
                                        {db::ArrayLiteral(run_ids), tenant_id}));
  std::vector<int64_t> out;
  for (int i = 0; i < rows.rows(); ++i) {
    const bool exists = !rows.IsNull(i, 1);
    RETURN_IF_ERROR(
        ArchivableRun(rows.GetString(i, 0), exists, exists ? rows.GetString(i, 2) : "", tenant_id));
    out.push_back(rows.GetInt(i, 1));
  }
  return out;
}

Result<std::optional<ArchiveRecord>> FindArchive(db::Connection& conn, const std::string& tenant_id,
                                                 const std::string& day,
                                                 const std::string& segment) {
  ASSIGN_OR_RETURN(auto rows, conn.Exec("SELECT " + kArchiveColumns +
                                            " FROM synaps.archives a WHERE a.tenant_id = $1 AND"
                                            " a.day = $2::date AND a.segment = $3",
                                        {tenant_id, day, segment}));
  if (rows.rows() == 0) return std::optional<ArchiveRecord>();
  ASSIGN_OR_RETURN(auto record, ReadRecord(rows, 0));
  return std::optional<ArchiveRecord>(std::move(record));
}

Status RecordArchive(db::Connection& conn, const ArchiveRecord& r,
                     const std::vector<ArchivedMember>& members) {
  std::vector<std::string> ids, offsets, lengths, sums;
  for (const auto& m : members) {
    ids.push_back(m.run_id);
    offsets.push_back(std::to_string(m.offset));
    lengths.push_back(std::to_string(m.length));
    sums.push_back(m.sha256);
  }
  return db::InTransaction(conn, [&]() -> Status {
    ASSIGN_OR_RETURN(
        auto rows,
        conn.Exec(
            "INSERT INTO synaps.archives (tenant_id, day, segment, data_key, manifest_key,"
            " schema_version, runs, tasks, events, artifacts, bytes, sha256, first_at,"
            " last_at, object_keys)"
            " VALUES ($1, $2::date, $3, $4, $5, $6::int, $7::bigint, $8::bigint, $9::bigint,"
            " $10::bigint, $11::bigint, $12, $13::timestamptz, $14::timestamptz, $15::text[])"
            " ON CONFLICT (tenant_id, day, segment) DO UPDATE SET"
            " data_key = EXCLUDED.data_key, manifest_key = EXCLUDED.manifest_key,"
            " schema_version = EXCLUDED.schema_version, runs = EXCLUDED.runs,"
            " tasks = EXCLUDED.tasks, events = EXCLUDED.events, artifacts = EXCLUDED.artifacts,"
            " bytes = EXCLUDED.bytes, sha256 = EXCLUDED.sha256, first_at = EXCLUDED.first_at,"
            " last_at = EXCLUDED.last_at, object_keys = EXCLUDED.object_keys,"
            " archived_at = now()"
            " RETURNING id",
            {r.tenant_id, r.day, r.segment, r.data_key, r.manifest_key,
             std::to_string(r.schema_version), std::to_string(r.runs), std::to_string(r.tasks),
             std::to_string(r.events), std::to_string(r.artifacts), std::to_string(r.bytes),
             r.sha256, r.first_at, r.last_at, db::ArrayLiteral(r.object_keys)}));
    const std::string archive_id = rows.GetString(0, 0);
    RETURN_IF_ERROR(conn.Exec(
        "INSERT INTO synaps.archived_runs (run_id, tenant_id, archive_id, data_offset,"
        " data_length, sha256)"
        " SELECT m.id, $2, $3::bigint, m.off, m.len, m.sum"
        "   FROM unnest($1::uuid[], $4::bigint[], $5::bigint[], $6::text[]) m(id, off, len, sum)"
        " ON CONFLICT (run_id) DO UPDATE SET archive_id = EXCLUDED.archive_id,"
        " tenant_id = EXCLUDED.tenant_id, data_offset = EXCLUDED.data_offset,"
        " data_length = EXCLUDED.data_length, sha256 = EXCLUDED.sha256",
        {db::ArrayLiteral(ids), r.tenant_id, archive_id, db::ArrayLiteral(offsets),
         db::ArrayLiteral(lengths), db::ArrayLiteral(sums)}));
    return Ok();
  });
}

Result<ArchivedRun> FindArchivedRun(db::Connection& conn, const std::string& tenant_id,
                                    const std::string& run_id) {
  ASSIGN_OR_RETURN(auto rows, conn.Exec("SELECT " + kArchiveColumns +
                                            ", ar.run_id::text, ar.data_offset, ar.data_length,"
                                            " ar.sha256"
                                            " FROM synaps.archived_runs ar JOIN synaps.archives a"
                                            " ON a.id = ar.archive_id WHERE ar.run_id = $1::uuid"
                                            " AND ($2 = '' OR ar.tenant_id = $2)",
                                        {run_id, tenant_id}));
  if (rows.rows() == 0) {
    return Fail(ErrorCode::kNotFound, "no archive holds run " + run_id);
  }
  ArchivedRun found;
  ASSIGN_OR_RETURN(found.segment, ReadRecord(rows, 0));
  found.run_id = rows.GetString(0, 17);
  // The record's 17 columns, then the member's (all NULL before migration 0044).
  if (!rows.IsNull(0, 18)) {
    found.member =
        ArchivedMember{found.run_id, rows.GetInt(0, 18), rows.GetInt(0, 19), rows.GetString(0, 20)};
  }
  return found;
}

Result<std::vector<ArchiveRecord>> ListArchives(db::Connection& conn, const std::string& tenant_id,
                                                const std::optional<std::string>& day) {
  ASSIGN_OR_RETURN(auto rows, conn.Exec("SELECT " + kArchiveColumns +
                                            " FROM synaps.archives a WHERE a.tenant_id = $1"
                                            " AND ($2::date IS NULL OR a.day = $2::date)"
                                            " ORDER BY a.day, a.id",
                                        {tenant_id, day}));
  std::vector<ArchiveRecord> out;
  for (int i = 0; i < rows.rows(); ++i) {
    ASSIGN_OR_RETURN(auto record, ReadRecord(rows, i));
    out.push_back(std::move(record));
  }
  return out;
}

Result<RestoredStory> RestoreRunStory(db::Connection& conn, const std::string& story_json) {
  ASSIGN_OR_RETURN(auto rows, conn.Exec("SELECT r->>'restored' = 'true', r->>'keyDropped',"
                                        " (r->>'artifactsMapped')::bigint"
                                        " FROM synaps.restore_archived_story($1::jsonb) r",
                                        {story_json}));
  RestoredStory out;
  out.restored = rows.GetBool(0, 0);
  out.key_dropped = rows.GetOptional(0, 1);
  out.artifacts_mapped = rows.GetInt(0, 2);
  return out;
}

}  // namespace synaps::store
