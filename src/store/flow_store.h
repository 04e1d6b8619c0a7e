// What flow control is doing for one tenant (docs/flow-control.md), read for the console and
// `GET /v1/flow`: its concurrency keys, the routes' rate limits and its threads with runs
// waiting for their turn. Reads only; every count is of the tenant's own queue items.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "db/connection.h"

namespace synaps::store {

// At most this many keys and threads are answered (the busiest keys and the threads that have
// waited longest first); `moreKeys` / `moreThreads` say when there were others.
inline constexpr int kFlowListLimit = 500;

// {keys, routes, threads, moreKeys, moreThreads}:
//   keys: [{key, running, waiting, ready, oldestWaitingSince, limit, maxRunning, strategy}]
//     every concurrencyKey of the tenant with items leased (running), `limited` (waiting for
//     the key's limit) or ready; limit/maxRunning/strategy from the `concurrency` item that
//     applies (null: the key is unlimited); oldestWaitingSince: when the longest-waiting
//     limited item was queued (null: none waits). Most waiting first, then most running, then
//     by key.
//   routes: [{route, requestsPerMinute, tokensPerMinute, nextSlotAt, blockedUntil, waiting,
//     waitingUntil}] every route with `limits`; nextSlotAt / blockedUntil are the route's own
//     limiter state, shared by every tenant on the route (null when already past); waiting /
//     waitingUntil count only the tenant's tasks sent back to wait for their slot.
//   threads: [{threadId, queuedRuns, oldestQueuedAt, runId, runStatus}] the tenant's threads
//     with runs parked behind a busy thread; runId: the thread's oldest unfinished run (the one
//     holding the thread).
Result<nlohmann::json> TenantFlow(db::Connection& conn, const std::string& tenant_id);

}  // namespace synaps::store
