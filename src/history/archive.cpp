#include "history/archive.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <regex>
#include <set>

#include "core/http_grammar.h"
#include "core/ids.h"
#include "history/gzip.h"
#include "store/archive_store.h"
#include "store/retention_store.h"

namespace synaps::history {

using nlohmann::json;

namespace {

// A run's story inflates to at most this much; a larger member is refused as damaged.
constexpr size_t kMaxStoryBytes = size_t{1} << 30;

std::string NowUtc() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string DayPrefix(const std::string& tenant_id, const std::string& day) {
  return std::string(kArchivePrefix) + "v1/" + tenant_id + "/" + day + "/";
}

Status ValidateTenantAndDay(const std::string& tenant_id, const std::string& day) {
  if (!IsTenantId(tenant_id)) {
    return Fail(ErrorCode::kInvalidArgument,
                "tenant must be 1-64 characters of letters, digits, '.', '_' or '-', starting "
                "with a letter or digit",
                "tenant");
  }
  if (!IsArchiveDay(day)) {
    return Fail(ErrorCode::kInvalidArgument, "day must be a date as YYYY-MM-DD", "day");
  }
  return Ok();
}

// Lower-case, sorted, without repeats; kInvalidArgument for anything but 1..max UUIDs.
Result<std::vector<std::string>> NormalizeRunIds(const std::vector<std::string>& given,
                                                 size_t max) {
  std::set<std::string> ids;
  for (const auto& id : given) {
    if (!IsUuid(id)) {
      return Fail(ErrorCode::kInvalidArgument, "run id '" + id + "' is not a UUID", "runIds");
    }
    std::string lower = id;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    ids.insert(std::move(lower));
  }
  if (ids.empty() || ids.size() > max) {
    return Fail(ErrorCode::kInvalidArgument,
                "an archive takes 1 to " + std::to_string(max) + " runs", "runIds");
  }
  return std::vector<std::string>(ids.begin(), ids.end());
}

// The data object, the manifest and the record of one segment, built from the runs' stories.
struct Segment {
  std::string data;
  json manifest;
  store::ArchiveRecord record;
};

Segment BuildSegment(const ArchiveRequest& request, const std::string& segment,
                     const std::vector<store::RunStory>& stories) {
  Segment s;
  auto& r = s.record;
  r.tenant_id = request.tenant_id;
  r.day = request.day;
  r.segment = segment;
  r.data_key = DayPrefix(request.tenant_id, request.day) + segment + ".jsonl.gz";
  r.manifest_key = DayPrefix(request.tenant_id, request.day) + segment + ".manifest.json";
  r.schema_version = kArchiveSchemaVersion;
  json runs = json::array();
  std::set<std::string> object_keys;
  int64_t uncompressed = 0;
  for (const auto& story : stories) {
    const std::string line = story.json + "\n";
    const std::string member = GzipMember(line);
    runs.push_back({{"id", story.run_id},
                    {"offset", s.data.size()},
                    {"length", member.size()},
                    {"createdAt", story.created_at},
                    {"finishedAt", story.finished_at}});
    s.data += member;
    uncompressed += static_cast<int64_t>(line.size());
    ++r.runs;
    r.tasks += story.tasks;
    r.events += story.events;
    r.artifacts += story.artifacts;
    object_keys.insert(story.object_keys.begin(), story.object_keys.end());
    if (!r.first_at || story.created_at < *r.first_at) r.first_at = story.created_at;
    if (!r.last_at || story.finished_at > *r.last_at) r.last_at = story.finished_at;
  }
  r.object_keys.assign(object_keys.begin(), object_keys.end());
  r.bytes = static_cast<int64_t>(s.data.size());
  r.sha256 = Sha256Hex(s.data);
  s.manifest = {
      {"schemaVersion", kArchiveSchemaVersion},
      {"format", "jsonl"},
      {"compression", "gzip"},
      {"tenant", r.tenant_id},
      {"day", r.day},
      {"segment", segment},
      {"dataKey", r.data_key},
      {"bytes", r.bytes},
      {"sha256", r.sha256},
      {"uncompressedBytes", uncompressed},
      {"counts",
       {{"runs", r.runs}, {"tasks", r.tasks}, {"events", r.events}, {"artifacts", r.artifacts}}},
      {"timeRange", {{"from", *r.first_at}, {"to", *r.last_at}}},
      {"runs", runs},
      {"objectKeys", r.object_keys},
      {"writtenAt", NowUtc()}};
  return s;
}

// A stored segment read back and checked against its manifest and, when PostgreSQL recorded the
// segment, against that record: the record is what is trusted (the bucket may be writable by
// others than Synaps), so the data must be the object the record names, with the record's
// checksum, and a rewritten manifest cannot point a reader at another segment.
struct LoadedSegment {
  json manifest;
  std::string data;
};

Result<LoadedSegment> LoadSegment(objstore::ObjectStore& store, const std::string& manifest_key,
                                  const store::ArchiveRecord* record) {
  ASSIGN_OR_RETURN(std::string manifest_text, store.Get(manifest_key));
  LoadedSegment loaded;
  loaded.manifest = json::parse(manifest_text, nullptr, /*allow_exceptions=*/false);
  const json& m = loaded.manifest;
  if (!m.is_object() || !m.contains("schemaVersion") || !m["schemaVersion"].is_number_integer() ||
      !m.contains("dataKey") || !m["dataKey"].is_string() || !m.contains("sha256") ||
      !m["sha256"].is_string() || !m.contains("runs") || !m["runs"].is_array()) {
    return Fail(ErrorCode::kInternal, "archive manifest " + manifest_key + " is malformed");
  }
  if (m["schemaVersion"].get<int>() != kArchiveSchemaVersion) {
    return Fail(ErrorCode::kInternal, "archive manifest " + manifest_key + " has schema version " +
                                          m["schemaVersion"].dump() + "; this release reads " +
                                          std::to_string(kArchiveSchemaVersion));
  }
  if (record != nullptr && (m["dataKey"].get<std::string>() != record->data_key ||
                            m["sha256"].get<std::string>() != record->sha256)) {
    return Fail(ErrorCode::kInternal,
                "archive manifest " + manifest_key + " does not match its record in PostgreSQL");
  }
  ASSIGN_OR_RETURN(loaded.data, store.Get(m["dataKey"].get<std::string>()));
  if (Sha256Hex(loaded.data) != m["sha256"].get<std::string>()) {
    return Fail(ErrorCode::kInternal, "archive " + m["dataKey"].get<std::string>() +
                                          " does not match the checksum in its manifest");
  }
  return loaded;
}

// The story line of one run of a loaded segment (the manifest entry `entry`).
Result<std::string> StoryOf(const LoadedSegment& segment, const json& entry) {
  if (!entry.is_object() || !entry.value("offset", json()).is_number_unsigned() ||
      !entry.value("length", json()).is_number_unsigned()) {
    return Fail(ErrorCode::kInternal, "archive manifest lists a run without offset and length");
  }
  const auto offset = entry["offset"].get<size_t>();
  const auto length = entry["length"].get<size_t>();
  if (offset > segment.data.size() || length > segment.data.size() - offset) {
    return Fail(ErrorCode::kInternal, "archive manifest points past the end of its data");
  }
  auto text = Gunzip(std::string_view(segment.data).substr(offset, length), kMaxStoryBytes);
  if (!text) return Fail(ErrorCode::kInternal, "archived run: " + text.error().message);
  while (!text->empty() && text->back() == '\n') text->pop_back();
  return std::move(*text);
}

}  // namespace

bool IsArchiveDay(const std::string& day) {
  static const std::regex kShape("[0-9]{4}-[0-9]{2}-[0-9]{2}");
  if (!std::regex_match(day, kShape)) return false;
  const std::chrono::year_month_day ymd{std::chrono::year(std::stoi(day.substr(0, 4))),
                                        std::chrono::month(std::stoul(day.substr(5, 2))),
                                        std::chrono::day(std::stoul(day.substr(8, 2)))};
  return ymd.ok();
}

Result<ArchiveResult> ArchiveRuns(db::Connection& conn, objstore::ObjectStore& store,
                                  const ArchiveRequest& request) {
  RETURN_IF_ERROR(ValidateTenantAndDay(request.tenant_id, request.day));
  ASSIGN_OR_RETURN(auto run_ids, NormalizeRunIds(request.run_ids, kMaxRunsPerSegment));
  // One archiver per tenant at a time (the expiry holds this lock already, around archive and
  // delete; session locks nest).
  ASSIGN_OR_RETURN(auto lock, store::TenantArchiveLock::Try(conn, request.tenant_id));
  if (!lock) {
    return Fail(ErrorCode::kConflict, "another process is archiving or expiring tenant " +
                                          request.tenant_id + "'s runs; try again later");
  }
  // Named by the runs and how far each one's ledger goes: a run that changed since an earlier
  // archive of the same batch (an event appended, a keep set and released) is archived again
  // under a new name instead of being taken as archived.
  ASSIGN_OR_RETURN(auto last_seqs, store::RunLastSeqs(conn, request.tenant_id, run_ids));
  std::string joined;
  for (size_t i = 0; i < run_ids.size(); ++i) {
    joined += run_ids[i] + ":" + std::to_string(last_seqs[i]) + "\n";
  }
  const std::string segment = Sha256Hex(joined).substr(0, 16);
  ArchivedSeqs seqs;
  for (size_t i = 0; i < run_ids.size(); ++i) seqs[run_ids[i]] = last_seqs[i];

  ASSIGN_OR_RETURN(auto recorded,
                   store::FindArchive(conn, request.tenant_id, request.day, segment));
  ArchiveResult result;
  if (recorded) {
    result = {recorded->data_key, recorded->manifest_key, recorded->runs,  recorded->tasks,
              recorded->events,   recorded->artifacts,    recorded->bytes, true,
              std::move(seqs)};
    return result;
  }
  ASSIGN_OR_RETURN(auto stories, store::LoadRunStories(conn, request.tenant_id, run_ids));
  Segment built = BuildSegment(request, segment, stories);
  // Data first, manifest second, record third: a crash leaves at most a segment without its
  // manifest (never "done"), or a manifest without its record (written again next time).
  RETURN_IF_ERROR(store.Put(built.record.data_key, built.data, "application/gzip"));
  RETURN_IF_ERROR(
      store.Put(built.record.manifest_key, built.manifest.dump(2) + "\n", "application/json"));
  RETURN_IF_ERROR(store::RecordArchive(conn, built.record, run_ids));
  const auto& r = built.record;
  spdlog::info("archive: {} runs of tenant {} on {} ({} tasks, {} events, {} bytes) in {}", r.runs,
               r.tenant_id, r.day, r.tasks, r.events, r.bytes, r.data_key);
  result = {r.data_key, r.manifest_key, r.runs,  r.tasks,
            r.events,   r.artifacts,    r.bytes, false, std::move(seqs)};
  return result;
}

Result<nlohmann::json> ReadArchivedRun(db::Connection& conn, objstore::ObjectStore& store,
                                       const std::string& tenant_id, const std::string& run_id) {
  if (!tenant_id.empty() && !IsTenantId(tenant_id)) {
    return Fail(ErrorCode::kInvalidArgument, "tenant id is malformed", "tenant");
  }
  ASSIGN_OR_RETURN(auto ids, NormalizeRunIds({run_id}, 1));
  ASSIGN_OR_RETURN(auto record, store::FindArchivedRun(conn, tenant_id, ids[0]));
  ASSIGN_OR_RETURN(auto segment, LoadSegment(store, record.manifest_key, &record));
  for (const auto& entry : segment.manifest["runs"]) {
    if (!entry.is_object() || entry.value("id", "") != ids[0]) continue;
    ASSIGN_OR_RETURN(std::string text, StoryOf(segment, entry));
    json story = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (!story.is_object() || !story["run"].is_object() || story["run"].value("id", "") != ids[0] ||
        story["run"].value("tenant_id", "") != record.tenant_id) {
      return Fail(ErrorCode::kInternal,
                  "archived run " + ids[0] + " does not read as that run of its tenant");
    }
    story["archive"] = {{"tenant", record.tenant_id},         {"day", record.day},
                        {"segment", record.segment},          {"dataKey", record.data_key},
                        {"manifestKey", record.manifest_key}, {"archivedAt", record.archived_at}};
    return story;
  }
  return Fail(ErrorCode::kInternal,
              "archive manifest " + record.manifest_key + " does not list run " + ids[0]);
}

namespace {

// Restores the run `id` of a loaded segment (manifest entry `entry`) in one transaction of its
// own, adding what happened to `result`.
Status RestoreOne(db::Connection& conn, const LoadedSegment& segment, const json& entry,
                  const std::string& tenant_id, const std::string& id, const std::string& where,
                  const RestoreOptions& options, RestoreResult& result) {
  ASSIGN_OR_RETURN(std::string text, StoryOf(segment, entry));
  json story = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!story.is_object() || !story["run"].is_object() ||
      story["run"].value("tenant_id", "") != tenant_id || story["run"].value("id", "") != id) {
    return Fail(ErrorCode::kInternal,
                "archived run " + id + " in " + where + " is not tenant " + tenant_id + "'s");
  }
  ASSIGN_OR_RETURN(store::RestoredStory done,
                   db::InTransaction(conn, [&]() -> Result<store::RestoredStory> {
                     ASSIGN_OR_RETURN(auto restored, store::RestoreRunStory(conn, text));
                     if (options.keep) {
                       RETURN_IF_ERROR(store::SetRunKeep(conn, tenant_id, id, true, options.actor));
                     }
                     return restored;
                   }));
  ++(done.restored ? result.runs : result.skipped);
  result.artifacts_mapped += done.artifacts_mapped;
  if (done.key_dropped) {
    spdlog::warn(
        "restore: run {} came back without its command's idempotency key '{}': a "
        "command made after the run expired holds it",
        id, *done.key_dropped);
    result.keys_dropped.emplace_back(id, *done.key_dropped);
  }
  return Ok();
}

}  // namespace

