// The Control API's routes: authentication, authorization, validation, and the mapping from
// HTTP to the store. Every refusal is a JSON error {error: {code, message, requestId, field?}}
// and writes nothing. Routes are a table (kRoutes in router.cpp): method, path pattern with
// {params}, the permission it needs, and its handler.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "api/http_types.h"
#include "api/outbox_relay.h"
#include "bus/bus.h"
#include "db/pool.h"
#include "objstore/object_store.h"

namespace synaps::api {

class ApiMetrics;
class RateLimiter;
class ExpiringSet;
class StreamSlots;
class RevocationList;
class RunFeeds;
class TenantFeeds;
class ReadRouting;
}  // namespace synaps::api

namespace synaps::otel {
class Exporter;
}  // namespace synaps::otel

namespace synaps::schedules {
class Scheduler;
}  // namespace synaps::schedules

namespace synaps::api {

struct RouterDeps {
  db::Pool* pool = nullptr;
  bus::Bus* bus = nullptr;  // may be null: readiness then reports nats "down"
  objstore::ObjectStore* objects = nullptr;
  OutboxRelay* relay = nullptr;         // may be null: the sweep of another relay publishes
  std::string admin_token;              // SYNAPS_ADMIN_TOKEN; empty disables it
  std::string jwt_secret;               // SYNAPS_JWT_SECRET; empty disables JWTs
  std::string jwt_issuer = "synaps";    // SYNAPS_JWT_ISSUER; empty = not checked
  std::string jwt_audience = "synaps";  // SYNAPS_JWT_AUDIENCE; empty = not checked
  ApiMetrics* metrics = nullptr;        // may be null
  RateLimiter* limiter = nullptr;       // per principal, after authentication; may be null
  // Abuse limits (docs/security.md, "Abuse limits"); each may be null (no limit).
  RateLimiter* address_limiter = nullptr;  // per client address, before authentication
  ExpiringSet* invalid_tokens = nullptr;   // SHA-256 of tokens that failed recently
  StreamSlots* stream_slots = nullptr;     // concurrent event streams per principal
  RevocationList* revocations = nullptr;   // the JWT deny-list; null: not checked
  RunFeeds* run_feeds = nullptr;           // shared run feeds; null: each follower polls
  TenantFeeds* tenant_feeds = nullptr;     // shared tenant feeds; null: each follower polls
  std::optional<std::chrono::seconds> jwt_max_lifetime = std::chrono::hours(24);
  std::string openapi_json;                   // served at /openapi.json
  schedules::Scheduler* scheduler = nullptr;  // null: trigger and backfill answer 503
  otel::Exporter* tracer = nullptr;           // OTLP span export; null: off
  // Reads off the primary (read_routing.h); null: every read on `pool`.
  ReadRouting* reads = nullptr;
  // SYNAPS_BODY_LIMIT_BYTES: the transport lets POST /v1/commands/submit bodies grow to the
  // batch limit; a single submit above this answers 413. 0: not checked here.
  size_t body_limit = 0;
};

// The authenticated caller.
struct Principal {
  std::string id;  // token id for logs and audit ("admin" for the bootstrap token)
  std::string tenant_id;
  std::string role;  // admin, operator, worker, viewer
  // Installation scope: the bootstrap token, or an API key or JWT granted it. May write the
  // control registry (kControl) and act across tenants; without it a principal acts inside
  // `tenant_id` only. See docs/security.md, "Tenancy and the control registry".
  bool installation = false;
  // What rate limits and stream caps count against: tenant + subject (an API key's id, a JWT's
  // sub, or for a JWT without sub its role — never its jti, which is fresh per token).
  std::string limit_key;
};

// What a route needs; see docs/api.md for the role table. kControl is kOperate plus the
// installation scope: the control registry steers every tenant's traffic.
// kInstallationAdmin is kAdmin plus the installation scope (JWT revocation).
enum class Permission {
  kNone,
  kRead,
  kSubmit,
  kOperate,
  kWork,
  kAdmin,
  kControl,
  kInstallationAdmin
};

// True when `role` grants `permission`.
bool RoleAllows(const std::string& role, Permission permission);

class Router {
 public:
  explicit Router(RouterDeps deps) : deps_(std::move(deps)) {}
  // Thread-safe; may block on PostgreSQL.
  HttpResponse Handle(const HttpRequest& request) const;

  // The JSON error body used for every refusal.
  static HttpResponse ErrorResponse(int status, const std::string& code, const std::string& message,
                                    const std::string& request_id, const std::string& field = {});

  struct Context;
  using Params = std::map<std::string, std::string>;
  using Handler = HttpResponse (Router::*)(Context&, const Params&) const;

 private:
  struct Route;
  static const std::vector<Route>& Routes();
  HttpResponse Dispatch(Context& ctx) const;
  // A connection for a read-only handler: the replica when it has replayed what this client
  // wrote (X-Synaps-Lsn, or this principal's last write here), else the primary
  // (read_routing.h). Sets ctx.read_from. kInvalidArgument for a malformed X-Synaps-Lsn.
  Result<db::PooledConnection> ReadConnection(Context& ctx) const;
  Result<Principal> Authenticate(const HttpRequest& req) const;
  // 429 with Retry-After, counted under `reason`.
  HttpResponse RateLimited(Context& ctx, std::string_view reason, const std::string& who,
                           int wait) const;

