#include "api/run_feeds.h"

#include <algorithm>
#include <deque>

#include "api/metrics.h"
#include "store/run_store.h"

namespace synaps::api {

using nlohmann::json;

namespace {

constexpr int kPageSize = 500;

bool Finished(const std::string& status) {
  return status == "succeeded" || status == "failed" || status == "cancelled";
}

}  // namespace

struct RunFeeds::Feed {
  std::mutex mu;            // one refresh at a time; guards the fields below
  int followers = 0;        // guarded by RunFeeds::mu_
  std::deque<json> events;  // consecutive in seq, the last `max_cached` read so far
  int64_t last_seq = 0;     // highest seq read
  std::string status;
  bool more = false;  // the last poll filled a page
  bool gone = false;  // kNotFound
  std::chrono::steady_clock::time_point polled_at{};
};

RunFeeds::RunFeeds(db::Pool* pool, ApiMetrics* metrics, std::chrono::milliseconds poll_interval,
                   size_t max_cached, db::Pool* catch_up)
    : pool_(pool),
      metrics_(metrics),
      poll_interval_(poll_interval),
      max_cached_(max_cached),
      catch_up_(catch_up != nullptr ? catch_up : pool) {}

RunFeeds::~RunFeeds() = default;

std::shared_ptr<void> RunFeeds::Follow(const std::string& tenant_id, const std::string& run_id) {
  std::string key = tenant_id + "/" + run_id;
  {
    std::lock_guard lock(mu_);
    auto& feed = feeds_[key];
    if (!feed) feed = std::make_shared<Feed>();
    ++feed->followers;
  }
  return std::shared_ptr<void>(new char(0), [this, key](void* p) {
    delete static_cast<char*>(p);
    Unfollow(key);
  });
}

void RunFeeds::Unfollow(const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = feeds_.find(key);
  if (it != feeds_.end() && --it->second->followers <= 0) feeds_.erase(it);
}

size_t RunFeeds::size() const {
  std::lock_guard lock(mu_);
  return feeds_.size();
}

std::shared_ptr<RunFeeds::Feed> RunFeeds::Find(const std::string& key, bool create) {
  std::lock_guard lock(mu_);
  auto it = feeds_.find(key);
  if (it != feeds_.end()) return it->second;
  if (!create) return nullptr;
  return std::make_shared<Feed>();  // an unfollowed read: a private, throwaway feed
}

Status RunFeeds::Refresh(Feed& feed, const std::string& tenant_id, const std::string& run_id) {
  ASSIGN_OR_RETURN(auto conn, pool_->Acquire());
  if (metrics_ != nullptr) metrics_->CountFeedQuery();
  auto page = store::ListRunEvents(*conn, tenant_id, run_id, feed.last_seq, kPageSize);
  if (!page) {
    if (page.error().code == ErrorCode::kNotFound) feed.gone = true;
    return std::unexpected(page.error());
  }
  for (auto& e : page->events) {
    feed.last_seq = e["seq"].get<int64_t>();
    feed.events.push_back(std::move(e));
  }
  while (feed.events.size() > max_cached_) feed.events.pop_front();
  feed.status = page->run_status;
  feed.more = page->events.size() == static_cast<size_t>(kPageSize);
  feed.polled_at = std::chrono::steady_clock::now();
  return Ok();
}

Result<store::EventPage> RunFeeds::CatchUp(const std::string& tenant_id, const std::string& run_id,
                                           int64_t after, size_t limit) {
  if (catch_up_ != pool_) {
    if (auto conn = catch_up_->Acquire(std::chrono::milliseconds(1000))) {
      if (metrics_ != nullptr) metrics_->CountFeedQuery();
      auto page = store::ListRunEvents(**conn, tenant_id, run_id, after, static_cast<int>(limit));
      if (page && !page->events.empty()) return page;
    }
  }
  ASSIGN_OR_RETURN(auto conn, pool_->Acquire());
  if (metrics_ != nullptr) metrics_->CountFeedQuery();
  return store::ListRunEvents(*conn, tenant_id, run_id, after, static_cast<int>(limit));
}

Result<RunFeeds::Page> RunFeeds::Read(const std::string& tenant_id, const std::string& run_id,
                                      int64_t after, size_t limit) {
  auto feed = Find(tenant_id + "/" + run_id, /*create=*/true);
  std::lock_guard lock(feed->mu);
  if (feed->gone) return Fail(ErrorCode::kNotFound, "run " + run_id + " not found");
  bool stale = std::chrono::steady_clock::now() - feed->polled_at >= poll_interval_;
  bool behind = after >= feed->last_seq;  // nothing cached for this follower yet
  if (feed->polled_at == std::chrono::steady_clock::time_point{} || feed->more ||
      (stale && behind && !Finished(feed->status))) {
    RETURN_IF_ERROR(Refresh(*feed, tenant_id, run_id));
  }
  Page out;
  out.run_status = feed->status;
  int64_t first_cached =
      feed->events.empty() ? feed->last_seq + 1 : feed->events.front()["seq"].get<int64_t>();
  if (after + 1 < first_cached) {
    // Older than the cache holds: this follower alone reads them from PostgreSQL — the replica
    // when there is one, the primary when the replica has not replayed them yet.
    ASSIGN_OR_RETURN(auto page, CatchUp(tenant_id, run_id, after, limit));
    out.events = std::move(page.events);
    out.more = true;
    return out;
  }
  auto it = std::upper_bound(feed->events.begin(), feed->events.end(), after,
                             [](int64_t a, const json& e) { return a < e["seq"].get<int64_t>(); });
  for (; it != feed->events.end() && out.events.size() < limit; ++it) out.events.push_back(*it);
  out.more = feed->more || it != feed->events.end();
  return out;
}

struct TenantFeeds::Feed {
  std::mutex mu;              // one refresh at a time; guards the fields below
  int followers = 0;          // guarded by TenantFeeds::mu_
  std::deque<json> events;    // every event of the tenant with id in (covered_from, last_id]
  int64_t covered_from = -1;  // -1: not started
  int64_t last_id = 0;
  bool more = false;
  std::chrono::steady_clock::time_point polled_at{};
};

TenantFeeds::TenantFeeds(db::Pool* pool, ApiMetrics* metrics,
                         std::chrono::milliseconds poll_interval, size_t max_cached)
    : pool_(pool), metrics_(metrics), poll_interval_(poll_interval), max_cached_(max_cached) {}

TenantFeeds::~TenantFeeds() = default;

std::shared_ptr<void> TenantFeeds::Follow(const std::string& tenant_id) {
  {
    std::lock_guard lock(mu_);
    auto& feed = feeds_[tenant_id];
    if (!feed) feed = std::make_shared<Feed>();
    ++feed->followers;
  }
  return std::shared_ptr<void>(new char(0), [this, tenant_id](void* p) {
    delete static_cast<char*>(p);
    std::lock_guard lock(mu_);
    auto it = feeds_.find(tenant_id);
    if (it != feeds_.end() && --it->second->followers <= 0) feeds_.erase(it);
  });
}

Status TenantFeeds::Refresh(Feed& feed, const std::string& tenant_id) {
  ASSIGN_OR_RETURN(auto conn, pool_->Acquire());
  if (metrics_ != nullptr) metrics_->CountFeedQuery();
  ASSIGN_OR_RETURN(json events, store::ListTenantEvents(*conn, tenant_id, feed.last_id, kPageSize));
  for (auto& e : events) {
    feed.last_id = e["id"].get<int64_t>();
    feed.events.push_back(std::move(e));
  }
  while (feed.events.size() > max_cached_) {
    feed.covered_from = feed.events.front()["id"].get<int64_t>();
    feed.events.pop_front();
  }
  feed.more = events.size() == static_cast<size_t>(kPageSize);
  feed.polled_at = std::chrono::steady_clock::now();
  return Ok();
}

Result<TenantFeeds::Page> TenantFeeds::Read(const std::string& tenant_id, int64_t after,
                                            size_t limit) {
  std::shared_ptr<Feed> feed;
  {
    std::lock_guard lock(mu_);
    auto it = feeds_.find(tenant_id);
    feed = it != feeds_.end() ? it->second : std::make_shared<Feed>();
  }
  std::lock_guard lock(feed->mu);
  if (feed->covered_from < 0) {
    feed->covered_from = after;
    feed->last_id = after;
  }
  Page out;
  if (after < feed->covered_from) {
    // From before the feed's start: this follower alone reads them from PostgreSQL.
    ASSIGN_OR_RETURN(auto conn, pool_->Acquire());
    if (metrics_ != nullptr) metrics_->CountFeedQuery();
    ASSIGN_OR_RETURN(out.events,
                     store::ListTenantEvents(*conn, tenant_id, after, static_cast<int>(limit)));
    out.more = out.events.size() == limit;
    out.cursor = out.events.empty() ? after : out.events.back()["id"].get<int64_t>();
    // Everything up to now was read: nothing lies between the cursor and the feed's start.
    if (!out.more) out.cursor = std::max(out.cursor, feed->covered_from);
    return out;
  }
  bool stale = std::chrono::steady_clock::now() - feed->polled_at >= poll_interval_;
  if (after >= feed->last_id && (stale || feed->more)) RETURN_IF_ERROR(Refresh(*feed, tenant_id));
  auto it = std::upper_bound(feed->events.begin(), feed->events.end(), after,
                             [](int64_t a, const json& e) { return a < e["id"].get<int64_t>(); });
  for (; it != feed->events.end() && out.events.size() < limit; ++it) out.events.push_back(*it);
  out.more = feed->more || it != feed->events.end();
  out.cursor = out.events.empty() ? after : out.events.back()["id"].get<int64_t>();
  return out;
}

}  // namespace synaps::api