Result<RestoreResult> RestoreRuns(db::Connection& conn, objstore::ObjectStore& store,
                                  const std::string& tenant_id, const std::string& day,
                                  const std::vector<std::string>& run_ids,
                                  const RestoreOptions& options) {
  RETURN_IF_ERROR(ValidateTenantAndDay(tenant_id, day));
  std::set<std::string> wanted;
  if (!run_ids.empty()) {
    ASSIGN_OR_RETURN(auto ids, NormalizeRunIds(run_ids, run_ids.size()));
    wanted.insert(ids.begin(), ids.end());
  }
  ASSIGN_OR_RETURN(auto listed, store.List(DayPrefix(tenant_id, day)));
  std::sort(listed.begin(), listed.end(),
            [](const auto& a, const auto& b) { return a.key < b.key; });
  RestoreResult result;
  std::set<std::string> found;
  for (const auto& info : listed) {
    static constexpr std::string_view kManifestSuffix = ".manifest.json";
    if (!info.key.ends_with(kManifestSuffix)) continue;  // a data object without one: not done
    // The segment is named by its key; PostgreSQL's record of it is what the data is checked
    // against. A segment without a record is restored only when the operator says so.
    const std::string name = info.key.substr(DayPrefix(tenant_id, day).size());
    const std::string segment_name = name.substr(0, name.size() - kManifestSuffix.size());
    ASSIGN_OR_RETURN(auto record, store::FindArchive(conn, tenant_id, day, segment_name));
    if (!record && !options.unrecorded) {
      return Fail(ErrorCode::kConflict,
                  "archive " + info.key +
                      " has no record in PostgreSQL, so its contents cannot be checked against "
                      "one; restore it with --unrecorded only if you trust the object store");
    }
    ASSIGN_OR_RETURN(auto segment, LoadSegment(store, info.key, record ? &*record : nullptr));
    for (const auto& entry : segment.manifest["runs"]) {
      const std::string id = entry.is_object() ? entry.value("id", "") : "";
      if (!wanted.empty() && !wanted.contains(id)) continue;
      RETURN_IF_ERROR(RestoreOne(conn, segment, entry, tenant_id, id, info.key, options, result));
      found.insert(id);
    }
  }
  for (const auto& id : wanted) {
    if (!found.contains(id)) {
      return Fail(ErrorCode::kNotFound,
                  "no archive of tenant " + tenant_id + " on " + day + " holds run " + id);
    }
  }
  return result;
}

