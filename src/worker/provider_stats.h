// What one worker process saw of its model providers and its wakeups, for its Prometheus
// endpoint (cli/worker_health.h):
//
//   synaps_provider_request_duration_seconds{provider,model}  histogram of model calls (each
//       call as the task saw it: a provider's own retries are inside one call)
//   synaps_provider_requests_total{provider,model,outcome}    outcome: ok, or the error's code
//       (unavailable, resource_exhausted for 429, deadline_exceeded, invalid_argument, ...)
//   synaps_worker_wakeup_latency_seconds                      bus wakeup, from its publish (the
//       Synaps-Published-At header, the publisher's clock) to its arrival here
//   synaps_rate_limit_waits_total{route,mode}                 model calls that had to wait for
//       their route's shared rate limit; mode: held (waited in place) or queued (the task went
//       back to the queue until its slot)
//   synaps_rate_limit_wait_seconds_total{route}               the time those calls waited
//   synaps_rate_limit_retry_after_total{route}                429s with Retry-After shared with
//       every worker
//
// Label sets are bounded: after kMaxSeries distinct (provider, model) pairs, further pairs count
// under ("other", "other"); after kMaxSeries routes, under "other". Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace synaps::worker {

// Counts per upper bound (not cumulative), then one for everything above the last bound.
struct HistogramCounts {
  std::vector<uint64_t> buckets;
  double sum = 0;
  uint64_t count = 0;

  void Observe(const std::vector<double>& bounds, double value);
};

// Upper bounds, in seconds, of the latency histograms (5 ms .. 2 min).
const std::vector<double>& ProviderLatencyBounds();
// Upper bounds, in seconds, of the wakeup histogram (0.25 ms .. 1 s).
const std::vector<double>& WakeupLatencyBounds();

struct ProviderSeries {
  HistogramCounts latency;
  std::map<std::string, uint64_t> outcomes;  // "ok" or an error code name -> calls
};

struct RateLimitSeries {
  uint64_t held = 0;    // waits in place
  uint64_t queued = 0;  // tasks sent back to the queue
  double wait_seconds = 0;
  uint64_t retry_after = 0;  // 429 Retry-Afters shared
};

class ProviderStats {
 public:
  static constexpr size_t kMaxSeries = 100;
  using Key = std::pair<std::string, std::string>;  // provider, model

  void RecordCall(const std::string& provider, const std::string& model, double seconds,
                  std::string_view outcome);
  // A wakeup that left its publisher `seconds` ago (negative clock skew counts as 0).
  void RecordWakeup(double seconds);

  // A call on `route` waited `seconds` for a slot; mode "held" or "queued".
  void RecordRateWait(const std::string& route, std::string_view mode, double seconds);
  // A 429's Retry-After on `route` was shared with every worker.
  void RecordRateBlock(const std::string& route);

  std::map<Key, ProviderSeries> Calls() const;
  std::map<std::string, RateLimitSeries> RateLimits() const;
  HistogramCounts Wakeups() const;

 private:
  mutable std::mutex mu_;
  std::map<Key, ProviderSeries> calls_;  // guarded by mu_
  HistogramCounts wakeups_;              // guarded by mu_
  std::map<std::string, RateLimitSeries> rate_limits_;  // guarded by mu_
};

}  // namespace synaps::worker
