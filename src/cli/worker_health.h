// The worker's probe and metrics endpoints (docs/worker.md, "Probes and metrics"), served when
// SYNAPS_WORKER_LISTEN is set (the Helm chart sets 0.0.0.0:9090):
//
//   GET /healthz  200 while the worker's event loop ticks and no DB lane job runs for longer
//                 than SYNAPS_WORKER_STALL_SECONDS (default 30): a wedged loop or a stuck lane
//                 answers 503, the liveness probe fails and Kubernetes restarts the pod
//   GET /readyz   200 once a DB lane has reached PostgreSQL, while none has for less than
//                 SYNAPS_WORKER_DB_UNREADY_SECONDS (default 15), and while it is not draining
//   GET /metrics  Prometheus text: in flight, concurrency, tasks claimed / completed / held /
//                 failed, the control snapshot version, the loop's idle time, bus messages
//                 dropped by subject family (synaps_bus_messages_rejected_total)
//
// Everything is read from Worker::Stats() (atomics), on the server's own threads, so a busy or
// stuck event loop cannot delay a probe.
#pragma once

#include <memory>
#include <string>

#include "api/http_server.h"
#include "worker/worker.h"

namespace synaps::cli {

class WorkerHealthServer {
 public:
  // `worker` must outlive the server. `listen` is host:port (port 0 picks one).
  WorkerHealthServer(const worker::Worker& worker, const std::string& listen, int stall_seconds,
                     int db_unready_seconds = 15);
  ~WorkerHealthServer();

  // Binds and serves; returns the bound port.
  Result<uint16_t> Start();
  void Stop();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace synaps::cli
