// The worker's probe and metrics endpoints (docs/worker.md, "Probes and metrics"), served when
// SYNAPS_WORKER_LISTEN is set (the Helm chart sets 0.0.0.0:9090):
//
//   GET /healthz  200 while the worker's event loop ticks (a wedged loop answers 503 once it has
//                 missed SYNAPS_WORKER_STALL_SECONDS, default 30): the liveness probe
//   GET /readyz   200 while its last claim reached PostgreSQL and it is not draining: readiness
//   GET /metrics  Prometheus text: in flight, concurrency, tasks claimed / completed / held /
//                 failed, the control snapshot version, the loop's idle time
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
  WorkerHealthServer(const worker::Worker& worker, const std::string& listen, int stall_seconds);
  ~WorkerHealthServer();

  // Binds and serves; returns the bound port.
  Result<uint16_t> Start();
  void Stop();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace synaps::cli
