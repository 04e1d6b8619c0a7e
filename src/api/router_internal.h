// Shared by the router's handler files: the per-request context and small helpers. Not part of
// the API component's public interface.
#pragma once

#include <set>

#include <nlohmann/json.hpp>
#include <optional>

#include "api/request_validation.h"
#include "api/router.h"
#include "core/trace.h"
#include "control/arbitration.h"
#include "store/run_store.h"

namespace synaps::api {

struct Router::Context {
  const HttpRequest& req;
  std::string request_id;
  std::string path;
  std::map<std::string, std::string> query;
  std::optional<Principal> principal;
  std::string route = "unmatched";  // route pattern, for logs and metrics
  // Where ReadConnection ran this request's read ("replica" or "primary"); "" when it did not.
  // Answered in X-Synaps-Read-From.
  std::string read_from;
  // This request's span: a child of the client's `traceparent`, or the root of a new trace.
  // Answered in the response's `traceparent`; a submit carries it into the tasks it creates.
  TraceContext trace;

  HttpResponse Error(int status, const std::string& code, const std::string& message,
                     const std::string& field = {}) const {
    return ErrorResponse(status, code, message, request_id, field);
  }
  HttpResponse Error(const synaps::Error& e) const;
};

namespace detail {

HttpResponse JsonResponse(int status, const nlohmann::json& body, const std::string& request_id);
// A non-negative integer from a query or path value; nullopt when malformed.
std::optional<int64_t> ParseCount(const std::string& s);
// Percent-decodes a query value; nullopt for malformed escapes.
std::optional<std::string> UrlDecode(const std::string& s);
// What a client may read of `e`: its message, unless it carries PostgreSQL's words (a
// SQLSTATE, "PostgreSQL …"), which are logged with the request id and replaced by a generic
// message naming it. Router::Context::Error applies it; use it wherever an error's message is
// put in a body some other way.
std::string ClientMessage(const synaps::Error& e, const std::string& request_id);
// Artifact downloads are written by workers, read by people: the type is sent with nosniff and
// `Content-Security-Policy: sandbox`, and anything but a few passive types (text/plain,
// text/markdown, text/csv, application/json, PNG, JPEG, GIF, WebP; never HTML or SVG) as
// `Content-Disposition: attachment`, so no artifact runs script in the API's origin. A stored
// type outside the media-type grammar is served as application/octet-stream.
bool IsInlineArtifactType(const std::string& content_type);
void SetArtifactHeaders(HttpResponse& r, const std::string& content_type, const std::string& name);
// The request's JSON object body with only `known` fields (kInvalidArgument naming the field).
Result<nlohmann::json> JsonBody(const Router::Context& ctx, const std::set<std::string>& known);
// The body's optional `reason` (a decision's or a revocation's): "" when absent; kInvalidArgument
// (field "reason") unless a string of at most 2000 bytes.
Result<std::string> OptionalReason(const nlohmann::json& body);

// The runs filter shared by GET /v1/runs (query) and POST /v1/runs/cancel (body): threadId,
// status, kind, text, tag, createdAfter, createdBefore; kInvalidArgument naming the field.
Result<store::RunFilter> ParseRunFilter(const std::map<std::string, std::string>& values);

// Whose runs a read of run `run_id` looks in: the principal's tenant, or for the installation
// scope (which reads every tenant) the run's own tenant. kNotFound when such a run is absent,
// so another tenant's run id tells an ordinary token nothing.
Result<std::string> RunReadTenant(const Principal& p, db::Connection& conn,
                                  const std::string& run_id);

// The tenant scope of GET /v1/runs from its `tenant` query value: absent → the principal's own;
// for the installation scope a tenant id → that tenant, `*` → "" (every tenant). An ordinary
// token naming another tenant (or `*`) is kPermissionDenied (field "tenant").
Result<std::string> RunListTenant(const Principal& p, const std::optional<std::string>& tenant);

// The arbiters of a remote worker's completion of queue item `item_id` (remote_arbiters.cpp):
// the matching arbiters of the current snapshot over the completion's output and artifacts;
// no verdicts when none match. kNotFound when the item does not exist.
Result<control::Arbitration> ArbitrateRemoteCompletion(
    db::Connection& conn, int64_t item_id, const nlohmann::json& output,
    const std::vector<ArtifactUpload>& artifacts);

}  // namespace detail
}  // namespace synaps::api
