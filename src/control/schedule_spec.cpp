#include "control/schedule_spec.h"

#include <algorithm>
#include <array>
#include <regex>

namespace synaps::control {

using nlohmann::json;
using std::chrono::seconds;

namespace {

constexpr std::array<std::pair<Overlap, std::string_view>, 5> kOverlaps = {{
    {Overlap::kSkip, "skip"},
    {Overlap::kBufferOne, "bufferOne"},
    {Overlap::kBufferAll, "bufferAll"},
    {Overlap::kCancelOther, "cancelOther"},
    {Overlap::kAllow, "allow"},
}};

constexpr size_t kMaxCommandBytes = 64 * 1024;

std::unexpected<Error> Bad(const std::string& field, const std::string& message) {
  return Fail(ErrorCode::kInvalidArgument, field + ": " + message, field);
}

Result<std::optional<std::string>> OptionalString(const json& spec, const char* key,
                                                  size_t max) {
  const std::string field = std::string("spec.") + key;
  if (!spec.contains(key)) return std::optional<std::string>();
  if (!spec[key].is_string()) return Bad(field, "must be a string");
  const auto& s = spec[key].get_ref<const std::string&>();
  if (s.size() > max) return Bad(field, "must be at most " + std::to_string(max) + " bytes");
  return std::optional<std::string>(s);
}

Result<bool> OptionalBool(const json& spec, const char* key) {
  if (!spec.contains(key)) return false;
  if (!spec[key].is_boolean()) return Bad(std::string("spec.") + key, "must be true or false");
  return spec[key].get<bool>();
}

// A duration field within [min, max].
Result<std::optional<seconds>> OptionalDuration(const json& spec, const char* key, seconds min,
                                                seconds max) {
  const std::string field = std::string("spec.") + key;
  ASSIGN_OR_RETURN(auto text, OptionalString(spec, key, 32));
  if (!text) return std::optional<seconds>();
  ASSIGN_OR_RETURN(seconds d, schedules::ParseDuration(*text, field));
  if (d < min || d > max) {
    return Bad(field, "must be within " + schedules::FormatDuration(min) + ".." +
                          schedules::FormatDuration(max));
  }
  return std::optional<seconds>(d);
}

Status ParseTiming(const json& spec, Schedule& s) {
  const bool has_cron = spec.contains("cron");
  const bool has_every = spec.contains("every");
  if (has_cron == has_every) {
    return Bad(has_cron ? "spec.every" : "spec.cron",
               has_cron ? "give either cron or every, not both"
                        : "required: give cron (\"0 9 * * MON-FRI\") or every (\"5m\")");
  }
  ASSIGN_OR_RETURN(auto zone_name, OptionalString(spec, "timezone", 64));
  if (zone_name) s.timezone = *zone_name;
  ASSIGN_OR_RETURN(cctz::time_zone zone, schedules::LoadZone(s.timezone, "spec.timezone"));
  if (has_cron) {
    ASSIGN_OR_RETURN(auto cron_text, OptionalString(spec, "cron", 256));
    s.cron = *cron_text;
    auto cron = schedules::CronExpression::Parse(s.cron);
    if (!cron) return Bad("spec.cron", cron.error().message);
    s.times = schedules::FireTimes::Cron(*cron, zone);
    // A day that never comes ("0 0 30 2 *") is a mistake worth naming now.
    if (!cron->NextAfter(cctz::civil_second(2000, 1, 1))) {
      return Bad("spec.cron", "never fires (no such day)");
    }
  } else {
    ASSIGN_OR_RETURN(auto every, OptionalDuration(spec, "every", seconds(1), seconds(366 * 86400)));
    s.every = *every;
    s.times = schedules::FireTimes::Every(s.every);
  }
  return Ok();
}

}  // namespace

std::string_view OverlapName(Overlap overlap) {
  for (const auto& [o, name] : kOverlaps) {
    if (o == overlap) return name;
  }
  return "skip";
}

std::optional<Overlap> OverlapFromName(std::string_view name) {
  for (const auto& [o, n] : kOverlaps) {
    if (n == name) return o;
  }
  return std::nullopt;
}

Result<Schedule> ParseSchedule(std::string_view name, const json& spec) {
  if (!spec.is_object()) return Bad("spec", "must be an object");
  static const std::array<std::string_view, 11> kFields = {
      "cron",   "every",  "timezone",       "command", "overlap",    "catchupWindow",
      "jitter", "paused", "pauseOnFailure", "tenant",  "description"};
  for (auto it = spec.begin(); it != spec.end(); ++it) {
    if (std::find(kFields.begin(), kFields.end(), it.key()) == kFields.end()) {
      return Bad("spec." + it.key(),
                 "unknown field (known: cron, every, timezone, command, overlap, catchupWindow, "
                 "jitter, paused, pauseOnFailure, tenant, description)");
    }
  }
  Schedule s;
  s.name = std::string(name);
  RETURN_IF_ERROR(ParseTiming(spec, s));

  if (!spec.contains("command")) return Bad("spec.command", "required: a submit body");
  if (!spec["command"].is_object()) return Bad("spec.command", "must be an object (a submit body)");
  if (spec["command"].dump().size() > kMaxCommandBytes) {
    return Bad("spec.command", "must be at most 64 KiB");
  }
  s.command = spec["command"];

  ASSIGN_OR_RETURN(auto overlap, OptionalString(spec, "overlap", 32));
  if (overlap) {
    auto o = OverlapFromName(*overlap);
    if (!o) return Bad("spec.overlap", "must be one of skip, bufferOne, bufferAll, cancelOther, allow");
    s.overlap = *o;
  }
  ASSIGN_OR_RETURN(auto catchup,
                   OptionalDuration(spec, "catchupWindow", seconds(0), seconds(30 * 86400)));
  if (catchup) s.catchup_window = *catchup;
  ASSIGN_OR_RETURN(auto jitter, OptionalDuration(spec, "jitter", seconds(0), seconds(86400)));
  if (jitter) s.jitter = *jitter;
  ASSIGN_OR_RETURN(s.paused, OptionalBool(spec, "paused"));
  ASSIGN_OR_RETURN(s.pause_on_failure, OptionalBool(spec, "pauseOnFailure"));
  ASSIGN_OR_RETURN(auto tenant, OptionalString(spec, "tenant", 64));
  if (tenant) {
    static const std::regex kTenant("[A-Za-z0-9][A-Za-z0-9._-]{0,63}");
    if (!std::regex_match(*tenant, kTenant)) {
      return Bad("spec.tenant", "must match [A-Za-z0-9][A-Za-z0-9._-]{0,63}");
    }
    s.tenant = *tenant;
  }
  ASSIGN_OR_RETURN(auto description, OptionalString(spec, "description", 4000));
  s.description = description.value_or("");
  return s;
}

}  // namespace synaps::control
