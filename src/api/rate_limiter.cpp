#include "api/rate_limiter.h"

#include <algorithm>
#include <cmath>

namespace synaps::api {

int RateLimiter::Acquire(const std::string& key) {
  if (rate_ <= 0) return 0;
  auto now = Clock::now();
  std::lock_guard lock(mu_);
  auto it = buckets_.find(key);
  if (it == buckets_.end()) {
    if (buckets_.size() >= max_keys_) MakeRoom(now);
    it = buckets_.emplace(key, Bucket{burst_, now}).first;
  } else {
    double elapsed = std::chrono::duration<double>(now - it->second.updated).count();
    it->second.tokens = std::min(burst_, it->second.tokens + elapsed * rate_);
    it->second.updated = now;
  }
  Bucket& b = it->second;
  if (b.tokens >= 1.0) {
    b.tokens -= 1.0;
    return 0;
  }
  return std::max(1, static_cast<int>(std::ceil((1.0 - b.tokens) / rate_)));
}

void RateLimiter::MakeRoom(Clock::time_point now) {
  if (now - last_sweep_ >= std::chrono::seconds(1)) {
    last_sweep_ = now;
    std::erase_if(buckets_, [&](const auto& kv) {
      double elapsed = std::chrono::duration<double>(now - kv.second.updated).count();
      return kv.second.tokens + elapsed * rate_ >= burst_;
    });
  }
  if (buckets_.size() < max_keys_) return;
  // Every bucket is in use: drop an arbitrary one (O(1); its key starts afresh).
  buckets_.erase(buckets_.begin());
}

size_t RateLimiter::size() const {
  std::lock_guard lock(mu_);
  return buckets_.size();
}

}  // namespace synaps::api
