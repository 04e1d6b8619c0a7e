#include "store/queue_store.h"

#include "core/http_grammar.h"
#include "store/detail/json_column.h"

namespace synaps::store {

using nlohmann::json;

Result<std::vector<ClaimedItem>> ClaimQueueItems(db::Connection& conn, const std::string& worker,
                                                 const std::vector<std::string>& queues, int limit,
                                                 int lease_seconds,
                                                 const std::optional<std::string>& tenant_id,
                                                 bool fair) {
  ASSIGN_OR_RETURN(
      db::PgResult r,
      conn.ExecPrepared("claim_queue_items",
                        "SELECT item_id, lease_epoch, attempt, task_id, run_id, tenant_id,"
                        "       thread_id, task_name, task_kind, spec, lease_expires_at, upstream,"
                        "       history, snapshot_version"
                        "  FROM synaps.claim_queue_items($1, $2::text[], $3::integer, $4::integer,"
                        "                                $5::text, $6::boolean)",
                        {worker, db::ArrayLiteral(queues), std::to_string(limit),
                         std::to_string(lease_seconds), tenant_id, fair ? "true" : "false"}));
  std::vector<ClaimedItem> items;
  items.reserve(r.rows());
  for (int i = 0; i < r.rows(); ++i) {
    ClaimedItem it;
    it.item_id = r.GetInt(i, 0);
    it.lease_epoch = r.GetInt(i, 1);
    it.attempt = static_cast<int>(r.GetInt(i, 2));
    it.task_id = r.GetString(i, 3);
    it.run_id = r.GetString(i, 4);
    it.tenant_id = r.GetString(i, 5);
    it.thread_id = r.GetString(i, 6);
    it.task_name = r.GetString(i, 7);
    it.task_kind = r.GetString(i, 8);
    it.lease_expires_at = r.GetString(i, 10);
    it.snapshot_version = r.GetInt(i, 13);
    // A value that does not read fails this task alone (ClaimedItem::invalid); the claim, and
    // every other item in it, stands.
    Status read = [&]() -> Status {
      ASSIGN_OR_RETURN(it.spec, detail::ParseColumn(r.Get(i, 9), "task " + it.task_id + "'s spec"));
      ASSIGN_OR_RETURN(
          it.upstream,
          detail::ParseColumn(r.Get(i, 11), "the outputs task " + it.task_id + " depends on"));
      ASSIGN_OR_RETURN(it.history, detail::ParseColumn(r.Get(i, 12),
                                                       "the thread history of task " + it.task_id));
      return Ok();
    }();
    if (!read) it.invalid = read.error();
    items.push_back(std::move(it));
  }
  return items;
}

namespace {
std::string IntArray(const std::vector<int64_t>& v) {
  std::string out = "{";
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) out += ',';
    out += std::to_string(v[i]);
  }
  return out + "}";
}
}  // namespace

Result<std::vector<RenewOutcome>> RenewLeases(db::Connection& conn,
                                              const std::vector<LeaseRef>& leases,
                                              int lease_seconds) {
  std::vector<int64_t> ids, epochs;
  for (const auto& l : leases) {
    ids.push_back(l.item_id);
    epochs.push_back(l.lease_epoch);
  }
  ASSIGN_OR_RETURN(db::PgResult r,
                   conn.ExecPrepared("renew_queue_items",
                                     "SELECT item_id, state FROM synaps.renew_queue_items("
                                     "$1::bigint[], $2::bigint[], $3::integer)",
                                     {IntArray(ids), IntArray(epochs),
                                      std::to_string(lease_seconds)}));
  std::vector<RenewOutcome> out;
  for (int i = 0; i < r.rows(); ++i) {
    auto s = r.Get(i, 1);
    out.push_back({r.GetInt(i, 0), s == "ok"          ? RenewState::kOk
                                   : s == "cancelled" ? RenewState::kCancelled
                                                      : RenewState::kLost});
  }
  return out;
}

Result<std::vector<CompleteState>> CompleteQueueItems(db::Connection& conn,
                                                      const std::vector<Completion>& batch) {
  // The worker's write path, with completions only: one statement, set-based.
  return WriteTaskBatch(conn, TaskBatch{.completions = batch});
}