Result<RestoreResult> RestoreArchivedRun(db::Connection& conn, objstore::ObjectStore& store,
                                         const std::string& tenant_id, const std::string& run_id,
                                         const RestoreOptions& options) {
  if (!tenant_id.empty() && !IsTenantId(tenant_id)) {
    return Fail(ErrorCode::kInvalidArgument, "tenant id is malformed", "tenant");
  }
  ASSIGN_OR_RETURN(auto ids, NormalizeRunIds({run_id}, 1));
  ASSIGN_OR_RETURN(auto record, store::FindArchivedRun(conn, tenant_id, ids[0]));
  ASSIGN_OR_RETURN(auto segment, LoadSegment(store, record.manifest_key, &record));
  RestoreResult result;
  for (const auto& entry : segment.manifest["runs"]) {
    if (!entry.is_object() || entry.value("id", "") != ids[0]) continue;
    RETURN_IF_ERROR(RestoreOne(conn, segment, entry, record.tenant_id, ids[0], record.manifest_key,
                               options, result));
    return result;
  }
  return Fail(ErrorCode::kInternal,
              "archive manifest " + record.manifest_key + " does not list run " + ids[0]);
}

Result<ArchivedSeqs> ObjectStoreArchiver::Archive(db::Connection& conn, const std::string& tenant,
                                                  const std::string& day,
                                                  const std::vector<std::string>& run_ids) {
  ArchivedSeqs archived;
  for (size_t at = 0; at < run_ids.size(); at += kMaxRunsPerSegment) {
    size_t end = std::min(run_ids.size(), at + kMaxRunsPerSegment);
    ArchiveRequest request{tenant, day, {run_ids.begin() + at, run_ids.begin() + end}};
    ASSIGN_OR_RETURN(ArchiveResult done, ArchiveRuns(conn, *store_, request));
    spdlog::info("expiry: archived {} runs of tenant {} ({}) to {}", done.runs, tenant, day,
                 done.data_key);
    archived.merge(done.last_seqs);
  }
  return archived;
}

}  // namespace synaps::history
