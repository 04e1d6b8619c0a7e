#include "api/router.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cmath>
#include <optional>
#include <regex>

#include "api/abuse_limits.h"
#include "api/console_assets.h"
#include "api/metrics.h"
#include "api/rate_limiter.h"
#include "api/read_routing.h"
#include "api/request_validation.h"
#include "api/revocation_list.h"
#include "api/router_internal.h"
#include "auth/jwt.h"
#include "core/http_grammar.h"
#include "core/ids.h"
#include "core/log.h"
#include "otel/exporter.h"
#include "store/auth_store.h"
#include "store/outbox_store.h"
#include "store/queue_store.h"
#include "store/run_store.h"
#include "store/worker_store.h"

namespace synaps::api {

using nlohmann::json;

namespace {

int HttpStatusFor(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return 400;
    case ErrorCode::kUnauthenticated:
      return 401;
    case ErrorCode::kPermissionDenied:
      return 403;
    case ErrorCode::kNotFound:
      return 404;
    case ErrorCode::kAlreadyExists:
    case ErrorCode::kConflict:
    case ErrorCode::kLeaseLost:
    case ErrorCode::kCancelled:
      return 409;
    case ErrorCode::kResourceExhausted:
      return 429;
    case ErrorCode::kUnavailable:
      return 503;
    case ErrorCode::kDeadlineExceeded:
      return 504;
    case ErrorCode::kInternal:
      return 500;
  }
  return 500;
}

std::string SaneRequestId(const std::string& given) {
  static const std::regex kOk("[A-Za-z0-9._:-]{1,128}");
  if (!given.empty() && std::regex_match(given, kOk)) return given;
  return NewUuid();
}

std::vector<std::string> SplitPath(const std::string& path) {
  std::vector<std::string> parts;
  size_t i = 1;
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    parts.push_back(path.substr(i, j - i));
    i = j + 1;
  }
  return parts;
}

// Matches "/v1/runs/{id}" against a path; fills `params` on success.
bool MatchPattern(const std::string& pattern, const std::vector<std::string>& parts,
                  Router::Params& params) {
  auto want = SplitPath(pattern);
  if (want.size() != parts.size()) return false;
  Router::Params found;
  for (size_t i = 0; i < want.size(); ++i) {
    if (want[i].size() > 2 && want[i].front() == '{' && want[i].back() == '}') {
      if (parts[i].empty()) return false;
      found[want[i].substr(1, want[i].size() - 2)] = parts[i];
    } else if (want[i] != parts[i]) {
      return false;
    }
  }
  params = std::move(found);
  return true;
}

std::map<std::string, std::string> ParseQuery(const std::string& q) {
  std::map<std::string, std::string> out;
  size_t i = 0;
  while (i < q.size()) {
    size_t amp = q.find('&', i);
    if (amp == std::string::npos) amp = q.size();
    std::string kv = q.substr(i, amp - i);
    size_t eq = kv.find('=');
    if (!kv.empty()) {
      out[kv.substr(0, eq)] = eq == std::string::npos ? "" : kv.substr(eq + 1);
    }
    i = amp + 1;
  }
  return out;
}

}  // namespace

namespace detail {

HttpResponse JsonResponse(int status, const json& body, const std::string& request_id) {
  HttpResponse r;
  r.status = status;
  r.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
  r.headers.push_back({"X-Request-Id", request_id});
  return r;
}

std::optional<int64_t> ParseCount(const std::string& s) {
  if (s.empty() || s.size() > 18) return std::nullopt;
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v < 0) return std::nullopt;
  return v;
}

