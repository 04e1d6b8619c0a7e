// Router handlers the web console needs beyond the rest (docs/console.md): who the caller is,
// a tenant-wide live feed of ledger events, bulk cancel by selection or by filter, and the list
// of API keys.
#include <memory>

#include "api/outbox_relay.h"
#include "api/request_validation.h"
#include "api/router_internal.h"
#include "api/run_feeds.h"
#include "core/ids.h"
#include "db/pool.h"
#include "store/auth_store.h"
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

// Server-Sent Events: `id: <ledger id>` / `event: <type>` / `data: {id, runId, taskId, seq,
// type, at, runStatus}` for every ledger event of the tenant's runs, never ending. Starts at
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
  for (const auto& [k, v] : ctx.query) {
    if (k != "after") return ctx.Error(400, "invalid_argument", k + ": unknown parameter", k);
  }
  if (!after) {
    auto conn = deps_.pool->Acquire();
    if (!conn) return ctx.Error(conn.error());
    auto latest = store::LatestLedgerId(**conn);
    if (!latest) return ctx.Error(latest.error());
    after = *latest;
  }
  auto state = std::make_shared<TenantFeed>(TenantFeed{deps_.tenant_feeds, nullptr, nullptr,
                                                       ctx.principal->tenant_id, *after,
                                                       std::chrono::steady_clock::now()});
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

// POST /v1/runs/cancel {runIds: [..]} or {filter: {...}}: cancels each unfinished run, at most
// 1000 per call; answers {cancelled: [ids], skipped: [{id, code, message}], more} where `more`
// says that the filter matched further runs (call again).
HttpResponse Router::BulkCancel(Context& ctx, const Params&) const {
  if (!IsJsonContentType(ctx.req.header("content-type"))) {
    return ctx.Error(415, "unsupported_media_type", "Content-Type must be application/json");
  }
  auto body = detail::JsonBody(ctx, {"runIds", "filter"});
  if (!body) return ctx.Error(body.error());
  if (body->contains("runIds") == body->contains("filter")) {
    return ctx.Error(400, "invalid_argument", "give exactly one of runIds or filter", "runIds");
  }
  auto conn = deps_.pool->Acquire();
  if (!conn) return ctx.Error(conn.error());
  std::vector<std::string> ids;
  bool more = false;
  if (body->contains("runIds")) {
    const json& given = (*body)["runIds"];
    if (!given.is_array() || given.empty() || given.size() > kBulkLimit) {
      return ctx.Error(400, "invalid_argument", "runIds must be an array of 1 to 1000 run ids",
                       "runIds");
    }
    for (const auto& id : given) {
      if (!id.is_string() || !IsUuid(id.get<std::string>())) {
        return ctx.Error(400, "invalid_argument", "runIds must hold run ids (UUIDs)", "runIds");
      }
      ids.push_back(id.get<std::string>());
    }
  } else {
    const json& given = (*body)["filter"];
    if (!given.is_object()) {
      return ctx.Error(400, "invalid_argument", "filter must be an object", "filter");
    }
    std::map<std::string, std::string> values;
    for (auto it = given.begin(); it != given.end(); ++it) {
      if (!it.value().is_string()) {
        return ctx.Error(400, "invalid_argument", "filter." + it.key() + " must be a string",
                         "filter." + it.key());
      }
      values[it.key()] = it.value().get<std::string>();
    }
    auto f = detail::ParseRunFilter(values);
    if (!f) {
      synaps::Error e = f.error();
      e.field = "filter." + e.field;
      return ctx.Error(e);
    }
    auto found = store::UnfinishedRunIds(**conn, ctx.principal->tenant_id, *f, kBulkLimit + 1);
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
      skipped.push_back({{"id", id},
                         {"code", std::string(ErrorCodeName(done.error().code))},
                         {"message", detail::ClientMessage(done.error(), ctx.request_id)}});
    }
  }
  if (deps_.relay != nullptr && !cancelled.empty()) deps_.relay->Wake();
  return JsonResponse(200, {{"cancelled", cancelled}, {"skipped", skipped}, {"more", more}},
                      ctx.request_id);
}

// POST /v1/runs/{id}/retry: submits the finished run's command again, as it was accepted, on
// the same thread; 201 {commandId, runId, threadId, status, retryOf}. 409 while the run is
// unfinished.
HttpResponse Router::RetryRun(Context& ctx, const Params& p) const {
  const std::string& id = p.at("id");
  if (!IsUuid(id)) return ctx.Error(400, "invalid_argument", "run id must be a UUID", "id");
  auto conn = deps_.pool->Acquire();
  if (!conn) return ctx.Error(conn.error());
  auto source = store::RunCommand(**conn, ctx.principal->tenant_id, id);
  if (!source) return ctx.Error(source.error());
  std::string status = (*source)["status"];
  if (status != "succeeded" && status != "failed" && status != "cancelled") {
    return ctx.Error(409, "conflict", "run " + id + " is " + status + ": retry a finished run");
  }
  json body = (*source)["payload"];
  body["threadId"] = (*source)["threadId"];
  auto parsed = ParseSubmitRequest(body.dump());
  if (!parsed) return ctx.Error(parsed.error());
  parsed->tenant_id = ctx.principal->tenant_id;
  parsed->actor = ctx.principal->id;
  auto result = store::SubmitCommand(**conn, *parsed);
  if (!result) return ctx.Error(result.error());
  if (deps_.relay != nullptr && !result->outbox.empty()) {
    deps_.relay->Notify(std::move(result->outbox));
  }
  json response = result->response;
  response["retryOf"] = id;
  return JsonResponse(201, response, ctx.request_id);
}

HttpResponse Router::ListQueues(Context& ctx, const Params&) const {
  if (!ctx.query.empty()) {
    const std::string& k = ctx.query.begin()->first;
    return ctx.Error(400, "invalid_argument", k + ": unknown parameter", k);
  }
  auto conn = deps_.pool->Acquire();
  if (!conn) return ctx.Error(conn.error());
  auto queues = store::TenantQueues(**conn, ctx.principal->tenant_id);
  if (!queues) return ctx.Error(queues.error());
  return JsonResponse(200, {{"items", *queues}}, ctx.request_id);
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
