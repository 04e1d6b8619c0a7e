// Provider rate limits shared by every worker (docs/flow-control.md): the SQL behind
// synaps.rate_acquire, rate_block and rate_settle (db/migrations/0028_rate_limits.sql). A route's
// limiter state is one row; each call is one statement.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "db/connection.h"
#include "store/queue_store.h"

namespace synaps::store {

struct RateAsk {
  std::string route;                // the route's name: the limiter's key
  int64_t requests_per_minute = 0;  // 0: none
  int64_t tokens_per_minute = 0;    // 0: none
  int64_t tokens = 0;               // the call's estimated tokens
  // The task's lease, when a long wait may send it back to the queue (a slot kept for it);
  // nullopt: the caller waits in place whatever the wait.
  std::optional<LeaseRef> lease;
  int64_t park_after_ms = 0;  // waits longer than this send the task back (with `lease`)
};

struct RateAdmission {
  int64_t wait_ms = 0;  // before the call may start; 0: now (the slot is taken)
  bool parked = false;  // the task is back in the queue until its slot; its lease is gone
};

// Takes the next slot of the route for one call.
Result<RateAdmission> AcquireRate(db::Connection& conn, const RateAsk& ask);

// A provider asked (429, Retry-After) to wait `wait_ms`: no call on `route` starts before then,
// on any worker.
Status BlockRate(db::Connection& conn, const std::string& route, int64_t wait_ms);

// A call that was charged an estimate used `delta_tokens` more (negative: fewer).
Status SettleRate(db::Connection& conn, const std::string& route, int64_t tokens_per_minute,
                  int64_t delta_tokens);

}  // namespace synaps::store
