#include "store/worker_store.h"

#include "store/detail/json_column.h"

namespace synaps::store {

Status RegisterWorker(db::Connection& conn, const WorkerInfo& w) {
  RETURN_IF_ERROR(conn.ExecPrepared(
      "register_worker",
      "INSERT INTO synaps.workers (id, name, pod, namespace, queues, version, concurrency)"
      " VALUES ($1::uuid, $2, nullif($3, ''), nullif($4, ''), $5::text[], $6, $7::integer)"
      " ON CONFLICT (id) DO UPDATE SET heartbeat_at = now(), stopped_at = NULL",
      {w.id, w.name, w.pod, w.namespace_, db::ArrayLiteral(w.queues), w.version,
       std::to_string(w.concurrency)}));
  return Ok();
}

Status HeartbeatWorker(db::Connection& conn, const std::string& id, int in_flight) {
  RETURN_IF_ERROR(conn.ExecPrepared(
      "heartbeat_worker",
      "UPDATE synaps.workers SET heartbeat_at = now(), in_flight = $2::integer WHERE id = $1::uuid",
      {id, std::to_string(in_flight)}));
  return Ok();
}

Status MarkWorkerStopped(db::Connection& conn, const std::string& id) {
  RETURN_IF_ERROR(conn.ExecPrepared(
      "stop_worker",
      "UPDATE synaps.workers SET stopped_at = now(), in_flight = 0 WHERE id = $1::uuid", {id}));
  return Ok();
}

Result<nlohmann::json> ListWorkers(db::Connection& conn, int horizon_seconds, int alive_seconds) {
  ASSIGN_OR_RETURN(
      db::PgResult r,
      conn.ExecPrepared(
          "list_workers",
          "SELECT coalesce(jsonb_agg(jsonb_build_object('id', id, 'name', name, 'pod', pod,"
          "  'namespace', namespace, 'queues', queues, 'version', version,"
          "  'concurrency', concurrency, 'inFlight', in_flight, 'startedAt', started_at,"
          "  'heartbeatAt', heartbeat_at, 'stoppedAt', stopped_at,"
          "  'alive', stopped_at IS NULL AND heartbeat_at > now() - make_interval(secs => $2::integer))"
          "  ORDER BY started_at DESC), '[]'::jsonb)"
          "  FROM synaps.workers"
          " WHERE heartbeat_at > now() - make_interval(secs => $1::integer)",
          {std::to_string(horizon_seconds), std::to_string(alive_seconds)}));
  return detail::ParseColumn(r.Get(0, 0), "the worker list");
}

}  // namespace synaps::store
