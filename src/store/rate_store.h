// Provider rate limits shared by every worker (docs/flow-control.md): the SQL behind
// synaps.rate_reserve, rate_park, rate_block and rate_settle (db/migrations/0028_rate_limits.sql,
// 0041_rate_fair.sql). A route's limiter state is one row; asking for a slot is one short
// statement on it, and parking a task is a second one that does not touch it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "db/connection.h"
#include "store/queue_store.h"

namespace synaps::store {

struct RateAsk {
  std::string route;                // the route's name: the limiter's key
  std::string tenant;               // the asking task's tenant: parked tasks come back per tenant
  int64_t requests_per_minute = 0;  // 0: none
  int64_t tokens_per_minute = 0;    // 0: none
  int64_t tokens = 0;               // the call's estimated tokens
  // The task's lease, when a long wait may send it back to the queue (without a slot: it asks
  // again when claimed again); nullopt: the caller waits in place whatever the wait.
  std::optional<LeaseRef> lease;
  int64_t park_after_ms = 0;  // waits longer than this send the task back (with `lease`)
};

struct RateAdmission {
  int64_t wait_ms = 0;  // before the call may start; 0: now (the slot is taken)
  bool parked = false;  // the task is back in the queue (no slot kept); its lease is gone
};

// Takes the next slot of the route for one call, or (with `lease`, when the slot is further than
// `park_after_ms`) parks the task without a slot. Two statements, each its own transaction: the
// route's row is never locked while the item, run or ledger is written. When the lease is gone
// before the park, the slot is taken and waited for in place (the call's completion then fails
// on the lease, as any).
Result<RateAdmission> AcquireRate(db::Connection& conn, const RateAsk& ask);

// A provider asked (429, Retry-After) to wait `wait_ms`: no call on `route` starts before then,
// on any worker.
Status BlockRate(db::Connection& conn, const std::string& route, int64_t wait_ms);

// A call that was charged an estimate used `delta_tokens` more (negative: fewer).
Status SettleRate(db::Connection& conn, const std::string& route, int64_t tokens_per_minute,
                  int64_t delta_tokens);

}  // namespace synaps::store
