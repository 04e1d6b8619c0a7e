#include "store/run_store.h"

namespace synaps::store {

using nlohmann::json;

Result<SubmitResult> SubmitCommand(db::Connection& conn, const SubmitRequest& request) {
  json tasks = json::array();
  for (const auto& t : request.tasks) {
    tasks.push_back({{"name", t.name}, {"kind", t.kind}, {"spec", t.spec},
                     {"dependsOn", t.depends_on}});
  }
  json command = {{"kind", request.kind},   {"payload", request.payload},
                  {"queue", request.queue}, {"priority", request.priority},
                  {"maxAttempts", request.max_attempts}, {"tasks", tasks}};
  if (request.thread_id) command["threadId"] = *request.thread_id;
  if (request.not_before) command["notBefore"] = *request.not_before;

  ASSIGN_OR_RETURN(db::PgResult r,
                   conn.ExecPrepared("submit_command",
                                     "SELECT synaps.submit_command($1, $2, $3, $4, $5::jsonb)",
                                     {request.tenant_id, request.actor, request.idempotency_key,
                                      request.request_hash, command.dump()}));
  json out = json::parse(r.Get(0, 0));
  if (out.contains("error")) {
    const std::string err = out["error"].get<std::string>();
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
}

Result<json> GetRun(db::Connection& conn, const std::string& tenant_id,
                    const std::string& run_id) {
  static constexpr const char* kSql = R"sql(
SELECT jsonb_build_object(
  'id', r.id, 'status', r.status, 'commandId', r.command_id, 'threadId', r.thread_id,
  'createdAt', r.created_at, 'startedAt', r.started_at, 'finishedAt', r.finished_at,
  'error', r.error,
  'tasks', coalesce((
    SELECT jsonb_agg(jsonb_build_object('id', t.id, 'name', t.name, 'kind', t.kind,
                                        'status', t.status, 'attempt', t.attempt,
                                        'maxAttempts', t.max_attempts, 'dependsOn', t.depends_on,
                                        'error', t.error, 'startedAt', t.started_at,
                                        'finishedAt', t.finished_at)
                     ORDER BY t.created_at, t.name)
      FROM synaps.tasks t WHERE t.run_id = r.id), '[]'::jsonb),
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
  return json::parse(r.Get(0, 0));
}

Result<ArtifactLocation> GetArtifactVersion(db::Connection& conn, const std::string& tenant_id,
                                            const std::string& artifact_id, int version) {
  ASSIGN_OR_RETURN(
      db::PgResult r,
      conn.ExecPrepared("get_artifact_version",
                        "SELECT v.object_key, a.content_type, v.size, v.sha256"
                        "  FROM synaps.artifacts a JOIN synaps.artifact_versions v"
                        "    ON v.artifact_id = a.id"
                        " WHERE a.id = $1::uuid AND a.tenant_id = $2 AND v.version = $3::integer",
                        {artifact_id, tenant_id, std::to_string(version)}));
  if (r.rows() == 0) {
    return Fail(ErrorCode::kNotFound, "artifact " + artifact_id + " has no version " +
                                          std::to_string(version));
  }
  return ArtifactLocation{r.GetString(0, 0), r.GetString(0, 1), r.GetInt(0, 2), r.GetString(0, 3)};
}

}  // namespace synaps::store
