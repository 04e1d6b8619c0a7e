// When a schedule fires (docs/schedules.md): durations ("30s", "5m", "1h30m"), IANA time zones
// through cctz (Debian libcctz-dev, reading the system's tzdata), and the fire times of a
// `cron` or `every` spec. Pure values; a FireTimes is immutable and thread-safe.
//
// Daylight saving, for cron schedules in a zone that has it:
//   - a wall-clock time that does not exist that day (the hour skipped in spring) fires once,
//     at the first valid instant after the gap (the transition); several skipped times fire
//     that one instant once;
//   - a wall-clock time that occurs twice (the hour repeated in autumn) fires once, at its
//     first occurrence.
// `every` schedules are a fixed interval anchored at the Unix epoch (UTC): every process
// computes the same fire times without talking to the others, and zones do not apply.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <cctz/time_zone.h>

#include "core/error.h"
#include "schedules/cron.h"

namespace synaps::schedules {

// Fire times have whole-second resolution.
using TimePoint = std::chrono::time_point<std::chrono::system_clock, std::chrono::seconds>;

// "30s", "5m", "1h", "2d", or a sequence such as "1h30m"; units s, m, h, d. kInvalidArgument
// naming `field`. "0s" is accepted (callers decide their minimum).
Result<std::chrono::seconds> ParseDuration(std::string_view text, const std::string& field);

// The shortest form ParseDuration reads back: 90 → "1m30s", 0 → "0s".
std::string FormatDuration(std::chrono::seconds d);

// An IANA zone name (e.g. "Europe/Berlin", "UTC"). kInvalidArgument naming `field` for a
// malformed name or one the system's tzdata does not know; "localtime" and file paths are
// refused.
Result<cctz::time_zone> LoadZone(std::string_view name, const std::string& field);

// RFC 3339 in UTC with whole seconds: "2026-03-08T07:00:00Z".
std::string FormatTime(TimePoint t);
// RFC 3339 with a Z or numeric offset, fractions of a second truncated. nullopt when malformed.
std::optional<TimePoint> ParseTime(std::string_view text);

class FireTimes {
 public:
  static FireTimes Cron(CronExpression cron, cctz::time_zone zone);
  static FireTimes Every(std::chrono::seconds interval);

  // The first fire time strictly after `after`; nullopt when a cron never matches again.
  std::optional<TimePoint> Next(TimePoint after) const;

  // The fire times in (after, until], oldest first, at most `limit`.
  std::vector<TimePoint> Between(TimePoint after, TimePoint until, size_t limit) const;

 private:
  FireTimes() = default;
  std::optional<CronExpression> cron_;
  cctz::time_zone zone_;
  std::chrono::seconds every_{0};
};

// A delay in [0, jitter) that depends only on (name, fire time), so that every process that
// might fire the same time waits the same delay.
std::chrono::milliseconds JitterFor(std::string_view name, TimePoint fire_time,
                                    std::chrono::seconds jitter);

}  // namespace synaps::schedules
