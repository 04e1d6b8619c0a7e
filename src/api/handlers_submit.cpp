// POST /v1/commands/submit: one command, or a batch of up to kMaxBatchCommands written in one
// transaction with an answer per item (docs/api.md, "Batch submit").
#include "api/outbox_relay.h"
#include "api/request_validation.h"
#include "api/router_internal.h"
#include "db/pool.h"
#include "store/run_store.h"

namespace synaps::api {

using detail::JsonResponse;
using nlohmann::json;

namespace {

// A cancelNewest limit's refusal, answered as `concurrency_limit` (a single submit's 409 code).
bool IsConcurrencyLimit(const synaps::Error& e) {
  return e.code == ErrorCode::kConflict && e.field == "concurrencyKey";
}

json ItemError(size_t index, const synaps::Error& e, const std::string& request_id) {
  std::string message = detail::ClientMessage(e, request_id);
  // A field is named only with the item's own message (PostgreSQL's words are not sent).
  const bool own_words = message == e.message;
  const std::string code =
      IsConcurrencyLimit(e) ? "concurrency_limit" : std::string(ErrorCodeName(e.code));
  json err = {{"code", code}, {"message", std::move(message)}};
  if (own_words && !e.field.empty()) err["field"] = e.field;
  return {{"index", index}, {"error", std::move(err)}};
}

// 409 for onThreadBusy: reject on a busy thread, naming the run that holds it.
HttpResponse ThreadBusy(const Router::Context& ctx, const json& busy) {
  const std::string run = busy.value("runId", "");
  const int64_t queued = busy.value("queuedBehind", int64_t{0});
  std::string message =
      "thread " + busy.value("threadId", "") + " is busy: run " + run + " has not finished";
  if (queued > 0) message += " (" + std::to_string(queued) + " more queued behind it)";
  message += "; onThreadBusy is reject";
  json err = {{"code", "thread_busy"},
              {"message", message},
              {"requestId", ctx.request_id},
              {"runId", run},
              {"threadId", busy.value("threadId", "")},
              {"queuedBehind", queued}};
  return JsonResponse(409, {{"error", std::move(err)}}, ctx.request_id);
}

}  // namespace

HttpResponse Router::Submit(Context& ctx, const Params&) const {
  if (!IsJsonContentType(ctx.req.header("content-type"))) {
    return ctx.Error(415, "unsupported_media_type", "Content-Type must be application/json");
  }
  auto body = ParseJsonObject(ctx.req.body);
  const bool batch = body && IsBatchSubmit(*body);
  // The transport lets a submit's body grow to the batch limit; anything but a batch keeps the
  // ordinary one.
  if (!batch && deps_.body_limit > 0 && ctx.req.body.size() > deps_.body_limit) {
    return ctx.Error(413, "payload_too_large",
                     "request body exceeds " + std::to_string(deps_.body_limit) +
                         " bytes (only a batch submit may be larger)");
  }
  if (!body) return ctx.Error(body.error());
  const std::string& key = ctx.req.header("idempotency-key");
  if (batch) return SubmitBatch(ctx, *body, key);
  auto parsed = ParseSubmitCommand(*body);
  if (!parsed) return ctx.Error(parsed.error());
  store::SubmitRequest req = std::move(*parsed);
  req.tenant_id = ctx.principal->tenant_id;
  req.actor = ctx.principal->id;
  // The tasks' spans are children of this request's span (docs/observability.md).
  req.trace = ctx.trace;
  auto checked = IdempotencyKeyHeader(key);
  if (!checked) return ctx.Error(checked.error());
  if (!key.empty()) req.idempotency_key = key;
  auto conn = deps_.pool->Acquire();
  if (!conn) return ctx.Error(conn.error());
  // One statement, which is its own transaction: one round trip instead of BEGIN/SELECT/COMMIT
  // (with a concurrencyKey, a transaction that also checks a cancelNewest limit).
  auto result = store::SubmitCommandWithinLimits(**conn, req);
  if (!result && IsConcurrencyLimit(result.error())) {
    return ctx.Error(409, "concurrency_limit", result.error().message, "concurrencyKey");
  }
  if (!result) return ctx.Error(result.error());
  if (result->thread_busy) return ThreadBusy(ctx, *result->thread_busy);
  if (deps_.relay != nullptr && !result->outbox.empty()) {
    deps_.relay->Notify(std::move(result->outbox), ctx.trace);
  }
  return JsonResponse(result->replayed ? 200 : 201, result->response, ctx.request_id);
}

HttpResponse Router::SubmitBatch(Context& ctx, const json& body, const std::string& key) const {
  auto items = ParseSubmitBatch(body, key, deps_.body_limit);
  if (!items) return ctx.Error(items.error());
  std::vector<const store::SubmitRequest*> valid;
  for (auto& item : *items) {
    if (!item.request) continue;
    // Every item is the caller's: tenant, actor and this request's trace, as a single submit.
    item.request->tenant_id = ctx.principal->tenant_id;
    item.request->actor = ctx.principal->id;
    item.request->trace = ctx.trace;
    valid.push_back(&*item.request);
  }
  std::vector<Result<store::SubmitResult>> written;
  if (!valid.empty()) {
    auto conn = deps_.pool->Acquire();
    if (!conn) return ctx.Error(conn.error());
    auto done = store::SubmitCommands(**conn, ctx.principal->tenant_id, ctx.principal->id, valid);
    if (!done) return ctx.Error(done.error());
    written = std::move(*done);
  }
  json results = json::array();
  int created = 0, existing = 0, failed = 0;
  std::vector<store::OutboxMessage> outbox;
  size_t next = 0;  // the next answer of `written`, in the order of the valid items
  for (size_t i = 0; i < items->size(); ++i) {
    const BatchItem& item = (*items)[i];
    if (!item.request) {
      ++failed;
      results.push_back(ItemError(i, *item.error, ctx.request_id));
      continue;
    }
    Result<store::SubmitResult>& answer = written[next++];
    if (!answer) {
      ++failed;
      results.push_back(ItemError(i, answer.error(), ctx.request_id));
      continue;
    }
    (answer->replayed ? existing : created)++;
    json r = std::move(answer->response);
    r["runStatus"] = r.value("status", "queued");
    r["status"] = answer->replayed ? "existing" : "created";
    r["index"] = i;
    results.push_back(std::move(r));
    for (auto& m : answer->outbox) outbox.push_back(std::move(m));
  }
  if (deps_.relay != nullptr && !outbox.empty()) deps_.relay->Notify(std::move(outbox), ctx.trace);
  return JsonResponse(200,
                      {{"results", std::move(results)},
                       {"created", created},
                       {"existing", existing},
                       {"failed", failed}},
                      ctx.request_id);
}

}  // namespace synaps::api
