#include "store/retention_store.h"

#include "store/detail/json_column.h"

namespace synaps::store {

using nlohmann::json;

Result<json> GetRetention(db::Connection& conn, const std::string& tenant) {
  ASSIGN_OR_RETURN(
      db::PgResult r,
      conn.ExecPrepared("retention_get", "SELECT synaps.effective_retention($1)", {tenant}));
  return detail::ParseColumn(r.GetString(0, 0), "retention");
}

Result<json> SetRetention(db::Connection& conn, const RetentionChange& change) {
  std::optional<std::string> days;
  if (change.retention_days) days = std::to_string(*change.retention_days);
  ASSIGN_OR_RETURN(
      db::PgResult r,
      conn.ExecPrepared("retention_set",
                        "SELECT synaps.set_retention($1, $2::integer, $3::boolean, $4::boolean,"
                        " $5, nullif($6, ''))",
                        {change.tenant, days, change.archive ? "true" : "false",
                         change.clear ? "true" : "false", change.actor, change.reason}));
  return detail::ParseColumn(r.GetString(0, 0), "retention");
}

Status SetRunKeep(db::Connection& conn, const std::optional<std::string>& tenant,
                  const std::string& run_id, bool keep, const std::string& actor) {
  ASSIGN_OR_RETURN(
      db::PgResult r,
      conn.ExecPrepared("run_keep", "SELECT synaps.set_run_keep($1, $2::uuid, $3::boolean, $4)",
                        {tenant, run_id, keep ? "true" : "false", actor}));
  if (r.GetString(0, 0) == "not_found") {
    return Fail(ErrorCode::kNotFound, "run " + run_id + " not found");
  }
  return Ok();
}

Result<std::vector<TenantRetention>> RetentionPlan(db::Connection& conn) {
  ASSIGN_OR_RETURN(db::PgResult r,
                   conn.ExecPrepared("retention_plan",
                                     "SELECT tenant_id, retention_days, archive"
                                     "  FROM synaps.retention_plan() ORDER BY tenant_id",
                                     {}));
  std::vector<TenantRetention> out;
  for (int i = 0; i < r.rows(); ++i) {
    out.push_back({r.GetString(i, 0), static_cast<int>(r.GetInt(i, 1)), r.GetBool(i, 2)});
  }
  return out;
}

Result<std::vector<ExpiredRun>> ExpiredRuns(db::Connection& conn, const TenantRetention& tenant,
                                            int limit) {
  ASSIGN_OR_RETURN(db::PgResult r,
                   conn.ExecPrepared("retention_expired",
                                     "SELECT run_id, day::text"
                                     "  FROM synaps.expired_runs($1, $2::integer, $3::integer)",
                                     {tenant.tenant, std::to_string(tenant.retention_days),
                                      std::to_string(limit)}));
  std::vector<ExpiredRun> out;
  for (int i = 0; i < r.rows(); ++i) out.push_back({r.GetString(i, 0), r.GetString(i, 1)});
  return out;
}

Result<int64_t> CountExpiredRuns(db::Connection& conn, const TenantRetention& tenant) {
  ASSIGN_OR_RETURN(db::PgResult r,
                   conn.ExecPrepared("retention_count_expired",
                                     "SELECT count(*) FROM synaps.expired_runs($1, $2::integer,"
                                     " 2147483647)",
                                     {tenant.tenant, std::to_string(tenant.retention_days)}));
  return r.GetInt(0, 0);
}

ExpiryCounts& ExpiryCounts::operator+=(const ExpiryCounts& o) {
  runs += o.runs;
  tasks += o.tasks;
  events += o.events;
  artifacts += o.artifacts;
  versions += o.versions;
  commands += o.commands;
  return *this;
}

json ExpiryCounts::ToJson() const {
  return {{"runs", runs},           {"tasks", tasks},       {"events", events},
          {"artifacts", artifacts}, {"versions", versions}, {"commands", commands}};
}

Result<ExpiryCounts> ExpireRuns(db::Connection& conn, const TenantRetention& tenant,
                                const std::vector<std::string>& run_ids,
                                const std::vector<std::string>& partition_days,
                                const std::optional<std::vector<int64_t>>& last_seqs) {
  std::optional<std::string> seqs;
  if (last_seqs) {
    if (last_seqs->size() != run_ids.size()) {
      return Fail(ErrorCode::kInternal, "ExpireRuns: last_seqs must be parallel to run_ids");
    }
    std::vector<std::string> texts;
    for (int64_t seq : *last_seqs) texts.push_back(std::to_string(seq));
    seqs = db::ArrayLiteral(texts);
  }
  ASSIGN_OR_RETURN(
      db::PgResult r,
      conn.ExecPrepared(
          "retention_expire",
          "SELECT synaps.expire_runs($1, $2::uuid[], $3::integer, $4::date[],"
          " $5::bigint[])",
          {tenant.tenant, db::ArrayLiteral(run_ids), std::to_string(tenant.retention_days),
           db::ArrayLiteral(partition_days), seqs}));
  ASSIGN_OR_RETURN(json j, detail::ParseColumn(r.GetString(0, 0), "expiry counts"));
  ExpiryCounts c;
  c.busy = j.value("busy", false);
  if (c.busy) return c;
  c.runs = j.value("runs", int64_t{0});
  c.tasks = j.value("tasks", int64_t{0});
  c.events = j.value("events", int64_t{0});
  c.artifacts = j.value("artifacts", int64_t{0});
  c.versions = j.value("versions", int64_t{0});
  c.commands = j.value("commands", int64_t{0});
  return c;
}

}  // namespace synaps::store
