// Router handlers for reading runs and threads, including the live event stream.
#include <spdlog/spdlog.h>

#include <memory>
#include <regex>

#include "api/abuse_limits.h"
#include "api/metrics.h"
#include "api/router_internal.h"
#include "api/run_feeds.h"
#include "control/spec.h"
#include "core/http_grammar.h"
#include "core/ids.h"
#include "core/utf8.h"
#include "history/archive.h"
#include "store/run_store.h"

namespace synaps::api {

using detail::JsonResponse;
using detail::ParseCount;
using nlohmann::json;

namespace detail {

Result<store::RunFilter> ParseRunFilter(const std::map<std::string, std::string>& values) {
  static const std::set<std::string> kStatuses = {"queued",    "running", "awaiting_approval",
                                                  "succeeded", "failed",  "cancelled"};
  static const std::regex kTime(
      R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2}))");
  static const std::regex kKind("[a-z][a-z0-9_-]{0,63}");
  store::RunFilter f;
  for (const auto& [k, v] : values) {
    if (k == "threadId") {
      if (!IsUuid(v)) return Fail(ErrorCode::kInvalidArgument, "threadId must be a UUID", k);
      f.thread_id = v;
    } else if (k == "status") {
      if (!kStatuses.contains(v)) {
        return Fail(ErrorCode::kInvalidArgument,
                    "status must be one of queued, running, awaiting_approval, succeeded, "
                    "failed, cancelled",
                    k);
      }
      f.status = v;
    } else if (k == "kind") {
      if (!std::regex_match(v, kKind)) {
        return Fail(ErrorCode::kInvalidArgument, "kind must be a lower-case word", k);
      }
      f.kind = v;
    } else if (k == "text" || k == "tag") {
      if (v.empty() || v.size() > 200 || ValidUtf8(v) != v) {
        return Fail(ErrorCode::kInvalidArgument, k + " must be 1 to 200 bytes of UTF-8", k);
      }
      (k == "text" ? f.text : f.tag) = v;
    } else if (k == "metadata") {
      // key=value: the key up to the first '='; the value may contain '='.
      size_t eq = v.find('=');
      if (eq == std::string::npos || eq == 0 || v.size() > 400 || ValidUtf8(v) != v) {
        return Fail(ErrorCode::kInvalidArgument,
                    "metadata must be key=value (a non-empty key, at most 400 bytes of UTF-8)", k);
      }
      f.metadata_key = v.substr(0, eq);
      f.metadata_value = v.substr(eq + 1);
    } else if (k == "schedule") {
      if (!control::IsValidName(v)) {
        return Fail(ErrorCode::kInvalidArgument,
                    "schedule must be a schedule name matching [a-z0-9][a-z0-9_.-]{0,63}", k);
      }
      f.schedule = v;
    } else if (k == "createdAfter" || k == "createdBefore") {
      if (!std::regex_match(v, kTime)) {
        return Fail(ErrorCode::kInvalidArgument, k + " must be an RFC 3339 timestamp", k);
      }
      (k == "createdAfter" ? f.created_after : f.created_before) = v;
    } else {
      return Fail(ErrorCode::kInvalidArgument, k + ": unknown parameter", k);
    }
  }
  return f;
}

Result<std::string> RunReadTenant(const Principal& p, db::Connection& conn,
                                  const std::string& run_id) {
  if (!p.installation) return p.tenant_id;
  return store::RunTenant(conn, run_id);
}

Result<std::string> RunListTenant(const Principal& p, const std::optional<std::string>& tenant) {
  if (!tenant || *tenant == p.tenant_id) return p.tenant_id;
  if (!p.installation) {
    return Fail(ErrorCode::kPermissionDenied,
                "tenant: this token reads its own tenant (" + p.tenant_id +
                    ") only; another tenant's runs need the installation scope",
                "tenant");
  }
  if (*tenant == "*") return std::string();
  if (!IsTenantId(*tenant)) {
    return Fail(ErrorCode::kInvalidArgument, "tenant: not a tenant id (or * for every tenant)",
                "tenant");
  }
  return *tenant;
}

}  // namespace detail

