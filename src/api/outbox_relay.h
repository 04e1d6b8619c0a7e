// Publishes outbox rows to the bus. Fast path: the API hands rows to Notify() right after the
// transaction that wrote them commits, and the relay publishes them at once. Safety net: every
// sweep interval it locks unpublished rows (FOR UPDATE SKIP LOCKED, in id order, whatever their
// id) and publishes them, so rows handed over while NATS was down, rows of a crashed API, and a
// lower id that committed after a higher one all get out. Each publish carries the row's msg_id
// as Nats-Msg-Id, so a re-publish after a crash between publish and delete is dropped by
// JetStream. A row is deleted once JetStream has acknowledged it. Of several wakeups for one
// queue in a batch only the last is published (a wakeup says "work in <queue>", nothing more);
// every other message is published as written. Thread-safe.
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "bus/bus.h"
#include "core/trace.h"
#include "db/pool.h"
#include "store/run_store.h"

namespace synaps::api {

struct OutboxRelayOptions {
  int sweep_interval_ms = 1000;
  int retention_seconds = 300;  // for rows marked published by earlier releases
  int batch = 500;
};

class OutboxRelay {
 public:
  // `bus` and `pool` must outlive the relay.
  OutboxRelay(OutboxRelayOptions options, bus::Bus* bus, db::Pool* pool);
  ~OutboxRelay();
  OutboxRelay(const OutboxRelay&) = delete;
  OutboxRelay& operator=(const OutboxRelay&) = delete;

  void Start();
  // Publishes what was handed over, then stops the thread.
  void Stop();
  // Hands committed rows over for immediate publishing.
  void Notify(std::vector<store::OutboxMessage> messages);
  // The same, for rows a traced request wrote: the messages carry its `traceparent` and
  // `tracestate` as NATS headers.
  void Notify(std::vector<store::OutboxMessage> messages, const TraceContext& trace);
  // Sweeps now instead of at the next interval (after a transaction wrote rows it cannot hand
  // over, e.g. a cancellation).
  void Wake();
  // Runs one sweep now on the calling thread (tests, shutdown); returns rows published.
  Result<int> SweepOnce();

 private:
  void Loop();
  // Publishes in order, wakeups coalesced per subject; stops at the first failure. Returns the
  // ids of the rows published (a coalesced wakeup's with the one that stood for it).
  std::vector<int64_t> PublishAll(const std::vector<store::OutboxMessage>& messages);

  const OutboxRelayOptions options_;
  bus::Bus* const bus_;
  db::Pool* const pool_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<store::OutboxMessage> handed_;  // guarded by mu_
  bool stop_ = false;                        // guarded by mu_
  bool wake_ = false;                        // guarded by mu_
  std::thread thread_;
};

}  // namespace synaps::api
