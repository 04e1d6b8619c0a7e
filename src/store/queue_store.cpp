#include "store/queue_store.h"

namespace synaps::store {

using nlohmann::json;

Result<std::vector<ClaimedItem>> ClaimQueueItems(db::Connection& conn, const std::string& worker,
                                                 const std::vector<std::string>& queues,
                                                 int limit, int lease_seconds) {
  ASSIGN_OR_RETURN(
      db::PgResult r,
      conn.ExecPrepared("claim_queue_items",
                        "SELECT item_id, lease_epoch, attempt, task_id, run_id, tenant_id,"
                        "       thread_id, task_name, task_kind, spec, lease_expires_at"
                        "  FROM synaps.claim_queue_items($1, $2::text[], $3::integer, $4::integer)",
                        {worker, db::ArrayLiteral(queues), std::to_string(limit),
                         std::to_string(lease_seconds)}));
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
    it.spec = json::parse(r.Get(i, 9));
    it.lease_expires_at = r.GetString(i, 10);
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
  std::vector<int64_t> ids, epochs;
  json outputs = json::array(), artifacts = json::array();
  for (const auto& c : batch) {
    ids.push_back(c.lease.item_id);
    epochs.push_back(c.lease.lease_epoch);
    outputs.push_back(c.output);
    json arts = json::array();
    for (const auto& a : c.artifacts) {
      arts.push_back({{"name", a.name}, {"contentType", a.content_type},
                      {"objectKey", a.object_key}, {"size", a.size}, {"sha256", a.sha256}});
    }
    artifacts.push_back(std::move(arts));
  }
  // One statement: the function runs once per element, all in the statement's transaction.
  ASSIGN_OR_RETURN(
      db::PgResult r,
      conn.ExecPrepared(
          "complete_queue_items",
          "SELECT synaps.complete_queue_item(u.id, u.epoch, $3::jsonb -> (u.ord::int - 1),"
          "                                  $4::jsonb -> (u.ord::int - 1))"
          "  FROM unnest($1::bigint[], $2::bigint[]) WITH ORDINALITY AS u(id, epoch, ord)"
          " ORDER BY u.ord",
          {IntArray(ids), IntArray(epochs), outputs.dump(), artifacts.dump()}));
  std::vector<CompleteState> out;
  for (int i = 0; i < r.rows(); ++i) {
    out.push_back(r.Get(i, 0) == "completed" ? CompleteState::kCompleted
                                             : CompleteState::kLeaseLost);
  }
  return out;
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
  return FailState::kLeaseLost;
}

}  // namespace synaps::store
