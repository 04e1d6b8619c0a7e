#include "api/usage_rollup.h"

#include <spdlog/spdlog.h>

#include "core/barrier.h"
#include "store/usage_store.h"

namespace synaps::api {

UsageRollup::UsageRollup(db::Pool* pool, std::chrono::seconds period)
    : pool_(pool), period_(period) {}

UsageRollup::~UsageRollup() { Stop(); }

void UsageRollup::Start() {
  if (period_.count() <= 0 || thread_.joinable()) return;
  thread_ = std::thread([this] {
    while (!Guarded("usage rollup", [this] { Loop(); })) {
    }
  });
}

void UsageRollup::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void UsageRollup::Loop() {
  std::unique_lock lock(mu_);
  while (!cv_.wait_for(lock, period_, [this] { return stop_; })) {
    lock.unlock();
    // Passes back to back while a large backlog remains (each is bounded), then wait.
    for (int pass = 0; pass < 20; ++pass) {
      auto conn = pool_->Acquire();
      if (!conn) {
        spdlog::warn("usage rollup: {}", conn.error().message);
        break;
      }
      auto passed = store::RollUpUsage(**conn);
      if (!passed) {
        spdlog::warn("usage rollup failed: {}", passed.error().message);
        break;
      }
      if (*passed == 0) break;
      std::lock_guard check(mu_);
      if (stop_) break;
    }
    lock.lock();
  }
}

}  // namespace synaps::api
