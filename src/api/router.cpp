#include "api/router.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <optional>
#include <regex>

#include "api/request_validation.h"
#include "core/ids.h"
#include "store/auth_store.h"
#include "store/run_store.h"

namespace synaps::api {

using nlohmann::json;

struct Router::Context {
  const HttpRequest& req;
  std::string request_id;
  std::string path;
  std::string query;
  std::optional<Principal> principal;
  std::string route = "unmatched";  // route template, for logs and metrics

  HttpResponse Error(int status, const std::string& code, const std::string& message,
                     const std::string& field = {}) const {
    return ErrorResponse(status, code, message, request_id, field);
  }
  HttpResponse Error(const synaps::Error& e) const;
};

namespace {

int HttpStatusFor(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument: return 400;
    case ErrorCode::kUnauthenticated: return 401;
    case ErrorCode::kPermissionDenied: return 403;
    case ErrorCode::kNotFound: return 404;
    case ErrorCode::kAlreadyExists:
    case ErrorCode::kConflict:
    case ErrorCode::kLeaseLost: return 409;
    case ErrorCode::kResourceExhausted: return 429;
    case ErrorCode::kUnavailable: return 503;
    case ErrorCode::kDeadlineExceeded: return 504;
    case ErrorCode::kCancelled: return 409;
    case ErrorCode::kInternal: return 500;
  }
  return 500;
}

HttpResponse JsonResponse(int status, const json& body, const std::string& request_id) {
  HttpResponse r;
  r.status = status;
  r.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
  r.headers.push_back({"X-Request-Id", request_id});
  return r;
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

}  // namespace

HttpResponse Router::Context::Error(const synaps::Error& e) const {
  int status = HttpStatusFor(e.code);
  std::string message = e.message;
  if (status >= 500 && e.code != ErrorCode::kUnavailable) {
    spdlog::error("request {} failed: {}", request_id, e.message);
    message = "internal error (request " + request_id + ")";
  }
  return ErrorResponse(status, std::string(ErrorCodeName(e.code)), message, request_id, e.field);
}

HttpResponse Router::ErrorResponse(int status, const std::string& code,
                                   const std::string& message, const std::string& request_id,
                                   const std::string& field) {
  json err = {{"code", code}, {"message", message}, {"requestId", request_id}};
  if (!field.empty()) err["field"] = field;
  HttpResponse r = JsonResponse(status, {{"error", err}}, request_id);
  if (status == 401) r.headers.push_back({"WWW-Authenticate", "Bearer realm=\"synaps\""});
  return r;
}

HttpResponse Router::Handle(const HttpRequest& request) const {
  auto started = std::chrono::steady_clock::now();
  Context ctx{request, SaneRequestId(request.header("x-request-id")), {}, {}, {}, {}};
  size_t q = request.target.find('?');
  ctx.path = request.target.substr(0, q);
  if (q != std::string::npos) ctx.query = request.target.substr(q + 1);
  HttpResponse res = Dispatch(ctx);
  auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started);
  json line = {{"type", "access"},
               {"requestId", ctx.request_id},
               {"method", request.method},
               {"route", ctx.route},
               {"status", res.status},
               {"durationMs", std::round(ms.count() * 100) / 100},
               {"remote", request.remote}};
  if (ctx.principal) line["tokenId"] = ctx.principal->id;
  spdlog::info("{}", line.dump(-1, ' ', false, json::error_handler_t::replace));
  return res;
}

HttpResponse Router::Dispatch(Context& ctx) const {
  const std::string& m = ctx.req.method;
  auto parts = SplitPath(ctx.path);

  // Unauthenticated probes.
  if (ctx.path == "/healthz") {
    ctx.route = "/healthz";
    if (m != "GET") return ctx.Error(405, "method_not_allowed", "use GET");
    return JsonResponse(200, {{"status", "ok"}}, ctx.request_id);
  }
  if (ctx.path == "/readyz") {
    ctx.route = "/readyz";
    if (m != "GET") return ctx.Error(405, "method_not_allowed", "use GET");
    return Ready(ctx);
  }

  // Route matching happens before authentication so that unknown paths are 404 for everyone,
  // but no handler runs without a principal.
  enum class Route { kNone, kSubmit, kRun, kArtifactContent };
  Route route = Route::kNone;
  std::string allowed;
  if (parts.size() == 3 && parts[0] == "v1" && parts[1] == "commands" && parts[2] == "submit") {
    route = Route::kSubmit;
    ctx.route = "/v1/commands/submit";
    allowed = "POST";
  } else if (parts.size() == 3 && parts[0] == "v1" && parts[1] == "runs") {
    route = Route::kRun;
    ctx.route = "/v1/runs/{id}";
    allowed = "GET";
  } else if (parts.size() == 6 && parts[0] == "v1" && parts[1] == "artifacts" &&
             parts[3] == "versions" && parts[5] == "content") {
    route = Route::kArtifactContent;
    ctx.route = "/v1/artifacts/{id}/versions/{n}/content";
    allowed = "GET";
  }
  if (route == Route::kNone) return ctx.Error(404, "not_found", "no route for " + ctx.path);
  if (m != allowed) {
    HttpResponse r = ctx.Error(405, "method_not_allowed", "use " + allowed + " on " + ctx.route);
    r.headers.push_back({"Allow", allowed});
    return r;
  }

  // Authentication: the bearer token from the Authorization header only.
  const std::string& auth = ctx.req.header("authorization");
  if (!auth.starts_with("Bearer ") || auth.size() <= 7) {
    return ctx.Error(401, "unauthenticated", "missing bearer token in the Authorization header");
  }
  std::string token = auth.substr(7);
  if (!deps_.admin_token.empty() && SecureEquals(token, deps_.admin_token)) {
    ctx.principal = Principal{"admin", "default", "admin"};
  } else {
    auto conn = deps_.pool->Acquire();
    if (!conn) return ctx.Error(conn.error());
    auto key = store::FindApiKey(**conn, Sha256Hex(token));
    if (!key) return ctx.Error(key.error());
    if (!*key) return ctx.Error(401, "unauthenticated", "invalid or revoked token");
    ctx.principal = Principal{(*key)->id, (*key)->tenant_id, (*key)->role};
  }

  switch (route) {
    case Route::kSubmit:
      if (ctx.principal->role == "viewer") {
        return ctx.Error(403, "permission_denied", "role viewer cannot submit commands");
      }
      return Submit(ctx);
    case Route::kRun:
      return GetRun(ctx, parts[2]);
    case Route::kArtifactContent:
      return GetArtifactContent(ctx, parts[2], parts[4]);
    case Route::kNone:
      break;
  }
  return ctx.Error(404, "not_found", "no route for " + ctx.path);
}

