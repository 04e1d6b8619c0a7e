// When and how long to wait before trying a provider call again. Pure functions: the clock and
// the random source are passed in, so the policy is testable without waiting.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <string>

namespace synaps::providers {

struct RetryPolicy {
  int max_attempts = 4;  // attempts including the first; 1 disables retries
  std::chrono::milliseconds base_delay{500};
  std::chrono::milliseconds max_delay{20000};
  // A Retry-After longer than this is not waited for inside the call: the call fails with a
  // retryable error and the queue schedules the task again later.
  std::chrono::milliseconds max_retry_after{60000};
};

// The wait before attempt `next_attempt` (2 for the first retry) when the server named no
// time: exponential from base_delay, capped at max_delay, with "equal jitter" (a uniformly
// random point in the upper half), so that many callers failing together spread out.
std::chrono::milliseconds BackoffDelay(const RetryPolicy& policy, int next_attempt,
                                       std::mt19937_64& rng);

// The wait a server asked for. `retry_after_ms` is the non-standard `retry-after-ms` header
// (OpenAI, Azure), preferred when present; `retry_after` is the standard header: delta-seconds
// or an HTTP-date, taken relative to `now`. nullopt when neither is present or parseable.
// A date in the past means "now" (zero).
std::optional<std::chrono::milliseconds> ParseRetryAfter(
    const std::string& retry_after, const std::string& retry_after_ms,
    std::chrono::system_clock::time_point now);

}  // namespace synaps::providers