Result<FailState> FailQueueItem(db::Connection& conn, const LeaseRef& lease, const json& error,
                                bool retryable, const BackoffPolicy& backoff) {
  ASSIGN_OR_RETURN(
      db::PgResult r,
      conn.ExecPrepared("fail_queue_item",
                        "SELECT synaps.fail_queue_item($1::bigint, $2::bigint, $3::jsonb,"
                        " $4::boolean, $5::integer, $6::integer)",
                        {std::to_string(lease.item_id), std::to_string(lease.lease_epoch),
                         error.dump(), retryable ? "true" : "false",
                         std::to_string(backoff.base_ms), std::to_string(backoff.cap_ms)}));
  auto s = r.Get(0, 0);
  if (s == "retry_scheduled") return FailState::kRetryScheduled;
  if (s == "dead_lettered") return FailState::kDeadLettered;
  if (s == "cancelled") return FailState::kCancelled;
  return FailState::kLeaseLost;
}

Result<int> AppendProgress(db::Connection& conn, const std::vector<ProgressChunk>& chunks) {
  if (chunks.empty()) return 0;
  std::vector<int64_t> ids, epochs;
  std::vector<std::string> texts;
  for (const auto& c : chunks) {
    ids.push_back(c.lease.item_id);
    epochs.push_back(c.lease.lease_epoch);
    texts.push_back(c.text);
  }
  ASSIGN_OR_RETURN(db::PgResult r,
                   conn.ExecPrepared("append_progress",
                                     "SELECT synaps.append_progress($1::bigint[], $2::bigint[],"
                                     " $3::text[])",
                                     {IntArray(ids), IntArray(epochs), db::ArrayLiteral(texts)}));
  return static_cast<int>(r.GetInt(0, 0));
}

Result<int> AppendTaskEvents(db::Connection& conn, const std::vector<TaskEvent>& events) {
  if (events.empty()) return 0;
  std::vector<int64_t> ids, epochs;
  std::vector<std::string> types, data;
  for (const auto& e : events) {
    ids.push_back(e.lease.item_id);
    epochs.push_back(e.lease.lease_epoch);
    types.push_back(e.type);
    data.push_back(e.data.dump());
  }
  ASSIGN_OR_RETURN(db::PgResult r,
                   conn.ExecPrepared("append_task_events",
                                     "SELECT synaps.append_task_events($1::bigint[], $2::bigint[],"
                                     " $3::text[], $4::jsonb[])",
                                     {IntArray(ids), IntArray(epochs), db::ArrayLiteral(types),
                                      db::ArrayLiteral(data)}));
  return static_cast<int>(r.GetInt(0, 0));
}