std::optional<std::string> UrlDecode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out.push_back(' ');
    } else if (s[i] == '%') {
      if (i + 2 >= s.size() || !std::isxdigit(static_cast<unsigned char>(s[i + 1])) ||
          !std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
        return std::nullopt;
      }
      out.push_back(static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

bool IsInlineArtifactType(const std::string& content_type) {
  static const std::set<std::string> kInline = {"text/plain",       "text/markdown", "text/csv",
                                                "application/json", "image/png",     "image/jpeg",
                                                "image/gif",        "image/webp"};
  return kInline.contains(MediaTypeEssence(content_type));
}

void SetArtifactHeaders(HttpResponse& r, const std::string& content_type, const std::string& name) {
  // Rows written before the media-type check may hold anything: never echo those.
  r.content_type = IsMediaType(content_type) ? content_type : "application/octet-stream";
  r.headers.push_back({"X-Content-Type-Options", "nosniff"});
  r.headers.push_back({"Content-Security-Policy", "sandbox"});
  r.headers.push_back({"Cross-Origin-Resource-Policy", "same-origin"});
  if (IsInlineArtifactType(r.content_type)) return;
  std::string disposition = "attachment";
  if (IsHttpToken(name)) disposition += "; filename=\"" + name + "\"";
  r.headers.push_back({"Content-Disposition", disposition});
}

Result<std::string> OptionalReason(const json& body) {
  if (!body.contains("reason")) return std::string();
  const json& r = body["reason"];
  if (!r.is_string() || r.get<std::string>().size() > 2000) {
    return Fail(ErrorCode::kInvalidArgument, "reason must be a string of at most 2000 bytes",
                "reason");
  }
  return r.get<std::string>();
}

Result<json> JsonBody(const Router::Context& ctx, const std::set<std::string>& known) {
  ASSIGN_OR_RETURN(json body, ParseJsonObject(ctx.req.body));
  for (auto it = body.begin(); it != body.end(); ++it) {
    if (!known.contains(it.key())) {
      return Fail(ErrorCode::kInvalidArgument, it.key() + ": unknown field", it.key());
    }
  }
  return body;
}

}  // namespace detail

using detail::JsonResponse;
using detail::ParseCount;

struct Router::Route {
  const char* method;
  const char* pattern;
  Permission permission;
  Router::Handler handler;
};

const std::vector<Router::Route>& Router::Routes() {
  static const std::vector<Route> kRoutes = {
      {"GET", "/healthz", Permission::kNone, &Router::Healthz},
      {"GET", "/readyz", Permission::kNone, &Router::Readyz},
      {"GET", "/metrics", Permission::kNone, &Router::Metrics},
      {"POST", "/v1/commands/submit", Permission::kSubmit, &Router::Submit},
      {"GET", "/v1/whoami", Permission::kRead, &Router::WhoAmI},
      {"GET", "/v1/events", Permission::kRead, &Router::TenantEvents},
      {"POST", "/v1/runs/cancel", Permission::kOperate, &Router::BulkCancel},
      {"POST", "/v1/runs/retry", Permission::kOperate, &Router::BulkRetry},
      {"GET", "/v1/api-keys", Permission::kAdmin, &Router::ListApiKeys},
      {"GET", "/v1/runs/{id}", Permission::kRead, &Router::GetRun},
      {"POST", "/v1/runs/{id}/cancel", Permission::kOperate, &Router::CancelRun},
      {"POST", "/v1/runs/{id}/retry", Permission::kOperate, &Router::RetryRun},
      {"POST", "/v1/tasks/{id}/approve", Permission::kOperate, &Router::ApproveTask},
      {"POST", "/v1/tasks/{id}/reject", Permission::kOperate, &Router::RejectTask},
      {"GET", "/v1/artifacts/{id}/versions/{version}/content", Permission::kRead,
       &Router::GetArtifactContent},
      {"GET", "/openapi.json", Permission::kNone, &Router::OpenApi},
      {"GET", "/v1/runs", Permission::kRead, &Router::ListRuns},
      {"GET", "/v1/runs/{id}/events", Permission::kRead, &Router::RunEvents},
      {"GET", "/v1/runs/{id}/archive", Permission::kRead, &Router::GetArchivedRun},
      {"GET", "/v1/threads/{id}", Permission::kRead, &Router::GetThread},
      {"GET", "/v1/workers", Permission::kOperate, &Router::ListWorkers},
      {"GET", "/v1/queue/dead", Permission::kOperate, &Router::ListDeadLetters},
      {"GET", "/v1/queues", Permission::kOperate, &Router::ListQueues},
      {"GET", "/v1/flow", Permission::kRead, &Router::GetFlow},
      {"POST", "/v1/queue/items/{id}/retry", Permission::kOperate, &Router::RetryDeadLetter},
      {"POST", "/v1/queue/claim", Permission::kWork, &Router::Claim},
      {"POST", "/v1/queue/items/{id}/renew", Permission::kWork, &Router::Renew},
      {"POST", "/v1/queue/items/{id}/complete", Permission::kWork, &Router::Complete},
      {"POST", "/v1/queue/items/{id}/fail", Permission::kWork, &Router::FailItem},
      {"POST", "/v1/api-keys", Permission::kAdmin, &Router::CreateApiKey},
      {"DELETE", "/v1/api-keys/{id}", Permission::kAdmin, &Router::RevokeApiKey},
      {"POST", "/v1/auth/revocations", Permission::kInstallationAdmin, &Router::RevokeToken},
      // The fixed control paths come before /v1/control/{kind}, which would also match them.
      {"GET", "/v1/control/snapshot", Permission::kRead, &Router::ControlSnapshot},
      {"GET", "/v1/control/changes", Permission::kRead, &Router::ControlChanges},
      {"GET", "/v1/control/{kind}", Permission::kRead, &Router::ListControl},
      {"GET", "/v1/control/{kind}/{name}", Permission::kRead, &Router::GetControl},
      {"PUT", "/v1/control/{kind}/{name}", Permission::kControl, &Router::PutControl},
      {"DELETE", "/v1/control/{kind}/{name}", Permission::kControl, &Router::DeleteControl},
      {"POST", "/v1/control/{kind}/{name}/rollback", Permission::kControl,
       &Router::RollbackControl},
      {"GET", "/v1/schedules", Permission::kRead, &Router::ListSchedules},
      {"GET", "/v1/usage", Permission::kRead, &Router::GetUsage},
      {"GET", "/v1/retention", Permission::kRead, &Router::GetRetention},
      {"PUT", "/v1/retention", Permission::kAdmin, &Router::PutRetention},
      {"DELETE", "/v1/retention", Permission::kAdmin, &Router::DeleteRetention},
      {"POST", "/v1/runs/{id}/keep", Permission::kOperate, &Router::KeepRun},
      {"GET", "/v1/schedules/{name}", Permission::kRead, &Router::GetSchedule},
      {"POST", "/v1/schedules/{name}/trigger", Permission::kOperate, &Router::TriggerSchedule},
      {"POST", "/v1/schedules/{name}/backfill", Permission::kOperate, &Router::BackfillSchedule},
  };
  return kRoutes;
}

std::vector<std::pair<std::string, std::string>> Router::RouteList() {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& r : Routes()) out.emplace_back(r.method, r.pattern);
  return out;
}

