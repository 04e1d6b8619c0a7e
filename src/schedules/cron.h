// Cron expressions (docs/schedules.md): five fields (minute hour day-of-month month day-of-week)
// or six with seconds first, matched against civil (wall-clock) time. Pure values, thread-safe
// once built. Time zones and daylight saving are not handled here but in schedules/timing.h,
// which turns the matching civil times into instants.
//
// Field syntax, as in Vixie cron: `*`, numbers, ranges `a-b`, steps `*/n`, `a-b/n`, `a/n`
// (a to the field's maximum), comma lists of these, month names JAN-DEC and weekday names
// SUN-SAT (any case); day-of-week 0-7 where 0 and 7 are Sunday. `?` is accepted for `*` in the
// day fields. When both day-of-month and day-of-week are restricted (neither starts with `*`),
// a day matches when EITHER matches (Vixie cron); otherwise both must. Macros: @yearly
// (@annually), @monthly, @weekly, @daily (@midnight), @hourly.
#pragma once

#include <bitset>
#include <cctz/civil_time.h>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.h"

namespace synaps::schedules {

class CronExpression {
 public:
  // kInvalidArgument with a message naming the bad field ("hour: 24 is out of range 0-23");
  // the error's `field` is left empty for the caller to fill in.
  static Result<CronExpression> Parse(std::string_view text);

  bool Matches(const cctz::civil_second& t) const;

  // The first matching civil second strictly after `t`, or nullopt when none comes within ten
  // years (e.g. "0 0 30 2 *", February 30th).
  std::optional<cctz::civil_second> NextAfter(const cctz::civil_second& t) const;

  bool has_seconds() const { return has_seconds_; }

 private:
  bool DayMatches(const cctz::civil_day& d) const;

  std::bitset<60> seconds_;
  std::bitset<60> minutes_;
  std::bitset<24> hours_;
  std::bitset<32> days_;      // 1..31
  std::bitset<13> months_;    // 1..12
  std::bitset<7> weekdays_;   // 0 = Sunday
  bool days_star_ = true;     // the day-of-month field started with * (or ?)
  bool weekdays_star_ = true;
  bool has_seconds_ = false;
};

}  // namespace synaps::schedules