Result<std::vector<CompleteState>> WriteTaskBatch(db::Connection& conn, const TaskBatch& batch) {
  // An artifact's content type is served back verbatim as a Content-Type header.
  for (const auto& c : batch.completions) {
    for (size_t i = 0; i < c.artifacts.size(); ++i) {
      if (!IsMediaType(c.artifacts[i].content_type)) {
        return Fail(ErrorCode::kInvalidArgument,
                    "artifact " + c.artifacts[i].name +
                        ": content type is not a media type (RFC 9110 type/subtype[; params])",
                    "artifacts[" + std::to_string(i) + "].contentType");
      }
    }
  }
  std::vector<int64_t> event_ids, event_epochs, progress_ids, progress_epochs, ids, epochs;
  std::vector<std::string> event_types, event_data, progress_texts, holds;
  for (const auto& e : batch.events) {
    event_ids.push_back(e.lease.item_id);
    event_epochs.push_back(e.lease.lease_epoch);
    event_types.push_back(e.type);
    event_data.push_back(e.data.dump());
  }
  for (const auto& c : batch.progress) {
    progress_ids.push_back(c.lease.item_id);
    progress_epochs.push_back(c.lease.lease_epoch);
    progress_texts.push_back(c.text);
  }
  json outputs = json::array(), artifacts = json::array();
  for (const auto& c : batch.completions) {
    ids.push_back(c.lease.item_id);
    epochs.push_back(c.lease.lease_epoch);
    holds.push_back(c.hold ? "t" : "f");
    outputs.push_back(c.output);
    json arts = json::array();
    for (const auto& a : c.artifacts) {
      arts.push_back({{"name", a.name}, {"contentType", a.content_type},
                      {"objectKey", a.object_key}, {"size", a.size}, {"sha256", a.sha256}});
    }
    artifacts.push_back(std::move(arts));
  }
  ASSIGN_OR_RETURN(
      db::PgResult r,
      conn.ExecPrepared(
          "write_task_batch",
          "SELECT synaps.write_task_batch($1::bigint[], $2::bigint[], $3::text[], $4::jsonb[],"
          " $5::bigint[], $6::bigint[], $7::text[], $8::bigint[], $9::bigint[], $10::boolean[],"
          " $11::jsonb, $12::jsonb)",
          {IntArray(event_ids), IntArray(event_epochs), db::ArrayLiteral(event_types),
           db::ArrayLiteral(event_data), IntArray(progress_ids), IntArray(progress_epochs),
           db::ArrayLiteral(progress_texts), IntArray(ids), IntArray(epochs),
           db::ArrayLiteral(holds), outputs.dump(), artifacts.dump()}));
  std::vector<CompleteState> out;
  out.reserve(r.rows());
  for (int i = 0; i < r.rows(); ++i) {
    auto v = r.Get(i, 0);
    out.push_back(v == "completed"   ? CompleteState::kCompleted
                  : v == "held"      ? CompleteState::kHeld
                  : v == "cancelled" ? CompleteState::kCancelled
                                     : CompleteState::kLeaseLost);
  }
  if (out.size() != batch.completions.size()) {
    return Fail(ErrorCode::kInternal, "write_task_batch returned " + std::to_string(out.size()) +
                                          " states for " +
                                          std::to_string(batch.completions.size()) + " completions");
  }
  return out;
}

Result<std::string> DecideTask(db::Connection& conn, const std::string& tenant_id,
                               const std::string& task_id, bool approve, const std::string& actor,
                               const std::string& reason) {
  ASSIGN_OR_RETURN(db::PgResult r,
                   conn.ExecPrepared("decide_task",
                                     "SELECT synaps.decide_task($1, $2::uuid, $3::boolean, $4, $5)",
                                     {tenant_id, task_id, approve ? "true" : "false", actor,
                                      reason}));
  auto s = r.Get(0, 0);
  if (s == "not_found") return Fail(ErrorCode::kNotFound, "task " + task_id + " not found");
  if (s == "not_held") {
    return Fail(ErrorCode::kConflict, "task " + task_id + " is not awaiting approval");
  }
  ASSIGN_OR_RETURN(db::PgResult run,
                   conn.ExecPrepared("task_run_id",
                                     "SELECT run_id FROM synaps.tasks WHERE id = $1::uuid",
                                     {task_id}));
  return std::string(run.Get(0, 0));
}

Result<int> ReleaseLeases(db::Connection& conn, const std::vector<LeaseRef>& leases,
                          const std::string& worker) {
  if (leases.empty()) return 0;
  std::vector<int64_t> ids, epochs;
  for (const auto& l : leases) {
    ids.push_back(l.item_id);
    epochs.push_back(l.lease_epoch);
  }
  ASSIGN_OR_RETURN(db::PgResult r,
                   conn.ExecPrepared("release_queue_items",
                                     "SELECT synaps.release_queue_items($1::bigint[],"
                                     " $2::bigint[], $3)",
                                     {IntArray(ids), IntArray(epochs), worker}));
  return static_cast<int>(r.GetInt(0, 0));
}

Status CancelRun(db::Connection& conn, const std::string& tenant_id, const std::string& run_id,
                 const std::string& actor) {
  ASSIGN_OR_RETURN(db::PgResult r,
                   conn.ExecPrepared("cancel_run", "SELECT synaps.cancel_run($1, $2::uuid, $3)",
                                     {tenant_id, run_id, actor}));
  auto s = r.Get(0, 0);
  if (s == "not_found") return Fail(ErrorCode::kNotFound, "run " + run_id + " not found");
  if (s == "finished") {
    return Fail(ErrorCode::kConflict, "run " + run_id + " already finished; nothing to cancel");
  }
  return Ok();
}