bool RoleAllows(const std::string& role, Permission p) {
  if (p == Permission::kNone) return true;
  if (role == "admin") return true;
  if (p == Permission::kControl) p = Permission::kOperate;  // the scope is checked apart
  if (p == Permission::kInstallationAdmin) p = Permission::kAdmin;
  if (role == "operator") return p != Permission::kAdmin && p != Permission::kWork;
  if (role == "worker") return p == Permission::kRead || p == Permission::kWork;
  if (role == "viewer" || role == "user") return p == Permission::kRead;
  return false;
}

namespace {

// PostgreSQL's own words (db/connection.cpp writes "... (SQLSTATE xxxxx)" and "PostgreSQL ...")
// describe the schema, not the request: they are logged, never sent.
bool FromDatabase(const synaps::Error& e) {
  return e.message.find("SQLSTATE") != std::string::npos ||
         e.message.find("PostgreSQL") != std::string::npos;
}

std::string GenericMessage(ErrorCode code, const std::string& request_id) {
  std::string suffix = " (request " + request_id + ")";
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return "the database refused a value of this request" + suffix;
    case ErrorCode::kAlreadyExists:
      return "it already exists" + suffix;
    case ErrorCode::kUnavailable:
      return "the database is unavailable; retry later" + suffix;
    case ErrorCode::kDeadlineExceeded:
      return "the database did not answer in time" + suffix;
    default:
      return "internal error" + suffix;
  }
}

}  // namespace

namespace detail {

std::string ClientMessage(const synaps::Error& e, const std::string& request_id) {
  if (!FromDatabase(e)) return e.message;
  spdlog::error("request {} failed in PostgreSQL: {}", request_id, e.message);
  return GenericMessage(e.code, request_id);
}

}  // namespace detail

HttpResponse Router::Context::Error(const synaps::Error& e) const {
  int status = HttpStatusFor(e.code);
  std::string message = e.message;
  std::string field = e.field;
  if (FromDatabase(e)) {
    message = detail::ClientMessage(e, request_id);
    field.clear();
  } else if (status >= 500 && e.code != ErrorCode::kUnavailable) {
    spdlog::error("request {} failed: {}", request_id, e.message);
    message = "internal error (request " + request_id + ")";
  }
  return ErrorResponse(status, std::string(ErrorCodeName(e.code)), message, request_id, field);
}

