// The SQL of schedules (db/migrations/0012_schedules.sql, docs/schedules.md). Schedule specs are
// control-registry items (kind `schedules`, store/control_store.h); this is what happened at
// their fire times: one synaps.schedule_fires row per (schedule, fire time), written in the same
// transaction as the command it starts, so a fire time becomes at most one command however many
// API processes ask. Every call is one statement (its own transaction). Times come from the
// database's clock.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "db/connection.h"
#include "store/run_store.h"

namespace synaps::store {

// A schedule's current version as the scheduler reads it each tick.
struct ScheduleRow {
  std::string name;
  int version = 0;
  nlohmann::json spec;
  int64_t version_at = 0;  // when the current version was written, Unix seconds (floor)
  std::string version_actor;
  std::string version_reason;
  std::optional<int64_t> cursor;  // the latest regular fire time decided, Unix seconds
};

struct ScheduleList {
  int64_t now_ms = 0;  // the database's now(), Unix milliseconds
  std::vector<ScheduleRow> schedules;
};

// The current, non-deleted schedules (only `name` when given), by name.
Result<ScheduleList> LoadSchedules(db::Connection& conn,
                                   const std::optional<std::string>& name = std::nullopt);

// One fire time to decide (synaps.schedule_fire).
struct FireRequest {
  std::string schedule;
  std::optional<int64_t> fire_time;  // Unix seconds; nullopt = the database's clock (trigger)
  int version = 0;
  std::string origin = "schedule";  // schedule, trigger, backfill
  std::string overlap = "skip";     // control::OverlapName
  std::string tenant;
  std::string request_hash;
  nlohmann::json command;  // CommandJson of the submit request
  std::optional<std::string> skip_reason;  // record as skipped without running
};

struct FireResult {
  std::string outcome;  // started, buffered, skipped, duplicate
  std::string fire_time;  // RFC 3339
  std::string origin;
  std::optional<std::string> reason;
  std::optional<std::string> run_id;
  std::vector<OutboxMessage> outbox;  // hand to the relay after this returns
  std::vector<std::string> cancelled;  // runs cancelled by cancelOther
};

Result<FireResult> FireSchedule(db::Connection& conn, const FireRequest& request);

struct DrainResult {
  std::optional<FireResult> started;  // the buffered fire time started now, if any
  bool failed = false;  // a run of the given version has failed (pauseOnFailure)
};

// Closes finished runs of `schedule` and, when none is unfinished, starts its oldest buffered
// fire time.
Result<DrainResult> DrainSchedule(db::Connection& conn, const std::string& schedule, int version);

// The latest fires of `schedule`, newest first: [{fireTime, version, origin, status, reason,
// runId, runStatus, decidedAt, startedAt}].
Result<nlohmann::json> ListScheduleFires(db::Connection& conn, const std::string& schedule,
                                         int limit);

}  // namespace synaps::store
