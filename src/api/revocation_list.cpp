#include "api/revocation_list.h"

#include <spdlog/spdlog.h>

#include "store/auth_store.h"

namespace synaps::api {

bool RevocationList::IsRevoked(const std::string& jti) {
  ReloadIfStale();
  std::lock_guard lock(mu_);
  return revoked_.contains(jti);
}

void RevocationList::Add(const std::string& jti) {
  std::lock_guard lock(mu_);
  revoked_.insert(jti);
  added_here_[jti] = Clock::now();
}

void RevocationList::ReloadIfStale() {
  {
    std::lock_guard lock(mu_);
    if (loaded_at_ != Clock::time_point{} && Clock::now() - loaded_at_ < refresh_) return;
  }
  std::unique_lock reload(reload_mu_, std::try_to_lock);
  if (!reload.owns_lock()) return;  // another request is reloading: use the list we have
  {
    std::lock_guard lock(mu_);
    if (loaded_at_ != Clock::time_point{} && Clock::now() - loaded_at_ < refresh_) return;
  }
  auto conn = pool_->Acquire(std::chrono::milliseconds(1000));
  if (!conn) {
    spdlog::warn("JWT deny-list not reloaded: {}", conn.error().message);
    return;
  }
  auto now = Clock::now();
  if (now - last_cleanup_ >= std::chrono::minutes(1)) {
    last_cleanup_ = now;
    if (auto deleted = store::DeleteExpiredRevocations(**conn); !deleted) {
      spdlog::warn("expired JWT revocations not deleted: {}", deleted.error().message);
    }
  }
  auto listed = store::ListRevokedTokens(**conn);
  if (!listed) {
    spdlog::warn("JWT deny-list not reloaded: {}", listed.error().message);
    return;
  }
  std::unordered_set<std::string> fresh(listed->begin(), listed->end());
  ++reloads_;
  std::lock_guard lock(mu_);
  // A reload whose query ran before a revocation made here committed must not drop it.
  std::erase_if(added_here_,
                [&](const auto& kv) { return now - kv.second > std::chrono::minutes(1); });
  for (const auto& [jti, at] : added_here_) fresh.insert(jti);
  revoked_.swap(fresh);
  loaded_at_ = now;
}

}  // namespace synaps::api