HttpResponse Router::ErrorResponse(int status, const std::string& code, const std::string& message,
                                   const std::string& request_id, const std::string& field) {
  json err = {{"code", code}, {"message", message}, {"requestId", request_id}};
  if (!field.empty()) err["field"] = field;
  HttpResponse r = JsonResponse(status, {{"error", err}}, request_id);
  if (status == 401) r.headers.push_back({"WWW-Authenticate", "Bearer realm=\"synaps\""});
  return r;
}

HttpResponse Router::Handle(const HttpRequest& request) const {
  auto started = std::chrono::steady_clock::now();
  Context ctx{request, SaneRequestId(request.header("x-request-id")), {}, {}, {}, {}, {}};
  auto incoming = TraceContext::Parse(request.header("traceparent"), request.header("tracestate"));
  ctx.trace = incoming ? incoming->Child() : TraceContext::Start();
  if (deps_.tracer != nullptr) {
    const otel::SamplerConfig& sampler = deps_.tracer->sampler();
    ctx.trace.sampled = incoming ? sampler.SampleChild(incoming->sampled, ctx.trace.trace_id)
                                 : sampler.SampleRoot(ctx.trace.trace_id);
  }
  const int64_t started_ns = otel::NowUnixNano();
  LogTraceScope log_trace(ctx.trace.trace_id);  // every log line of this request names the trace
  size_t q = request.target.find('?');
  ctx.path = request.target.substr(0, q);
  if (q != std::string::npos) ctx.query = ParseQuery(request.target.substr(q + 1));
  HttpResponse res = Dispatch(ctx);
  res.headers.push_back({"traceparent", ctx.trace.Traceparent()});
  if (!ctx.trace.tracestate.empty()) res.headers.push_back({"tracestate", ctx.trace.tracestate});
  auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started);
  json line = {{"type", "access"},         {"requestId", ctx.request_id},
               {"traceId", ctx.trace.trace_id},
               {"method", request.method}, {"route", ctx.route},
               {"status", res.status},     {"durationMs", std::round(ms.count() * 100) / 100},
               {"remote", request.remote}};
  if (ctx.principal) line["tokenId"] = ctx.principal->id;
  if (deps_.metrics != nullptr) {
    deps_.metrics->ObserveRequest(request.method, ctx.route, res.status, ms.count() / 1000.0);
  }
  spdlog::info("{}", line.dump(-1, ' ', false, json::error_handler_t::replace));
  if (deps_.tracer != nullptr && ctx.trace.sampled) {
    otel::Span span = otel::StartSpan(ctx.trace, incoming ? incoming->span_id : "",
                                      request.method + " " + ctx.route, otel::SpanKind::kServer);
    span.start_unix_nano = started_ns;
    span.end_unix_nano = otel::NowUnixNano();
    span.attributes = {{"http.request.method", request.method},
                       {"http.route", ctx.route},
                       {"http.response.status_code", res.status},
                       {"synaps.request_id", ctx.request_id}};
    if (ctx.principal) span.attributes.emplace_back("synaps.tenant", ctx.principal->tenant_id);
    span.error = res.status >= 500;
    deps_.tracer->Export(std::move(span));
  }
  return res;
}

