#include "worker/provider_stats.h"

#include <algorithm>

namespace synaps::worker {

void HistogramCounts::Observe(const std::vector<double>& bounds, double value) {
  if (buckets.size() != bounds.size() + 1) buckets.assign(bounds.size() + 1, 0);
  size_t i = std::lower_bound(bounds.begin(), bounds.end(), value) - bounds.begin();
  ++buckets[i];
  sum += value;
  ++count;
}

const std::vector<double>& ProviderLatencyBounds() {
  static const std::vector<double> kBounds = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                              2.5,   5,    10,    20,   30,  60,   120};
  return kBounds;
}

const std::vector<double>& WakeupLatencyBounds() {
  static const std::vector<double> kBounds = {0.00025, 0.0005, 0.001, 0.002, 0.005,
                                              0.01,    0.025,  0.05,  0.1,   0.25,
                                              0.5,     1};
  return kBounds;
}

void ProviderStats::RecordCall(const std::string& provider, const std::string& model,
                               double seconds, std::string_view outcome) {
  std::lock_guard lock(mu_);
  Key key{provider, model};
  if (!calls_.contains(key) && calls_.size() >= kMaxSeries) key = {"other", "other"};
  ProviderSeries& s = calls_[key];
  s.latency.Observe(ProviderLatencyBounds(), std::max(seconds, 0.0));
  ++s.outcomes[std::string(outcome)];
}

void ProviderStats::RecordWakeup(double seconds) {
  std::lock_guard lock(mu_);
  wakeups_.Observe(WakeupLatencyBounds(), std::max(seconds, 0.0));
}

void ProviderStats::RecordRateWait(const std::string& route, std::string_view mode,
                                   double seconds) {
  std::lock_guard lock(mu_);
  std::string key = route;
  if (!rate_limits_.contains(key) && rate_limits_.size() >= kMaxSeries) key = "other";
  RateLimitSeries& s = rate_limits_[key];
  ++(mode == "queued" ? s.queued : s.held);
  s.wait_seconds += std::max(seconds, 0.0);
}

void ProviderStats::RecordRateBlock(const std::string& route) {
  std::lock_guard lock(mu_);
  std::string key = route;
  if (!rate_limits_.contains(key) && rate_limits_.size() >= kMaxSeries) key = "other";
  ++rate_limits_[key].retry_after;
}

std::map<std::string, RateLimitSeries> ProviderStats::RateLimits() const {
  std::lock_guard lock(mu_);
  return rate_limits_;
}

std::map<ProviderStats::Key, ProviderSeries> ProviderStats::Calls() const {
  std::lock_guard lock(mu_);
  return calls_;
}

HistogramCounts ProviderStats::Wakeups() const {
  std::lock_guard lock(mu_);
  return wakeups_;
}

}  // namespace synaps::worker
