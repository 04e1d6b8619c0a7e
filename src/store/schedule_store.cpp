#include "store/schedule_store.h"

#include "core/barrier.h"
#include "store/detail/json_column.h"

namespace synaps::store {

using nlohmann::json;

namespace {

std::vector<OutboxMessage> Outbox(const json& rows) {
  std::vector<OutboxMessage> out;
  if (!rows.is_array()) return out;
  for (const auto& o : rows) {
    out.push_back({o["id"].get<int64_t>(), o["subject"].get<std::string>(), o["payload"].dump(),
                   o["msgId"].get<std::string>()});
  }
  return out;
}

}  // namespace

Result<ScheduleList> LoadSchedules(db::Connection& conn, const std::optional<std::string>& name) {
  static constexpr const char* kSql = R"sql(
SELECT i.name, i.version, i.spec::text, floor(extract(epoch FROM c.at))::bigint, c.actor, c.reason,
       (SELECT floor(extract(epoch FROM max(f.fire_time)))::bigint
          FROM synaps.schedule_fires f WHERE f.schedule = i.name AND f.origin = 'schedule'),
       floor(extract(epoch FROM now()) * 1000)::bigint
  FROM (SELECT DISTINCT ON (name) name, version, spec, deleted
          FROM synaps.control_items
         WHERE kind = 'schedules' AND ($1::text IS NULL OR name = $1)
         ORDER BY name, version DESC) i
  JOIN synaps.control_change c
    ON c.kind = 'schedules' AND c.name = i.name AND c.version = i.version
 WHERE NOT i.deleted
 ORDER BY i.name
)sql";
  ASSIGN_OR_RETURN(db::PgResult r, conn.ExecPrepared("load_schedules", kSql, {name}));
  ScheduleList out;
  if (r.rows() == 0) {
    ASSIGN_OR_RETURN(db::PgResult now,
                     conn.ExecPrepared("schedules_now",
                                       "SELECT floor(extract(epoch FROM now()) * 1000)::bigint",
                                       {}));
    out.now_ms = now.GetInt(0, 0);
    return out;
  }
  for (int i = 0; i < r.rows(); ++i) {
    ScheduleRow row;
    row.name = r.GetString(i, 0);
    row.version = static_cast<int>(r.GetInt(i, 1));
    // A schedule whose spec does not read is handed on as null: the scheduler reports it as
    // invalid (control::ParseSchedule) and goes on with the others.
    auto spec = detail::ParseColumn(r.Get(i, 2), "schedule " + row.name + "'s spec");
    row.spec = spec ? std::move(*spec) : json();
    row.version_at = r.GetInt(i, 3);
    row.version_actor = r.GetString(i, 4);
    row.version_reason = r.GetString(i, 5);
    if (!r.IsNull(i, 6)) row.cursor = r.GetInt(i, 6);
    out.now_ms = r.GetInt(i, 7);
    out.schedules.push_back(std::move(row));
  }
  return out;
}

Result<FireResult> FireSchedule(db::Connection& conn, const FireRequest& req) {
  std::optional<std::string> fire_time;
  if (req.fire_time) fire_time = std::to_string(*req.fire_time);
  ASSIGN_OR_RETURN(
      db::PgResult r,
      conn.ExecPrepared("schedule_fire",
                        "SELECT synaps.schedule_fire($1, to_timestamp($2::bigint), $3::integer, "
                        "$4, $5, $6, $7, $8::jsonb, $9)",
                        {req.schedule, fire_time, std::to_string(req.version), req.origin,
                         req.overlap, req.tenant, req.request_hash, req.command.dump(),
                         req.skip_reason}));
  ASSIGN_OR_RETURN(json out, detail::ParseColumn(r.Get(0, 0), "the answer of schedule_fire"));
  return Guarded("reading the answer of schedule_fire", [&]() -> Result<FireResult> {
    FireResult result;
    result.outcome = out.value("outcome", "");
    result.fire_time = out.value("fireTime", "");
    result.origin = req.origin;
    if (out.contains("reason") && out["reason"].is_string()) result.reason = out["reason"];
    if (out.contains("runId") && out["runId"].is_string()) result.run_id = out["runId"];
    result.outbox = Outbox(out.value("outbox", json()));
    if (out.contains("cancelled") && out["cancelled"].is_array()) {
      for (const auto& c : out["cancelled"]) result.cancelled.push_back(c.get<std::string>());
    }
    return result;
  });
}

Result<DrainResult> DrainSchedule(db::Connection& conn, const std::string& schedule, int version) {
  ASSIGN_OR_RETURN(db::PgResult r,
                   conn.ExecPrepared("schedule_drain",
                                     "SELECT synaps.schedule_drain($1, $2::integer)",
                                     {schedule, std::to_string(version)}));
  ASSIGN_OR_RETURN(json out, detail::ParseColumn(r.Get(0, 0), "the answer of schedule_drain"));
  return Guarded("reading the answer of schedule_drain", [&]() -> Result<DrainResult> {
    DrainResult result;
    result.failed = out.value("failed", false);
    if (out.contains("started")) {
      const json& s = out["started"];
      FireResult f;
      f.outcome = "started";
      f.fire_time = s.value("fireTime", "");
      f.origin = s.value("origin", "");
      f.run_id = s.value("runId", "");
      f.outbox = Outbox(s.value("outbox", json()));
      result.started = std::move(f);
    }
    return result;
  });
}

Result<json> ListScheduleFires(db::Connection& conn, const std::string& schedule, int limit) {
  static constexpr const char* kSql = R"sql(
SELECT coalesce(jsonb_agg(jsonb_build_object(
         'fireTime', f.fire_time, 'version', f.version, 'origin', f.origin, 'status', f.status,
         'reason', f.reason, 'runId', f.run_id, 'runStatus', r.status,
         'decidedAt', f.decided_at, 'startedAt', f.started_at)
       ORDER BY f.fire_time DESC), '[]'::jsonb)
  FROM (SELECT * FROM synaps.schedule_fires WHERE schedule = $1
         ORDER BY fire_time DESC LIMIT $2::integer) f
  LEFT JOIN synaps.runs r ON r.id = f.run_id
)sql";
  ASSIGN_OR_RETURN(db::PgResult r, conn.ExecPrepared("list_schedule_fires", kSql,
                                                     {schedule, std::to_string(limit)}));
  return detail::ParseColumn(r.Get(0, 0), "the schedule's fires");
}

}  // namespace synaps::store
