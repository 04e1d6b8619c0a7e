// Expiry: deletes the runs whose retention has passed (store/retention_store.h, docs/history.md),
// tenant by tenant in bounded batches, each batch its own transaction. One expiry runs at a time
// across every process (an advisory lock inside each batch: a process that finds it taken ends
// its pass). Runs of tenants that archive are handed to a RunArchiver first and deleted only when
// it succeeded.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/periodic_thread.h"
#include "db/pool.h"
#include "store/retention_store.h"

namespace synaps::history {

// Run id (lower-case) -> the ledger position (runs.last_seq) its archived story ends at.
using ArchivedSeqs = std::map<std::string, int64_t>;

// Stores expiring runs outside PostgreSQL before they are deleted (the object-store archive of
// issue #18). Called with runs of one tenant that finished on one UTC day; a value means they
// may be deleted, each only while its runs.last_seq is still the one returned for it (a run
// that got a ledger event since stays, and is archived again by a later batch or pass); an
// error means they must all stay (expiry tries again on its next pass).
class RunArchiver {
 public:
  virtual ~RunArchiver() = default;
  virtual Result<ArchivedSeqs> Archive(db::Connection& conn, const std::string& tenant,
                                       const std::string& day,
                                       const std::vector<std::string>& run_ids) = 0;
};

struct ExpiryOptions {
  int batch_runs = 500;      // runs per transaction
  int partitions_ahead = 7;  // days of ledger partitions kept created ahead
  int max_batches = 0;   // per pass; 0: until nothing has expired
  bool dry_run = false;  // count what has expired; delete nothing
};

struct TenantExpiry {
  std::string tenant;
  int retention_days = 0;
  store::ExpiryCounts counts;
  int64_t expired = 0;  // dry run: runs that would go
  std::string skipped;  // why nothing of this tenant went ("" when it was not skipped)
};

struct ExpiryReport {
  bool busy = false;  // another process was expiring; this pass stopped
  int batches = 0;
  int partitions_created = 0;                   // ledger partitions made ahead
  std::vector<std::string> partitions_dropped;  // UTC days whose ledger partition went whole
  store::ExpiryCounts total;
  std::vector<TenantExpiry> tenants;
  nlohmann::json ToJson() const;
};

// Called after every batch (for progress output).
using ExpiryProgress = std::function<void(const TenantExpiry& tenant, const ExpiryReport& so_far)>;

// One pass: creates the ledger's partitions ahead, then goes over every tenant with a retention,
// then drops the ledger partitions of days whose runs have all expired (their events were left
// in place by the row deletes). `archiver` may be null: tenants that archive are then skipped
// (never deleted unarchived). `stopping` is polled between batches.
Result<ExpiryReport> ExpireOnce(db::Connection& conn, RunArchiver* archiver,
                                const ExpiryOptions& options, const ExpiryProgress& progress = {},
                                const std::function<bool()>& stopping = {});

// Runs ExpireOnce at start and every period on its own thread, with connections from `pool`
// (which must outlive it). A failed pass is logged and tried again next period. Thread-safe.
class ExpiryThread {
 public:
  ExpiryThread(db::Pool* pool, RunArchiver* archiver, std::chrono::seconds period,
               ExpiryOptions options = {});
  void Start() { thread_.Start(); }
  void Stop() { thread_.Stop(); }

 private:
  void Pass();

  db::Pool* const pool_;
  RunArchiver* const archiver_;
  const ExpiryOptions options_;
  PeriodicThread thread_;
};

}  // namespace synaps::history
