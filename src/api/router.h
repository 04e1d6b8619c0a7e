// The Control API's routes: authentication, authorization, validation, and the mapping from
// HTTP to the store. Every refusal is a JSON error {error: {code, message, requestId, field?}}
// and writes nothing. Routes are a table (kRoutes in router.cpp): method, path pattern with
// {params}, the permission it needs, and its handler.
#pragma once

#include <map>
#include <vector>
#include <string>

#include "api/http_types.h"
#include "api/outbox_relay.h"
#include "bus/bus.h"
#include "db/pool.h"
#include "objstore/object_store.h"

namespace synaps::api {

struct RouterDeps {
  db::Pool* pool = nullptr;
  bus::Bus* bus = nullptr;                  // may be null: readiness then reports nats "down"
  objstore::ObjectStore* objects = nullptr;
  OutboxRelay* relay = nullptr;             // may be null: the sweep of another relay publishes
  std::string admin_token;                  // SYNAPS_ADMIN_TOKEN; empty disables it
};

// The authenticated caller.
struct Principal {
  std::string id;         // token id for logs and audit ("admin" for the bootstrap token)
  std::string tenant_id;
  std::string role;       // admin, operator, worker, viewer
};

// What a route needs; see docs/api.md for the role table.
enum class Permission { kNone, kRead, kSubmit, kOperate, kWork, kAdmin };

// True when `role` grants `permission`.
bool RoleAllows(const std::string& role, Permission permission);

class Router {
 public:
  explicit Router(RouterDeps deps) : deps_(std::move(deps)) {}
  // Thread-safe; may block on PostgreSQL.
  HttpResponse Handle(const HttpRequest& request) const;

  // The JSON error body used for every refusal.
  static HttpResponse ErrorResponse(int status, const std::string& code,
                                    const std::string& message, const std::string& request_id,
                                    const std::string& field = {});

  struct Context;
  using Params = std::map<std::string, std::string>;
  using Handler = HttpResponse (Router::*)(Context&, const Params&) const;

 private:
  struct Route;
  static const std::vector<Route>& Routes();
  HttpResponse Dispatch(Context& ctx) const;
  Result<Principal> Authenticate(const HttpRequest& req) const;

  HttpResponse Healthz(Context& ctx, const Params&) const;
  HttpResponse Readyz(Context& ctx, const Params&) const;
  HttpResponse Metrics(Context& ctx, const Params&) const;
  HttpResponse Submit(Context& ctx, const Params&) const;
  HttpResponse GetRun(Context& ctx, const Params& p) const;
  HttpResponse CancelRun(Context& ctx, const Params& p) const;
  HttpResponse GetArtifactContent(Context& ctx, const Params& p) const;
  HttpResponse ListDeadLetters(Context& ctx, const Params&) const;
  HttpResponse RetryDeadLetter(Context& ctx, const Params& p) const;

  RouterDeps deps_;
};

}  // namespace synaps::api