Result<Principal> Router::Authenticate(const HttpRequest& req) const {
  const std::string& auth = req.header("authorization");
  if (!auth.starts_with("Bearer ") || auth.size() <= 7) {
    return Fail(ErrorCode::kUnauthenticated, "missing bearer token in the Authorization header");
  }
  std::string token = auth.substr(7);
  auto count = [&](std::string_view via) {
    if (deps_.metrics != nullptr) deps_.metrics->CountAuthentication(via);
  };
  if (!deps_.admin_token.empty() && SecureEquals(token, deps_.admin_token)) {
    count("admin");
    return Principal{"admin", "default", "admin", /*installation=*/true, "default/admin"};
  }
  // A token that failed a moment ago fails again without a lookup or a signature check.
  std::string token_hash = Sha256Hex(token);
  if (deps_.invalid_tokens != nullptr && deps_.invalid_tokens->Contains(token_hash)) {
    count("negative_cache");
    return Fail(ErrorCode::kUnauthenticated, "invalid or revoked token");
  }
  if (std::count(token.begin(), token.end(), '.') == 2) {
    if (deps_.jwt_secret.empty()) {
      return Fail(ErrorCode::kUnauthenticated, "JWTs are not accepted: SYNAPS_JWT_SECRET is unset");
    }
    count("jwt");
    auth::VerifyOptions opts;
    if (!deps_.jwt_issuer.empty()) opts.issuer = deps_.jwt_issuer;
    if (!deps_.jwt_audience.empty()) opts.audience = deps_.jwt_audience;
    opts.max_lifetime = deps_.jwt_max_lifetime;
    ASSIGN_OR_RETURN(auth::Claims claims, auth::Verify(token, deps_.jwt_secret, opts));
    if (!claims.token_id.empty() && deps_.revocations != nullptr &&
        deps_.revocations->IsRevoked(claims.token_id)) {
      if (deps_.invalid_tokens != nullptr) deps_.invalid_tokens->Add(token_hash);
      return Fail(ErrorCode::kUnauthenticated, "token has been revoked");
    }
    std::string id = "jwt:" + (claims.subject.empty() ? claims.token_id : claims.subject);
    std::string subject =
        claims.subject.empty() ? "jwt-role:" + claims.default_role : "jwt:" + claims.subject;
    return Principal{id, claims.tenant_id, claims.default_role, claims.installation,
                     claims.tenant_id + "/" + subject};
  }
  count("database");
  ASSIGN_OR_RETURN(auto conn, deps_.pool->Acquire());
  ASSIGN_OR_RETURN(auto key, store::FindApiKey(*conn, token_hash));
  if (!key) {
    if (deps_.invalid_tokens != nullptr) deps_.invalid_tokens->Add(token_hash);
    return Fail(ErrorCode::kUnauthenticated, "invalid or revoked token");
  }
  return Principal{key->id, key->tenant_id, key->role, key->installation,
                   key->tenant_id + "/" + key->id};
}

HttpResponse Router::Dispatch(Context& ctx) const {
  auto parts = SplitPath(ctx.path);
  const Route* route = nullptr;
  Params params;
  std::string allowed;
  for (const auto& r : Routes()) {
    Params p;
    if (!MatchPattern(r.pattern, parts, p)) continue;
    if (ctx.req.method == r.method) {
      route = &r;
      params = std::move(p);
      break;
    }
    allowed += allowed.empty() ? r.method : std::string(", ") + r.method;
    ctx.route = r.pattern;
  }
  if (route == nullptr) {
    if (allowed.empty() && (ctx.req.method == "GET" || ctx.req.method == "HEAD")) {
      auto page =
          ServeConsole(EmbeddedConsoleAssets(), ctx.path, ctx.req.header("accept-encoding"));
      if (page) {
        ctx.route = "console";
        return std::move(*page);
      }
    }
    if (allowed.empty()) return ctx.Error(404, "not_found", "no route for " + ctx.path);
    HttpResponse r = ctx.Error(405, "method_not_allowed", "use " + allowed + " on " + ctx.route);
    r.headers.push_back({"Allow", allowed});
    return r;
  }
  ctx.route = route->pattern;
  if (route->permission != Permission::kNone) {
    // Before authentication, so a flood of bad tokens from one address costs no lookups.
    if (deps_.address_limiter != nullptr) {
      if (int wait = deps_.address_limiter->Acquire(ctx.req.remote); wait > 0) {
        return RateLimited(ctx, "rate_address", "this address", wait);
      }
    }
    auto principal = Authenticate(ctx.req);
    if (!principal) return ctx.Error(principal.error());
    ctx.principal = std::move(*principal);
    if (deps_.limiter != nullptr) {
      if (int wait = deps_.limiter->Acquire(ctx.principal->limit_key); wait > 0) {
        return RateLimited(ctx, "rate_principal", "this token", wait);
      }
    }
    if (!RoleAllows(ctx.principal->role, route->permission)) {
      return ctx.Error(
          403, "permission_denied",
          "role " + ctx.principal->role + " may not " + ctx.req.method + " " + route->pattern);
    }
    if (route->permission == Permission::kInstallationAdmin && !ctx.principal->installation) {
      return ctx.Error(403, "permission_denied",
                       "revoking tokens needs an admin with the installation scope (the "
                       "bootstrap token, or a key or JWT granted installation rights)");
    }
    if (route->permission == Permission::kControl && !ctx.principal->installation) {
      return ctx.Error(403, "permission_denied",
                       "writing the control registry needs the installation scope (the "
                       "bootstrap token, or a key or JWT granted installation rights): it steers "
                       "every tenant's traffic; this token acts for tenant " +
                           ctx.principal->tenant_id + " only");
    }
  }
  HttpResponse response = (this->*(route->handler))(ctx, params);
  if (!ctx.read_from.empty()) response.headers.push_back({"X-Synaps-Read-From", ctx.read_from});
  // Read-your-writes (read_routing.h): a successful write answers the primary's WAL position,
  // which this client's next reads wait for. Remote workers' queue calls read on the primary.
  if (deps_.reads != nullptr && deps_.reads->has_replica() && ctx.principal &&
      ctx.req.method != "GET" && route->permission != Permission::kWork && response.status < 400) {
    if (auto lsn = deps_.reads->NoteWrite(ctx.principal->limit_key)) {
      response.headers.push_back({"X-Synaps-Lsn", FormatLsn(*lsn)});
    }
  }
  return response;
}

