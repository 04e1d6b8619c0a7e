// The control registry's sixth kind, `schedules` (docs/schedules.md): a typed view of a
// schedule's spec and its validator. Pure functions, like the other kinds in control/spec.h;
// errors are kInvalidArgument whose `field` is the JSON path from "spec" ("spec.cron",
// "spec.timezone").
//
// The spec's `command` is a submit body. Here it is only checked to be an object of bounded
// size; the API checks it as a submit body (api/request_validation.h) before it is stored,
// because the submit rules live in the API.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.h"
#include "schedules/timing.h"

namespace synaps::control {

// What a fire time does while an earlier run of the schedule is still unfinished.
enum class Overlap {
  kSkip,         // do not start; record it as skipped (the default)
  kBufferOne,    // start it when the running one ends; at most one waits, later ones are skipped
  kBufferAll,    // start each in turn when the one before ends
  kCancelOther,  // cancel the unfinished runs, then start
  kAllow,        // start regardless
};
std::string_view OverlapName(Overlap overlap);  // "skip", "bufferOne", ...
std::optional<Overlap> OverlapFromName(std::string_view name);

struct Schedule {
  std::string name;
  int version = 0;
  std::string cron;  // empty for an `every` schedule
  std::chrono::seconds every{0};  // 0 for a cron schedule
  std::string timezone = "UTC";
  nlohmann::json command;  // a submit body
  Overlap overlap = Overlap::kSkip;
  std::chrono::seconds catchup_window{60};
  std::chrono::seconds jitter{0};
  bool paused = false;
  bool pause_on_failure = false;
  std::string tenant = "default";  // the tenant the runs belong to
  std::string description;
  schedules::FireTimes times = schedules::FireTimes::Every(std::chrono::seconds(60));
};

// Validates `spec` for a schedule called `name` and returns its typed view (version 0).
Result<Schedule> ParseSchedule(std::string_view name, const nlohmann::json& spec);

}  // namespace synaps::control
