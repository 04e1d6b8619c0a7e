#include "history/archive.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <regex>
#include <set>
#include <span>

#include "core/http_grammar.h"
#include "core/ids.h"
#include "history/gzip.h"
#include "store/archive_store.h"
#include "store/retention_store.h"

namespace synaps::history {

using nlohmann::json;

namespace {

// A refusal of stored archive data (history/archive.h, kArchiveCorrupt).
std::unexpected<Error> Corrupt(std::string message) {
  return Fail(ErrorCode::kInternal, std::move(message), kArchiveCorrupt);
}

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
  std::vector<store::ArchivedMember> members;  // in the order of the stories
};

// The name of a segment of these runs at these ledger positions (16 hex digits).
std::string SegmentName(const std::vector<std::string>& run_ids,
                        const std::vector<int64_t>& last_seqs) {
  std::string joined;
  for (size_t i = 0; i < run_ids.size(); ++i) {
    joined += run_ids[i] + ":" + std::to_string(last_seqs[i]) + "\n";
  }
  return Sha256Hex(joined).substr(0, 16);
}

Segment BuildSegment(const ArchiveRequest& request, const std::string& segment,
                     std::span<const store::RunStory> stories) {
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
    store::ArchivedMember& m = s.members.emplace_back();
    m.run_id = story.run_id;
    m.offset = static_cast<int64_t>(s.data.size());
    m.length = static_cast<int64_t>(member.size());
    m.sha256 = Sha256Hex(member);
    runs.push_back({{"id", story.run_id},
                    {"offset", static_cast<uint64_t>(m.offset)},
                    {"length", static_cast<uint64_t>(m.length)},
                    {"sha256", m.sha256},
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
  auto manifest_text = store.GetAtMost(manifest_key, kMaxManifestBytes);
  if (!manifest_text && manifest_text.error().code == ErrorCode::kResourceExhausted) {
    return Fail(ErrorCode::kInternal,
                "archive manifest " + manifest_key + " holds more than the " +
                    std::to_string(kMaxManifestBytes) + " bytes a manifest may have",
                kArchiveTooLarge);
  }
  if (!manifest_text) return std::unexpected(manifest_text.error());
  LoadedSegment loaded;
  loaded.manifest = json::parse(*manifest_text, nullptr, /*allow_exceptions=*/false);
  const json& m = loaded.manifest;
  if (!m.is_object() || !m.contains("schemaVersion") || !m["schemaVersion"].is_number_integer() ||
      !m.contains("dataKey") || !m["dataKey"].is_string() || !m.contains("sha256") ||
      !m["sha256"].is_string() || !m.contains("runs") || !m["runs"].is_array()) {
    return Corrupt("archive manifest " + manifest_key + " is malformed");
  }
  if (m["schemaVersion"].get<int>() != kArchiveSchemaVersion) {
    return Corrupt("archive manifest " + manifest_key + " has schema version " +
                   m["schemaVersion"].dump() + "; this release reads " +
                   std::to_string(kArchiveSchemaVersion));
  }
  if (record != nullptr && (m["dataKey"].get<std::string>() != record->data_key ||
                            m["sha256"].get<std::string>() != record->sha256)) {
    return Corrupt("archive manifest " + manifest_key + " does not match its record in PostgreSQL");
  }
  if (record != nullptr) {
    // Only the bytes PostgreSQL recorded: an object grown since is not downloaded whole.
    if (record->bytes <= 0) return Corrupt("archive " + record->data_key + " is recorded empty");
    ASSIGN_OR_RETURN(loaded.data,
                     store.GetRange(record->data_key, 0, static_cast<uint64_t>(record->bytes)));
  } else {
    ASSIGN_OR_RETURN(loaded.data, store.Get(m["dataKey"].get<std::string>()));
  }
  if (Sha256Hex(loaded.data) != m["sha256"].get<std::string>()) {
    return Corrupt("archive " + m["dataKey"].get<std::string>() +
                   " does not match the checksum in its manifest");
  }
  return loaded;
}

// The story line one gzip member holds, inflating at most `max_bytes`; `what` names it.
Result<std::string> InflateStory(std::string_view member, size_t max_bytes,
                                 const std::string& what) {
  auto text = Gunzip(member, max_bytes);
  if (!text && text.error().code == ErrorCode::kResourceExhausted) {
    return Fail(ErrorCode::kInternal,
                what + " inflates to more than " + std::to_string(max_bytes) +
                    " bytes, the most this reader takes for one run",
                kArchiveTooLarge);
  }
  if (!text) return Corrupt(what + ": " + text.error().message);
  while (!text->empty() && text->back() == '\n') text->pop_back();
  return std::move(*text);
}

// The story line of one run of a loaded segment (the manifest entry `entry`).
Result<std::string> StoryOf(const LoadedSegment& segment, const json& entry, size_t max_bytes) {
  if (!entry.is_object() || !entry.value("offset", json()).is_number_unsigned() ||
      !entry.value("length", json()).is_number_unsigned()) {
    return Corrupt("archive manifest lists a run without offset and length");
  }
  const auto offset = entry["offset"].get<size_t>();
  const auto length = entry["length"].get<size_t>();
  if (offset > segment.data.size() || length > segment.data.size() - offset) {
    return Corrupt("archive manifest points past the end of its data");
  }
  return InflateStory(std::string_view(segment.data).substr(offset, length), max_bytes,
                      "archived run " + entry.value("id", std::string()));
}

// A store's refusal to hand over a recorded object: the archive is damaged (kArchiveCorrupt)
// when the object is missing or shorter than recorded; other errors stay as they are.
Error StoreRefusal(Error e, const std::string& what) {
  if (e.code == ErrorCode::kNotFound || e.code == ErrorCode::kInvalidArgument) {
    return Error{ErrorCode::kInternal, what + ": " + e.message, kArchiveCorrupt};
  }
  return e;
}

// The story line of an archived run, checked against PostgreSQL's record and inflating at most
// `max_bytes`. When the record says where the run's member is (archives since migration 0044),
// only those bytes are fetched (a ranged read) and checked against the member's checksum;
// otherwise the whole segment is read (at most kLegacySegmentFactor * max_bytes of it, as
// recorded) and checked, and its manifest says where the run is.
Result<std::string> ReadStory(objstore::ObjectStore& store, const store::ArchivedRun& found,
                              size_t max_bytes) {
  const store::ArchiveRecord& record = found.segment;
  if (!found.member) {
    constexpr uint64_t kLegacySegmentFactor = 4;
    if (static_cast<uint64_t>(record.bytes) > kLegacySegmentFactor * max_bytes) {
      return Fail(ErrorCode::kInternal,
                  "archive " + record.data_key + " (written before per-run records) is " +
                      std::to_string(record.bytes) + " bytes, more than the " +
                      std::to_string(kLegacySegmentFactor * max_bytes) +
                      " bytes this reader downloads to find one run in it",
                  kArchiveTooLarge);
    }
    auto segment = LoadSegment(store, record.manifest_key, &record);
    if (!segment) return std::unexpected(StoreRefusal(segment.error(), record.manifest_key));
    for (const auto& entry : segment->manifest["runs"]) {
      if (entry.is_object() && entry.value("id", "") == found.run_id) {
        return StoryOf(*segment, entry, max_bytes);
      }
    }
    return Corrupt("archive manifest " + record.manifest_key + " does not list the run");
  }
  const store::ArchivedMember& m = *found.member;
  const std::string what = "archived run " + m.run_id + " in " + record.data_key;
  if (m.offset < 0 || m.length <= 0 || m.offset > record.bytes ||
      m.length > record.bytes - m.offset) {
    return Corrupt(what + ": its record points past the end of the data");
  }
  // Deflate never grows data by more than a few bytes in a thousand.
  if (static_cast<uint64_t>(m.length) > max_bytes + max_bytes / 64 + 1024) {
    return Fail(ErrorCode::kInternal,
                what + " is " + std::to_string(m.length) + " bytes compressed, more than the " +
                    std::to_string(max_bytes) + " bytes this reader takes for one run",
                kArchiveTooLarge);
  }
  auto member = store.GetRange(record.data_key, static_cast<uint64_t>(m.offset),
                               static_cast<uint64_t>(m.length));
  if (!member) return std::unexpected(StoreRefusal(member.error(), what));
  if (Sha256Hex(*member) != m.sha256) {
    return Corrupt(what + " does not match the checksum PostgreSQL recorded for it");
  }
  return InflateStory(*member, max_bytes, what);
}

// Adds a segment written (or found recorded) to `result`: counts add up, keys are the first
// segment's, already_archived holds while every segment was recorded before.
void AddSegment(const store::ArchiveRecord& r, bool already, ArchiveResult& result) {
  if (result.segments == 0) {
    result.data_key = r.data_key;
    result.manifest_key = r.manifest_key;
    result.already_archived = true;
  }
  ++result.segments;
  result.runs += r.runs;
  result.tasks += r.tasks;
  result.events += r.events;
  result.artifacts += r.artifacts;
  result.bytes += r.bytes;
  result.already_archived = result.already_archived && already;
}

// Writes the segment `segment` of `stories` unless PostgreSQL records it already: data first,
// manifest second, record third, so a crash leaves at most a segment without its manifest
// (never "done"), or a manifest without its record (written again next time).
Status WriteSegment(db::Connection& conn, objstore::ObjectStore& store,
                    const ArchiveRequest& request, const std::string& segment,
                    std::span<const store::RunStory> stories, ArchiveResult& result) {
  ASSIGN_OR_RETURN(auto recorded,
                   store::FindArchive(conn, request.tenant_id, request.day, segment));
  if (recorded) {
    AddSegment(*recorded, /*already=*/true, result);
    return Ok();
  }
  Segment built = BuildSegment(request, segment, stories);
  RETURN_IF_ERROR(store.Put(built.record.data_key, built.data, "application/gzip"));
  RETURN_IF_ERROR(
      store.Put(built.record.manifest_key, built.manifest.dump(2) + "\n", "application/json"));
  RETURN_IF_ERROR(store::RecordArchive(conn, built.record, built.members));
  const auto& r = built.record;
  spdlog::info("archive: {} runs of tenant {} on {} ({} tasks, {} events, {} bytes) in {}", r.runs,
               r.tenant_id, r.day, r.tasks, r.events, r.bytes, r.data_key);
  AddSegment(r, /*already=*/false, result);
  return Ok();
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
  ArchiveResult result;
  for (size_t i = 0; i < run_ids.size(); ++i) result.last_seqs[run_ids[i]] = last_seqs[i];
  ASSIGN_OR_RETURN(auto recorded, store::FindArchive(conn, request.tenant_id, request.day,
                                                     SegmentName(run_ids, last_seqs)));
  if (recorded) {
    AddSegment(*recorded, /*already=*/true, result);
    return result;
  }
  // Consecutive runs make a segment while it stays within max_segment_bytes uncompressed (a run
  // larger than that alone makes one); each segment is named by its own runs.
  std::vector<store::RunStory> pending;  // the stories of the segment being filled
  size_t pending_bytes = 0, first = 0;   // their size; run_ids[first] is pending[0]
  auto write_pending = [&]() -> Status {
    const std::vector<std::string> ids(run_ids.begin() + first,
                                       run_ids.begin() + first + pending.size());
    const std::vector<int64_t> seqs(last_seqs.begin() + first,
                                    last_seqs.begin() + first + pending.size());
    RETURN_IF_ERROR(WriteSegment(conn, store, request, SegmentName(ids, seqs), pending, result));
    first += pending.size();
    pending.clear();
    pending_bytes = 0;
    return Ok();
  };
  const size_t per_read = std::max<size_t>(1, request.stories_per_read);
  for (size_t at = 0; at < run_ids.size(); at += per_read) {
    const std::vector<std::string> chunk(run_ids.begin() + at,
                                         run_ids.begin() + std::min(at + per_read, run_ids.size()));
    ASSIGN_OR_RETURN(auto stories, store::LoadRunStories(conn, request.tenant_id, chunk));
    for (auto& story : stories) {
      const size_t size = story.json.size() + 1;
      if (!pending.empty() && pending_bytes + size > request.max_segment_bytes) {
        RETURN_IF_ERROR(write_pending());
      }
      pending_bytes += size;
      pending.push_back(std::move(story));
    }
  }
  if (!pending.empty()) RETURN_IF_ERROR(write_pending());
  return result;
}

Result<nlohmann::json> ReadArchivedRun(db::Connection& conn, objstore::ObjectStore& store,
                                       const std::string& tenant_id, const std::string& run_id,
                                       size_t max_bytes) {
  if (!tenant_id.empty() && !IsTenantId(tenant_id)) {
    return Fail(ErrorCode::kInvalidArgument, "tenant id is malformed", "tenant");
  }
  ASSIGN_OR_RETURN(auto ids, NormalizeRunIds({run_id}, 1));
  ASSIGN_OR_RETURN(auto found, store::FindArchivedRun(conn, tenant_id, ids[0]));
  const store::ArchiveRecord& record = found.segment;
  ASSIGN_OR_RETURN(std::string text, ReadStory(store, found, max_bytes));
  json story = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!story.is_object() || !story["run"].is_object() || story["run"].value("id", "") != ids[0] ||
      story["run"].value("tenant_id", "") != record.tenant_id) {
    return Corrupt("archived run " + ids[0] + " does not read as that run of its tenant");
  }
  story["archive"] = {{"tenant", record.tenant_id},         {"day", record.day},
                      {"segment", record.segment},          {"dataKey", record.data_key},
                      {"manifestKey", record.manifest_key}, {"archivedAt", record.archived_at}};
  return story;
}

namespace {

// Restores the run `id` from its story line `text` in one transaction of its own, adding what
// happened to `result`.
Status RestoreOne(db::Connection& conn, const std::string& text, const std::string& tenant_id,
                  const std::string& id, const std::string& where, const RestoreOptions& options,
                  RestoreResult& result) {
  json story = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!story.is_object() || !story["run"].is_object() ||
      story["run"].value("tenant_id", "") != tenant_id || story["run"].value("id", "") != id) {
    return Corrupt("archived run " + id + " in " + where + " is not tenant " + tenant_id + "'s");
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
      ASSIGN_OR_RETURN(std::string text, StoryOf(segment, entry, kMaxRestoreRunBytes));
      RETURN_IF_ERROR(RestoreOne(conn, text, tenant_id, id, info.key, options, result));
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
  ASSIGN_OR_RETURN(auto found, store::FindArchivedRun(conn, tenant_id, ids[0]));
  ASSIGN_OR_RETURN(std::string text, ReadStory(store, found, kMaxRestoreRunBytes));
  RestoreResult result;
  RETURN_IF_ERROR(RestoreOne(conn, text, found.segment.tenant_id, ids[0], found.segment.data_key,
                             options, result));
  return result;
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