  HttpResponse Healthz(Context& ctx, const Params&) const;
  HttpResponse Readyz(Context& ctx, const Params&) const;
  HttpResponse Metrics(Context& ctx, const Params&) const;
  HttpResponse Submit(Context& ctx, const Params&) const;
  void ExportApprovalWait(const Context& ctx, const store::HeldTaskTrace& held,
                          const std::string& task_id, bool approve) const;
  HttpResponse SubmitBatch(Context& ctx, const nlohmann::json& body,
                           const std::string& idempotency_key) const;
  HttpResponse GetRun(Context& ctx, const Params& p) const;
  HttpResponse CancelRun(Context& ctx, const Params& p) const;
  HttpResponse ApproveTask(Context& ctx, const Params& p) const;
  HttpResponse RejectTask(Context& ctx, const Params& p) const;
  HttpResponse DecideTask(Context& ctx, const std::string& task_id, bool approve) const;
  HttpResponse GetArtifactContent(Context& ctx, const Params& p) const;
  HttpResponse ListDeadLetters(Context& ctx, const Params&) const;
  HttpResponse RetryDeadLetter(Context& ctx, const Params& p) const;
  HttpResponse OpenApi(Context& ctx, const Params&) const;
  HttpResponse ListWorkers(Context& ctx, const Params&) const;
  // handlers_runs.cpp
  HttpResponse ListRuns(Context& ctx, const Params&) const;
  HttpResponse RunEvents(Context& ctx, const Params& p) const;
  // Takes one of the principal's event-stream slots into `slot`; a 429 when it has none left.
  std::optional<HttpResponse> OpenStreamSlot(Context& ctx, std::shared_ptr<void>& slot) const;
  HttpResponse GetThread(Context& ctx, const Params& p) const;
  HttpResponse GetArchivedRun(Context& ctx, const Params& p) const;
  // handlers_queue.cpp: the queue for remote workers, and API keys
  HttpResponse Claim(Context& ctx, const Params&) const;
  HttpResponse Renew(Context& ctx, const Params& p) const;
  HttpResponse Complete(Context& ctx, const Params& p) const;
  HttpResponse FailItem(Context& ctx, const Params& p) const;
  HttpResponse CreateApiKey(Context& ctx, const Params&) const;
  HttpResponse RevokeApiKey(Context& ctx, const Params& p) const;
  HttpResponse RevokeToken(Context& ctx, const Params&) const;
  // handlers_console.cpp: what the web console needs beyond the rest
  HttpResponse WhoAmI(Context& ctx, const Params&) const;
  HttpResponse TenantEvents(Context& ctx, const Params&) const;
  HttpResponse BulkCancel(Context& ctx, const Params&) const;
  HttpResponse BulkRetry(Context& ctx, const Params&) const;
  HttpResponse ListApiKeys(Context& ctx, const Params&) const;
  HttpResponse RetryRun(Context& ctx, const Params& p) const;
  HttpResponse ListQueues(Context& ctx, const Params&) const;
  HttpResponse GetFlow(Context& ctx, const Params&) const;
  // handlers_control.cpp: the control registry
  HttpResponse ControlSnapshot(Context& ctx, const Params&) const;
  HttpResponse ControlChanges(Context& ctx, const Params&) const;
  HttpResponse ListControl(Context& ctx, const Params& p) const;
  HttpResponse GetControl(Context& ctx, const Params& p) const;
  HttpResponse PutControl(Context& ctx, const Params& p) const;
  HttpResponse DeleteControl(Context& ctx, const Params& p) const;
  HttpResponse RollbackControl(Context& ctx, const Params& p) const;
  // handlers_schedules.cpp: schedules' state, trigger and backfill
  HttpResponse ListSchedules(Context& ctx, const Params&) const;
  HttpResponse GetSchedule(Context& ctx, const Params& p) const;
  HttpResponse TriggerSchedule(Context& ctx, const Params& p) const;
  HttpResponse BackfillSchedule(Context& ctx, const Params& p) const;
  std::optional<HttpResponse> CheckScheduleAccess(Context& ctx, const std::string& name) const;
  // handlers_usage.cpp: usage and cost from the ledger
  HttpResponse GetUsage(Context& ctx, const Params&) const;
  // handlers_retention.cpp: retention and the keep flag
  HttpResponse GetRetention(Context& ctx, const Params&) const;
  HttpResponse PutRetention(Context& ctx, const Params&) const;
  HttpResponse DeleteRetention(Context& ctx, const Params&) const;
  HttpResponse KeepRun(Context& ctx, const Params& p) const;

 public:
  // Every (method, pattern) the router serves, for the OpenAPI consistency test.
  static std::vector<std::pair<std::string, std::string>> RouteList();

 private:
  RouterDeps deps_;
};

}  // namespace synaps::api
