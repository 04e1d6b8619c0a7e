#include "store/run_store.h"

#include "core/barrier.h"
#include "store/detail/json_column.h"

namespace synaps::store {

using nlohmann::json;

json CommandJson(const SubmitRequest& request) {
  json tasks = json::array();
  json trace;
  if (request.trace) {
    trace = {{"traceparent", request.trace->Traceparent()}};
    if (!request.trace->tracestate.empty()) trace["tracestate"] = request.trace->tracestate;
  }
  for (const auto& t : request.tasks) {
    json spec = t.spec;
    if (!trace.is_null() && spec.is_object()) spec["trace"] = trace;
    tasks.push_back({{"name", t.name}, {"kind", t.kind}, {"spec", std::move(spec)},
                     {"dependsOn", t.depends_on}});
  }
  json command = {{"kind", request.kind},   {"payload", request.payload},
                  {"queue", request.queue}, {"priority", request.priority},
                  {"maxAttempts", request.max_attempts}, {"tasks", tasks}};
  if (request.thread_id) command["threadId"] = *request.thread_id;
  if (request.not_before) command["notBefore"] = *request.not_before;
  if (request.fairness_key) command["fairnessKey"] = *request.fairness_key;
  if (request.concurrency_key) command["concurrencyKey"] = *request.concurrency_key;
  if (request.on_thread_busy != "enqueue") command["onThreadBusy"] = request.on_thread_busy;
  return command;
}

namespace {

// Why a cancelNewest limit refused a command (flow_admit_submit, or an item of
// submit_refusals): {limit, maxRunning, unfinished, runId?}.
synaps::Error ConcurrencyLimitError(const std::string& key, const json& why) {
  std::string message =
      "concurrencyKey " + key + " already has " + std::to_string(why.value("unfinished", 0)) +
      " unfinished tasks, its limit (concurrency item " + why.value("limit", "") + ": maxRunning " +
      std::to_string(why.value("maxRunning", 0)) + ", strategy cancelNewest) refuses newcomers";
  if (why.contains("runId") && why["runId"].is_string()) {
    message += "; run " + why["runId"].get<std::string>() + " holds it";
  } else {
    message += "; earlier commands of this batch took its free slots";
  }
  return synaps::Error{ErrorCode::kConflict, std::move(message), "concurrencyKey"};
}

// The answer of synaps.submit_command() as a SubmitResult, or the error it names.
Result<SubmitResult> ReadSubmitAnswer(json out, const SubmitRequest& request) {
  return Guarded("reading the answer of submit_command", [&]() -> Result<SubmitResult> {
    if (out.contains("error")) {
      const std::string err = out["error"].get<std::string>();
      if (err == "thread_busy") {
        SubmitResult busy;
        busy.thread_busy = json{{"runId", out["runId"]},
                                {"threadId", out["threadId"]},
                                {"queuedBehind", out.value("queuedBehind", 0)}};
        return busy;
      }
      if (err == "concurrency_limit") {
        return std::unexpected(ConcurrencyLimitError(request.concurrency_key.value_or(""), out));
      }
      if (err == "thread_not_found") {
        return Fail(ErrorCode::kNotFound, "thread " + *request.thread_id + " does not exist",
                    "threadId");
      }
      return Fail(ErrorCode::kConflict,
                  "Idempotency-Key was already used with a different request body");
    }
    SubmitResult result;
    result.replayed = out.value("replayed", false);
    if (out.contains("outbox") && out["outbox"].is_array()) {
      for (const auto& o : out["outbox"]) {
        result.outbox.push_back({o["id"].get<int64_t>(), o["subject"].get<std::string>(),
                                 o["payload"].dump(), o["msgId"].get<std::string>()});
      }
    }
    out.erase("outbox");
    out.erase("replayed");
    result.response = std::move(out);
    return result;
  });
}

}  // namespace

Result<SubmitResult> SubmitCommand(db::Connection& conn, const SubmitRequest& request) {
  const json command = CommandJson(request);
  ASSIGN_OR_RETURN(
      db::PgResult r,
      conn.ExecPrepared("submit_command", "SELECT synaps.submit_command($1, $2, $3, $4, $5::jsonb)",
                        {request.tenant_id, request.actor, request.idempotency_key,
                         request.request_hash, command.dump()}));
  ASSIGN_OR_RETURN(json out, detail::ParseColumn(r.Get(0, 0), "the answer of submit_command"));
  return ReadSubmitAnswer(std::move(out), request);
}

Result<std::vector<Result<SubmitResult>>> SubmitCommands(
    db::Connection& conn, const std::string& tenant_id, const std::string& actor,
    const std::vector<const SubmitRequest*>& requests) {
  json items = json::array();
  for (const SubmitRequest* request : requests) {
    json item = {{"hash", request->request_hash}, {"command", CommandJson(*request)}};
    if (request->idempotency_key) item["key"] = *request->idempotency_key;
    items.push_back(std::move(item));
  }
  // One statement, set-based (db/migrations/0017): one round trip and one commit for the batch.
  ASSIGN_OR_RETURN(
      db::PgResult r,
      conn.ExecPrepared("submit_commands",
                        "SELECT item_answer FROM synaps.submit_commands($1, $2, $3::jsonb)"
                        " ORDER BY item_n",
                        {tenant_id, actor, items.dump()}));
  if (r.rows() != static_cast<int>(requests.size())) {
    return Fail(ErrorCode::kInternal, "submit_commands answered " + std::to_string(r.rows()) +
                                          " rows for " + std::to_string(requests.size()));
  }
  std::vector<Result<SubmitResult>> results;
  results.reserve(requests.size());
  for (int i = 0; i < r.rows(); ++i) {
    ASSIGN_OR_RETURN(json out, detail::ParseColumn(r.Get(i, 0), "an answer of submit_command"));
    results.push_back(ReadSubmitAnswer(std::move(out), *requests[i]));
  }
  return results;
}

Result<SubmitResult> SubmitCommandWithinLimits(db::Connection& conn, const SubmitRequest& request) {
  if (!request.concurrency_key) return SubmitCommand(conn, request);
  return db::InTransaction(conn, [&]() -> Result<SubmitResult> {
    ASSIGN_OR_RETURN(SubmitResult result, SubmitCommand(conn, request));
    if (result.replayed || result.thread_busy) return result;  // nothing new was written
    ASSIGN_OR_RETURN(
        db::PgResult r,
        conn.ExecPrepared(
            "flow_admit_submit", "SELECT synaps.flow_admit_submit($1, $2, $3::uuid)",
            {request.tenant_id, *request.concurrency_key, result.response.value("runId", "")}));
    if (r.IsNull(0, 0)) return result;
    ASSIGN_OR_RETURN(json why, detail::ParseColumn(r.Get(0, 0), "the concurrency limit"));
    return std::unexpected(ConcurrencyLimitError(*request.concurrency_key, why));
  });
}

Result<json> GetRun(db::Connection& conn, const std::string& tenant_id,
                    const std::string& run_id) {
  static constexpr const char* kSql = R"sql(
SELECT jsonb_build_object(
  'id', r.id, 'tenantId', r.tenant_id, 'status', r.status, 'commandId', r.command_id,
  'threadId', r.thread_id, 'createdAt', r.created_at, 'startedAt', r.started_at,
  'finishedAt', r.finished_at, 'error', r.error,
  'traceparent', (SELECT t.spec #>> '{trace,traceparent}' FROM synaps.tasks t
                   WHERE t.run_id = r.id ORDER BY t.created_at, t.name LIMIT 1),
  'schedule', (SELECT jsonb_build_object('name', f.schedule, 'version', f.version,
                                         'fireTime', f.fire_time, 'origin', f.origin)
                 FROM synaps.schedule_fires f WHERE f.run_id = r.id),
  'tasks', coalesce((
    SELECT jsonb_agg(jsonb_build_object('id', t.id, 'name', t.name, 'kind', t.kind,
                                        'status', t.status, 'attempt', t.attempt,
                                        'maxAttempts', t.max_attempts, 'dependsOn', t.depends_on,
                                        'error', t.error, 'startedAt', t.started_at,
                                        'finishedAt', t.finished_at, 'waiting', w.data,
                                        'answer', t.output->'text')
                     ORDER BY t.created_at, t.name)
      FROM synaps.tasks t LEFT JOIN LATERAL (SELECT w.data FROM synaps.task_waiting(t) w) w ON true
     WHERE t.run_id = r.id), '[]'::jsonb),
  'waiting', (SELECT w.data FROM synaps.tasks t, synaps.task_waiting(t) w
               WHERE t.run_id = r.id AND w.data IS NOT NULL
               ORDER BY t.created_at, t.name LIMIT 1),
  'threadSeq', r.thread_seq, 'threadTurn', r.thread_turn,
  'events', coalesce((
    SELECT jsonb_agg(jsonb_build_object('seq', e.seq, 'type', e.type, 'taskId', e.task_id,
                                        'attempt', e.attempt, 'at', e.created_at, 'data', e.data)
                     ORDER BY e.seq)
      FROM synaps.ledger_events e WHERE e.run_id = r.id), '[]'::jsonb),
  'artifacts', coalesce((
    SELECT jsonb_agg(jsonb_build_object(
             'id', a.id, 'name', a.name, 'contentType', a.content_type,
             'versions', (SELECT jsonb_agg(jsonb_build_object('version', v.version, 'size', v.size,
                                                              'sha256', v.sha256,
                                                              'createdAt', v.created_at)
                                           ORDER BY v.version)
                            FROM synaps.artifact_versions v
                           WHERE v.artifact_id = a.id AND v.run_id = r.id))
             ORDER BY a.name)
      FROM synaps.artifacts a
     WHERE EXISTS (SELECT 1 FROM synaps.artifact_versions v
                    WHERE v.artifact_id = a.id AND v.run_id = r.id)), '[]'::jsonb))
FROM synaps.runs r WHERE r.id = $1::uuid AND r.tenant_id = $2
)sql";
  ASSIGN_OR_RETURN(db::PgResult r, conn.ExecPrepared("get_run", kSql, {run_id, tenant_id}));
  if (r.rows() == 0) return Fail(ErrorCode::kNotFound, "run " + run_id + " not found");
  return detail::ParseColumn(r.Get(0, 0), "the run");
}

