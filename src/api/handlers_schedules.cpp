// Router handlers for schedules (docs/schedules.md): their state, next fire times and last
// results, and running them now (trigger) or over a past range (backfill). The specs themselves
// are written through the control registry (PUT /v1/control/schedules/{name}). A schedule is
// visible to the tenant its runs belong to (spec.tenant) and to principals with the installation
// scope; to anyone else it does not exist.
#include <algorithm>

#include "api/request_validation.h"
#include "api/router_internal.h"
#include "control/schedule_spec.h"
#include "control/spec.h"
#include "schedules/scheduler.h"
#include "store/schedule_store.h"

namespace synaps::api {

using detail::JsonResponse;
using nlohmann::json;
using schedules::TimePoint;

namespace {

constexpr int kNextFireTimes = 5;

bool Visible(const Router::Context& ctx, const control::Schedule& s) {
  return ctx.principal->installation || ctx.principal->tenant_id == s.tenant;
}

json FireJson(const store::FireResult& f) {
  json out = {{"fireTime", f.fire_time}, {"origin", f.origin}, {"outcome", f.outcome}};
  if (f.reason) out["reason"] = *f.reason;
  if (f.run_id) out["runId"] = *f.run_id;
  if (!f.cancelled.empty()) out["cancelled"] = f.cancelled;
  return out;
}

// The schedule's view: spec, state, next fire times and the latest fire times decided.
Result<json> ScheduleJson(db::Connection& conn, const store::ScheduleRow& row,
                          const control::Schedule& s, int64_t now_ms, int recent) {
  json next = json::array();
  if (!s.paused) {
    int64_t after = now_ms / 1000;
    if (row.cursor) after = std::max(after, *row.cursor);
    TimePoint t{std::chrono::seconds(after)};
    for (int i = 0; i < kNextFireTimes; ++i) {
      auto n = s.times.Next(t);
      if (!n) break;
      next.push_back(schedules::FormatTime(*n));
      t = *n;
    }
  }
  ASSIGN_OR_RETURN(json fires, store::ListScheduleFires(conn, row.name, recent));
  json out = {{"name", row.name},
              {"version", row.version},
              {"spec", row.spec},
              {"tenant", s.tenant},
              {"state", s.paused ? "paused" : "active"},
              {"nextFireTimes", std::move(next)},
              {"lastFire", fires.empty() ? json() : fires.front()}};
  if (s.paused) out["pausedReason"] = row.version_reason;
  if (recent > 1) out["recentFires"] = std::move(fires);
  return out;
}

Result<std::optional<control::Overlap>> OverlapField(const json& body) {
  if (!body.contains("overlap")) return std::optional<control::Overlap>();
  std::optional<control::Overlap> o;
  if (body["overlap"].is_string()) o = control::OverlapFromName(body["overlap"].get<std::string>());
  if (!o) {
    return Fail(ErrorCode::kInvalidArgument,
                "overlap: must be one of skip, bufferOne, bufferAll, cancelOther, allow",
                "overlap");
  }
  return o;
}

Result<TimePoint> TimeField(const json& body, const char* key) {
  if (!body.contains(key)) {
    return Fail(ErrorCode::kInvalidArgument, std::string(key) + ": required", key);
  }
  std::optional<TimePoint> t;
  if (body[key].is_string()) t = schedules::ParseTime(body[key].get<std::string>());
  if (!t) {
    return Fail(ErrorCode::kInvalidArgument,
                std::string(key) + ": must be an RFC 3339 time (2026-01-01T00:00:00Z)", key);
  }
  return *t;
}

}  // namespace

HttpResponse Router::ListSchedules(Context& ctx, const Params&) const {
  if (!ctx.query.empty()) {
    const std::string& k = ctx.query.begin()->first;
    return ctx.Error(400, "invalid_argument", k + ": unknown parameter", k);
  }
  auto conn = deps_.pool->Acquire();
  if (!conn) return ctx.Error(conn.error());
  auto list = store::LoadSchedules(**conn);
  if (!list) return ctx.Error(list.error());
  json items = json::array();
  for (const auto& row : list->schedules) {
    auto s = control::ParseSchedule(row.name, row.spec);
    if (!s || !Visible(ctx, *s)) continue;
    auto view = ScheduleJson(**conn, row, *s, list->now_ms, 1);
    if (!view) return ctx.Error(view.error());
    items.push_back(std::move(*view));
  }
  return JsonResponse(200, {{"items", std::move(items)}}, ctx.request_id);
}

HttpResponse Router::GetSchedule(Context& ctx, const Params& p) const {
  const std::string& name = p.at("name");
  if (!control::IsValidName(name)) {
    return ctx.Error(400, "invalid_argument", "name: must match [a-z0-9][a-z0-9_.-]{0,63}", "name");
  }
  auto conn = deps_.pool->Acquire();
  if (!conn) return ctx.Error(conn.error());
  auto list = store::LoadSchedules(**conn, name);
  if (!list) return ctx.Error(list.error());
  std::optional<control::Schedule> s;
  if (!list->schedules.empty()) {
    auto parsed = control::ParseSchedule(name, list->schedules.front().spec);
    if (!parsed) return ctx.Error(parsed.error());
    s = std::move(*parsed);
  }
  if (!s || !Visible(ctx, *s)) return ctx.Error(404, "not_found", "schedule " + name + " not found");
  auto view = ScheduleJson(**conn, list->schedules.front(), *s, list->now_ms, 20);
  if (!view) return ctx.Error(view.error());
  return JsonResponse(200, *view, ctx.request_id);
}

HttpResponse Router::TriggerSchedule(Context& ctx, const Params& p) const {
  const std::string& name = p.at("name");
  if (auto bad = CheckScheduleAccess(ctx, name)) return *bad;
  json body = json::object();
  if (!ctx.req.body.empty()) {
    if (!IsJsonContentType(ctx.req.header("content-type"))) {
      return ctx.Error(415, "unsupported_media_type", "Content-Type must be application/json");
    }
    auto parsed = detail::JsonBody(ctx, {"overlap"});
    if (!parsed) return ctx.Error(parsed.error());
    body = std::move(*parsed);
  }
  auto overlap = OverlapField(body);
  if (!overlap) return ctx.Error(overlap.error());
  auto fired = deps_.scheduler->Trigger(name, *overlap);
  if (!fired) return ctx.Error(fired.error());
  json out = FireJson(*fired);
  out["schedule"] = name;
  return JsonResponse(fired->outcome == "started" ? 201 : 200, out, ctx.request_id);
}

HttpResponse Router::BackfillSchedule(Context& ctx, const Params& p) const {
  const std::string& name = p.at("name");
  if (auto bad = CheckScheduleAccess(ctx, name)) return *bad;
  if (!IsJsonContentType(ctx.req.header("content-type"))) {
    return ctx.Error(415, "unsupported_media_type", "Content-Type must be application/json");
  }
  auto body = detail::JsonBody(ctx, {"from", "to", "overlap"});
  if (!body) return ctx.Error(body.error());
  auto from = TimeField(*body, "from");
  if (!from) return ctx.Error(from.error());
  auto to = TimeField(*body, "to");
  if (!to) return ctx.Error(to.error());
  auto overlap = OverlapField(*body);
  if (!overlap) return ctx.Error(overlap.error());
  auto done = deps_.scheduler->Backfill(name, *from, *to, *overlap);
  if (!done) return ctx.Error(done.error());
  json fires = json::array();
  for (const auto& f : done->fires) fires.push_back(FireJson(f));
  json out = {{"schedule", name},
              {"fireTimes", done->fires.size()},
              {"started", done->started},
              {"buffered", done->buffered},
              {"skipped", done->skipped},
              {"duplicate", done->duplicate},
              {"fires", std::move(fires)}};
  return JsonResponse(200, out, ctx.request_id);
}

std::optional<HttpResponse> Router::CheckScheduleAccess(Context& ctx,
                                                        const std::string& name) const {
  if (!control::IsValidName(name)) {
    return ctx.Error(400, "invalid_argument", "name: must match [a-z0-9][a-z0-9_.-]{0,63}", "name");
  }
  if (deps_.scheduler == nullptr) {
    return ctx.Error(503, "unavailable", "schedules are not served by this process");
  }
  auto conn = deps_.pool->Acquire();
  if (!conn) return ctx.Error(conn.error());
  auto list = store::LoadSchedules(**conn, name);
  if (!list) return ctx.Error(list.error());
  if (!list->schedules.empty()) {
    auto s = control::ParseSchedule(name, list->schedules.front().spec);
    if (s && Visible(ctx, *s)) return std::nullopt;
  }
  return ctx.Error(404, "not_found", "schedule " + name + " not found");
}

}  // namespace synaps::api