HttpResponse Router::Ready(Context& ctx) const {
  bool pg_ok = false;
  if (auto conn = deps_.pool->Acquire(std::chrono::milliseconds(1000))) {
    pg_ok = (*conn)->Exec("SELECT 1").has_value();
  }
  bool nats_ok = deps_.bus != nullptr && deps_.bus->connected();
  json body = {{"postgres", pg_ok ? "ok" : "down"}, {"nats", nats_ok ? "ok" : "down"}};
  // NATS down only slows wakeups (workers poll), so it does not make the API unready.
  return JsonResponse(pg_ok ? 200 : 503, body, ctx.request_id);
}

HttpResponse Router::Submit(Context& ctx) const {
  if (!IsJsonContentType(ctx.req.header("content-type"))) {
    return ctx.Error(415, "unsupported_media_type", "Content-Type must be application/json");
  }
  auto parsed = ParseSubmitRequest(ctx.req.body);
  if (!parsed) return ctx.Error(parsed.error());
  store::SubmitRequest req = std::move(*parsed);
  req.tenant_id = ctx.principal->tenant_id;
  req.actor = ctx.principal->id;
  const std::string& key = ctx.req.header("idempotency-key");
  if (!key.empty()) {
    if (key.size() > 255) {
      return ctx.Error(400, "invalid_argument", "Idempotency-Key is longer than 255 characters",
                       "Idempotency-Key");
    }
    req.idempotency_key = key;
  }
  auto conn = deps_.pool->Acquire();
  if (!conn) return ctx.Error(conn.error());
  auto result = db::InTransaction(**conn, [&] { return store::SubmitCommand(**conn, req); });
  if (!result && result.error().code == ErrorCode::kAlreadyExists) {
    // Two first submits with one key raced past ON CONFLICT; the loser sees the winner now.
    result = db::InTransaction(**conn, [&] { return store::SubmitCommand(**conn, req); });
  }
  if (!result) return ctx.Error(result.error());
  if (deps_.relay != nullptr && !result->outbox.empty()) {
    deps_.relay->Notify(std::move(result->outbox));
  }
  return JsonResponse(result->replayed ? 200 : 201, result->response, ctx.request_id);
}

HttpResponse Router::GetRun(Context& ctx, const std::string& id) const {
  if (!IsUuid(id)) return ctx.Error(400, "invalid_argument", "run id must be a UUID", "id");
  auto conn = deps_.pool->Acquire();
  if (!conn) return ctx.Error(conn.error());
  auto run = store::GetRun(**conn, ctx.principal->tenant_id, id);
  if (!run) return ctx.Error(run.error());
  return JsonResponse(200, *run, ctx.request_id);
}

HttpResponse Router::GetArtifactContent(Context& ctx, const std::string& id,
                                        const std::string& version) const {
  if (!IsUuid(id)) return ctx.Error(400, "invalid_argument", "artifact id must be a UUID", "id");
  int v = 0;
  if (version.empty() || version.size() > 9 ||
      version.find_first_not_of("0123456789") != std::string::npos ||
      (v = std::stoi(version)) < 1) {
    return ctx.Error(400, "invalid_argument", "version must be a positive integer", "version");
  }
  auto conn = deps_.pool->Acquire();
  if (!conn) return ctx.Error(conn.error());
  auto loc = store::GetArtifactVersion(**conn, ctx.principal->tenant_id, id, v);
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
  r.content_type = loc->content_type;
  r.body = std::move(*bytes);
  r.headers.push_back({"ETag", "\"" + loc->sha256 + "\""});
  r.headers.push_back({"X-Request-Id", ctx.request_id});
  return r;
}

}  // namespace synaps::api
