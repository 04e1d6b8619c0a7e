#include "api/abuse_limits.h"

namespace synaps::api {

bool ExpiringSet::Contains(const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = expires_.find(key);
  if (it == expires_.end()) return false;
  if (Clock::now() < it->second) return true;
  expires_.erase(it);
  return false;
}

void ExpiringSet::Add(const std::string& key) {
  auto now = Clock::now();
  std::lock_guard lock(mu_);
  if (expires_.size() >= max_entries_ && !expires_.contains(key)) {
    std::erase_if(expires_, [&](const auto& kv) { return kv.second <= now; });
    if (expires_.size() >= max_entries_) expires_.erase(expires_.begin());
  }
  expires_[key] = now + ttl_;
}

size_t ExpiringSet::size() const {
  std::lock_guard lock(mu_);
  return expires_.size();
}

std::shared_ptr<void> StreamSlots::TryOpen(const std::string& key) {
  {
    std::lock_guard lock(mu_);
    int64_t& n = open_[key];
    if (max_per_key_ > 0 && n >= max_per_key_) {
      if (n == 0) open_.erase(key);
      return nullptr;
    }
    ++n;
    ++total_;
  }
  // The deleter gives the slot back; `this` outlives every stream (the API server owns both).
  return std::shared_ptr<void>(new char(0), [this, key](void* p) {
    delete static_cast<char*>(p);
    Close(key);
  });
}

void StreamSlots::Close(const std::string& key) {
  std::lock_guard lock(mu_);
  if (auto it = open_.find(key); it != open_.end() && --it->second <= 0) open_.erase(it);
  --total_;
}

int64_t StreamSlots::open() const {
  std::lock_guard lock(mu_);
  return total_;
}

}  // namespace synaps::api
