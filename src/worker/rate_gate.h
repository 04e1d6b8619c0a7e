// The shared provider rate limits as a task sees them (docs/flow-control.md): before each model
// call on a route that has `limits`, a TaskRun asks its worker's RateGate for a slot. The
// worker answers from PostgreSQL (store/rate_store.h), so every worker draws from the same
// limit. Lives on the worker's event loop; not thread-safe.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "core/error.h"
#include "store/rate_store.h"

namespace synaps::worker {

class RateGate {
 public:
  using Done = std::function<void(Result<store::RateAdmission>)>;
  virtual ~RateGate() = default;
  // Takes a slot for one call; `done` runs later on the event loop, never inside Acquire. A
  // kUnavailable answer means PostgreSQL could not be asked.
  virtual void Acquire(store::RateAsk ask, Done done) = 0;
  // A provider answered 429 asking to wait `wait`: shared with every worker (fire and forget).
  virtual void Block(const std::string& route, std::chrono::milliseconds wait) = 0;
  // Corrects the tokens charged for a call by what the provider reported (fire and forget).
  virtual void Settle(const std::string& route, int64_t tokens_per_minute,
                      int64_t delta_tokens) = 0;
};

}  // namespace synaps::worker
