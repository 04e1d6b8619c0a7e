// The worker runtime: waits for wakeups (NATS) or its poll interval, claims queue items in
// batches up to its free slots, runs each against a provider, stores the answer as an artifact,
// and completes in batches. Leases are renewed while work is in flight; a lease reported lost or
// cancelled aborts the call and drops the task without writing anything.
//
// All state lives on one event loop thread (Run). PostgreSQL calls are made from that thread on
// one connection, which is re-opened with backoff when it breaks, so the worker survives
// PostgreSQL restarts; work whose lease expired meanwhile is simply claimed again.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "bus/bus.h"
#include "objstore/object_store.h"
#include "store/queue_store.h"

namespace synaps::worker {

struct WorkerOptions {
  std::string database_url;
  std::string name;                              // lease owner; defaults to host-pid
  std::vector<std::string> queues = {"default"};
  int concurrency = 16;                          // SYNAPS_WORKER_CONCURRENCY
  int lease_seconds = 30;                        // SYNAPS_LEASE_SECONDS
  int poll_interval_ms = 1000;                   // SYNAPS_POLL_INTERVAL_MS
  int local_latency_ms = 0;                      // SYNAPS_LOCAL_LATENCY_MS
  int drain_seconds = 30;                        // SYNAPS_DRAIN_SECONDS
  store::BackoffPolicy backoff;                  // SYNAPS_RETRY_BASE_MS, SYNAPS_RETRY_CAP_MS
};

// Reads WorkerOptions from the SYNAPS_* environment; throws ConfigError on bad values.
WorkerOptions WorkerOptionsFromEnv();

class Worker {
 public:
  // `bus` may be null (polling only). `objects` must outlive the worker.
  Worker(WorkerOptions options, bus::Bus* bus, objstore::ObjectStore* objects);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Runs the loop on the calling thread until Stop() has been called and in-flight work has
  // drained (or drain_seconds passed).
  void Run();
  // Thread-safe and async-signal-unsafe: call from a normal thread.
  void Stop();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace synaps::worker