HttpResponse Router::ListRuns(Context& ctx, const Params&) const {
  std::map<std::string, std::string> filter;
  std::optional<std::string> cursor, tenant;
  int limit = 50;
  for (const auto& [k, raw] : ctx.query) {
    auto v = detail::UrlDecode(raw);
    if (!v) return ctx.Error(400, "invalid_argument", k + ": malformed percent-encoding", k);
    if (k == "cursor") {
      cursor = *v;
    } else if (k == "tenant") {
      tenant = *v;
    } else if (k == "limit") {
      auto n = ParseCount(*v);
      if (!n || *n < 1 || *n > 500) {
        return ctx.Error(400, "invalid_argument", "limit must be within 1..500", k);
      }
      limit = static_cast<int>(*n);
    } else {
      filter[k] = *v;
    }
  }
  auto f = detail::ParseRunFilter(filter);
  if (!f) return ctx.Error(f.error());
  f->cursor = cursor;
  f->limit = limit;
  auto scope = detail::RunListTenant(*ctx.principal, tenant);
  if (!scope) return ctx.Error(scope.error());
  auto conn = ReadConnection(ctx);
  if (!conn) return ctx.Error(conn.error());
  auto page = store::ListRuns(**conn, *scope, *f);
  if (!page) return ctx.Error(page.error());
  return JsonResponse(200, *page, ctx.request_id);
}

HttpResponse Router::GetThread(Context& ctx, const Params& p) const {
  const std::string& id = p.at("id");
  if (!IsUuid(id)) return ctx.Error(400, "invalid_argument", "thread id must be a UUID", "id");
  auto conn = ReadConnection(ctx);
  if (!conn) return ctx.Error(conn.error());
  auto thread = store::GetThread(**conn, ctx.principal->tenant_id, id);
  if (!thread) return ctx.Error(thread.error());
  return JsonResponse(200, *thread, ctx.request_id);
}

namespace {

// State of one SSE follower, shared by the producer's steps.
struct EventStream {
  RunFeeds* feeds;
  std::unique_ptr<RunFeeds> own_feeds;  // when the router has no shared feeds
  std::shared_ptr<void> following;      // keeps the shared feed of the run alive
  std::shared_ptr<void> slot;           // the principal's stream slot
  std::string tenant_id;
  std::string run_id;
  int64_t last_seq;
  std::chrono::steady_clock::time_point last_write;
};

bool Finished(const std::string& status) {
  return status == "succeeded" || status == "failed" || status == "cancelled";
}

StreamStep NextEvents(EventStream& state) {
  StreamStep step;
  step.wait = std::chrono::milliseconds(200);
  auto page = state.feeds->Read(state.tenant_id, state.run_id, state.last_seq, 500);
  if (!page) {
    if (page.error().code == ErrorCode::kNotFound) step.done = true;
    return step;  // otherwise try again next step
  }
  for (const auto& e : page->events) {
    int64_t seq = e["seq"].get<int64_t>();
    step.data += "id: " + std::to_string(seq) + "\nevent: " + e["type"].get<std::string>() +
                 "\ndata: " + e.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
    state.last_seq = seq;
  }
  auto now = std::chrono::steady_clock::now();
  if (page->more) {
    step.wait = std::chrono::milliseconds(0);  // more waiting: no pause
  } else if (Finished(page->run_status)) {
    step.data += "event: end\ndata: {\"status\":\"" + page->run_status + "\"}\n\n";
    step.done = true;
  } else if (step.data.empty() && now - state.last_write > std::chrono::seconds(15)) {
    step.data = ": keep-alive\n\n";
  }
  if (!step.data.empty()) state.last_write = now;
  return step;
}

}  // namespace

std::optional<HttpResponse> Router::OpenStreamSlot(Context& ctx,
                                                   std::shared_ptr<void>& slot) const {
  if (deps_.stream_slots == nullptr) return std::nullopt;
  slot = deps_.stream_slots->TryOpen(ctx.principal->limit_key);
  if (slot) return std::nullopt;
  if (deps_.metrics != nullptr) deps_.metrics->HttpRefused("streams_per_principal");
  return ctx.Error(429, "too_many_streams",
                   "this token has too many open event streams (SYNAPS_API_MAX_STREAMS_PER_"
                   "PRINCIPAL); close one first");
}

