#include "api/flow_sweep.h"

#include <spdlog/spdlog.h>

#include "store/queue_store.h"

namespace synaps::api {

FlowSweep::FlowSweep(db::Pool* pool, std::chrono::milliseconds period)
    : pool_(pool), thread_("flow sweep", period, [this] { SweepOnce(); }) {}

FlowSweep::~FlowSweep() { Stop(); }

void FlowSweep::Start() { thread_.Start(); }

void FlowSweep::Stop() { thread_.Stop(); }

void FlowSweep::SweepOnce() {
  auto conn = pool_->Acquire();
  if (!conn) return spdlog::warn("flow sweep: {}", conn.error().message);
  auto released = store::SweepConcurrencyKeys(**conn);
  if (!released) return spdlog::warn("flow sweep failed: {}", released.error().message);
  // Each one means a release trigger skipped a waiting task (a lock race): worth seeing.
  if (*released > 0) {
    spdlog::info("flow sweep: {} task(s) waiting for a concurrency slot made ready", *released);
  }
}

}  // namespace synaps::api
