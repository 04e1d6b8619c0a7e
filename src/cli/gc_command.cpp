// synaps gc: removes objects that no database row refers to.
//
// An object becomes an orphan when a worker uploaded it and then died (or lost its lease) before
// committing the artifact row: the worker always uploads before it commits, so the reverse — a
// row naming a missing object — does not arise, and gc must not create it. Hence:
//   1. list the objects under objects/ (with their last-modified times);
//   2. read the referenced keys from PostgreSQL — after the listing, so a row committed before
//      step 2 protects its object;
//   3. candidates are unreferenced objects last written before now - grace; younger ones may
//      belong to an upload whose commit is still in flight;
//   4. for each batch of candidates: look at each object again (a Put of identical bytes since
//      the listing refreshed its time and makes it young again), ask PostgreSQL again (a commit
//      since step 2), then delete.
// What remains is a window of milliseconds between the last check and the delete, hit only by a
// worker that re-uploads the very bytes of an orphan older than the grace period and commits in
// that window; docs/storage.md discusses it.
#include <spdlog/spdlog.h>

#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/config.h"
#include "db/connection.h"
#include "db/deadlines.h"
#include "objstore/object_store.h"
#include "store/object_refs.h"

namespace synaps::cli {
namespace {

constexpr size_t kBatch = 200;

struct GcReport {
  int64_t scanned = 0;
  int64_t referenced = 0;
  int64_t kept_recent = 0;
  std::vector<objstore::ObjectInfo> candidates;
  std::vector<objstore::ObjectInfo> deleted;
  std::vector<std::pair<std::string, std::string>> failed;  // key, error
};

// The object's current listing entry, nullopt when it is gone.
Result<std::optional<objstore::ObjectInfo>> Stat(objstore::ObjectStore& objects,
                                                 const std::string& key) {
  ASSIGN_OR_RETURN(auto listed, objects.List(key));
  for (auto& info : listed) {
    if (info.key == key) return std::optional<objstore::ObjectInfo>(std::move(info));
  }
  return std::optional<objstore::ObjectInfo>();
}

Status DeleteBatch(db::Connection& conn, objstore::ObjectStore& objects,
                   const std::vector<objstore::ObjectInfo>& batch,
                   std::chrono::system_clock::time_point cutoff, GcReport& report) {
  std::vector<objstore::ObjectInfo> still_old;
  for (const auto& candidate : batch) {
    auto now = Stat(objects, candidate.key);
    if (!now) {
      report.failed.emplace_back(candidate.key, now.error().message);
      continue;
    }
    if (!*now) continue;  // gone already
    if ((*now)->last_modified >= cutoff) {
      ++report.kept_recent;  // written again since the listing
      continue;
    }
    still_old.push_back(**now);
  }
  std::vector<std::string> keys;
  for (const auto& info : still_old) keys.push_back(info.key);
  ASSIGN_OR_RETURN(auto referenced, store::FilterReferencedObjectKeys(conn, keys));
  for (const auto& info : still_old) {
    if (referenced.contains(info.key)) {
      ++report.referenced;  // committed since the first look
      continue;
    }
    if (auto deleted = objects.Delete(info.key); !deleted) {
      report.failed.emplace_back(info.key, deleted.error().message);
      continue;
    }
    spdlog::info("gc: deleted {} ({} bytes)", info.key, info.size);
    report.deleted.push_back(info);
  }
  return Ok();
}

// Progress goes to stderr (stdout carries the report, or the JSON of --json).
void Progress(bool show, const std::string& line) {
  if (show) std::cerr << "synaps gc: " << line << "\n";
}

Result<GcReport> CollectGarbage(db::Connection& conn, objstore::ObjectStore& objects,
                                std::chrono::seconds grace, bool dry_run, bool progress) {
  const std::string prefix = objstore::kContentPrefix;
  const auto cutoff = std::chrono::system_clock::now() - grace;
  GcReport report;
  Progress(progress, "listing " + prefix + " in " + objects.Describe());
  ASSIGN_OR_RETURN(auto listed, objects.List(prefix));
  report.scanned = static_cast<int64_t>(listed.size());
  Progress(progress, std::to_string(listed.size()) +
                         " objects listed; reading the keys PostgreSQL refers to");
  ASSIGN_OR_RETURN(auto referenced, store::ReferencedObjectKeys(conn, prefix));
  for (auto& info : listed) {
    if (referenced.contains(info.key)) {
      ++report.referenced;
    } else if (info.last_modified >= cutoff) {
      ++report.kept_recent;
    } else {
      report.candidates.push_back(std::move(info));
    }
  }
  if (dry_run) return report;
  for (size_t i = 0; i < report.candidates.size(); i += kBatch) {
    std::vector<objstore::ObjectInfo> batch(
        report.candidates.begin() + static_cast<std::ptrdiff_t>(i),
        report.candidates.begin() +
            static_cast<std::ptrdiff_t>(std::min(report.candidates.size(), i + kBatch)));
    RETURN_IF_ERROR(DeleteBatch(conn, objects, batch, cutoff, report));
    Progress(progress, std::to_string(i + batch.size()) + " of " +
                           std::to_string(report.candidates.size()) + " candidates checked, " +
                           std::to_string(report.deleted.size()) + " deleted, " +
                           std::to_string(report.failed.size()) + " failed");
  }
  return report;
}

int64_t TotalBytes(const std::vector<objstore::ObjectInfo>& objects) {
  int64_t total = 0;
  for (const auto& info : objects) total += info.size;
  return total;
}

}  // namespace

int RunGc(const GcFlags& flags) {
  std::string database_url = config::FlagOrEnv(flags.database_url, "SYNAPS_DATABASE_URL");
  if (database_url.empty()) {
    throw ConfigError(
        "SYNAPS_DATABASE_URL is not set (or pass --database-url): gc reads which objects the "
        "database refers to, e.g. postgresql://synaps:secret@localhost:5432/synaps");
  }
  if (flags.older_than_seconds < 0) {
    throw ConfigError("--older-than must be zero or more seconds");
  }
  auto objects = objstore::OpenObjectStore(config::FlagOrEnv(
      flags.object_store, "SYNAPS_OBJECT_STORE", "file:///var/lib/synaps/objects"));
  auto conn = db::Connection::Connect(database_url, db::ConnectOptionsFromEnv(db::Role::kCli));
  if (!conn) {
    std::cerr << "synaps gc: " << conn.error().message << "\n";
    return 1;
  }
  auto report = CollectGarbage(*conn, *objects, std::chrono::seconds(flags.older_than_seconds),
                               flags.dry_run, !flags.quiet);
  if (!report) {
    if (flags.json) {
      std::cout << nlohmann::json{{"error",
                                   {{"code", ErrorCodeName(report.error().code)},
                                    {"message", report.error().message}}}}
                       .dump()
                << "\n";
    }
    std::cerr << "synaps gc: " << report.error().message << "\n";
    return 1;
  }
  if (flags.json) {
    nlohmann::json out{{"store", objects->Describe()},
                       {"prefix", objstore::kContentPrefix},
                       {"dryRun", flags.dry_run},
                       {"olderThanSeconds", flags.older_than_seconds},
                       {"scanned", report->scanned},
                       {"referenced", report->referenced},
                       {"keptRecent", report->kept_recent},
                       {"candidates", nlohmann::json::array()},
                       {"deleted", nlohmann::json::array()},
                       {"deletedBytes", TotalBytes(report->deleted)},
                       {"failed", nlohmann::json::array()}};
    for (const auto& info : report->candidates) out["candidates"].push_back(info.key);
    for (const auto& info : report->deleted) out["deleted"].push_back(info.key);
    for (const auto& [key, error] : report->failed) {
      out["failed"].push_back({{"key", key}, {"error", error}});
    }
    std::cout << out.dump() << "\n";
  } else {
    std::cout << "scanned " << report->scanned << " objects under " << objstore::kContentPrefix
              << " in " << objects->Describe() << ": " << report->referenced << " referenced, "
              << report->kept_recent << " unreferenced but younger than "
              << flags.older_than_seconds << " s (kept)\n";
    if (flags.dry_run) {
      for (const auto& info : report->candidates) {
        std::cout << "would delete " << info.key << " (" << info.size << " bytes)\n";
      }
      std::cout << report->candidates.size() << " orphaned objects ("
                << TotalBytes(report->candidates) << " bytes) would be deleted (dry run)\n";
    } else {
      for (const auto& info : report->deleted) std::cout << "deleted " << info.key << "\n";
      std::cout << report->deleted.size() << " orphaned objects deleted ("
                << TotalBytes(report->deleted) << " bytes)\n";
    }
    for (const auto& [key, error] : report->failed) {
      std::cerr << "synaps gc: could not delete " << key << ": " << error << "\n";
    }
  }
  return report->failed.empty() ? 0 : 1;
}

}  // namespace synaps::cli
