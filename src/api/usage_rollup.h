// Folds the ledger's usage events into synaps.usage_daily in the background (store/
// usage_store.h, docs/observability.md "Usage and cost"), at start and then every period, so
// that GET /v1/usage (a read only) finds a small live tail. Every API process runs one; the
// rollup row's lock (SKIP LOCKED) lets one pass run at a time across them. A pass that fails
// is logged and tried again at the next period. Thread-safe.
#pragma once

#include <chrono>

#include "core/periodic_thread.h"
#include "db/pool.h"

namespace synaps::api {

class UsageRollup {
 public:
  // `pool` must outlive this. `period` zero: never runs (queries still fold one pass each).
  UsageRollup(db::Pool* pool, std::chrono::seconds period);
  ~UsageRollup();  // stops
  UsageRollup(const UsageRollup&) = delete;
  UsageRollup& operator=(const UsageRollup&) = delete;

  void Start();
  void Stop();

 private:
  void CatchUp();

  db::Pool* const pool_;
  PeriodicThread thread_;  // CatchUp() at start and every period
};

}  // namespace synaps::api
