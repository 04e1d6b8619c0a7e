// The worker registry: one synaps.workers row per worker process, kept fresh by heartbeats.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "db/connection.h"

namespace synaps::store {

struct WorkerInfo {
  std::string id;          // UUID chosen by the process
  std::string name;
  std::string pod;         // POD_NAME, may be empty
  std::string namespace_;  // POD_NAMESPACE, may be empty
  std::vector<std::string> queues;
  std::string version;
  int concurrency = 0;
};

// Inserts (or refreshes) the row at startup.
Status RegisterWorker(db::Connection& conn, const WorkerInfo& info);
// Updates heartbeat_at and in_flight.
Status HeartbeatWorker(db::Connection& conn, const std::string& id, int in_flight);
// Sets stopped_at (clean shutdown).
Status MarkWorkerStopped(db::Connection& conn, const std::string& id);
// Workers seen in the last `horizon_seconds` (and not stopped earlier than that), newest first:
// [{id, name, pod, namespace, queues, version, concurrency, inFlight, startedAt, heartbeatAt,
//   stoppedAt, alive}]; alive = heartbeat within `alive_seconds` and not stopped.
Result<nlohmann::json> ListWorkers(db::Connection& conn, int horizon_seconds, int alive_seconds);

}  // namespace synaps::store