namespace {

constexpr const char* kRunSummary =
    "jsonb_build_object('id', r.id, 'status', r.status, 'commandId', r.command_id,"
    " 'threadId', r.thread_id, 'createdAt', r.created_at, 'startedAt', r.started_at,"
    " 'finishedAt', r.finished_at, 'error', r.error, 'schedule', (SELECT jsonb_build_object("
    "'name', f.schedule, 'version', f.version, 'fireTime', f.fire_time, 'origin', f.origin)"
    " FROM synaps.schedule_fires f WHERE f.run_id = r.id))";

}  // namespace

Result<json> ListTenantEvents(db::Connection& conn, const std::string& tenant_id, int64_t after_id,
                              int limit) {
  // Every tenant's events are a statement of their own, so the tenant's plan stays on its index.
  bool every = tenant_id.empty();
  std::string sql = std::string(
                        "SELECT coalesce(jsonb_agg(jsonb_build_object('id', e.id, 'tenantId',"
                        " e.tenant_id, 'runId', e.run_id, 'taskId', e.task_id, 'seq', e.seq,"
                        " 'type', e.type, 'at', e.created_at, 'runStatus', e.status)"
                        " ORDER BY e.id), '[]'::jsonb)"
                        " FROM (SELECT e.*, r.status, r.tenant_id FROM synaps.ledger_events e"
                        "       JOIN synaps.runs r ON r.id = e.run_id WHERE e.id > $2::bigint") +
                    (every ? " AND $1::text IS NULL" : " AND r.tenant_id = $1") +
                    " ORDER BY e.id LIMIT $3::integer) e";
  std::optional<std::string> tenant;
  if (!every) tenant = tenant_id;
  ASSIGN_OR_RETURN(auto r,
                   conn.ExecPrepared(every ? "list_every_tenant_events" : "list_tenant_events", sql,
                                     {tenant, std::to_string(after_id), std::to_string(limit)}));
  return detail::ParseColumn(r.Get(0, 0), "the run");
}

