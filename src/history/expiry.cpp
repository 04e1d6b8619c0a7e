#include "history/expiry.h"

#include <spdlog/spdlog.h>

#include <map>
#include <optional>

#include "store/archive_store.h"
#include "store/ledger_partitions.h"

namespace synaps::history {

using nlohmann::json;

json ExpiryReport::ToJson() const {
  json tenants_json = json::array();
  for (const auto& t : tenants) {
    json j = {{"tenant", t.tenant}, {"retentionDays", t.retention_days}};
    j.update(t.counts.ToJson());
    if (t.expired > 0) j["expired"] = t.expired;
    if (!t.skipped.empty()) j["skipped"] = t.skipped;
    tenants_json.push_back(std::move(j));
  }
  json out = {{"busy", busy},
              {"batches", batches},
              {"tenants", tenants_json},
              {"partitionsCreated", partitions_created},
              {"partitionsDropped", partitions_dropped}};
  out["total"] = total.ToJson();
  return out;
}

namespace {

// Hands the batch to the archiver, one call per UTC day; the last seq each run was archived at,
// in the order of `runs`. kInternal when the archiver leaves a run out.
Result<std::vector<int64_t>> ArchiveBatch(db::Connection& conn, RunArchiver& archiver,
                                          const std::string& tenant,
                                          const std::vector<store::ExpiredRun>& runs) {
  std::map<std::string, std::vector<std::string>> by_day;
  for (const auto& r : runs) by_day[r.day].push_back(r.run_id);
  ArchivedSeqs archived;
  for (const auto& [day, ids] : by_day) {
    ASSIGN_OR_RETURN(ArchivedSeqs seqs, archiver.Archive(conn, tenant, day, ids));
    archived.merge(seqs);
  }
  std::vector<int64_t> out;
  for (const auto& r : runs) {
    auto it = archived.find(r.run_id);
    if (it == archived.end()) {
      return Fail(ErrorCode::kInternal, "the archiver did not report run " + r.run_id);
    }
    out.push_back(it->second);
  }
  return out;
}

// Expires one tenant's runs batch by batch; false in the result when the pass must stop.
Result<bool> ExpireTenant(db::Connection& conn, RunArchiver* archiver,
                          const store::TenantRetention& tenant,
                          const std::vector<std::string>& partition_days,
                          const ExpiryOptions& options, const ExpiryProgress& progress,
                          const std::function<bool()>& stopping, ExpiryReport& report) {
  TenantExpiry& mine = report.tenants.emplace_back();
  mine.tenant = tenant.tenant;
  mine.retention_days = tenant.retention_days;
  if (options.dry_run) {
    ASSIGN_OR_RETURN(mine.expired, store::CountExpiredRuns(conn, tenant));
    if (progress) progress(mine, report);
    return true;
  }
  if (tenant.archive && archiver == nullptr) {
    mine.skipped = "archive is on and this process has no archiver: nothing deleted";
    spdlog::warn("expiry: tenant {}: {}", tenant.tenant, mine.skipped);
    return true;
  }
  // Archive and delete as one step across processes: another API replica archiving the same
  // batch meanwhile could leave the store with its objects and the record with ours.
  std::optional<store::TenantArchiveLock> lock;
  if (tenant.archive) {
    ASSIGN_OR_RETURN(auto taken, store::TenantArchiveLock::Try(conn, tenant.tenant));
    if (!taken) {
      mine.skipped = "another process is archiving or expiring this tenant";
      spdlog::info("expiry: tenant {}: {}", tenant.tenant, mine.skipped);
      return true;
    }
    lock.emplace(std::move(*taken));
  }
  while (options.max_batches == 0 || report.batches < options.max_batches) {
    if (stopping && stopping()) return false;
    ASSIGN_OR_RETURN(auto runs, store::ExpiredRuns(conn, tenant, options.batch_runs));
    if (runs.empty()) return true;
    // Archived: each run is deleted only at the ledger position its archive holds.
    std::optional<std::vector<int64_t>> last_seqs;
    if (tenant.archive) {
      auto archived = ArchiveBatch(conn, *archiver, tenant.tenant, runs);
      if (!archived) {
        mine.skipped = "archive failed: " + archived.error().message;
        spdlog::warn("expiry: tenant {}: {}", tenant.tenant, mine.skipped);
        return true;
      }
      last_seqs = std::move(*archived);
    }
    std::vector<std::string> ids;
    for (const auto& r : runs) ids.push_back(r.run_id);
    ASSIGN_OR_RETURN(store::ExpiryCounts counts,
                     store::ExpireRuns(conn, tenant, ids, partition_days, last_seqs));
    if (!counts.busy && static_cast<size_t>(counts.runs) < ids.size()) {
      spdlog::info(
          "expiry: tenant {}: {} of {} runs left for later (locked, kept, or changed since they "
          "were archived)",
          tenant.tenant, ids.size() - static_cast<size_t>(counts.runs), ids.size());
    }
    if (counts.busy) {
      report.busy = true;
      return false;
    }
    ++report.batches;
    mine.counts += counts;
    report.total += counts;
    if (progress) progress(mine, report);
    // Every candidate was locked by someone else (a keep, a retry): leave them for later.
    if (counts.runs == 0) return true;
  }
  return false;
}

}  // namespace

Result<ExpiryReport> ExpireOnce(db::Connection& conn, RunArchiver* archiver,
                                const ExpiryOptions& options, const ExpiryProgress& progress,
                                const std::function<bool()>& stopping) {
  ExpiryReport report;
  if (!options.dry_run) {
    ASSIGN_OR_RETURN(report.partitions_created,
                     store::EnsureLedgerPartitions(conn, options.partitions_ahead));
  }
  ASSIGN_OR_RETURN(auto plan, store::RetentionPlan(conn));
  // Decided once, before any run goes: a day that can go whole keeps its runs' events for the
  // drop instead of deleting them row by row.
  ASSIGN_OR_RETURN(auto partition_days, store::DroppableLedgerDays(conn));
  bool finished = true;
  for (const auto& tenant : plan) {
    ASSIGN_OR_RETURN(bool go_on, ExpireTenant(conn, archiver, tenant, partition_days, options,
                                              progress, stopping, report));
    if (!go_on) {
      finished = false;
      break;
    }
  }
  if (options.dry_run || !finished) return report;
  for (const auto& day : partition_days) {
    ASSIGN_OR_RETURN(std::string dropped, store::DropLedgerPartition(conn, day));
    if (dropped == "dropped") {
      report.partitions_dropped.push_back(day);
    } else {
      // Left for a later pass: a run of that day was kept meanwhile, usage is behind, or the
      // ledger's lock was not had in time. The expired runs' events stay until the day goes.
      spdlog::info("expiry: ledger partition of {} not dropped: {}", day, dropped);
    }
  }
  return report;
}

ExpiryThread::ExpiryThread(db::Pool* pool, RunArchiver* archiver, std::chrono::seconds period,
                           ExpiryOptions options)
    : pool_(pool),
      archiver_(archiver),
      options_(options),
      thread_("expiry", period, [this] { Pass(); }) {}

void ExpiryThread::Pass() {
  auto conn = pool_->Acquire();
  if (!conn) return spdlog::warn("expiry: {}", conn.error().message);
  auto report = ExpireOnce(**conn, archiver_, options_, {}, [this] { return thread_.stopping(); });
  if (!report) return spdlog::warn("expiry failed: {}", report.error().message);
  if (report->total.runs > 0) {
    spdlog::info("expiry: {} runs, {} tasks, {} ledger events deleted", report->total.runs,
                 report->total.tasks, report->total.events);
  }
}

}  // namespace synaps::history
