#include "schedules/cron.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <vector>

namespace synaps::schedules {

namespace {

struct FieldRule {
  const char* name;
  int min;
  int max;
  const char* const* names;  // names for min, min+1, ... (nullptr: numbers only)
  int names_count;
};

constexpr const char* kMonthNames[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                       "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
constexpr const char* kDayNames[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

constexpr FieldRule kSecond{"second", 0, 59, nullptr, 0};
constexpr FieldRule kMinute{"minute", 0, 59, nullptr, 0};
constexpr FieldRule kHour{"hour", 0, 23, nullptr, 0};
constexpr FieldRule kDay{"day-of-month", 1, 31, nullptr, 0};
constexpr FieldRule kMonth{"month", 1, 12, kMonthNames, 12};
// 7 is Sunday too; folded onto 0 after parsing.
constexpr FieldRule kWeekday{"day-of-week", 0, 7, kDayNames, 7};

std::unexpected<Error> Bad(const FieldRule& rule, const std::string& message) {
  return Fail(ErrorCode::kInvalidArgument, std::string(rule.name) + ": " + message);
}

Result<int> ParseValue(std::string_view s, const FieldRule& rule) {
  if (s.empty()) return Bad(rule, "empty value");
  if (rule.names != nullptr && std::isalpha(static_cast<unsigned char>(s[0]))) {
    std::string upper(s);
    std::transform(upper.begin(), upper.end(), upper.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    for (int i = 0; i < rule.names_count; ++i) {
      if (upper == rule.names[i]) return rule.min + i;
    }
    return Bad(rule, "unknown name " + std::string(s));
  }
  int v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) {
    return Bad(rule, "'" + std::string(s) + "' is not a number");
  }
  if (v < rule.min || v > rule.max) {
    return Bad(rule, std::to_string(v) + " is out of range " + std::to_string(rule.min) + "-" +
                         std::to_string(rule.max));
  }
  return v;
}

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t at = s.find(sep, start);
    out.push_back(s.substr(start, at == std::string_view::npos ? std::string_view::npos
                                                               : at - start));
    if (at == std::string_view::npos) return out;
    start = at + 1;
  }
}

// Sets the bits of one comma-separated field; `star` says whether it started with * or ?.
template <size_t N>
Status ParseField(std::string_view text, const FieldRule& rule, std::bitset<N>& bits,
                  bool* star = nullptr) {
  if (star != nullptr) *star = text.starts_with("*") || text == "?";
  if (text == "?") {
    if (rule.name != kDay.name && rule.name != kWeekday.name) {
      return Bad(rule, "? is only allowed in the day fields");
    }
    text = "*";
  }
  for (std::string_view part : Split(text, ',')) {
    if (part.empty()) return Bad(rule, "empty list item");
    int step = 1;
    bool has_step = false;
    if (size_t slash = part.find('/'); slash != std::string_view::npos) {
      std::string_view step_text = part.substr(slash + 1);
      auto [p, ec] = std::from_chars(step_text.data(), step_text.data() + step_text.size(), step);
      if (step_text.empty() || ec != std::errc() || p != step_text.data() + step_text.size() ||
          step < 1 || step > rule.max - rule.min + 1) {
        return Bad(rule, "step '" + std::string(step_text) + "' must be a number within 1-" +
                             std::to_string(rule.max - rule.min + 1));
      }
      part = part.substr(0, slash);
      has_step = true;
    }
    int low = rule.min;
    int high = rule.max;
    if (part == "*") {
      // the whole range
    } else if (size_t dash = part.find('-'); dash != std::string_view::npos) {
      ASSIGN_OR_RETURN(low, ParseValue(part.substr(0, dash), rule));
      ASSIGN_OR_RETURN(high, ParseValue(part.substr(dash + 1), rule));
      if (low > high) {
        return Bad(rule, "range " + std::string(part) + " runs backwards");
      }
    } else {
      ASSIGN_OR_RETURN(low, ParseValue(part, rule));
      // "a/n" runs from a to the field's maximum; a lone "a" is just a.
      high = has_step ? rule.max : low;
    }
    for (int v = low; v <= high; v += step) bits.set(static_cast<size_t>(v));
  }
  return Ok();
}

std::string_view Macro(std::string_view text) {
  if (text == "@yearly" || text == "@annually") return "0 0 1 1 *";
  if (text == "@monthly") return "0 0 1 * *";
  if (text == "@weekly") return "0 0 * * 0";
  if (text == "@daily" || text == "@midnight") return "0 0 * * *";
  if (text == "@hourly") return "0 * * * *";
  return {};
}

}  // namespace

Result<CronExpression> CronExpression::Parse(std::string_view text) {
  if (text.size() > 256) return Fail(ErrorCode::kInvalidArgument, "longer than 256 bytes");
  if (text.starts_with("@")) {
    std::string_view expanded = Macro(text);
    if (expanded.empty()) {
      return Fail(ErrorCode::kInvalidArgument,
                  "unknown macro " + std::string(text) +
                      " (known: @yearly, @annually, @monthly, @weekly, @daily, @midnight, "
                      "@hourly)");
    }
    text = expanded;
  }
  std::vector<std::string_view> fields;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
    size_t start = i;
    while (i < text.size() && text[i] != ' ' && text[i] != '\t') ++i;
    if (i > start) fields.push_back(text.substr(start, i - start));
  }
  if (fields.size() != 5 && fields.size() != 6) {
    return Fail(ErrorCode::kInvalidArgument,
                "has " + std::to_string(fields.size()) +
                    " fields; give 5 (minute hour day-of-month month day-of-week) or 6 (seconds "
                    "first)");
  }
  CronExpression c;
  size_t f = 0;
  if (fields.size() == 6) {
    c.has_seconds_ = true;
    RETURN_IF_ERROR(ParseField(fields[f++], kSecond, c.seconds_));
  } else {
    c.seconds_.set(0);
  }
  RETURN_IF_ERROR(ParseField(fields[f++], kMinute, c.minutes_));
  RETURN_IF_ERROR(ParseField(fields[f++], kHour, c.hours_));
  RETURN_IF_ERROR(ParseField(fields[f++], kDay, c.days_, &c.days_star_));
  RETURN_IF_ERROR(ParseField(fields[f++], kMonth, c.months_));
  std::bitset<8> weekdays;
  RETURN_IF_ERROR(ParseField(fields[f++], kWeekday, weekdays, &c.weekdays_star_));
  for (size_t d = 0; d < 7; ++d) c.weekdays_[d] = weekdays[d];
  if (weekdays[7]) c.weekdays_.set(0);
  return c;
}

