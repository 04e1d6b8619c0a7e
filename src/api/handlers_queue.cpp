// Router handlers for remote workers (the queue over HTTP, with the same fencing as the
// built-in worker) and for API keys.
#include <spdlog/spdlog.h>

#include <chrono>

#include "api/metrics.h"
#include "api/request_validation.h"
#include "api/revocation_list.h"
#include "api/router_internal.h"
#include "core/ids.h"
#include "objstore/object_store.h"
#include "store/auth_store.h"
#include "store/queue_store.h"

namespace synaps::api {

using detail::JsonResponse;
using detail::ParseCount;
using nlohmann::json;

namespace {

// The item's tenant must be the caller's (the bootstrap admin may act on any).
Status CheckItemTenant(db::Connection& conn, int64_t item_id, const Principal& who) {
  ASSIGN_OR_RETURN(std::optional<std::string> tenant, store::QueueItemTenant(conn, item_id));
  if (!tenant || (!who.installation && *tenant != who.tenant_id)) {
    return Fail(ErrorCode::kNotFound, "queue item " + std::to_string(item_id) + " not found");
  }
  return Ok();
}

// PostgreSQL's timestamptz text ("2026-11-27 14:06:38.76+00") as RFC 3339
// ("2026-11-27T14:06:38.76+00:00").
std::string Rfc3339(std::string t) {
  if (auto space = t.find(' '); space != std::string::npos) t[space] = 'T';
  size_t sign = t.find_last_of("+-");
  if (sign != std::string::npos && sign > 10 && t.size() - sign == 3) t += ":00";
  return t;
}

json VerdictsJson(const control::Arbitration& a) {
  json all = json::array();
  for (const auto& v : a.verdicts) all.push_back(v.ToJson());
  return all;
}

// An answer the arbiters refused: the attempt fails as the worker's would, with the verdicts as
// its error; a "retry" verdict schedules another attempt while attempts remain (a remote worker
// gets no feedback round, so the next attempt starts afresh).
HttpResponse RefuseCompletion(const Router::Context& ctx, db::Connection& conn, int64_t item_id,
                              int64_t lease_epoch, const control::Arbitration& a) {
  bool retry = a.decision == control::Decision::kRetry;
  std::string why = control::FeedbackMessage(a.verdicts);
  json error = {{"code", "arbiters"},
                {"message", "the answer was refused by arbiters"},
                {"arbiters", VerdictsJson(a)}};
  auto r = store::FailQueueItem(conn, {item_id, lease_epoch}, error, retry, store::BackoffPolicy{});
  if (!r) return ctx.Error(r.error());
  std::string state;
  switch (*r) {
    case store::FailState::kRetryScheduled: state = "retry_scheduled"; break;
    case store::FailState::kDeadLettered: state = "dead_lettered"; break;
    case store::FailState::kCancelled:
      return ctx.Error(409, "cancelled", "the run was cancelled: the result was discarded");
    case store::FailState::kLeaseLost:
      return ctx.Error(409, "lease_lost", "lease epoch " + std::to_string(lease_epoch) +
                                              " is not current: the result was discarded");
  }
  return JsonResponse(200,
                      {{"itemId", item_id},
                       {"state", state},
                       {"refused", true},
                       {"message", why},
                       {"arbiters", VerdictsJson(a)}},
                      ctx.request_id);
}

json ItemJson(const store::ClaimedItem& it) {
  return {{"itemId", it.item_id},       {"leaseEpoch", it.lease_epoch},
          {"attempt", it.attempt},      {"taskId", it.task_id},
          {"runId", it.run_id},         {"threadId", it.thread_id},
          {"name", it.task_name},       {"kind", it.task_kind},
          {"spec", it.spec},            {"upstream", it.upstream},
          {"leaseExpiresAt", Rfc3339(it.lease_expires_at)}};
}

}  // namespace

HttpResponse Router::Claim(Context& ctx, const Params&) const {
  if (!ctx.req.body.empty() && !IsJsonContentType(ctx.req.header("content-type"))) {
    return ctx.Error(415, "unsupported_media_type", "Content-Type must be application/json");
  }
  auto req = ParseClaimRequest(ctx.req.body);
  if (!req) return ctx.Error(req.error());
  auto conn = deps_.pool->Acquire();
  if (!conn) return ctx.Error(conn.error());
  auto started = std::chrono::steady_clock::now();
  std::optional<std::string> tenant;
  if (!ctx.principal->installation) tenant = ctx.principal->tenant_id;
  auto items = store::ClaimQueueItems(**conn, req->worker + "@" + ctx.principal->id, req->queues,
                                      req->limit, req->lease_seconds, tenant);
  if (!items) return ctx.Error(items.error());
  if (deps_.metrics != nullptr) {
    deps_.metrics->ObserveClaim(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  }
  json out = json::array();
  for (const auto& it : *items) {
    if (!it.invalid) {
      out.push_back(ItemJson(it));
      continue;
    }
    // A stored value of the item does not read: it fails here, alone, saying why, instead of
    // reaching the remote worker half-read. Should recording that fail, its lease expires and the
    // next claim fails it.
    json err = {{"code", std::string(ErrorCodeName(it.invalid->code))},
                {"message", it.invalid->message}};
    auto failed = store::FailQueueItem(**conn, {it.item_id, it.lease_epoch}, err,
                                       /*retryable=*/false, store::BackoffPolicy{});
    if (!failed) {
      spdlog::warn("claim: item {} could not be failed: {}", it.item_id, failed.error().message);
    }
  }
  return JsonResponse(200, {{"items", out}}, ctx.request_id);
}

HttpResponse Router::Renew(Context& ctx, const Params& p) const {
  auto id = ParseCount(p.at("id"));
  if (!id) return ctx.Error(400, "invalid_argument", "item id must be an integer", "id");
  if (!IsJsonContentType(ctx.req.header("content-type"))) {
    return ctx.Error(415, "unsupported_media_type", "Content-Type must be application/json");
  }
  auto req = ParseRenewRequest(ctx.req.body);
  if (!req) return ctx.Error(req.error());
  auto conn = deps_.pool->Acquire();
  if (!conn) return ctx.Error(conn.error());
  if (auto ok = CheckItemTenant(**conn, *id, *ctx.principal); !ok) return ctx.Error(ok.error());
  auto r = store::RenewLeases(**conn, {{*id, req->lease_epoch}}, req->lease_seconds);
  if (!r) return ctx.Error(r.error());
  switch ((*r)[0].state) {
    case store::RenewState::kOk:
      return JsonResponse(200, {{"itemId", *id}, {"state", "ok"}}, ctx.request_id);
    case store::RenewState::kCancelled:
      return ctx.Error(409, "cancelled", "the run was cancelled: stop working on this item");
    case store::RenewState::kLost:
      break;
  }
  return ctx.Error(409, "lease_lost", "lease epoch " + std::to_string(req->lease_epoch) +
                                          " is not current: another worker holds the item");
}

HttpResponse Router::Complete(Context& ctx, const Params& p) const {
  auto id = ParseCount(p.at("id"));
  if (!id) return ctx.Error(400, "invalid_argument", "item id must be an integer", "id");
  if (!IsJsonContentType(ctx.req.header("content-type"))) {
    return ctx.Error(415, "unsupported_media_type", "Content-Type must be application/json");
  }
  auto req = ParseCompleteRequest(ctx.req.body);
  if (!req) return ctx.Error(req.error());
  auto conn = deps_.pool->Acquire();
  if (!conn) return ctx.Error(conn.error());
  if (auto ok = CheckItemTenant(**conn, *id, *ctx.principal); !ok) return ctx.Error(ok.error());
  // A stale lease is refused before anything is uploaded: its bytes would only be garbage.
  auto current = store::LeaseIsCurrent(**conn, {*id, req->lease_epoch});
  if (!current) return ctx.Error(current.error());
  if (!*current) {
    return ctx.Error(409, "lease_lost",
                     "lease epoch " + std::to_string(req->lease_epoch) +
                         " is not current: the result was discarded");
  }
  // The same arbiters as the built-in worker's answers (docs/control.md, "Arbiters and remote
  // workers"): a refused answer fails the attempt, a held one waits for a person.
  auto arbitration = detail::ArbitrateRemoteCompletion(**conn, *id, req->output, req->artifacts);
  if (!arbitration) return ctx.Error(arbitration.error());
  if (arbitration->decision == control::Decision::kFail ||
      arbitration->decision == control::Decision::kRetry) {
    HttpResponse refused = RefuseCompletion(ctx, **conn, *id, req->lease_epoch, *arbitration);
    if (deps_.relay != nullptr) deps_.relay->Wake();
    return refused;
  }
  store::Completion c;
  c.lease = {*id, req->lease_epoch};
  c.output = req->output;
  c.output["provider"] = c.output.value("provider", "remote");
  c.hold = arbitration->decision == control::Decision::kHold;
  if (!arbitration->verdicts.empty()) c.output["arbiters"] = VerdictsJson(*arbitration);
  // Bytes go to the object store first (content-addressed, so a retry rewrites the same key);
  // only then is the row that points at them committed.
  for (auto& a : req->artifacts) {
    std::string sha = Sha256Hex(a.bytes);
    std::string key = objstore::ContentKey(sha);
    if (auto put = deps_.objects->Put(key, a.bytes, a.content_type); !put) {
      return ctx.Error(put.error());
    }
    c.artifacts.push_back({a.name, a.content_type, key, static_cast<int64_t>(a.bytes.size()), sha});
  }
  auto r = store::CompleteQueueItems(**conn, {c});
  if (!r) return ctx.Error(r.error());
  switch ((*r)[0]) {
    case store::CompleteState::kCompleted:
    case store::CompleteState::kHeld: {
      if (deps_.relay != nullptr) deps_.relay->Wake();
      bool held = (*r)[0] == store::CompleteState::kHeld;
      json out = {{"itemId", *id}, {"state", held ? "held" : "completed"}};
      if (!arbitration->verdicts.empty()) out["arbiters"] = VerdictsJson(*arbitration);
      return JsonResponse(200, out, ctx.request_id);
    }
    case store::CompleteState::kCancelled:
      return ctx.Error(409, "cancelled", "the run was cancelled: the result was discarded");
    case store::CompleteState::kLeaseLost:
      break;
  }
  return ctx.Error(409, "lease_lost", "lease epoch " + std::to_string(req->lease_epoch) +
                                          " is not current: the result was discarded");
}

HttpResponse Router::FailItem(Context& ctx, const Params& p) const {
  auto id = ParseCount(p.at("id"));
  if (!id) return ctx.Error(400, "invalid_argument", "item id must be an integer", "id");
  if (!IsJsonContentType(ctx.req.header("content-type"))) {
    return ctx.Error(415, "unsupported_media_type", "Content-Type must be application/json");
  }
  auto req = ParseFailRequest(ctx.req.body);
  if (!req) return ctx.Error(req.error());
  auto conn = deps_.pool->Acquire();
  if (!conn) return ctx.Error(conn.error());
  if (auto ok = CheckItemTenant(**conn, *id, *ctx.principal); !ok) return ctx.Error(ok.error());
  auto r = store::FailQueueItem(**conn, {*id, req->lease_epoch}, req->error, req->retryable,
                                store::BackoffPolicy{});
  if (!r) return ctx.Error(r.error());
  switch (*r) {
    case store::FailState::kRetryScheduled:
      return JsonResponse(200, {{"itemId", *id}, {"state", "retry_scheduled"}}, ctx.request_id);
    case store::FailState::kDeadLettered:
      if (deps_.relay != nullptr) deps_.relay->Wake();
      return JsonResponse(200, {{"itemId", *id}, {"state", "dead_lettered"}}, ctx.request_id);
    case store::FailState::kCancelled:
      return ctx.Error(409, "cancelled", "the run was cancelled");
    case store::FailState::kLeaseLost:
      break;
  }
  return ctx.Error(409, "lease_lost",
                   "lease epoch " + std::to_string(req->lease_epoch) + " is not current");
}

HttpResponse Router::CreateApiKey(Context& ctx, const Params&) const {
  if (!IsJsonContentType(ctx.req.header("content-type"))) {
    return ctx.Error(415, "unsupported_media_type", "Content-Type must be application/json");
  }
  auto req = ParseApiKeyRequest(ctx.req.body);
  if (!req) return ctx.Error(req.error());
  std::string tenant = req->tenant_id.value_or(ctx.principal->tenant_id);
  // A tenant's admin grants at most what it holds: keys of its own tenant, never the
  // installation scope.
  if (tenant != ctx.principal->tenant_id && !ctx.principal->installation) {
    return ctx.Error(403, "permission_denied",
                     "a tenant admin may create keys for its own tenant (" +
                         ctx.principal->tenant_id +
                         ") only; keys for another tenant need the installation scope");
  }
  if (req->installation && !ctx.principal->installation) {
    return ctx.Error(403, "permission_denied",
                     "only the bootstrap token or an installation-scoped admin may grant the "
                     "installation scope",
                     "installation");
  }
  std::string token = "sk_" + RandomHex(32);
  auto conn = deps_.pool->Acquire();
  if (!conn) return ctx.Error(conn.error());
  auto id = store::CreateApiKey(**conn, {"", tenant, req->role, req->installation}, req->name,
                                Sha256Hex(token), ctx.principal->id);
  if (!id) return ctx.Error(id.error());
  return JsonResponse(201,
                      {{"id", *id},
                       {"token", token},
                       {"tenantId", tenant},
                       {"role", req->role},
                       {"installation", req->installation},
                       {"name", req->name.empty() ? json(nullptr) : json(req->name)}},
                      ctx.request_id);
}

HttpResponse Router::RevokeApiKey(Context& ctx, const Params& p) const {
  const std::string& id = p.at("id");
  if (!IsUuid(id)) return ctx.Error(400, "invalid_argument", "key id must be a UUID", "id");
  auto conn = deps_.pool->Acquire();
  if (!conn) return ctx.Error(conn.error());
  // A tenant's admin revokes its own tenant's keys, never an installation key.
  const std::string within = ctx.principal->installation ? "" : ctx.principal->tenant_id;
  auto done = store::RevokeApiKey(**conn, id, within, ctx.principal->id);
  if (!done) return ctx.Error(done.error());
  return JsonResponse(200, {{"id", id}, {"revoked", true}}, ctx.request_id);
}

// POST /v1/auth/revocations {jti, exp?, reason?}: the JWT with this jti is refused from now
// on by this process, and by every other within its deny-list refresh. `exp` (unix seconds,
// the token's own exp) bounds how long the entry is kept; without it, the longest lifetime a
// token may have from now (SYNAPS_JWT_MAX_TTL).
HttpResponse Router::RevokeToken(Context& ctx, const Params&) const {
  if (!IsJsonContentType(ctx.req.header("content-type"))) {
    return ctx.Error(415, "unsupported_media_type", "Content-Type must be application/json");
  }
  auto body = detail::JsonBody(ctx, {"jti", "exp", "reason"});
  if (!body) return ctx.Error(body.error());
  const json& jti = (*body)["jti"];
  if (!jti.is_string() || jti.get<std::string>().empty() || jti.get<std::string>().size() > 256) {
    return ctx.Error(400, "invalid_argument", "jti must be a string of 1 to 256 bytes", "jti");
  }
  auto now = std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  int64_t exp = now + deps_.jwt_max_lifetime.value_or(std::chrono::hours(24)).count();
  if (body->contains("exp")) {
    const json& e = (*body)["exp"];
    if (!e.is_number_integer() || e.get<int64_t>() <= 0 || e.get<int64_t>() > 100'000'000'000) {
      return ctx.Error(400, "invalid_argument", "exp must be the token's exp, in unix seconds",
                       "exp");
    }
    exp = e.get<int64_t>();
  }
  auto reason = detail::OptionalReason(*body);
  if (!reason) return ctx.Error(reason.error());
  auto conn = deps_.pool->Acquire();
  if (!conn) return ctx.Error(conn.error());
  auto done = store::RevokeToken(**conn, jti.get<std::string>(), exp, ctx.principal->id, *reason);
  if (!done) return ctx.Error(done.error());
  if (deps_.revocations != nullptr) deps_.revocations->Add(jti.get<std::string>());
  return JsonResponse(201, {{"jti", jti}, {"exp", exp}, {"revoked", true}}, ctx.request_id);
}

}  // namespace synaps::api
