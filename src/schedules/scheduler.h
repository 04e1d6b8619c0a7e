// Fires schedules (docs/schedules.md). Every `synaps api` process runs one Scheduler; there is no
// leader. Each tick it reads the current schedules and the database's clock, and asks
// PostgreSQL to decide every fire time that is due (store/schedule_store.h): the database keeps
// one row per (schedule, fire time), so however many processes ask, a fire time becomes at most
// one command. A process that was down finds the missed fire times from the last one decided,
// and runs those inside the schedule's catch-up window.
//
// Part of the API library (it submits commands as the API does, and hands their outbox rows to
// the API's relay). Thread-safe: Tick, Trigger and Backfill may run concurrently with the loop.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "control/schedule_spec.h"
#include "core/periodic_thread.h"
#include "db/pool.h"
#include "schedules/timing.h"
#include "store/schedule_store.h"

namespace synaps::api {
class ApiMetrics;
class OutboxRelay;
}  // namespace synaps::api

namespace synaps::schedules {

struct SchedulerOptions {
  // SYNAPS_SCHEDULE_TICK_MS: how often due fire times are looked for; 0 = this process fires
  // nothing (triggers and backfills through its API still work).
  int tick_ms = 1000;
  // Fire times decided per schedule per tick; the rest wait for the next tick.
  size_t max_per_tick = 1000;
};

struct BackfillResult {
  std::vector<store::FireResult> fires;  // oldest first
  int started = 0;
  int buffered = 0;
  int skipped = 0;
  int duplicate = 0;  // decided before (by the schedule itself or an earlier backfill)
};

// The most fire times one backfill may cover.
inline constexpr size_t kMaxBackfill = 10000;

class Scheduler {
 public:
  // `pool` must outlive the scheduler; `relay` and `metrics` may be null.
  Scheduler(SchedulerOptions options, db::Pool* pool, api::OutboxRelay* relay,
            api::ApiMetrics* metrics);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Starts the tick loop (unless tick_ms is 0); Stop ends it and waits for a tick in progress.
  void Start();
  void Stop();

  // One pass over every schedule: starts buffered fire times whose predecessor finished, pauses
  // schedules with pauseOnFailure whose current version had a failed run, and decides every
  // due fire time.
  Status Tick();

  // Runs the schedule now (a fire time at the database's clock), under its overlap policy or
  // `overlap`. kNotFound for an unknown schedule.
  Result<store::FireResult> Trigger(const std::string& name,
                                    std::optional<control::Overlap> overlap);

  // Decides every fire time in [from, to) under the schedule's overlap policy or `overlap`.
  // kInvalidArgument (field "to") when `to` is in the future, not after `from`, or the range
  // holds more than kMaxBackfill fire times; kNotFound for an unknown schedule.
  Result<BackfillResult> Backfill(const std::string& name, TimePoint from, TimePoint to,
                                  std::optional<control::Overlap> overlap);

 private:
  Status TickOne(db::Connection& conn, const store::ScheduleRow& row, int64_t now_ms);
  Result<store::FireResult> Fire(db::Connection& conn, const control::Schedule& schedule,
                                 std::optional<int64_t> fire_time, const std::string& origin,
                                 control::Overlap overlap,
                                 std::optional<std::string> skip_reason = std::nullopt);
  Status PauseAfterFailure(db::Connection& conn, const store::ScheduleRow& row);
  // Records the fire times in (after, until], older than the catch-up window, as missed: one
  // skipped fire row (the latest of them, reason "catchup: missed …" with their count and range)
  // and a warning, so that an outage longer than the window is visible in the schedule's history,
  // its ledger (`schedule.skipped`) and metrics, without a row per missed time.
  Status RecordMissed(db::Connection& conn, const control::Schedule& s, int64_t after,
                      int64_t until);
  void Report(const control::Schedule& schedule, const store::FireResult& fire);
  Result<control::Schedule> Load(db::Connection& conn, const std::string& name);
  const SchedulerOptions options_;
  db::Pool* const pool_;
  api::OutboxRelay* const relay_;
  api::ApiMetrics* const metrics_;

  PeriodicThread thread_;  // Tick() every options_.tick_ms
};

}  // namespace synaps::schedules