Result<json> RunCommand(db::Connection& conn, const std::string& tenant_id,
                        const std::string& run_id) {
  ASSIGN_OR_RETURN(auto r, conn.ExecPrepared(
                               "run_command",
                               "SELECT jsonb_build_object('payload', c.payload, 'threadId',"
                               " r.thread_id, 'status', r.status)"
                               " FROM synaps.runs r JOIN synaps.commands c ON c.id = r.command_id"
                               " WHERE r.id = $1::uuid AND r.tenant_id = $2",
                               {run_id, tenant_id}));
  if (r.rows() == 0) return Fail(ErrorCode::kNotFound, "run " + run_id + " not found");
  return detail::ParseColumn(r.Get(0, 0), "the run");
}

Result<std::string> RunTenant(db::Connection& conn, const std::string& run_id) {
  ASSIGN_OR_RETURN(
      auto r, conn.ExecPrepared("run_tenant",
                                "SELECT tenant_id FROM synaps.runs WHERE id = $1::uuid", {run_id}));
  if (r.rows() == 0) return Fail(ErrorCode::kNotFound, "run " + run_id + " not found");
  return r.GetString(0, 0);
}

Result<int64_t> LatestLedgerId(db::Connection& conn) {
  ASSIGN_OR_RETURN(auto r, conn.Exec("SELECT coalesce(max(id), 0) FROM synaps.ledger_events"));
  return std::stoll(r.GetString(0, 0));
}

