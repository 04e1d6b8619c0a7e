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

bool UsageRollup::Stopping() {
  std::lock_guard lock(mu_);
  return stop_;
}

void UsageRollup::CatchUp() {
  // Passes back to back while a backlog remains (each is bounded), at most 20 per period.
  for (int pass = 0; pass < 20 && !Stopping(); ++pass) {
    auto conn = pool_->Acquire();
    if (!conn) return spdlog::warn("usage rollup: {}", conn.error().message);
    auto passed = store::RollUpUsage(**conn);
    if (!passed) return spdlog::warn("usage rollup failed: {}", passed.error().message);
    if (*passed == 0) return;
  }
}

void UsageRollup::Loop() {
  // At start first: right after an upgrade onto a long history, queries read live until then.
  CatchUp();
  std::unique_lock lock(mu_);
  while (!cv_.wait_for(lock, period_, [this] { return stop_; })) {
    lock.unlock();
    CatchUp();
    lock.lock();
  }
}

}  // namespace synaps::api