Result<db::PooledConnection> Router::ReadConnection(Context& ctx) const {
  if (deps_.reads == nullptr) {
    ctx.read_from = "primary";
    return deps_.pool->Acquire();
  }
  uint64_t client_lsn = 0;
  if (const std::string& given = ctx.req.header("x-synaps-lsn"); !given.empty()) {
    auto lsn = ParseLsn(given);
    if (!lsn) {
      return Fail(ErrorCode::kInvalidArgument,
                  "X-Synaps-Lsn must be a WAL position as answered by a write, e.g. 0/16B3748",
                  "X-Synaps-Lsn");
    }
    client_lsn = *lsn;
  }
  const std::string principal = ctx.principal ? ctx.principal->limit_key : "";
  ASSIGN_OR_RETURN(auto lease, deps_.reads->Acquire(principal, client_lsn));
  ctx.read_from = lease.on_replica ? "replica" : "primary";
  return std::move(lease.conn);
}

HttpResponse Router::RateLimited(Context& ctx, std::string_view reason, const std::string& who,
                                 int wait) const {
  if (deps_.metrics != nullptr) deps_.metrics->HttpRefused(reason);
  HttpResponse r =
      ctx.Error(429, "rate_limited",
                "too many requests for " + who + "; retry after " + std::to_string(wait) + " s");
  r.headers.push_back({"Retry-After", std::to_string(wait)});
  return r;
}

HttpResponse Router::Healthz(Context& ctx, const Params&) const {
  return JsonResponse(200, {{"status", "ok"}}, ctx.request_id);
}

HttpResponse Router::Readyz(Context& ctx, const Params&) const {
  bool pg_ok = false;
  if (auto conn = deps_.pool->Acquire(std::chrono::milliseconds(1000))) {
    pg_ok = (*conn)->Exec("SELECT 1").has_value();
  }
  bool nats_ok = deps_.bus != nullptr && deps_.bus->connected();
  json body = {{"postgres", pg_ok ? "ok" : "down"}, {"nats", nats_ok ? "ok" : "down"}};
  // NATS down only slows wakeups (workers poll), so it does not make the API unready.
  return JsonResponse(pg_ok ? 200 : 503, body, ctx.request_id);
}

HttpResponse Router::Metrics(Context& ctx, const Params&) const {
  if (deps_.metrics == nullptr) return ctx.Error(404, "not_found", "metrics are disabled");
  auto conn = deps_.pool->Acquire();
  if (!conn) return ctx.Error(conn.error());
  auto lag = store::OutboxLagSeconds(**conn);
  auto depth = store::QueueDepth(**conn);
  auto runs = store::RunsByStatus(**conn);
  if (!lag) return ctx.Error(lag.error());
  if (!depth) return ctx.Error(depth.error());
  if (!runs) return ctx.Error(runs.error());
  deps_.metrics->SetDatabaseGauges(depth->by_state, *lag, *runs);
  deps_.metrics->SetOldestReadyAge(depth->oldest_ready_age_seconds);
  auto limits = store::ConcurrencyGauges(**conn);
  if (!limits) return ctx.Error(limits.error());
  deps_.metrics->SetConcurrencyGauges(*limits);
  if (deps_.bus != nullptr) deps_.metrics->SetBusRejected(deps_.bus->RejectedCounts());
  if (deps_.stream_slots != nullptr) deps_.metrics->SetEventStreams(deps_.stream_slots->open());
  if (deps_.tracer != nullptr) {
    deps_.metrics->SetSpanCounts(deps_.tracer->exported(), deps_.tracer->dropped());
  }
  HttpResponse r;
  r.content_type = "text/plain; version=0.0.4";
  r.body = deps_.metrics->Render();
  return r;
}