Result<json> GetThread(db::Connection& conn, const std::string& tenant_id,
                       const std::string& thread_id) {
  std::string sql =
      std::string(
          "SELECT jsonb_build_object('id', t.id, 'title', t.title, 'metadata', t.metadata,"
          " 'createdAt', t.created_at, 'runs', coalesce((SELECT jsonb_agg(") +
      kRunSummary +
      " || jsonb_build_object('threadSeq', r.thread_seq, 'threadTurn', r.thread_turn,"
      "    'title', left(coalesce(c.payload#>>'{input,text}', c.payload->>'prompt',"
      "                           c.payload->>'agent', ''), 120))"
      " ORDER BY r.thread_seq, r.id)"
      " FROM synaps.runs r JOIN synaps.commands c ON c.id = r.command_id"
      " WHERE r.thread_id = t.id), '[]'::jsonb))"
      // A thread whose runs never named it has no row (0045): it is read from its first run.
      " FROM (SELECT id, title, metadata, created_at FROM synaps.threads"
      "        WHERE id = $1::uuid AND tenant_id = $2"
      "       UNION ALL"
      "       (SELECT thread_id, NULL, '{}'::jsonb, created_at FROM synaps.runs"
      "         WHERE thread_id = $1::uuid AND tenant_id = $2"
      "           AND NOT EXISTS (SELECT 1 FROM synaps.threads WHERE id = $1::uuid)"
      "         ORDER BY thread_seq LIMIT 1)) t";
  ASSIGN_OR_RETURN(db::PgResult r, conn.ExecPrepared("get_thread", sql, {thread_id, tenant_id}));
  if (r.rows() == 0) return Fail(ErrorCode::kNotFound, "thread " + thread_id + " not found");
  return detail::ParseColumn(r.Get(0, 0), "the run");
}

