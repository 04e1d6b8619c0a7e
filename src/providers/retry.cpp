#include "providers/retry.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>

namespace synaps::providers {
namespace {

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

// A non-negative decimal number ("2", "1.5"); nullopt for anything else.
std::optional<double> ParseSeconds(const std::string& s) {
  if (s.empty() || !(std::isdigit(static_cast<unsigned char>(s[0])))) return std::nullopt;
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size() || !std::isfinite(v) || v < 0) return std::nullopt;
  return v;
}

std::chrono::milliseconds FromSeconds(double seconds) {
  // A day is far beyond any sensible Retry-After; clamping avoids overflow on nonsense.
  return std::chrono::milliseconds(static_cast<int64_t>(std::min(seconds, 86400.0) * 1000.0));
}

}  // namespace

std::chrono::milliseconds BackoffDelay(const RetryPolicy& policy, int next_attempt,
                                       std::mt19937_64& rng) {
  int exponent = std::clamp(next_attempt - 2, 0, 30);
  int64_t base = std::max<int64_t>(policy.base_delay.count(), 1);
  int64_t cap = std::max<int64_t>(policy.max_delay.count(), 1);
  int64_t ceiling = std::min<int64_t>(cap, base << exponent);
  std::uniform_int_distribution<int64_t> upper_half(ceiling / 2, ceiling);
  return std::chrono::milliseconds(upper_half(rng));
}

std::optional<std::chrono::milliseconds> ParseRetryAfter(
    const std::string& retry_after, const std::string& retry_after_ms,
    std::chrono::system_clock::time_point now) {
  if (auto ms = ParseSeconds(Trim(retry_after_ms))) return FromSeconds(*ms / 1000.0);
  std::string value = Trim(retry_after);
  if (value.empty()) return std::nullopt;
  if (auto seconds = ParseSeconds(value)) return FromSeconds(*seconds);
  // libcurl's date parser understands the three HTTP-date forms (RFC 9110 section 5.6.7).
  time_t when = curl_getdate(value.c_str(), nullptr);
  if (when < 0) return std::nullopt;
  auto until = std::chrono::system_clock::from_time_t(when) - now;
  if (until <= std::chrono::system_clock::duration::zero()) return std::chrono::milliseconds(0);
  return FromSeconds(std::chrono::duration<double>(until).count());
}

}  // namespace synaps::providers
