// Retention (docs/history.md): GET/PUT/DELETE /v1/retention read and change the period after
// which a tenant's finished runs leave PostgreSQL (every change audited), and
// POST /v1/runs/{id}/keep marks a run that expiry must never take. A principal reads and (as
// admin) changes its own tenant's setting; the installation scope any tenant's (`tenant=`) and
// the default (`tenant=*`).
#include "api/router_internal.h"
#include "core/http_grammar.h"
#include "core/ids.h"
#include "store/retention_store.h"

namespace synaps::api {

using detail::JsonResponse;
using nlohmann::json;

namespace {

// The tenant a retention request is about: `tenant=` (a tenant id or "*"), else the principal's.
Result<std::string> RetentionTenant(Router::Context& ctx) {
  std::string tenant = ctx.principal->tenant_id;
  for (const auto& [k, raw] : ctx.query) {
    if (k != "tenant") return Fail(ErrorCode::kInvalidArgument, k + ": unknown parameter", k);
    auto v = detail::UrlDecode(raw);
    if (!v || (*v != store::kDefaultRetentionTenant && !IsTenantId(*v))) {
      return Fail(ErrorCode::kInvalidArgument, "tenant: a tenant id, or * for the default",
                  "tenant");
    }
    tenant = *v;
  }
  if (tenant != ctx.principal->tenant_id && !ctx.principal->installation) {
    return Fail(ErrorCode::kPermissionDenied,
                "tenant: only the installation scope reads or changes another tenant's retention"
                " or the default",
                "tenant");
  }
  return tenant;
}

}  // namespace

HttpResponse Router::GetRetention(Context& ctx, const Params&) const {
  auto tenant = RetentionTenant(ctx);
  if (!tenant) return ctx.Error(tenant.error());
  auto conn = deps_.pool->Acquire();
  if (!conn) return ctx.Error(conn.error());
  auto retention = store::GetRetention(**conn, *tenant);
  if (!retention) return ctx.Error(retention.error());
  return JsonResponse(200, *retention, ctx.request_id);
}

HttpResponse Router::PutRetention(Context& ctx, const Params&) const {
  auto tenant = RetentionTenant(ctx);
  if (!tenant) return ctx.Error(tenant.error());
  auto body = detail::JsonBody(ctx, {"retentionDays", "archive", "reason"});
  if (!body) return ctx.Error(body.error());
  store::RetentionChange change{.tenant = *tenant, .actor = ctx.principal->id};
  if (!body->contains("retentionDays")) {
    return ctx.Error(400, "invalid_argument",
                     "retentionDays: required, days (1..36500) or null for never", "retentionDays");
  }
  const json& days = (*body)["retentionDays"];
  if (!days.is_null()) {
    if (!days.is_number_integer() || days.get<int64_t>() < 1 || days.get<int64_t>() > 36500) {
      return ctx.Error(400, "invalid_argument", "retentionDays: days (1..36500) or null for never",
                       "retentionDays");
    }
    change.retention_days = days.get<int>();
  }
  if (body->contains("archive")) {
    if (!(*body)["archive"].is_boolean()) {
      return ctx.Error(400, "invalid_argument", "archive must be true or false", "archive");
    }
    change.archive = (*body)["archive"].get<bool>();
  }
  auto reason = detail::OptionalReason(*body);
  if (!reason) return ctx.Error(reason.error());
  change.reason = *reason;
  auto conn = deps_.pool->Acquire();
  if (!conn) return ctx.Error(conn.error());
  auto retention = store::SetRetention(**conn, change);
  if (!retention) return ctx.Error(retention.error());
  return JsonResponse(200, *retention, ctx.request_id);
}

HttpResponse Router::DeleteRetention(Context& ctx, const Params&) const {
  auto tenant = RetentionTenant(ctx);
  if (!tenant) return ctx.Error(tenant.error());
  auto conn = deps_.pool->Acquire();
  if (!conn) return ctx.Error(conn.error());
  auto retention =
      store::SetRetention(**conn, {.tenant = *tenant, .clear = true, .actor = ctx.principal->id});
  if (!retention) return ctx.Error(retention.error());
  return JsonResponse(200, *retention, ctx.request_id);
}

HttpResponse Router::KeepRun(Context& ctx, const Params& p) const {
  const std::string& id = p.at("id");
  if (!IsUuid(id)) return ctx.Error(400, "invalid_argument", "run id must be a UUID", "id");
  bool keep = true;
  if (!ctx.req.body.empty()) {
    auto body = detail::JsonBody(ctx, {"keep"});
    if (!body) return ctx.Error(body.error());
    if (body->contains("keep")) {
      if (!(*body)["keep"].is_boolean()) {
        return ctx.Error(400, "invalid_argument", "keep must be true or false", "keep");
      }
      keep = (*body)["keep"].get<bool>();
    }
  }
  auto conn = deps_.pool->Acquire();
  if (!conn) return ctx.Error(conn.error());
  std::optional<std::string> tenant;
  if (!ctx.principal->installation) tenant = ctx.principal->tenant_id;
  if (auto done = store::SetRunKeep(**conn, tenant, id, keep, ctx.principal->id); !done) {
    return ctx.Error(done.error());
  }
  return JsonResponse(200, {{"runId", id}, {"keep", keep}}, ctx.request_id);
}

}  // namespace synaps::api