HttpResponse Router::ListWorkers(Context& ctx, const Params&) const {
  auto conn = ReadConnection(ctx);
  if (!conn) return ctx.Error(conn.error());
  // Workers are shared infrastructure, not tenant data: the last hour of them, alive when a
  // heartbeat arrived in the last 30 s.
  auto workers = store::ListWorkers(**conn, 3600, 30);
  if (!workers) return ctx.Error(workers.error());
  return JsonResponse(200, {{"items", *workers}}, ctx.request_id);
}

HttpResponse Router::OpenApi(Context& ctx, const Params&) const {
  if (deps_.openapi_json.empty()) return ctx.Error(404, "not_found", "no OpenAPI document");
  HttpResponse r;
  r.body = deps_.openapi_json;
  return r;
}

HttpResponse Router::GetRun(Context& ctx, const Params& p) const {
  const std::string& id = p.at("id");
  if (!IsUuid(id)) return ctx.Error(400, "invalid_argument", "run id must be a UUID", "id");
  auto conn = ReadConnection(ctx);
  if (!conn) return ctx.Error(conn.error());
  auto tenant = detail::RunReadTenant(*ctx.principal, **conn, id);
  if (!tenant) return ctx.Error(tenant.error());
  auto run = store::GetRun(**conn, *tenant, id);
  if (!run) return ctx.Error(run.error());
  return JsonResponse(200, *run, ctx.request_id);
}

HttpResponse Router::CancelRun(Context& ctx, const Params& p) const {
  const std::string& id = p.at("id");
  if (!IsUuid(id)) return ctx.Error(400, "invalid_argument", "run id must be a UUID", "id");
  auto conn = deps_.pool->Acquire();
  if (!conn) return ctx.Error(conn.error());
  auto done = db::InTransaction(**conn, [&] {
    return store::CancelRun(**conn, ctx.principal->tenant_id, id, ctx.principal->id);
  });
  if (!done) return ctx.Error(done.error());
  // The run.cancelled outbox row reaches workers through the relay's sweep; hand it over now.
  if (deps_.relay != nullptr) deps_.relay->Wake();
  auto run = store::GetRun(**conn, ctx.principal->tenant_id, id);
  if (!run) return ctx.Error(run.error());
  return JsonResponse(200, *run, ctx.request_id);
}

HttpResponse Router::ApproveTask(Context& ctx, const Params& p) const {
  return DecideTask(ctx, p.at("id"), /*approve=*/true);
}

HttpResponse Router::RejectTask(Context& ctx, const Params& p) const {
  return DecideTask(ctx, p.at("id"), /*approve=*/false);
}

HttpResponse Router::DecideTask(Context& ctx, const std::string& id, bool approve) const {
  if (!IsUuid(id)) return ctx.Error(400, "invalid_argument", "task id must be a UUID", "id");
  std::string reason;
  if (!ctx.req.body.empty()) {
    if (!IsJsonContentType(ctx.req.header("content-type"))) {
      return ctx.Error(415, "unsupported_media_type", "Content-Type must be application/json");
    }
    auto body = detail::JsonBody(ctx, {"reason"});
    if (!body) return ctx.Error(body.error());
    auto given = detail::OptionalReason(*body);
    if (!given) return ctx.Error(given.error());
    reason = std::move(*given);
  }
  auto conn = deps_.pool->Acquire();
  if (!conn) return ctx.Error(conn.error());
  // Read before the decision, while the task is held. Tracing is best effort, and outside the
  // decision's transaction: a failed read costs the span, never the decision.
  std::optional<store::HeldTaskTrace> held;
  if (deps_.tracer != nullptr) {
    auto trace = store::GetHeldTaskTrace(**conn, ctx.principal->tenant_id, id);
    if (trace) held = std::move(*trace);
  }
  auto run_id = db::InTransaction(**conn, [&]() -> Result<std::string> {
    return store::DecideTask(**conn, ctx.principal->tenant_id, id, approve, ctx.principal->id,
                             reason);
  });
  if (!run_id) return ctx.Error(run_id.error());
  if (held) ExportApprovalWait(ctx, *held, id, approve);
  if (deps_.relay != nullptr) deps_.relay->Wake();
  auto run = store::GetRun(**conn, ctx.principal->tenant_id, *run_id);
  if (!run) return ctx.Error(run.error());
  return JsonResponse(200, *run, ctx.request_id);
}