Result<json> ListDeadLetters(db::Connection& conn, const std::string& tenant_id, int64_t after,
                             int limit) {
  ASSIGN_OR_RETURN(
      db::PgResult r,
      conn.ExecPrepared(
          "list_dead_letters",
          "SELECT coalesce(jsonb_agg(x.item ORDER BY x.id), '[]'::jsonb) FROM ("
          "  SELECT q.id, jsonb_build_object('itemId', q.id, 'taskId', q.task_id,"
          "    'runId', q.run_id, 'taskName', t.name, 'queue', q.queue, 'attempts', q.attempts,"
          "    'error', q.last_error, 'failedAt', t.finished_at) AS item"
          "    FROM synaps.queue_items q JOIN synaps.tasks t ON t.id = q.task_id"
          "   WHERE q.status = 'dead' AND t.tenant_id = $1 AND q.id > $2::bigint"
          "   ORDER BY q.id LIMIT $3::integer) x",
          {tenant_id, std::to_string(after), std::to_string(limit)}));
  return detail::ParseColumn(r.Get(0, 0), "the dead-letter list");
}

Status RequeueDeadItem(db::Connection& conn, const std::string& tenant_id, int64_t item_id,
                       const std::string& actor) {
  ASSIGN_OR_RETURN(db::PgResult r,
                   conn.ExecPrepared("requeue_dead_item",
                                     "SELECT synaps.requeue_dead_item($1, $2::bigint, $3)",
                                     {tenant_id, std::to_string(item_id), actor}));
  auto s = r.Get(0, 0);
  if (s == "not_found") {
    return Fail(ErrorCode::kNotFound, "queue item " + std::to_string(item_id) + " not found");
  }
  if (s.starts_with("thread_busy:")) {
    return Fail(ErrorCode::kConflict,
                "queue item " + std::to_string(item_id) + "'s run waits its thread's turn: run " +
                    std::string(s.substr(std::string_view("thread_busy:").size())) +
                    " of the same thread is unfinished (one run at a time per thread); requeue "
                    "when it has finished");
  }
  if (s == "not_dead") {
    return Fail(ErrorCode::kConflict,
                "queue item " + std::to_string(item_id) +
                    " is not a dead letter (or failed only because a dependency did: requeue "
                    "that one)");
  }
  return Ok();
}

Result<int64_t> DeleteAbandonedCancelledItems(db::Connection& conn) {
  ASSIGN_OR_RETURN(db::PgResult r,
                   conn.ExecPrepared("delete_abandoned_cancelled",
                                     "WITH d AS (DELETE FROM synaps.queue_items WHERE status ="
                                     " 'cancelled' AND lease_expires_at < now() RETURNING 1)"
                                     " SELECT count(*) FROM d",
                                     {}));
  return r.GetInt(0, 0);
}

Result<QueueDepthStats> QueueDepth(db::Connection& conn) {
  ASSIGN_OR_RETURN(
      db::PgResult r,
      conn.ExecPrepared("queue_depth",
                        "SELECT status, count(*), coalesce(extract(epoch FROM now() -"
                        " min(available_at) FILTER (WHERE available_at <= now())), 0)::float8"
                        " FROM synaps.queue_items GROUP BY 1",
                        {}));
  QueueDepthStats out;
  out.by_state = {{"waiting", 0}, {"ready", 0}, {"leased", 0}, {"cancelled", 0}, {"dead", 0}};
  for (int i = 0; i < r.rows(); ++i) {
    out.by_state[r.GetString(i, 0)] = r.GetInt(i, 1);
    if (r.Get(i, 0) == "ready") {
      out.oldest_ready_age_seconds = std::strtod(r.GetString(i, 2).c_str(), nullptr);
    }
  }
  return out;
}

Result<bool> LeaseIsCurrent(db::Connection& conn, const LeaseRef& lease) {
  ASSIGN_OR_RETURN(
      db::PgResult r,
      conn.ExecPrepared("queue_item_lease_current",
                        "SELECT 1 FROM synaps.queue_items WHERE id = $1::bigint"
                        " AND status = 'leased' AND lease_epoch = $2::bigint",
                        {std::to_string(lease.item_id), std::to_string(lease.lease_epoch)}));
  return r.rows() > 0;
}

