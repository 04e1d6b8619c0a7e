// Router handlers for the control registry (docs/control.md): items of the kinds prompts,
// skills, tools, routes, arbiters and schedules, their history, the audit log and snapshots. Writes need
// the operate permission (admin, operator); reads any authenticated role.
#include <set>

#include "api/request_validation.h"
#include "api/router_internal.h"
#include "control/spec.h"
#include "store/control_store.h"

namespace synaps::api {

using detail::JsonResponse;
using detail::ParseCount;
using nlohmann::json;

namespace {

json VersionJson(const store::ControlItemVersion& v) {
  return {{"kind", v.kind},
          {"name", v.name},
          {"version", v.version},
          {"spec", v.spec},
          {"deleted", v.deleted},
          {"changeId", v.change_id},
          {"action", v.action},
          {"actor", v.actor},
          {"actorTenant", v.actor_tenant},
          {"reason", v.reason},
          {"at", v.at}};
}

json ChangeJson(const store::ControlItemVersion& v) {
  return {{"id", v.change_id},
          {"kind", v.kind},
          {"name", v.name},
          {"version", v.version},
          {"action", v.action},
          {"actor", v.actor},
          {"actorTenant", v.actor_tenant},
          {"reason", v.reason},
          {"at", v.at}};
}

json WriteJson(const store::ControlWriteResult& r) {
  return {{"kind", r.kind},
          {"name", r.name},
          {"version", r.version},
          {"snapshotVersion", r.snapshot_version},
          {"changed", r.changed}};
}

// The kind in the path: an unknown one is a 404 (there is no such collection).
std::optional<HttpResponse> CheckKind(const Router::Context& ctx, const std::string& kind) {
  if (control::IsKind(kind)) return std::nullopt;
  return ctx.Error(
      404, "not_found",
      "no control kind " + kind + " (kinds: " + control::KindList() + ")");
}

std::optional<HttpResponse> CheckName(const Router::Context& ctx, const std::string& name) {
  if (control::IsValidName(name)) return std::nullopt;
  return ctx.Error(400, "invalid_argument", "name: must match [a-z0-9][a-z0-9_.-]{0,63}", "name");
}

// Refuses query parameters other than `known`; returns the decoded values.
Result<std::map<std::string, std::string>> Query(const Router::Context& ctx,
                                                 const std::set<std::string>& known) {
  std::map<std::string, std::string> out;
  for (const auto& [k, raw] : ctx.query) {
    if (!known.contains(k)) return Fail(ErrorCode::kInvalidArgument, k + ": unknown parameter", k);
    auto v = detail::UrlDecode(raw);
    if (!v) return Fail(ErrorCode::kInvalidArgument, k + ": malformed percent-encoding", k);
    out[k] = *v;
  }
  return out;
}

Result<std::string> Reason(const json& body) {
  if (!body.contains("reason")) {
    return Fail(ErrorCode::kInvalidArgument, "reason: required: say why the change is made",
                "reason");
  }
  if (!body["reason"].is_string()) {
    return Fail(ErrorCode::kInvalidArgument, "reason: must be a string", "reason");
  }
  return body["reason"].get<std::string>();
}

store::ControlActor Actor(const Router::Context& ctx, std::string reason) {
  return {ctx.principal->id, ctx.principal->tenant_id, std::move(reason)};
}

bool IsJson(const Router::Context& ctx) {
  return IsJsonContentType(ctx.req.header("content-type"));
}

}  // namespace

HttpResponse Router::ControlSnapshot(Context& ctx, const Params&) const {
  auto q = Query(ctx, {"version"});
  if (!q) return ctx.Error(q.error());
  std::optional<int64_t> version;
  if (q->contains("version")) {
    version = ParseCount(q->at("version"));
    if (!version) {
      return ctx.Error(400, "invalid_argument", "version: must be a non-negative integer",
                       "version");
    }
  }
  auto conn = deps_.pool->Acquire();
  if (!conn) return ctx.Error(conn.error());
  auto snapshot = store::LoadSnapshot(**conn, version);
  if (!snapshot) return ctx.Error(snapshot.error());
  return JsonResponse(200, snapshot->ToJson(), ctx.request_id);
}

HttpResponse Router::ControlChanges(Context& ctx, const Params&) const {
  auto q = Query(ctx, {"kind", "name", "actor", "cursor", "limit"});
  if (!q) return ctx.Error(q.error());
  store::ControlChangeFilter f;
  if (q->contains("kind")) {
    if (!control::IsKind(q->at("kind"))) {
      return ctx.Error(400, "invalid_argument", "kind: must be one of " + control::KindList(),
                       "kind");
    }
    f.kind = q->at("kind");
  }
  if (q->contains("name")) {
    if (auto bad = CheckName(ctx, q->at("name"))) return *bad;
    f.name = q->at("name");
  }
  if (q->contains("actor")) {
    if (q->at("actor").empty() || q->at("actor").size() > 256) {
      return ctx.Error(400, "invalid_argument", "actor: must be 1 to 256 bytes", "actor");
    }
    f.actor = q->at("actor");
  }
  if (q->contains("cursor")) {
    auto c = ParseCount(q->at("cursor"));
    if (!c) return ctx.Error(400, "invalid_argument", "cursor: malformed cursor", "cursor");
    f.before = *c;
  }
  if (q->contains("limit")) {
    auto n = ParseCount(q->at("limit"));
    if (!n || *n < 1 || *n > 500) {
      return ctx.Error(400, "invalid_argument", "limit: must be within 1..500", "limit");
    }
    f.limit = static_cast<int>(*n);
  }
  auto conn = deps_.pool->Acquire();
  if (!conn) return ctx.Error(conn.error());
  auto page = store::ListControlChanges(**conn, f);
  if (!page) return ctx.Error(page.error());
  json items = json::array();
  for (const auto& c : page->changes) items.push_back(ChangeJson(c));
  json body = {{"items", std::move(items)}};
  if (page->next_cursor) body["nextCursor"] = std::to_string(*page->next_cursor);
  return JsonResponse(200, body, ctx.request_id);
}

HttpResponse Router::ListControl(Context& ctx, const Params& p) const {
  const std::string& kind = p.at("kind");
  if (auto bad = CheckKind(ctx, kind)) return *bad;
  if (auto q = Query(ctx, {}); !q) return ctx.Error(q.error());
  auto conn = deps_.pool->Acquire();
  if (!conn) return ctx.Error(conn.error());
  auto list = store::ListControlItems(**conn, kind);
  if (!list) return ctx.Error(list.error());
  json items = json::array();
  for (const auto& v : *list) items.push_back(VersionJson(v));
  return JsonResponse(200, {{"kind", kind}, {"items", std::move(items)}}, ctx.request_id);
}

HttpResponse Router::GetControl(Context& ctx, const Params& p) const {
  const std::string& kind = p.at("kind");
  const std::string& name = p.at("name");
  if (auto bad = CheckKind(ctx, kind)) return *bad;
  if (auto bad = CheckName(ctx, name)) return *bad;
  auto q = Query(ctx, {"version"});
  if (!q) return ctx.Error(q.error());
  std::optional<int> version;
  if (q->contains("version")) {
    auto v = ParseCount(q->at("version"));
    if (!v || *v < 1 || *v > 2'000'000'000) {
      return ctx.Error(400, "invalid_argument", "version: must be a positive integer", "version");
    }
    version = static_cast<int>(*v);
  }
  auto conn = deps_.pool->Acquire();
  if (!conn) return ctx.Error(conn.error());
  auto item = store::GetControlItem(**conn, kind, name, version);
  if (!item) return ctx.Error(item.error());
  return JsonResponse(200, VersionJson(*item), ctx.request_id);
}

HttpResponse Router::PutControl(Context& ctx, const Params& p) const {
  const std::string& kind = p.at("kind");
  const std::string& name = p.at("name");
  if (auto bad = CheckKind(ctx, kind)) return *bad;
  if (auto bad = CheckName(ctx, name)) return *bad;
  if (!IsJson(ctx)) {
    return ctx.Error(415, "unsupported_media_type", "Content-Type must be application/json");
  }
  auto body = detail::JsonBody(ctx, {"spec", "reason"});
  if (!body) return ctx.Error(body.error());
  if (!body->contains("spec")) return ctx.Error(400, "invalid_argument", "spec: required", "spec");
  auto reason = Reason(*body);
  if (!reason) return ctx.Error(reason.error());
  if (kind == "schedules") {
    // The spec's own rules first, so that its mistakes are named before the command's.
    if (Status valid = control::ValidateSpec(kind, name, (*body)["spec"]); !valid) {
      return ctx.Error(valid.error());
    }
    if (Status command = ValidateScheduleCommand((*body)["spec"]); !command) {
      return ctx.Error(command.error());
    }
  }
  auto conn = deps_.pool->Acquire();
  if (!conn) return ctx.Error(conn.error());
  auto written = store::PutControlItem(**conn, kind, name, (*body)["spec"], Actor(ctx, *reason));
  if (!written) return ctx.Error(written.error());
  if (deps_.relay != nullptr && written->outbox) deps_.relay->Notify({*written->outbox}, ctx.trace);
  return JsonResponse(written->created ? 201 : 200, WriteJson(*written), ctx.request_id);
}

HttpResponse Router::DeleteControl(Context& ctx, const Params& p) const {
  const std::string& kind = p.at("kind");
  const std::string& name = p.at("name");
  if (auto bad = CheckKind(ctx, kind)) return *bad;
  if (auto bad = CheckName(ctx, name)) return *bad;
  auto q = Query(ctx, {"reason"});
  if (!q) return ctx.Error(q.error());
  std::string reason;
  if (!ctx.req.body.empty()) {
    if (!IsJson(ctx)) {
      return ctx.Error(415, "unsupported_media_type", "Content-Type must be application/json");
    }
    auto body = detail::JsonBody(ctx, {"reason"});
    if (!body) return ctx.Error(body.error());
    auto r = Reason(*body);
    if (!r) return ctx.Error(r.error());
    reason = *r;
  } else if (q->contains("reason")) {
    reason = q->at("reason");
  }
  auto conn = deps_.pool->Acquire();
  if (!conn) return ctx.Error(conn.error());
  auto written = store::DeleteControlItem(**conn, kind, name, Actor(ctx, reason));
  if (!written) return ctx.Error(written.error());
  if (deps_.relay != nullptr && written->outbox) deps_.relay->Notify({*written->outbox}, ctx.trace);
  json out = WriteJson(*written);
  out["deleted"] = true;
  return JsonResponse(200, out, ctx.request_id);
}

HttpResponse Router::RollbackControl(Context& ctx, const Params& p) const {
  const std::string& kind = p.at("kind");
  const std::string& name = p.at("name");
  if (auto bad = CheckKind(ctx, kind)) return *bad;
  if (auto bad = CheckName(ctx, name)) return *bad;
  if (!IsJson(ctx)) {
    return ctx.Error(415, "unsupported_media_type", "Content-Type must be application/json");
  }
  auto body = detail::JsonBody(ctx, {"toVersion", "reason"});
  if (!body) return ctx.Error(body.error());
  const json& to = body->value("toVersion", json());
  if (!to.is_number_integer() || (to.is_number_unsigned() && to.get<uint64_t>() > 2'000'000'000) ||
      to.get<int64_t>() < 1 || to.get<int64_t>() > 2'000'000'000) {
    return ctx.Error(400, "invalid_argument", "toVersion: required, a positive integer",
                     "toVersion");
  }
  auto reason = Reason(*body);
  if (!reason) return ctx.Error(reason.error());
  auto conn = deps_.pool->Acquire();
  if (!conn) return ctx.Error(conn.error());
  auto written = store::RollbackControlItem(**conn, kind, name, to.get<int>(), Actor(ctx, *reason));
  if (!written) return ctx.Error(written.error());
  if (deps_.relay != nullptr && written->outbox) deps_.relay->Notify({*written->outbox}, ctx.trace);
  json out = WriteJson(*written);
  out["rolledBackTo"] = to.get<int>();
  return JsonResponse(200, out, ctx.request_id);
}

}  // namespace synaps::api
