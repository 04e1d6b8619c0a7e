// The worker runtime: waits for wakeups (NATS) or its poll interval, claims queue items in
// batches up to its free slots, runs each against a model provider (many calls in flight on one
// event loop, libcurl multi), streams deltas to the ledger as task.progress, stores the answer
// as an artifact (uploads on a small thread pool), and completes in batches. Leases are renewed
// while work is in flight; a lease reported lost or cancelled aborts the call and drops the task
// without writing anything. On Stop() it drains: no new claims, in-flight work gets
// drain_seconds, and what is still unfinished is released so another worker takes it at once.
// It keeps a synaps.workers row with heartbeats.
//
// All state lives on one event loop thread (Run), which never waits for PostgreSQL: statements
// run on DB lanes (worker/db_lane.h: claims, two for writes, control), each a thread with its own
// connection that is re-opened with backoff when it breaks, and their results come back to the
// loop. So the worker survives PostgreSQL restarts; work whose lease expired meanwhile is simply
// claimed again.
#pragma once

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bus/bus.h"
#include "db/connection.h"
#include "objstore/object_store.h"
#include "providers/registry.h"
#include "store/queue_store.h"
#include "worker/provider_stats.h"
#include "worker/usage_tally.h"

namespace synaps::otel {
class Exporter;
}  // namespace synaps::otel

namespace synaps::worker {

struct WorkerOptions {
  std::string database_url;
  std::string name;                              // lease owner; defaults to host-pid
  std::vector<std::string> queues = {"default"};
  int concurrency = 128;                         // SYNAPS_WORKER_CONCURRENCY
  int lease_seconds = 30;                        // SYNAPS_LEASE_SECONDS
  int poll_interval_ms = 1000;                   // SYNAPS_POLL_INTERVAL_MS
  int drain_seconds = 30;                        // SYNAPS_DRAIN_SECONDS
  // Claims share the free slots between tenants and fairness keys (docs/flow-control.md);
  // SYNAPS_FAIR_SHARE=off claims by priority and age alone.
  bool fair_share = true;
  store::BackoffPolicy backoff;                  // SYNAPS_RETRY_BASE_MS, SYNAPS_RETRY_CAP_MS
  // Route used when a task names none: {provider, model, baseUrl?, apiKeyEnv?, params?}.
  // SYNAPS_DEFAULT_ROUTE (JSON); the built-in local/echo when unset.
  nlohmann::json default_route = {{"provider", "local"}, {"model", "echo"}};
  int progress_interval_ms = 250;                // task.progress batching: time...
  size_t progress_bytes = 1024;                  // ...or size, whichever comes first
  int heartbeat_seconds = 5;                     // workers row heartbeat
  std::string pod;                               // POD_NAME
  std::string pod_namespace;                     // POD_NAMESPACE
  providers::ProviderSettings provider_settings; // SYNAPS_PROVIDER_* (providers/registry.h)
  // The DB lanes' connections: connect timeout, keepalives, statement timeout and client
  // deadline (SYNAPS_DB_*, SYNAPS_WORKER_STATEMENT_TIMEOUT_MS; db/deadlines.h).
  db::ConnectOptions db_options;
  // A task whose first model call would wait longer than this for its route's rate limit goes
  // back to the queue until its slot, freeing the worker; shorter waits are waited in place
  // (SYNAPS_RATE_LIMIT_HOLD_MS; docs/flow-control.md).
  int64_t rate_park_after_ms = 250;
  // An answer shorter than this many bytes is kept in the task's output alone (`output.text`,
  // answered as `tasks[].answer` by GET /v1/runs/{id}); one at least this long is also written
  // to the object store as the thread's `answer.md` artifact. 0: every answer is written
  // (SYNAPS_ANSWER_ARTIFACT_MIN_BYTES; docs/worker.md, "Answers").
  size_t answer_artifact_min_bytes = 16384;
};

// Reads WorkerOptions from the SYNAPS_* environment; throws ConfigError on bad values.
WorkerOptions WorkerOptionsFromEnv();

// What probes and metrics read from a running worker (Worker::Stats()).
struct WorkerStats {
  int64_t loop_idle_ms = 0;       // since the event loop last ran its one-second tick
  int in_flight = 0;              // tasks claimed and not yet written
  int concurrency = 0;
  bool draining = false;          // Stop() was called
  bool database_ok = false;       // the last claim reached PostgreSQL
  int64_t db_unreached_ms = -1;   // since a DB lane last reached PostgreSQL; -1 = not yet
  int64_t lane_busy_ms = 0;       // how long the longest-running DB lane job has been running
  std::string busiest_lane;       // its lane
  int64_t snapshot_version = 0;   // the control snapshot held
  uint64_t claimed = 0;           // totals since the process started
  uint64_t completed = 0;
  uint64_t held = 0;
  uint64_t failed = 0;
  // Bus messages dropped (malformed, mistyped, binary, oversized) by subject family, since the
  // start (bus::Bus::RejectedCounts(); empty without a bus).
  std::map<std::string, uint64_t> bus_rejected;
  // Tokens and cost of the tasks it completed, per (tenant, model), bounded (usage_tally.h).
  std::map<UsageTally::Key, UsageTotals> usage;
  // Spans sent over OTLP and dropped, since the start (0 without span export).
  uint64_t spans_exported = 0;
  uint64_t spans_dropped = 0;
  // Model calls by (provider, model), and bus wakeup delays (provider_stats.h), since the start.
  std::map<ProviderStats::Key, ProviderSeries> provider_calls;
  // Rate-limit waits and shared Retry-Afters by route (provider_stats.h), since the start.
  std::map<std::string, RateLimitSeries> rate_limits;
  HistogramCounts wakeups;
};

class Worker {
 public:
  // `bus` may be null (polling only). `objects` and `tracer` (OTLP span export, may be null)
  // must outlive the worker.
  Worker(WorkerOptions options, bus::Bus* bus, objstore::ObjectStore* objects,
         otel::Exporter* tracer = nullptr);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Runs the loop on the calling thread until Stop() has been called and in-flight work has
  // drained (or drain_seconds passed).
  void Run();
  // Thread-safe and async-signal-unsafe: call from a normal thread.
  void Stop();
  // Thread-safe; cheap (atomic loads, and the bus's rejection counts under its lock).
  WorkerStats Stats() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace synaps::worker
