#include "api/usage_rollup.h"

#include <spdlog/spdlog.h>

#include "store/usage_store.h"

namespace synaps::api {

UsageRollup::UsageRollup(db::Pool* pool, std::chrono::seconds period)
    : pool_(pool), thread_("usage rollup", period, [this] { CatchUp(); }) {}

UsageRollup::~UsageRollup() { Stop(); }

// At start first: right after an upgrade onto a long history, queries read live until then.
void UsageRollup::Start() { thread_.Start(); }

void UsageRollup::Stop() { thread_.Stop(); }

void UsageRollup::CatchUp() {
  // Passes back to back while a backlog remains (each is bounded), at most 20 per period.
  for (int pass = 0; pass < 20 && !thread_.stopping(); ++pass) {
    auto conn = pool_->Acquire();
    if (!conn) return spdlog::warn("usage rollup: {}", conn.error().message);
    auto passed = store::RollUpUsage(**conn);
    if (!passed) return spdlog::warn("usage rollup failed: {}", passed.error().message);
    if (*passed == 0) return;
  }
}

}  // namespace synaps::api
