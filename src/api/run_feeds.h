// Shared feeds of run events for SSE followers (GET /v1/runs/{id}/events): one PostgreSQL poller
// per followed run, whatever the number of followers, instead of one query per follower per
// interval. Each run's events are cached while it has followers; a follower reads them from
// its own cursor. Whichever follower asks first after `poll_interval` refreshes the run (the
// others wait for that query or read what is cached), so 1,000 followers of a run cost the
// queries of one. Thread-safe.
//
// Tenancy: a feed is keyed by tenant and run, and a run's events are read with the tenant's
// filter, so followers of different tenants never share a feed.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

#include "core/error.h"
#include "db/pool.h"
#include "store/run_store.h"

namespace synaps::api {

class ApiMetrics;

class RunFeeds {
 public:
  // `metrics` may be null. Events cached per run at most `max_cached` (older ones are read
  // directly for the rare follower that still needs them, from `catch_up` — the read replica
  // when there is one — falling back to `pool` when it has not replayed them yet). The live
  // polls stay on `pool` (the primary): a replica behind a just-submitted run would end the
  // stream as "not found".
  RunFeeds(db::Pool* pool, ApiMetrics* metrics,
           std::chrono::milliseconds poll_interval = std::chrono::milliseconds(200),
           size_t max_cached = 20000, db::Pool* catch_up = nullptr);
  ~RunFeeds();

  struct Page {
    nlohmann::json events = nlohmann::json::array();  // seq > after, oldest first
    std::string run_status;                           // as of the last poll
    bool more = false;  // more events are waiting: read again without a pause
  };

  // Registers a follower of `run_id` (as `tenant_id`); the feed lives while a returned handle
  // does. The producer of an event stream holds it.
  std::shared_ptr<void> Follow(const std::string& tenant_id, const std::string& run_id);

  // Events of the run after `after` (at most `limit`), refreshed from PostgreSQL when the
  // cache is older than the poll interval. kNotFound when the run is gone or not the tenant's;
  // other errors are PostgreSQL's (try again at the next step).
  Result<Page> Read(const std::string& tenant_id, const std::string& run_id, int64_t after,
                    size_t limit);

  // Feeds currently followed (for tests).
  size_t size() const;

 private:
  struct Feed;
  std::shared_ptr<Feed> Find(const std::string& key, bool create);
  void Unfollow(const std::string& key);
  Status Refresh(Feed& feed, const std::string& tenant_id, const std::string& run_id);
  // Events older than the cache, for one follower (see the constructor).
  Result<store::EventPage> CatchUp(const std::string& tenant_id, const std::string& run_id,
                                   int64_t after, size_t limit);

  db::Pool* const pool_;
  ApiMetrics* const metrics_;
  const std::chrono::milliseconds poll_interval_;
  const size_t max_cached_;
  db::Pool* const catch_up_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<Feed>> feeds_;  // guarded by mu_
};

// The same sharing for the tenant feeds of the web console (GET /v1/events): one poller per
// tenant, every `poll_interval`, whatever the number of its followers. A feed holds every event
// of the tenant with a ledger id above the cursor it started from (the last `max_cached` of
// them); a follower resuming from further back reads alone. The tenant "" is every tenant (the
// installation scope's `?tenant=*`): one feed of all events. Thread-safe.
class TenantFeeds {
 public:
  TenantFeeds(db::Pool* pool, ApiMetrics* metrics,
              std::chrono::milliseconds poll_interval = std::chrono::milliseconds(500),
              size_t max_cached = 5000);
  ~TenantFeeds();

  struct Page {
    nlohmann::json events = nlohmann::json::array();  // ledger id > after, oldest first
    bool more = false;   // more events are waiting: read again without a pause
    int64_t cursor = 0;  // where the follower's next read starts (its Last-Event-ID)
  };

  // Registers a follower of the tenant's feed; the feed lives while a returned handle does.
  std::shared_ptr<void> Follow(const std::string& tenant_id);
  // The tenant's events after ledger id `after` (at most `limit`), refreshed from PostgreSQL
  // when the feed is older than the poll interval. Errors are PostgreSQL's (try again later).
  Result<Page> Read(const std::string& tenant_id, int64_t after, size_t limit);

 private:
  struct Feed;
  Status Refresh(Feed& feed, const std::string& tenant_id);

  db::Pool* const pool_;
  ApiMetrics* const metrics_;
  const std::chrono::milliseconds poll_interval_;
  const size_t max_cached_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<Feed>> feeds_;  // guarded by mu_
};

}  // namespace synaps::api
