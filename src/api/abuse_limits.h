// Small bounded structures behind the API's abuse limits (docs/security.md, "Abuse limits").
// Each is thread-safe and holds at most a fixed number of entries, whatever clients send.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace synaps::api {

// Keys remembered for `ttl`: the negative cache of tokens that failed authentication (keyed by
// the token's SHA-256), so repeating a bad token costs no database lookup. At most
// `max_entries`: when full, expired entries are swept, then an arbitrary one is dropped.
class ExpiringSet {
 public:
  ExpiringSet(size_t max_entries, std::chrono::milliseconds ttl)
      : max_entries_(max_entries < 1 ? 1 : max_entries), ttl_(ttl) {}

  // True when `key` was added less than `ttl` ago.
  bool Contains(const std::string& key);
  void Add(const std::string& key);
  size_t size() const;

 private:
  using Clock = std::chrono::steady_clock;
  const size_t max_entries_;
  const std::chrono::milliseconds ttl_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Clock::time_point> expires_;  // guarded by mu_
};

// Concurrent event streams per principal. TryOpen hands out a slot that is given back when the
// last copy of the returned pointer goes (the stream's producer holds it), or nullptr when
// `key` already holds `max_per_key` slots (0 = no cap).
class StreamSlots {
 public:
  explicit StreamSlots(int64_t max_per_key) : max_per_key_(max_per_key) {}

  std::shared_ptr<void> TryOpen(const std::string& key);
  int64_t open() const;

 private:
  void Close(const std::string& key);
  const int64_t max_per_key_;
  mutable std::mutex mu_;
  std::map<std::string, int64_t> open_;  // guarded by mu_
  int64_t total_ = 0;                    // guarded by mu_
};

}  // namespace synaps::api