Result<std::optional<std::string>> QueueItemTenant(db::Connection& conn, int64_t item_id) {
  ASSIGN_OR_RETURN(db::PgResult r,
                   conn.ExecPrepared("queue_item_tenant",
                                     "SELECT tenant_id FROM synaps.queue_items WHERE id = $1::bigint",
                                     {std::to_string(item_id)}));
  if (r.rows() == 0) return std::nullopt;
  return std::string(r.Get(0, 0));
}

Result<json> TenantQueues(db::Connection& conn, const std::string& tenant_id) {
  ASSIGN_OR_RETURN(
      auto r,
      conn.ExecPrepared(
          "tenant_queues",
          "SELECT coalesce(jsonb_agg(x ORDER BY x->>'queue'), '[]'::jsonb) FROM ("
          " SELECT jsonb_build_object('queue', q.queue,"
          "   'waiting', count(*) FILTER (WHERE q.status = 'waiting'),"
          "   'ready', count(*) FILTER (WHERE q.status = 'ready'),"
          "   'leased', count(*) FILTER (WHERE q.status = 'leased'),"
          "   'held', count(*) FILTER (WHERE q.status = 'held'),"
          "   'dead', count(*) FILTER (WHERE q.status = 'dead'),"
          "   'oldestReadyAt', min(q.available_at) FILTER (WHERE q.status = 'ready')) AS x"
          " FROM synaps.queue_items q JOIN synaps.tasks t ON t.id = q.task_id"
          " WHERE t.tenant_id = $1 AND q.status <> 'cancelled' GROUP BY q.queue) s",
          {tenant_id}));
  return detail::ParseColumn(r.Get(0, 0), "the queue summary");
}

Result<std::optional<ItemTask>> QueueItemTask(db::Connection& conn, int64_t item_id) {
  ASSIGN_OR_RETURN(db::PgResult r,
                   conn.ExecPrepared("queue_item_task",
                                     "SELECT q.tenant_id, t.kind, t.spec FROM synaps.queue_items q"
                                     " JOIN synaps.tasks t ON t.id = q.task_id"
                                     " WHERE q.id = $1::bigint",
                                     {std::to_string(item_id)}));
  if (r.rows() == 0) return std::nullopt;
  ItemTask task{r.GetString(0, 0), r.GetString(0, 1),
                json::parse(r.Get(0, 2), nullptr, /*allow_exceptions=*/false)};
  if (task.spec.is_discarded()) task.spec = json::object();
  return task;
}

Result<json> ConcurrencyGauges(db::Connection& conn) {
  ASSIGN_OR_RETURN(
      db::PgResult r,
      conn.ExecPrepared(
          "concurrency_gauges",
          "WITH items AS ("
          "  SELECT (SELECT f.name FROM synaps.flow_limit(q.tenant_id, q.concurrency_key) f) AS "
          "name,"
          "         q.status"
          "    FROM synaps.queue_items q"
          "   WHERE q.concurrency_key IS NOT NULL AND q.status IN ('leased', 'limited'))"
          "SELECT l.name, count(*) FILTER (WHERE i.status = 'leased'),"
          "       count(*) FILTER (WHERE i.status = 'limited')"
          "  FROM synaps.flow_limits l LEFT JOIN items i ON i.name = l.name"
          " GROUP BY l.name ORDER BY l.name",
          {}));
  json out = json::object();
  for (int i = 0; i < r.rows(); ++i) {
    out[std::string(r.Get(i, 0))] = {{"running", r.GetInt(i, 1)}, {"waiting", r.GetInt(i, 2)}};
  }
  return out;
}

Result<int64_t> SweepConcurrencyKeys(db::Connection& conn) {
  ASSIGN_OR_RETURN(db::PgResult r,
                   conn.ExecPrepared("flow_sweep", "SELECT synaps.flow_sweep()", {}));
  return r.GetInt(0, 0);
}

}  // namespace synaps::store
