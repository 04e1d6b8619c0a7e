// The queue engine's SQL: claim, renew, complete and fail through the functions in
// db/migrations/0002_queue_functions.sql. Every mutation takes (item_id, lease_epoch); a stale
// epoch changes nothing and is reported, never thrown.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "db/connection.h"

namespace synaps::store {

struct ClaimedItem {
  int64_t item_id = 0;
  int64_t lease_epoch = 0;
  int attempt = 0;
  std::string task_id;
  std::string run_id;
  std::string tenant_id;
  std::string thread_id;
  std::string task_name;
  std::string task_kind;
  nlohmann::json spec;
  std::string lease_expires_at;
  nlohmann::json upstream;  // {dependency name: its output} for fan-in tasks
  nlohmann::json history;   // [{input, output}] earlier turns of the thread, oldest first
  int64_t snapshot_version = 0;  // latest control snapshot version at claim time
  // Set when a stored value of the item (spec, upstream, history) does not read back as JSON:
  // the item is claimed, and the claimer must fail it (not retryable) with this error.
  std::optional<Error> invalid;
};

// Claims up to `limit` items of `queues` for `worker`. `tenant_id` set: only that tenant's
// items (remote workers); unset: any tenant's (built-in workers). `fair`: the free slots are
// shared between tenants and fairness keys by weight; otherwise by priority and age alone
// (docs/flow-control.md).
Result<std::vector<ClaimedItem>> ClaimQueueItems(
    db::Connection& conn, const std::string& worker, const std::vector<std::string>& queues,
    int limit, int lease_seconds, const std::optional<std::string>& tenant_id = std::nullopt,
    bool fair = true);

struct LeaseRef {
  int64_t item_id = 0;
  int64_t lease_epoch = 0;
};

enum class RenewState { kOk, kLost, kCancelled };

struct RenewOutcome {
  int64_t item_id = 0;
  RenewState state = RenewState::kLost;
};

// One round trip for all leases; one outcome per input, in input order.
Result<std::vector<RenewOutcome>> RenewLeases(db::Connection& conn,
                                              const std::vector<LeaseRef>& leases,
                                              int lease_seconds);

struct ArtifactRecord {
  std::string name;
  std::string content_type;
  std::string object_key;
  int64_t size = 0;
  std::string sha256;
};

struct Completion {
  LeaseRef lease;
  nlohmann::json output;  // stored as the task's output; "text" is left out of the ledger event
  std::vector<ArtifactRecord> artifacts;
  // Held for a human decision instead of completed (an arbiter with onFail "hold" or an
  // approval check): the task waits as awaiting_approval with this output and these artifacts
  // until DecideTask.
  bool hold = false;
};

enum class CompleteState { kCompleted, kHeld, kCancelled, kLeaseLost };

// Completes (or holds, see Completion::hold) a batch in one transaction and one round trip.
// Returns one state per completion, in order. A database error fails the whole batch (nothing
// is written).
Result<std::vector<CompleteState>> CompleteQueueItems(db::Connection& conn,
                                                      const std::vector<Completion>& batch);

enum class FailState { kRetryScheduled, kDeadLettered, kCancelled, kLeaseLost };

struct BackoffPolicy {
  int base_ms = 1000;
  int cap_ms = 60000;
};

Result<FailState> FailQueueItem(db::Connection& conn, const LeaseRef& lease,
                                const nlohmann::json& error, bool retryable,
                                const BackoffPolicy& backoff);

struct ProgressChunk {
  LeaseRef lease;
  std::string text;
};

// Records task.progress events in one round trip; chunks of stale leases are dropped.
Result<int> AppendProgress(db::Connection& conn, const std::vector<ProgressChunk>& chunks);

struct TaskEvent {
  LeaseRef lease;
  std::string type;     // e.g. tool.called, tool.result, arbiter.verdict
  nlohmann::json data;  // an object
};

// Appends ledger events for leased tasks in one round trip, in order; events of stale or
// cancelled leases are dropped. Returns how many were recorded.
Result<int> AppendTaskEvents(db::Connection& conn, const std::vector<TaskEvent>& events);

// What a worker has buffered: task events and progress chunks of tasks in flight, and finished
// tasks to complete (or hold).
struct TaskBatch {
  std::vector<TaskEvent> events;
  std::vector<ProgressChunk> progress;
  std::vector<Completion> completions;
};

// Writes a TaskBatch in one round trip, one transaction and one commit
// (synaps.write_task_batch): events and progress first (those of stale or cancelled leases are
// dropped), then the completions and holds. Returns one state per completion, in order. A
// database error fails the whole batch (nothing is written); so does an artifact whose content
// type is not a media type (kInvalidArgument naming it; core/http_grammar.h), before anything
// is sent — PostgreSQL refuses those rows too (migration 0013).
Result<std::vector<CompleteState>> WriteTaskBatch(db::Connection& conn, const TaskBatch& batch);

// Approves (completes with the held output) or rejects (fails, dead-lettered) a task of
// `tenant_id` held for approval; returns the task's run id. kNotFound when absent or another
// tenant's; kConflict when the task is not awaiting approval.
Result<std::string> DecideTask(db::Connection& conn, const std::string& tenant_id, const std::string& task_id,
                  bool approve, const std::string& actor, const std::string& reason);

// Gives unfinished leases back (draining worker) without counting the attempt; returns how many
// were still held and are now claimable.
Result<int> ReleaseLeases(db::Connection& conn, const std::vector<LeaseRef>& leases,
                          const std::string& worker);

// Cancels a run of `tenant_id`. kNotFound when absent or another tenant's; kConflict when the
// run already finished.
Status CancelRun(db::Connection& conn, const std::string& tenant_id, const std::string& run_id,
                 const std::string& actor);

// Dead-lettered items of the tenant, oldest first, after item id `after` (cursor paging).
Result<nlohmann::json> ListDeadLetters(db::Connection& conn, const std::string& tenant_id,
                                       int64_t after, int limit);

// Requeues a dead-lettered item with fresh attempts. kNotFound (absent or another tenant's) or
// kConflict (not dead, failed only because a dependency failed, or another run of its run's
// thread is unfinished: a thread runs one run at a time, so requeue when it is idle).
Status RequeueDeadItem(db::Connection& conn, const std::string& tenant_id, int64_t item_id,
                       const std::string& actor);

// Removes items of cancelled runs whose worker never came back for them (lease expired).
Result<int64_t> DeleteAbandonedCancelledItems(db::Connection& conn);

// The tenant of a queue item; nullopt when no such item exists (never did, or it finished).
Result<std::optional<std::string>> QueueItemTenant(db::Connection& conn, int64_t item_id);

// True while `lease` is the item's current lease (leased, same epoch): a completion that would
// be refused can stop before it uploads anything. The write itself still fences.
Result<bool> LeaseIsCurrent(db::Connection& conn, const LeaseRef& lease);

// The task behind a queue item, as the arbiters of a remote completion need it: its tenant,
// kind and spec (skill, tags). nullopt when no such item exists.
struct ItemTask {
  std::string tenant_id;
  std::string task_kind;
  nlohmann::json spec;
};
Result<std::optional<ItemTask>> QueueItemTask(db::Connection& conn, int64_t item_id);

// Counts of queue items by state, for metrics, and how long the oldest item that is ready to
// run (state ready, available_at passed) has waited; 0 when none waits.
struct QueueDepthStats {
  nlohmann::json by_state;  // {"ready": n, "leased": n, ...}
  double oldest_ready_age_seconds = 0;
};
Result<QueueDepthStats> QueueDepth(db::Connection& conn);

// Tasks under each concurrency limit (docs/flow-control.md), for metrics: {limit name:
// {"running": n, "waiting": n}}, every limit in effect listed (0s when idle). One entry per
// `concurrency` control item, so the label set stays bounded whatever the keys.
Result<nlohmann::json> ConcurrencyGauges(db::Connection& conn);

// Makes `limited` (waiting) items ready where their concurrency key has room that no release
// will fill: the release trigger skips items another transaction holds locked at that moment
// (synaps.flow_sweep, docs/flow-control.md). Returns how many items it made ready.
Result<int64_t> SweepConcurrencyKeys(db::Connection& conn);

// The tenant's queues, by name: [{queue, waiting, ready, leased, held, dead, oldestReadyAt}]
// (oldestReadyAt: when the longest-waiting ready item became claimable, or null).
Result<nlohmann::json> TenantQueues(db::Connection& conn, const std::string& tenant_id);

}  // namespace synaps::store