Result<EventPage> ListRunEvents(db::Connection& conn, const std::string& tenant_id,
                                const std::string& run_id, int64_t after_seq, int limit) {
  ASSIGN_OR_RETURN(
      db::PgResult r,
      conn.ExecPrepared(
          "list_run_events",
          "SELECT r.status, coalesce((SELECT jsonb_agg(e.obj ORDER BY e.seq) FROM ("
          "   SELECT seq, jsonb_build_object('seq', seq, 'type', type, 'taskId', task_id,"
          "     'attempt', attempt, 'at', created_at, 'data', data) AS obj"
          "     FROM synaps.ledger_events WHERE run_id = r.id AND seq > $3::bigint"
          "    ORDER BY seq LIMIT $4::integer) e), '[]'::jsonb)"
          "  FROM synaps.runs r WHERE r.id = $1::uuid AND r.tenant_id = $2",
          {run_id, tenant_id, std::to_string(after_seq), std::to_string(limit)}));
  if (r.rows() == 0) return Fail(ErrorCode::kNotFound, "run " + run_id + " not found");
  ASSIGN_OR_RETURN(json events, detail::ParseColumn(r.Get(0, 1), "the run's events"));
  return EventPage{r.GetString(0, 0), std::move(events)};
}

Result<json> RunsByStatus(db::Connection& conn) {
  ASSIGN_OR_RETURN(db::PgResult r,
                   conn.ExecPrepared("runs_by_status",
                                     "SELECT status, count(*) FROM synaps.runs GROUP BY 1", {}));
  json out = {{"queued", 0},    {"running", 0}, {"awaiting_approval", 0},
              {"succeeded", 0}, {"failed", 0},  {"cancelled", 0}};
  for (int i = 0; i < r.rows(); ++i) out[r.GetString(i, 0)] = r.GetInt(i, 1);
  return out;
}

Result<std::string> ArtifactTenant(db::Connection& conn, const std::string& artifact_id) {
  ASSIGN_OR_RETURN(auto r, conn.ExecPrepared("artifact_tenant",
                                             "SELECT tenant_id FROM synaps.artifacts"
                                             " WHERE id = $1::uuid",
                                             {artifact_id}));
  if (r.rows() == 0) return Fail(ErrorCode::kNotFound, "artifact " + artifact_id + " not found");
  return r.GetString(0, 0);
}

Result<ArtifactLocation> GetArtifactVersion(db::Connection& conn, const std::string& tenant_id,
                                            const std::string& artifact_id, int version) {
  ASSIGN_OR_RETURN(
      db::PgResult r,
      conn.ExecPrepared("get_artifact_version",
                        "SELECT v.object_key, a.content_type, v.size, v.sha256, a.name"
                        "  FROM synaps.artifacts a JOIN synaps.artifact_versions v"
                        "    ON v.artifact_id = a.id"
                        " WHERE a.id = $1::uuid AND a.tenant_id = $2 AND v.version = $3::integer",
                        {artifact_id, tenant_id, std::to_string(version)}));
  if (r.rows() == 0) {
    return Fail(ErrorCode::kNotFound, "artifact " + artifact_id + " has no version " +
                                          std::to_string(version));
  }
  return ArtifactLocation{r.GetString(0, 0), r.GetString(0, 1), r.GetInt(0, 2), r.GetString(0, 3),
                          r.GetString(0, 4)};
}

Result<std::optional<HeldTaskTrace>> GetHeldTaskTrace(db::Connection& conn,
                                                      const std::string& tenant_id,
                                                      const std::string& task_id) {
  static constexpr const char* kSql = R"sql(
SELECT coalesce(t.spec #>> '{trace,traceparent}', ''), coalesce(t.spec #>> '{trace,tracestate}', ''),
       coalesce((extract(epoch FROM held.created_at) * 1e9)::bigint, 0)
  FROM synaps.tasks t
  LEFT JOIN LATERAL (SELECT e.created_at FROM synaps.ledger_events e
                      WHERE e.run_id = t.run_id AND e.task_id = t.id
                        AND e.type = 'task.awaiting_approval'
                      ORDER BY e.seq DESC LIMIT 1) held ON true
 WHERE t.id = $1 AND t.tenant_id = $2)sql";
  ASSIGN_OR_RETURN(db::PgResult r,
                   conn.ExecPrepared("held_task_trace", kSql, {task_id, tenant_id}));
  if (r.rows() == 0) return std::nullopt;
  return HeldTaskTrace{.traceparent = r.GetString(0, 0),
                       .tracestate = r.GetString(0, 1),
                       .held_at_unix_ns = r.GetInt(0, 2)};
}

}  // namespace synaps::store
