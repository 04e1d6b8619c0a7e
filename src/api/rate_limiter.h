// Per-token request rate limit: a token bucket per principal (refilled at `rate_per_second`,
// holding at most `burst`). Thread-safe. A rate of 0 disables limiting.
#pragma once

#include <chrono>
#include <mutex>
#include <string>
#include <unordered_map>

namespace synaps::api {

class RateLimiter {
 public:
  RateLimiter(double rate_per_second, double burst) : rate_(rate_per_second), burst_(burst) {}

  // Takes one token for `key`. Returns 0 when allowed, else the seconds (rounded up, >= 1) after
  // which a request would be allowed — the Retry-After value.
  int Acquire(const std::string& key);

 private:
  struct Bucket {
    double tokens;
    std::chrono::steady_clock::time_point updated;
  };
  const double rate_;
  const double burst_;
  std::mutex mu_;
  std::unordered_map<std::string, Bucket> buckets_;  // guarded by mu_
};

}  // namespace synaps::api
