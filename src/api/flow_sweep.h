// Releases tasks waiting for a concurrency slot that no release trigger will free, in the
// background (store::SweepConcurrencyKeys, docs/flow-control.md): at start and then every
// period. Every API process runs one; the sweep skips rows another process has locked, so
// concurrent sweeps never release an item twice. A sweep that fails is logged and tried again
// at the next period. Thread-safe.
#pragma once

#include <chrono>

#include "core/periodic_thread.h"
#include "db/pool.h"

namespace synaps::api {

class FlowSweep {
 public:
  // `pool` must outlive this. `period` zero: never runs.
  FlowSweep(db::Pool* pool, std::chrono::milliseconds period);
  ~FlowSweep();  // stops
  FlowSweep(const FlowSweep&) = delete;
  FlowSweep& operator=(const FlowSweep&) = delete;

  void Start();
  void Stop();

 private:
  void SweepOnce();

  db::Pool* const pool_;
  PeriodicThread thread_;  // SweepOnce() at start and every period
};

}  // namespace synaps::api