// Server-Sent Events: every ledger event of the run with seq > after, as
// `id: <seq>` / `event: <type>` / `data: <event JSON>`, following the run until it finishes
// (then `event: end`). Resume with Last-Event-ID or ?after=. Followers of one run share one
// feed (run_feeds.h: one query per 200 ms per run, whatever the number of followers), and hold
// no thread between steps; a comment line every 15 s keeps proxies open.
HttpResponse Router::RunEvents(Context& ctx, const Params& p) const {
  const std::string& id = p.at("id");
  if (!IsUuid(id)) return ctx.Error(400, "invalid_argument", "run id must be a UUID", "id");
  int64_t after = 0;
  const std::string& last_event = ctx.req.header("last-event-id");
  if (!last_event.empty()) {
    auto n = ParseCount(last_event);
    if (!n) return ctx.Error(400, "invalid_argument", "Last-Event-ID must be a sequence number");
    after = *n;
  } else if (ctx.query.contains("after")) {
    auto n = ParseCount(ctx.query["after"]);
    if (!n) return ctx.Error(400, "invalid_argument", "after must be a sequence number", "after");
    after = *n;
  }
  // Check existence and tenancy now, so a bad id is a plain 404 rather than an empty stream.
  std::string tenant;
  {
    auto conn = ReadConnection(ctx);
    if (!conn) return ctx.Error(conn.error());
    auto readable = detail::RunReadTenant(*ctx.principal, **conn, id);
    if (!readable) return ctx.Error(readable.error());
    tenant = *readable;
    auto page = store::ListRunEvents(**conn, tenant, id, after, 0);
    if (!page) return ctx.Error(page.error());
  }
  auto state =
      std::make_shared<EventStream>(EventStream{deps_.run_feeds, nullptr, nullptr, nullptr, tenant,
                                                id, after, std::chrono::steady_clock::now()});
  if (auto refused = OpenStreamSlot(ctx, state->slot)) return std::move(*refused);
  if (state->feeds == nullptr) {
    state->own_feeds = std::make_unique<RunFeeds>(deps_.pool, nullptr);
    state->feeds = state->own_feeds.get();
  }
  state->following = state->feeds->Follow(state->tenant_id, id);
  HttpResponse r;
  r.content_type = "text/event-stream";
  r.headers.push_back({"X-Request-Id", ctx.request_id});
  r.headers.push_back({"X-Accel-Buffering", "no"});
  r.stream = [state]() -> StreamStep { return NextEvents(*state); };
  return r;
}

namespace {

// An archived story as readers see it: the rows as archived, without what only Synaps itself
// uses (docs/api/openapi.yaml, ArchivedRun): the command's request hash, idempotency key, stored
// answer and submitter, and the queue items' lease owners and held verdicts.
json PublicArchivedRun(json story) {
  if (story["command"].is_object()) {
    for (const char* column : {"request_hash", "idempotency_key", "response", "submitted_by"}) {
      story["command"].erase(column);
    }
  }
  if (story["queueItems"].is_array()) {
    for (auto& item : story["queueItems"]) {
      if (!item.is_object()) continue;
      for (const char* column : {"lease_owner", "lease_epoch", "held", "rate_slot", "rate_route"}) {
        item.erase(column);
      }
    }
  }
  return story;
}

}  // namespace

// A run as its archive in the object store holds it (docs/storage.md, "Archives"). The record of
// which segment holds it is in PostgreSQL; another tenant's archived run is a 404, like its run.
// A process without an object store answers 503 archive_unavailable.
HttpResponse Router::GetArchivedRun(Context& ctx, const Params& p) const {
  const std::string& id = p.at("id");
  if (!IsUuid(id)) return ctx.Error(400, "invalid_argument", "run id must be a UUID", "id");
  if (deps_.objects == nullptr) {
    return ctx.Error(503, "archive_unavailable",
                     "this API process has no object store (SYNAPS_OBJECT_STORE), so it cannot "
                     "read archives");
  }
  auto conn = ReadConnection(ctx);
  if (!conn) return ctx.Error(conn.error());
  const std::string tenant = ctx.principal->installation ? "" : ctx.principal->tenant_id;
  auto run = history::ReadArchivedRun(**conn, *deps_.objects, tenant, id);
  if (!run) {
    const Error& e = run.error();
    // Stored bytes that are damaged, not what PostgreSQL recorded, or larger than a read takes:
    // the store (upstream) answered badly, said as such.
    if (history::IsArchiveDataError(e)) {
      spdlog::error("request {}: {}", ctx.request_id, e.message);
      return ctx.Error(502, e.field, e.message);
    }
    return ctx.Error(e);
  }
  return JsonResponse(200, PublicArchivedRun(std::move(*run)), ctx.request_id);
}

}  // namespace synaps::api