bool CronExpression::DayMatches(const cctz::civil_day& d) const {
  bool dom = days_[static_cast<size_t>(d.day())];
  int wd = 0;
  switch (cctz::get_weekday(d)) {
    case cctz::weekday::sunday: wd = 0; break;
    case cctz::weekday::monday: wd = 1; break;
    case cctz::weekday::tuesday: wd = 2; break;
    case cctz::weekday::wednesday: wd = 3; break;
    case cctz::weekday::thursday: wd = 4; break;
    case cctz::weekday::friday: wd = 5; break;
    case cctz::weekday::saturday: wd = 6; break;
  }
  bool dow = weekdays_[static_cast<size_t>(wd)];
  if (days_star_ || weekdays_star_) return dom && dow;
  return dom || dow;
}

bool CronExpression::Matches(const cctz::civil_second& t) const {
  return months_[static_cast<size_t>(t.month())] && DayMatches(cctz::civil_day(t)) &&
         hours_[static_cast<size_t>(t.hour())] && minutes_[static_cast<size_t>(t.minute())] &&
         seconds_[static_cast<size_t>(t.second())];
}

std::optional<cctz::civil_second> CronExpression::NextAfter(const cctz::civil_second& t) const {
  // Walks forward from t + 1 s, jumping to the start of the next month, day, hour or minute
  // whenever a coarser field does not match, so each step either matches or skips a whole unit.
  cctz::civil_second c = t + 1;
  const auto last_year = t.year() + 10;
  while (c.year() <= last_year) {
    if (!months_[static_cast<size_t>(c.month())]) {
      c = cctz::civil_second(cctz::civil_month(c) + 1);
    } else if (!DayMatches(cctz::civil_day(c))) {
      c = cctz::civil_second(cctz::civil_day(c) + 1);
    } else if (!hours_[static_cast<size_t>(c.hour())]) {
      c = cctz::civil_second(cctz::civil_hour(c) + 1);
    } else if (!minutes_[static_cast<size_t>(c.minute())]) {
      c = cctz::civil_second(cctz::civil_minute(c) + 1);
    } else if (!seconds_[static_cast<size_t>(c.second())]) {
      c += 1;
    } else {
      return c;
    }
  }
  return std::nullopt;
}

}  // namespace synaps::schedules
