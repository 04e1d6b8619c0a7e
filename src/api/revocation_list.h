// The JWT deny-list as each API process sees it: the jtis of synaps.revoked_tokens (migration
// 0014), held in memory and reloaded from PostgreSQL when older than `refresh`, so checking a
// token costs a hash lookup, not a query. A revocation made through this process applies at
// once; one made through another process within `refresh`. Reloads also delete expired
// entries (at most once a minute). Thread-safe; a failed reload keeps the last list (logged)
// and is retried at the next check.
#pragma once

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "db/pool.h"

namespace synaps::api {

class RevocationList {
 public:
  RevocationList(db::Pool* pool, std::chrono::milliseconds refresh)
      : pool_(pool), refresh_(refresh) {}

  // True when `jti` is revoked. May reload the list first (one caller at a time).
  bool IsRevoked(const std::string& jti);
  // Lists `jti` here at once (after it was written to PostgreSQL).
  void Add(const std::string& jti);
  // Reloads done so far (for tests).
  int64_t reloads() const { return reloads_; }

 private:
  using Clock = std::chrono::steady_clock;
  void ReloadIfStale();

  db::Pool* const pool_;
  const std::chrono::milliseconds refresh_;
  std::mutex reload_mu_;              // one reload at a time; held across the query
  Clock::time_point last_cleanup_{};  // guarded by reload_mu_
  mutable std::mutex mu_;
  std::unordered_set<std::string> revoked_;                        // guarded by mu_
  std::unordered_map<std::string, Clock::time_point> added_here_;  // guarded by mu_
  Clock::time_point loaded_at_{};                                  // guarded by mu_
  std::atomic<int64_t> reloads_{0};
};

}  // namespace synaps::api