// The approval wait: from the task's hold to this decision, in the task's trace (a child of
// its submit's span), naming the deciding request's trace (docs/observability.md, "Spans").
void Router::ExportApprovalWait(const Context& ctx, const store::HeldTaskTrace& held,
                                const std::string& task_id, bool approve) const {
  auto parent = TraceContext::Parse(held.traceparent, held.tracestate);
  if (!parent || !parent->sampled || held.held_at_unix_ns <= 0) return;
  otel::Span span = otel::StartSpan(parent->Child(), parent->span_id, "synaps.approval.wait",
                                    otel::SpanKind::kInternal);
  span.start_unix_nano = held.held_at_unix_ns;
  span.end_unix_nano = otel::NowUnixNano();
  span.attributes = {{"synaps.task.id", task_id},
                     {"synaps.approval.decision", approve ? "approved" : "rejected"},
                     {"synaps.approval.actor", ctx.principal->id},
                     {"synaps.approval.trace_id", ctx.trace.trace_id}};
  deps_.tracer->Export(std::move(span));
}

HttpResponse Router::GetArtifactContent(Context& ctx, const Params& p) const {
  const std::string& id = p.at("id");
  if (!IsUuid(id)) return ctx.Error(400, "invalid_argument", "artifact id must be a UUID", "id");
  auto v = ParseCount(p.at("version"));
  if (!v || *v < 1 || *v > 1000000000) {
    return ctx.Error(400, "invalid_argument", "version must be a positive integer", "version");
  }
  auto conn = ReadConnection(ctx);
  if (!conn) return ctx.Error(conn.error());
  // The installation scope reads every tenant's artifacts, like their runs.
  auto tenant = ctx.principal->installation ? store::ArtifactTenant(**conn, id)
                                            : Result<std::string>(ctx.principal->tenant_id);
  if (!tenant) return ctx.Error(tenant.error());
  auto loc = store::GetArtifactVersion(**conn, *tenant, id, static_cast<int>(*v));
  if (!loc) return ctx.Error(loc.error());
  auto bytes = deps_.objects->Get(loc->object_key);
  if (!bytes) {
    if (bytes.error().code == ErrorCode::kNotFound) {
      return ctx.Error(500, "internal", "artifact bytes missing from the object store");
    }
    return ctx.Error(bytes.error());
  }
  HttpResponse r;
  r.status = 200;
  r.body = std::move(*bytes);
  r.headers.push_back({"ETag", "\"" + loc->sha256 + "\""});
  r.headers.push_back({"X-Request-Id", ctx.request_id});
  detail::SetArtifactHeaders(r, loc->content_type, loc->name);
  return r;
}

HttpResponse Router::ListDeadLetters(Context& ctx, const Params&) const {
  int64_t after = 0;
  int64_t limit = 100;
  if (ctx.query.contains("after")) {
    auto a = ParseCount(ctx.query["after"]);
    if (!a) return ctx.Error(400, "invalid_argument", "after must be an item id", "after");
    after = *a;
  }
  if (ctx.query.contains("limit")) {
    auto l = ParseCount(ctx.query["limit"]);
    if (!l || *l < 1 || *l > 1000) {
      return ctx.Error(400, "invalid_argument", "limit must be within 1..1000", "limit");
    }
    limit = *l;
  }
  auto conn = ReadConnection(ctx);
  if (!conn) return ctx.Error(conn.error());
  auto items =
      store::ListDeadLetters(**conn, ctx.principal->tenant_id, after, static_cast<int>(limit));
  if (!items) return ctx.Error(items.error());
  json body = {{"items", *items}};
  if (static_cast<int64_t>(items->size()) == limit) {
    body["nextCursor"] = std::to_string(items->back()["itemId"].get<int64_t>());
  }
  return JsonResponse(200, body, ctx.request_id);
}

HttpResponse Router::RetryDeadLetter(Context& ctx, const Params& p) const {
  auto id = ParseCount(p.at("id"));
  if (!id) return ctx.Error(400, "invalid_argument", "item id must be an integer", "id");
  auto conn = deps_.pool->Acquire();
  if (!conn) return ctx.Error(conn.error());
  auto done = db::InTransaction(**conn, [&] {
    return store::RequeueDeadItem(**conn, ctx.principal->tenant_id, *id, ctx.principal->id);
  });
  if (!done) return ctx.Error(done.error());
  if (deps_.relay != nullptr) deps_.relay->Wake();
  return JsonResponse(200, {{"itemId", *id}, {"status", "ready"}}, ctx.request_id);
}

}  // namespace synaps::api
