// Commands, runs, threads and artifacts: the SQL behind submit and the read endpoints. Every
// read takes the caller's tenant, and another tenant's ids read as kNotFound.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/trace.h"
#include "db/connection.h"
#include "store/run_list.h"

namespace synaps::store {

struct TaskPlan {
  std::string name;
  std::string kind;
  nlohmann::json spec;                  // execution plan handed to the worker
  std::vector<std::string> depends_on;  // names of tasks in the same run
};

struct SubmitRequest {
  std::string tenant_id;
  std::string actor;                            // who submitted (token id)
  std::optional<std::string> idempotency_key;
  std::string request_hash;                     // hash of the normalized request body
  std::string kind;
  nlohmann::json payload;                       // the request body as accepted
  std::optional<std::string> thread_id;
  std::string queue = "default";
  int priority = 0;
  std::optional<std::string> not_before;        // RFC 3339
  int max_attempts = 3;
  // Flow control (docs/flow-control.md); validated by the API ([A-Za-z0-9_.:/@-]{1,128}).
  std::optional<std::string> fairness_key;
  std::optional<std::string> concurrency_key;
  // What to do when the thread has an unfinished run (docs/flow-control.md): enqueue (wait for
  // it), reject, interrupt (cancel it, keep its partial answer in the history), rollback
  // (cancel it, drop its turn from the history).
  std::string on_thread_busy = "enqueue";
  std::vector<TaskPlan> tasks;
  // Stored in each task's spec as {"trace": {"traceparent", "tracestate"?}} (not part of the
  // request hash: a retry under another trace replays the same command).
  std::optional<TraceContext> trace;
};

// A message the submit transaction wrote to the outbox, for the relay to publish at once.
struct OutboxMessage {
  int64_t id = 0;
  std::string subject;
  std::string payload;
  std::string msg_id;
  // The trace of the request that wrote the row, sent as NATS headers. Not stored: set by the
  // API on the rows it hands to the relay; a row the relay's sweep finds goes without them.
  std::string traceparent;
  std::string tracestate;
};

struct SubmitResult {
  // {commandId, runId, threadId, status, waiting?: {reason: "thread", runId},
  //  cancelledRuns?: [ids]}
  nlohmann::json response;
  bool replayed = false;    // an earlier submit with the same idempotency key and body
  std::vector<OutboxMessage> outbox;
  // Set, with nothing written, when onThreadBusy is reject and the thread was busy:
  // {runId (the run holding the thread), threadId, queuedBehind (runs queued behind it)}.
  std::optional<nlohmann::json> thread_busy;
};

// The command as synaps.submit_command() takes it (also stored by schedules, which submit from
// inside the database).
nlohmann::json CommandJson(const SubmitRequest& request);

// Inserts command, thread, run, tasks, queue items, ledger events and wakeup outbox rows in one
// statement: its own transaction, unless the caller opened one. kNotFound for an unknown threadId;
// kConflict when the idempotency key was used with another body. A run on a busy thread waits for
// it (parked) unless onThreadBusy says otherwise: reject answers thread_busy (and writes no
// command), interrupt and rollback cancel the thread's unfinished runs first (their run.cancelled
// messages are in `outbox`).
Result<SubmitResult> SubmitCommand(db::Connection& conn, const SubmitRequest& request);

// SubmitCommand for a command with a concurrencyKey (docs/flow-control.md): written in a
// transaction of its own that then asks synaps.flow_admit_submit whether the key's limit, if its
// strategy is cancelNewest, leaves room; when it does not, nothing is written and the answer is
// kConflict with field "concurrencyKey" and a message naming the key, the limit, its maxRunning
// and a run that holds the key. A replay (same idempotency key and body) is answered as
// SubmitCommand would.
Result<SubmitResult> SubmitCommandWithinLimits(db::Connection& conn, const SubmitRequest& request);

// A batch of SubmitCommand, in order, in ONE statement (synaps.submit_commands, set-based: one
// INSERT per table for the batch; one round trip, its own transaction
// unless the caller opened one), for `tenant_id` and `actor` (the requests' own are ignored). An
// item's kNotFound (threadId), kConflict (idempotency key used with another body) or kConflict
// with field "concurrencyKey" (a cancelNewest limit refused it, as SubmitCommandWithinLimits
// would; its keys are decided in the batch's order) is that item's result and the others are
// still written; any other failure fails the whole batch and
// writes nothing. Two batches that share keys in different orders may deadlock: PostgreSQL then
// aborts one (an error for that whole batch).
Result<std::vector<Result<SubmitResult>>> SubmitCommands(
    db::Connection& conn, const std::string& tenant_id, const std::string& actor,
    const std::vector<const SubmitRequest*>& requests);

// The run as the API returns it: {id, tenantId, status, commandId, threadId, createdAt, startedAt,
// finishedAt, error, schedule, tasks, events, artifacts}; a queued task's `waiting` is the data
// of its latest task.waiting event since it was last claimed (why it is held back), else null;
// `schedule` is {name, version, fireTime, origin} for a run a schedule started, else null (also in
// list summaries). kNotFound when absent or another tenant's.
Result<nlohmann::json> GetRun(db::Connection& conn, const std::string& tenant_id,
                              const std::string& run_id);

// {id, title, metadata, createdAt, runs: [summaries, oldest first]}. kNotFound when absent.
Result<nlohmann::json> GetThread(db::Connection& conn, const std::string& tenant_id,
                                 const std::string& thread_id);

struct EventPage {
  std::string run_status;   // the run's status when the page was read
  nlohmann::json events;    // [{seq, type, taskId, attempt, at, data}] with seq > after
};

// Ledger events of a run after `after_seq`, in order, at most `limit`. kNotFound when the run
// is absent or another tenant's.
Result<EventPage> ListRunEvents(db::Connection& conn, const std::string& tenant_id,
                                const std::string& run_id, int64_t after_seq, int limit);

// Ledger events of every run of the tenant (of every tenant when `tenant_id` is empty: the
// installation scope) with ledger id > `after_id`, oldest first, at most `limit`:
// [{id, tenantId, runId, taskId, seq, type, at, runStatus}] (no event data: a feed that says
// what changed, for the console's live lists).
Result<nlohmann::json> ListTenantEvents(db::Connection& conn, const std::string& tenant_id,
                                        int64_t after_id, int limit);
// The newest ledger id (0 when empty): where a tenant feed without a cursor starts.
Result<int64_t> LatestLedgerId(db::Connection& conn);

// The tenant of a run, whatever the caller's (for the installation scope, which reads every
// tenant's runs). kNotFound when absent.
Result<std::string> RunTenant(db::Connection& conn, const std::string& run_id);

// What a retry resubmits: {payload (the accepted submit body), threadId, status} of the run's
// command. kNotFound when the run is absent or another tenant's.
Result<nlohmann::json> RunCommand(db::Connection& conn, const std::string& tenant_id,
                                  const std::string& run_id);

// Number of runs by status, for metrics: {"queued": n, ..., "succeeded": n}.
Result<nlohmann::json> RunsByStatus(db::Connection& conn);

struct ArtifactLocation {
  std::string object_key;
  std::string content_type;
  int64_t size = 0;
  std::string sha256;
  std::string name;
};

// The tenant of an artifact (for the installation scope). kNotFound when absent.
Result<std::string> ArtifactTenant(db::Connection& conn, const std::string& artifact_id);

Result<ArtifactLocation> GetArtifactVersion(db::Connection& conn, const std::string& tenant_id,
                                            const std::string& artifact_id, int version);

// The trace a task belongs to (its spec's `trace`) and when it was last held for approval,
// for the approval-wait span (docs/observability.md). held_at_unix_ns is 0 when the task was
// never held; nullopt when the task is absent or another tenant's.
struct HeldTaskTrace {
  std::string traceparent;  // "" when the task carries no trace
  std::string tracestate;
  int64_t held_at_unix_ns = 0;
};
Result<std::optional<HeldTaskTrace>> GetHeldTaskTrace(db::Connection& conn,
                                                      const std::string& tenant_id,
                                                      const std::string& task_id);

}  // namespace synaps::store
