// Token-bucket rate limits keyed by a string (a client address, a principal): each key's bucket
// refills at `rate_per_second` and holds at most `burst`. Thread-safe. A rate of 0 disables
// limiting.
//
// Memory is bounded: at most `max_keys` buckets are kept. A bucket that has refilled to `burst`
// is the same as no bucket, so those are evicted first (swept at most once a second, when the
// table is full); if every bucket is still in use, an arbitrary one goes (its key starts afresh).
#pragma once

#include <chrono>
#include <cstddef>
#include <mutex>
#include <string>
#include <unordered_map>

namespace synaps::api {

class RateLimiter {
 public:
  RateLimiter(double rate_per_second, double burst, size_t max_keys = 100000)
      : rate_(rate_per_second), burst_(burst), max_keys_(max_keys < 1 ? 1 : max_keys) {}

  // Takes one token for `key`. Returns 0 when allowed, else the seconds (rounded up, >= 1) after
  // which a request would be allowed — the Retry-After value.
  int Acquire(const std::string& key);

  // Buckets currently kept (for tests and metrics).
  size_t size() const;

 private:
  using Clock = std::chrono::steady_clock;
  struct Bucket {
    double tokens;
    Clock::time_point updated;
  };
  void MakeRoom(Clock::time_point now);  // mu_ held

  const double rate_;
  const double burst_;
  const size_t max_keys_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Bucket> buckets_;  // guarded by mu_
  Clock::time_point last_sweep_{};                   // guarded by mu_
};

}  // namespace synaps::api
