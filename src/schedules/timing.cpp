#include "schedules/timing.h"

#include <charconv>
#include <regex>

namespace synaps::schedules {

using std::chrono::seconds;

Result<seconds> ParseDuration(std::string_view text, const std::string& field) {
  auto bad = [&](const std::string& why) {
    return Fail(ErrorCode::kInvalidArgument, field + ": " + why, field);
  };
  if (text.empty()) return bad("must be a duration such as 30s, 5m, 1h or 1h30m");
  if (text.size() > 32) return bad("must be at most 32 bytes");
  int64_t total = 0;
  size_t i = 0;
  int last_rank = 5;
  while (i < text.size()) {
    size_t start = i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
    if (i == start || i == text.size()) {
      return bad("'" + std::string(text) +
                 "' is not a duration: give numbers with units s, m, h or d (30s, 5m, 1h30m)");
    }
    int64_t n = 0;
    auto [p, ec] = std::from_chars(text.data() + start, text.data() + i, n);
    if (ec != std::errc() || n > 1'000'000'000) return bad("is too large");
    int64_t unit = 0;
    int rank = 0;
    switch (text[i]) {
      case 'd': unit = 86400; rank = 4; break;
      case 'h': unit = 3600; rank = 3; break;
      case 'm': unit = 60; rank = 2; break;
      case 's': unit = 1; rank = 1; break;
      default:
        return bad("unknown unit '" + std::string(1, text[i]) + "' (use s, m, h or d)");
    }
    if (rank >= last_rank) return bad("units must go from large to small, each once (1h30m)");
    last_rank = rank;
    total += n * unit;
    if (total > int64_t{1'000'000'000}) return bad("is too large");
    ++i;
  }
  return seconds(total);
}

std::string FormatDuration(seconds d) {
  int64_t s = d.count();
  if (s == 0) return "0s";
  std::string out;
  for (auto [unit, suffix] : {std::pair<int64_t, char>{86400, 'd'}, {3600, 'h'}, {60, 'm'},
                              {1, 's'}}) {
    if (s >= unit) {
      out += std::to_string(s / unit) + suffix;
      s %= unit;
    }
  }
  return out;
}

Result<cctz::time_zone> LoadZone(std::string_view name, const std::string& field) {
  // Names only, never paths: cctz would read any file under its zoneinfo directory.
  static const std::regex kName("[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}");
  const std::string s(name);
  if (s.size() > 64 || !std::regex_match(s, kName) || s == "localtime") {
    return Fail(ErrorCode::kInvalidArgument,
                field + ": must be an IANA time zone name such as UTC or Europe/Berlin", field);
  }
  cctz::time_zone zone;
  if (!cctz::load_time_zone(s, &zone)) {
    return Fail(ErrorCode::kInvalidArgument,
                field + ": unknown time zone " + s + " (an IANA name such as America/New_York)",
                field);
  }
  return zone;
}

std::string FormatTime(TimePoint t) {
  return cctz::format("%Y-%m-%dT%H:%M:%SZ", t, cctz::utc_time_zone());
}

std::optional<TimePoint> ParseTime(std::string_view text) {
  static const std::regex kRfc3339(
      R"((\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2}))");
  std::cmatch m;
  if (text.size() > 64 || !std::regex_match(text.begin(), text.end(), m, kRfc3339)) {
    return std::nullopt;
  }
  std::string zone = m[4].str();
  if (zone == "z") zone = "Z";
  std::string normalized = m[1].str() + "T" + m[2].str() + (zone == "Z" ? "+00:00" : zone);
  TimePoint t;
  if (!cctz::parse("%Y-%m-%dT%H:%M:%S%Ez", normalized, cctz::utc_time_zone(), &t)) {
    return std::nullopt;
  }
  return t;
}

FireTimes FireTimes::Cron(CronExpression cron, cctz::time_zone zone) {
  FireTimes f;
  f.cron_ = std::move(cron);
  f.zone_ = zone;
  return f;
}

FireTimes FireTimes::Every(seconds interval) {
  FireTimes f;
  f.every_ = interval < seconds(1) ? seconds(1) : interval;
  return f;
}

std::optional<TimePoint> FireTimes::Next(TimePoint after) const {
  if (!cron_) {
    const int64_t n = every_.count();
    int64_t t = after.time_since_epoch().count();
    // Floor division, so that times before the epoch work too.
    int64_t k = t >= 0 ? t / n : -((-t + n - 1) / n);
    return TimePoint(seconds((k + 1) * n));
  }
  cctz::civil_second civil = cctz::convert(after, zone_);
  // Bounded: a repeated hour holds at most 3600 candidates whose first occurrence is already
  // past; a skipped hour maps all of its candidates to one instant.
  for (int guard = 0; guard < 100000; ++guard) {
    auto next = cron_->NextAfter(civil);
    if (!next) return std::nullopt;
    const cctz::time_zone::civil_lookup lookup = zone_.lookup(*next);
    std::chrono::time_point<std::chrono::system_clock, seconds> at;
    switch (lookup.kind) {
      case cctz::time_zone::civil_lookup::UNIQUE:
      case cctz::time_zone::civil_lookup::REPEATED:  // the first occurrence
        at = lookup.pre;
        break;
      case cctz::time_zone::civil_lookup::SKIPPED:  // the first instant after the gap
        at = lookup.trans;
        break;
    }
    if (at > after) return at;
    civil = *next;
  }
  return std::nullopt;
}

std::vector<TimePoint> FireTimes::Between(TimePoint after, TimePoint until, size_t limit) const {
  std::vector<TimePoint> out;
  TimePoint t = after;
  while (out.size() < limit) {
    auto next = Next(t);
    if (!next || *next > until) break;
    out.push_back(*next);
    t = *next;
  }
  return out;
}

std::chrono::milliseconds JitterFor(std::string_view name, TimePoint fire_time,
                                    seconds jitter) {
  if (jitter.count() <= 0) return std::chrono::milliseconds(0);
  // FNV-1a: stable across processes and releases (std::hash is neither).
  uint64_t h = 1469598103934665603ull;
  auto mix = [&](uint8_t b) {
    h ^= b;
    h *= 1099511628211ull;
  };
  for (char c : name) mix(static_cast<uint8_t>(c));
  int64_t t = fire_time.time_since_epoch().count();
  for (int i = 0; i < 8; ++i) mix(static_cast<uint8_t>(t >> (8 * i)));
  const uint64_t span = static_cast<uint64_t>(jitter.count()) * 1000;
  return std::chrono::milliseconds(static_cast<int64_t>(h % span));
}

}  // namespace synaps::schedules
