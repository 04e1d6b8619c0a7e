// Router handlers the web console needs beyond the rest (docs/console.md): who the caller is,
// a tenant-wide live feed of ledger events, bulk cancel by selection or by filter, and the list
// of API keys.
#include <memory>
#include <set>

#include "api/outbox_relay.h"
#include "api/request_validation.h"
#include "api/router_internal.h"
#include "api/run_feeds.h"
#include "core/ids.h"
#include "db/pool.h"
#include "store/auth_store.h"
#include "store/flow_store.h"
#include "store/queue_store.h"
#include "store/run_store.h"

namespace synaps::api {

using detail::JsonResponse;
using detail::ParseCount;
using nlohmann::json;

namespace {

constexpr int kBulkLimit = 1000;

// State of one tenant feed, shared by the producer's steps.
struct TenantFeed {
  TenantFeeds* feeds;
  std::unique_ptr<TenantFeeds> own_feeds;  // when the router has no shared feeds
  std::shared_ptr<void> following;         // keeps the tenant's shared feed alive
  std::string tenant_id;
  int64_t last_id;
  std::chrono::steady_clock::time_point last_write;
  std::shared_ptr<void> slot;  // the principal's stream slot
};

}  // namespace

HttpResponse Router::WhoAmI(Context& ctx, const Params&) const {
  const Principal& p = *ctx.principal;
  json may = json::object();
  for (auto [name, perm] : {std::pair{"read", Permission::kRead},
                            std::pair{"submit", Permission::kSubmit},
                            std::pair{"operate", Permission::kOperate},
                            std::pair{"admin", Permission::kAdmin}}) {
    may[name] = RoleAllows(p.role, perm);
  }
  // Writing the control registry also needs the installation scope (Dispatch checks it).
  may["control"] = RoleAllows(p.role, Permission::kControl) && p.installation;
  return JsonResponse(200,
                      {{"id", p.id},
                       {"tenantId", p.tenant_id},
                       {"role", p.role},
                       {"installation", p.installation},
                       {"may", may}},
                      ctx.request_id);
}

// Server-Sent Events: `id: <ledger id>` / `event: <type>` / `data: {id, tenantId, runId, taskId,
// seq, type, at, runStatus}` for every ledger event of the tenant's runs, never ending. The
// installation scope may name another tenant or `*` (every tenant) with `?tenant=`, as on
// GET /v1/runs; other tokens get 403 for a tenant not their own. Starts at
// the newest event unless Last-Event-ID or ?after= says where to resume. The tenant's followers
// share one feed (run_feeds.h: one query per 500 ms per tenant) and hold no thread in between;
// a comment every 15 s keeps proxies open.
HttpResponse Router::TenantEvents(Context& ctx, const Params&) const {
  std::optional<int64_t> after;
  const std::string& last_event = ctx.req.header("last-event-id");
  if (!last_event.empty()) {
    after = ParseCount(last_event);
    if (!after) return ctx.Error(400, "invalid_argument", "Last-Event-ID must be an event id");
  } else if (ctx.query.contains("after")) {
    after = ParseCount(ctx.query["after"]);
    if (!after) return ctx.Error(400, "invalid_argument", "after must be an event id", "after");
  }
  std::optional<std::string> tenant;
  for (const auto& [k, v] : ctx.query) {
    if (k == "tenant") {
      auto decoded = detail::UrlDecode(v);
      if (!decoded) {
        return ctx.Error(400, "invalid_argument", "tenant: malformed percent-encoding", k);
      }
      tenant = *decoded;
    } else if (k != "after") {
      return ctx.Error(400, "invalid_argument", k + ": unknown parameter", k);
    }
  }
  // The same scope rule as GET /v1/runs: another tenant, or "" (every tenant) for `*`.
  auto scope = detail::RunListTenant(*ctx.principal, tenant);
  if (!scope) return ctx.Error(scope.error());
  if (!after) {
    auto conn = deps_.pool->Acquire();
    if (!conn) return ctx.Error(conn.error());
    auto latest = store::LatestLedgerId(**conn);
    if (!latest) return ctx.Error(latest.error());
    after = *latest;
  }
  auto state = std::make_shared<TenantFeed>(TenantFeed{deps_.tenant_feeds, nullptr, nullptr, *scope,
                                                       *after, std::chrono::steady_clock::now()});
  if (auto refused = OpenStreamSlot(ctx, state->slot)) return std::move(*refused);
  if (state->feeds == nullptr) {
    state->own_feeds = std::make_unique<TenantFeeds>(deps_.pool, nullptr);
    state->feeds = state->own_feeds.get();
  }
  state->following = state->feeds->Follow(state->tenant_id);
  HttpResponse r;
  r.content_type = "text/event-stream";
  r.headers.push_back({"X-Request-Id", ctx.request_id});
  r.headers.push_back({"X-Accel-Buffering", "no"});
  r.headers.push_back({"Cache-Control", "no-store"});
  // The first step says where the feed starts, so a client can resume from it.
  r.stream = [state, first = true]() mutable -> StreamStep {
    StreamStep step;
    step.wait = std::chrono::milliseconds(500);
    if (first) {
      first = false;
      step.data = "id: " + std::to_string(state->last_id) + "\nevent: ready\ndata: {}\n\n";
      step.wait = std::chrono::milliseconds(0);
      return step;
    }
    auto page = state->feeds->Read(state->tenant_id, state->last_id, 500);
    if (!page) return step;  // try again next step
    for (const auto& e : page->events) {
      int64_t id = e["id"].get<int64_t>();
      step.data += "id: " + std::to_string(id) + "\nevent: " + e["type"].get<std::string>() +
                   "\ndata: " + e.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
    }
    state->last_id = page->cursor;
    auto now = std::chrono::steady_clock::now();
    if (page->more) step.wait = std::chrono::milliseconds(0);
    if (step.data.empty() && now - state->last_write > std::chrono::seconds(15)) {
      step.data = ": keep-alive\n\n";
    }
    if (!step.data.empty()) state->last_write = now;
    return step;
  };
  return r;
}

namespace {

// What a bulk action acts on: the runs given by id, or those a filter matches.
struct BulkTarget {
  std::vector<std::string> ids;            // runIds, when given
  std::optional<store::RunFilter> filter;  // filter, when given
};

// {runIds: [1..1000 UUIDs]} or {filter: {...}} (GET /v1/runs's filters, as strings), exactly
// one; kInvalidArgument naming the field.
Result<BulkTarget> ParseBulkTarget(const json& body) {
  if (body.contains("runIds") == body.contains("filter")) {
    return Fail(ErrorCode::kInvalidArgument, "give exactly one of runIds or filter", "runIds");
  }
  BulkTarget t;
  if (body.contains("runIds")) {
    const json& given = body["runIds"];
    if (!given.is_array() || given.empty() || given.size() > kBulkLimit) {
      return Fail(ErrorCode::kInvalidArgument, "runIds must be an array of 1 to 1000 run ids",
                  "runIds");
    }
    std::set<std::string> seen;
    for (const auto& id : given) {
      if (!id.is_string() || !IsUuid(id.get<std::string>())) {
        return Fail(ErrorCode::kInvalidArgument, "runIds must hold run ids (UUIDs)", "runIds");
      }
      // A run named twice is acted on once (a retry must not make two new runs of it).
      if (seen.insert(id.get<std::string>()).second) t.ids.push_back(id.get<std::string>());
    }
    return t;
  }
  const json& given = body["filter"];
  if (!given.is_object()) {
    return Fail(ErrorCode::kInvalidArgument, "filter must be an object", "filter");
  }
  std::map<std::string, std::string> values;
  for (auto it = given.begin(); it != given.end(); ++it) {
    if (!it.value().is_string()) {
      return Fail(ErrorCode::kInvalidArgument, "filter." + it.key() + " must be a string",
                  "filter." + it.key());
    }
    values[it.key()] = it.value().get<std::string>();
  }
  auto f = detail::ParseRunFilter(values);
  if (!f) {
    synaps::Error e = f.error();
    e.field = "filter." + e.field;
    return std::unexpected(e);
  }
  t.filter = std::move(*f);
  return t;
}

json Skipped(const std::string& id, const synaps::Error& e, const std::string& request_id) {
  return {{"id", id},
          {"code", std::string(ErrorCodeName(e.code))},
          {"message", detail::ClientMessage(e, request_id)}};
}

// Resubmits finished run `id`'s command as it was accepted, on the same thread, for
// `principal` under the request's `trace`: the submit's answer with `retryOf` (and `replayed`
// when `key` was used before: the earlier retry's answer, nothing new written). kConflict while
// the run is unfinished, kNotFound when absent or another tenant's, kConflict when `key` was
// used for another command. Hands the new run's outbox rows to `relay`.
Result<json> RetryOne(const Principal& principal, const TraceContext& trace, db::Connection& conn,
                      OutboxRelay* relay, const std::string& id,
                      const std::optional<std::string>& key) {
  ASSIGN_OR_RETURN(json source, store::RunCommand(conn, principal.tenant_id, id));
  std::string status = source["status"];
  if (status != "succeeded" && status != "failed" && status != "cancelled") {
    return Fail(ErrorCode::kConflict, "run " + id + " is " + status + ": retry a finished run");
  }
  json body = source["payload"];
  body["threadId"] = source["threadId"];
  ASSIGN_OR_RETURN(auto parsed, ParseSubmitCommand(body));
  parsed.tenant_id = principal.tenant_id;
  parsed.actor = principal.id;
  parsed.trace = trace;  // the new run's tasks are children of the retrying request, as a submit's
  parsed.idempotency_key = key;
  ASSIGN_OR_RETURN(auto result, store::SubmitCommand(conn, parsed));
  if (relay != nullptr && !result.outbox.empty()) relay->Notify(std::move(result.outbox), trace);
  json response = result.response;
  response["retryOf"] = id;
  if (result.replayed) response["replayed"] = true;
  return response;
}

}  // namespace

// POST /v1/runs/cancel {runIds: [..]} or {filter: {...}}: cancels each unfinished run, at most
// 1000 per call; answers {cancelled: [ids], skipped: [{id, code, message}], more} where `more`
// says that the filter matched further runs (call again).
HttpResponse Router::BulkCancel(Context& ctx, const Params&) const {
  if (!IsJsonContentType(ctx.req.header("content-type"))) {
    return ctx.Error(415, "unsupported_media_type", "Content-Type must be application/json");
  }
  auto body = detail::JsonBody(ctx, {"runIds", "filter"});
  if (!body) return ctx.Error(body.error());
  auto target = ParseBulkTarget(*body);
  if (!target) return ctx.Error(target.error());
  auto conn = deps_.pool->Acquire();
  if (!conn) return ctx.Error(conn.error());
  std::vector<std::string> ids = std::move(target->ids);
  bool more = false;
  if (target->filter) {
    auto found =
        store::UnfinishedRunIds(**conn, ctx.principal->tenant_id, *target->filter, kBulkLimit + 1);
    if (!found) return ctx.Error(found.error());
    ids = std::move(*found);
    more = ids.size() > kBulkLimit;
    if (more) ids.resize(kBulkLimit);
  }
  json cancelled = json::array();
  json skipped = json::array();
  for (const auto& id : ids) {
    // One transaction per run: one run that finished meanwhile never undoes the others.
    auto done = db::InTransaction(**conn, [&] {
      return store::CancelRun(**conn, ctx.principal->tenant_id, id, ctx.principal->id);
    });
    if (done) {
      cancelled.push_back(id);
    } else {
      skipped.push_back(Skipped(id, done.error(), ctx.request_id));
    }
  }
  if (deps_.relay != nullptr && !cancelled.empty()) deps_.relay->Wake();
  return JsonResponse(200, {{"cancelled", cancelled}, {"skipped", skipped}, {"more", more}},
                      ctx.request_id);
}

// POST /v1/runs/retry {runIds: [..]} or {filter: {...}, cursor?}: resubmits each finished run
// (by id: any finished run; by filter: the failed and cancelled ones among the next 1000 runs
// the filter matches, newest first), each in its own transaction; answers {retried: [{runId,
// retryOf}], skipped: [{id, code, message}], more, nextCursor?}. Retrying leaves the old runs as
// they were, so the same filter would match them again: with `more`, `nextCursor` says where
// the next call continues. With an Idempotency-Key header K, run R's new command is keyed
// `K/R`: a repeated call (a client retrying after a timeout) answers the same new runs, marked
// `replayed`, instead of retrying the runs again.
HttpResponse Router::BulkRetry(Context& ctx, const Params&) const {
  if (!IsJsonContentType(ctx.req.header("content-type"))) {
    return ctx.Error(415, "unsupported_media_type", "Content-Type must be application/json");
  }
  auto body = detail::JsonBody(ctx, {"runIds", "filter", "cursor"});
  if (!body) return ctx.Error(body.error());
  auto target = ParseBulkTarget(*body);
  if (!target) return ctx.Error(target.error());
  auto key = IdempotencyKeyHeader(ctx.req.header("idempotency-key"), 255 - 37);
  if (!key) return ctx.Error(key.error());
  if (body->contains("cursor") && (!target->filter || !(*body)["cursor"].is_string())) {
    return ctx.Error(400, "invalid_argument", "cursor: a filter's nextCursor (a string)", "cursor");
  }
  auto conn = deps_.pool->Acquire();
  if (!conn) return ctx.Error(conn.error());
  std::vector<std::string> ids = std::move(target->ids);
  json out = {{"more", false}};
  if (target->filter) {
    // A page of the list (keyset, as GET /v1/runs); its failed and cancelled runs are retried.
    if (body->contains("cursor")) target->filter->cursor = (*body)["cursor"].get<std::string>();
    target->filter->limit = kBulkLimit;
    auto page = store::ListRuns(**conn, ctx.principal->tenant_id, *target->filter);
    if (!page) return ctx.Error(page.error());
    for (const auto& run : (*page)["items"]) {
      std::string status = run["status"];
      if (status == "failed" || status == "cancelled") ids.push_back(run["id"]);
    }
    if (page->contains("nextCursor")) out = {{"more", true}, {"nextCursor", (*page)["nextCursor"]}};
  }
  json retried = json::array();
  json skipped = json::array();
  for (const auto& id : ids) {
    auto done = RetryOne(*ctx.principal, ctx.trace, **conn, deps_.relay, id,
                         key->empty() ? std::nullopt : std::optional(*key + "/" + id));
    if (done) {
      json entry = {{"runId", (*done)["runId"]}, {"retryOf", id}};
      if (done->contains("replayed")) entry["replayed"] = true;
      retried.push_back(std::move(entry));
    } else {
      skipped.push_back(Skipped(id, done.error(), ctx.request_id));
    }
  }
  out["retried"] = retried;
  out["skipped"] = skipped;
  return JsonResponse(200, out, ctx.request_id);
}

// POST /v1/runs/{id}/retry: submits the finished run's command again, as it was accepted, on
// the same thread; 201 {commandId, runId, threadId, status, retryOf}. 409 while the run is
// unfinished. An Idempotency-Key header keys the new command as a submit's does: the same key
// again answers 200 with the first retry's run (`replayed`).
HttpResponse Router::RetryRun(Context& ctx, const Params& p) const {
  const std::string& id = p.at("id");
  if (!IsUuid(id)) return ctx.Error(400, "invalid_argument", "run id must be a UUID", "id");
  auto key = IdempotencyKeyHeader(ctx.req.header("idempotency-key"));
  if (!key) return ctx.Error(key.error());
  auto conn = deps_.pool->Acquire();
  if (!conn) return ctx.Error(conn.error());
  auto response = RetryOne(*ctx.principal, ctx.trace, **conn, deps_.relay, id,
                           key->empty() ? std::nullopt : std::optional(*key));
  if (!response) return ctx.Error(response.error());
  return JsonResponse(response->contains("replayed") ? 200 : 201, *response, ctx.request_id);
}

HttpResponse Router::ListQueues(Context& ctx, const Params&) const {
  if (!ctx.query.empty()) {
    const std::string& k = ctx.query.begin()->first;
    return ctx.Error(400, "invalid_argument", k + ": unknown parameter", k);
  }
  auto conn = ReadConnection(ctx);
  if (!conn) return ctx.Error(conn.error());
  auto queues = store::TenantQueues(**conn, ctx.principal->tenant_id);
  if (!queues) return ctx.Error(queues.error());
  return JsonResponse(200, {{"items", *queues}}, ctx.request_id);
}

// GET /v1/flow: the token's tenant's concurrency keys, route rate limits and threads with
// waiting runs (store/flow_store.h). Every role may read it; the installation scope reads its
// own tenant's.
HttpResponse Router::GetFlow(Context& ctx, const Params&) const {
  if (!ctx.query.empty()) {
    const std::string& k = ctx.query.begin()->first;
    return ctx.Error(400, "invalid_argument", k + ": unknown parameter", k);
  }
  auto conn = ReadConnection(ctx);
  if (!conn) return ctx.Error(conn.error());
  auto flow = store::TenantFlow(**conn, ctx.principal->tenant_id);
  if (!flow) return ctx.Error(flow.error());
  return JsonResponse(200, *flow, ctx.request_id);
}

HttpResponse Router::ListApiKeys(Context& ctx, const Params&) const {
  std::string tenant = ctx.principal->tenant_id;
  if (ctx.principal->installation) {
    tenant = "";
    if (ctx.query.contains("tenantId")) {
      auto v = detail::UrlDecode(ctx.query["tenantId"]);
      if (!v || v->empty() || v->size() > 128) {
        return ctx.Error(400, "invalid_argument", "tenantId must be 1 to 128 bytes", "tenantId");
      }
      tenant = *v;
    }
  } else if (ctx.query.contains("tenantId") && ctx.query["tenantId"] != tenant) {
    return ctx.Error(403, "permission_denied",
                     "only the installation scope may list another tenant's keys");
  }
  auto conn = deps_.pool->Acquire();
  if (!conn) return ctx.Error(conn.error());
  auto keys = store::ListApiKeys(**conn, tenant);
  if (!keys) return ctx.Error(keys.error());
  return JsonResponse(200, {{"items", *keys}}, ctx.request_id);
}

}  // namespace synaps::api
