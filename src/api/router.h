// The Control API's routes: authentication, validation, and the mapping from HTTP to the store.
// Every refusal is a JSON error {error: {code, message, requestId, field?}} and writes nothing.
#pragma once

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

class Router {
 public:
  explicit Router(RouterDeps deps) : deps_(std::move(deps)) {}
  // Thread-safe; may block on PostgreSQL.
  HttpResponse Handle(const HttpRequest& request) const;

  // The JSON error body used for every refusal.
  static HttpResponse ErrorResponse(int status, const std::string& code,
                                    const std::string& message, const std::string& request_id,
                                    const std::string& field = {});

 private:
  struct Context;
  HttpResponse Dispatch(Context& ctx) const;
  HttpResponse Submit(Context& ctx) const;
  HttpResponse GetRun(Context& ctx, const std::string& id) const;
  HttpResponse GetArtifactContent(Context& ctx, const std::string& id,
                                  const std::string& version) const;
  HttpResponse Ready(Context& ctx) const;

  RouterDeps deps_;
};

}  // namespace synaps::api
