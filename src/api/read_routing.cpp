#include "api/read_routing.h"

#include <spdlog/spdlog.h>

#include <charconv>
#include <cstdio>

namespace synaps::api {

std::optional<uint64_t> ParseLsn(std::string_view text) {
  const size_t slash = text.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash > 8 || text.size() - slash - 1 == 0 ||
      text.size() - slash - 1 > 8) {
    return std::nullopt;
  }
  uint32_t high = 0, low = 0;
  auto parse = [](std::string_view part, uint32_t& out) {
    auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), out, 16);
    return ec == std::errc() && end == part.data() + part.size();
  };
  if (!parse(text.substr(0, slash), high) || !parse(text.substr(slash + 1), low)) {
    return std::nullopt;
  }
  return (uint64_t{high} << 32) | low;
}

std::string FormatLsn(uint64_t lsn) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%X/%X", static_cast<unsigned>(lsn >> 32),
                static_cast<unsigned>(lsn & 0xffffffffu));
  return buf;
}

namespace {

// A remembered write whose LSN is unknown: nothing the replica replays reaches it.
constexpr uint64_t kPrimaryOnly = UINT64_MAX;

int64_t SteadyNowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

ReadRouting::ReadRouting(db::Pool* primary, db::Pool* replica, std::chrono::milliseconds remember,
                         size_t max_principals, std::chrono::milliseconds breaker)
    : primary_(primary),
      replica_(replica),
      remember_(remember),
      max_principals_(max_principals),
      breaker_(breaker) {}

bool ReadRouting::ReplicaSkipped() const {
  return SteadyNowNs() < skip_replica_until_.load(std::memory_order_relaxed);
}

void ReadRouting::TripBreaker(const std::string& why) {
  const int64_t until =
      SteadyNowNs() + std::chrono::duration_cast<std::chrono::nanoseconds>(breaker_).count();
  // Logged once per trip, not once per read.
  if (skip_replica_until_.exchange(until, std::memory_order_relaxed) < SteadyNowNs()) {
    spdlog::warn("read replica unavailable, reads go to the primary for {} ms: {}",
                 breaker_.count(), why);
  }
}

uint64_t ReadRouting::Remembered(const std::string& principal) {
  std::lock_guard lock(mu_);
  auto it = writes_.find(principal);
  if (it == writes_.end()) return 0;
  if (std::chrono::steady_clock::now() - it->second.at > remember_) {
    writes_.erase(it);
    return 0;
  }
  return it->second.lsn;
}

bool ReadRouting::ReplicaReached(db::Connection& conn, uint64_t lsn) {
  if (replayed_.load(std::memory_order_relaxed) >= lsn) return true;
  // NULL on a server that is not in recovery: a primary named as the replica has everything.
  auto r = conn.Exec("SELECT coalesce(pg_last_wal_replay_lsn(), pg_current_wal_lsn())::text");
  if (!r || r->rows() != 1) {
    TripBreaker(r ? "no replay position" : r.error().message);
    return false;
  }
  auto replayed = ParseLsn(r->Get(0, 0));
  if (!replayed) return false;
  uint64_t seen = replayed_.load(std::memory_order_relaxed);
  while (*replayed > seen && !replayed_.compare_exchange_weak(seen, *replayed)) {
  }
  return *replayed >= lsn;
}

Result<ReadRouting::Lease> ReadRouting::Acquire(const std::string& principal, uint64_t client_lsn) {
  const uint64_t need = replica_ != nullptr ? std::max(client_lsn, Remembered(principal)) : 0;
  if (replica_ != nullptr && need != kPrimaryOnly && !ReplicaSkipped()) {
    auto conn = replica_->Acquire(std::chrono::milliseconds(1000));
    if (!conn) {
      TripBreaker(conn.error().message);
    } else if (need == 0 || ReplicaReached(**conn, need)) {
      return Lease{std::move(*conn), true};
    }
  }
  ASSIGN_OR_RETURN(auto conn, primary_->Acquire());
  return Lease{std::move(conn), false};
}

std::optional<uint64_t> ReadRouting::NoteWrite(const std::string& principal) {
  if (replica_ == nullptr) return std::nullopt;
  std::optional<uint64_t> lsn;
  if (auto conn = primary_->Acquire()) {
    auto r = (*conn)->Exec("SELECT pg_current_wal_insert_lsn()::text");
    if (r && r->rows() == 1) lsn = ParseLsn(r->Get(0, 0));
  }
  // The write happened, but where it ends in the WAL is unknown: the primary it is, for a while.
  Remember(principal, lsn.value_or(kPrimaryOnly));
  return lsn;
}

void ReadRouting::Remember(const std::string& principal, uint64_t lsn) {
  std::lock_guard lock(mu_);
  if (writes_.size() >= max_principals_) {
    // Forget the expired ones; if that is not enough, everyone (clients that send the header
    // back keep their guarantee; the others read from the replica a little early).
    const auto now = std::chrono::steady_clock::now();
    std::erase_if(writes_, [&](const auto& w) { return now - w.second.at > remember_; });
    if (writes_.size() >= max_principals_) writes_.clear();
  }
  const auto now = std::chrono::steady_clock::now();
  auto& w = writes_[principal];
  if (now - w.at > remember_) w.lsn = 0;  // an expired entry (e.g. primary-only) starts over
  w.lsn = std::max(w.lsn, lsn);
  w.at = now;
}

}  // namespace synaps::api
