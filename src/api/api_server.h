// `synaps api`: the Control API process — HTTP server, router, connection pool, outbox relay and
// scheduler (schedules/scheduler.h), started and stopped together (stop runs in reverse order of start).
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "api/http_server.h"
#include "bus/bus.h"
#include "db/connection.h"
#include "objstore/object_store.h"

namespace synaps::api {

struct ApiOptions {
  std::string database_url;
  // SYNAPS_DATABASE_READ_URL: a streaming replica for reads (api/read_routing.h); empty = none.
  std::string read_database_url;
  std::string listen = "0.0.0.0:8081";  // SYNAPS_LISTEN
  std::string admin_token;              // SYNAPS_ADMIN_TOKEN
  std::string jwt_secret;               // SYNAPS_JWT_SECRET (HS256, shared with Hasura)
  std::string jwt_issuer = "synaps";    // SYNAPS_JWT_ISSUER
  std::string jwt_audience = "synaps";  // SYNAPS_JWT_AUDIENCE
  double rate_limit_rps = 200;          // SYNAPS_RATE_LIMIT_RPS per token; 0 = off
  double rate_limit_burst = 400;        // SYNAPS_RATE_LIMIT_BURST
  // Abuse limits (docs/security.md, "Abuse limits").
  double address_rate_rps = 1000;        // SYNAPS_API_ADDRESS_RPS per client address; 0 = off
  double address_rate_burst = 2000;      // SYNAPS_API_ADDRESS_BURST
  int64_t rate_limit_keys = 100000;      // SYNAPS_API_RATE_LIMIT_KEYS: buckets kept per limiter
  int64_t invalid_token_cache = 10000;   // SYNAPS_API_INVALID_TOKEN_CACHE entries
  int64_t invalid_token_ttl_ms = 30000;  // SYNAPS_API_INVALID_TOKEN_TTL_MS
  int64_t max_connections = 10000;       // SYNAPS_API_MAX_CONNECTIONS; 0 = no cap
  int64_t max_connections_per_address = 1000;   // SYNAPS_API_MAX_CONNECTIONS_PER_ADDRESS
  int64_t max_streams_per_principal = 64;       // SYNAPS_API_MAX_STREAMS_PER_PRINCIPAL
  int64_t drain_ms = 10000;                     // SYNAPS_API_DRAIN_MS (graceful stop)
  int64_t revocation_refresh_ms = 5000;         // SYNAPS_API_REVOCATION_REFRESH_MS
  std::chrono::seconds jwt_max_ttl{24 * 3600};  // SYNAPS_JWT_MAX_TTL
  int db_pool_size = 16;                        // SYNAPS_DB_POOL_SIZE
  int io_threads = 2;                           // SYNAPS_API_IO_THREADS
  size_t body_limit = 1 << 20;                  // SYNAPS_BODY_LIMIT_BYTES
  size_t batch_body_limit = 16 << 20;           // SYNAPS_BATCH_BODY_LIMIT_BYTES (batch submit)
  int max_large_bodies = 4;  // SYNAPS_API_MAX_LARGE_BODIES (HttpServerOptions::max_large_bodies)
  int relay_sweep_ms = 1000;                    // SYNAPS_OUTBOX_SWEEP_MS
  int schedule_tick_ms = 1000;  // SYNAPS_SCHEDULE_TICK_MS; 0 = fire no schedules here
  int usage_rollup_seconds = 60;  // SYNAPS_USAGE_ROLLUP_SECONDS; 0 = no background rollup
  int flow_sweep_ms = 30000;      // SYNAPS_FLOW_SWEEP_MS; 0 = no sweep of waiting limited tasks
  int expiry_seconds = 300;       // SYNAPS_EXPIRY_SECONDS; 0 = no background expiry here
  int expiry_batch_runs = 500;    // SYNAPS_EXPIRY_BATCH_RUNS: runs per expiry transaction
  // Deadlines of the request pool's and the relay's connections (db/deadlines.h).
  db::ConnectOptions db_options;        // SYNAPS_DB_*, SYNAPS_API_STATEMENT_TIMEOUT_MS
  db::ConnectOptions relay_db_options;  // SYNAPS_DB_*, SYNAPS_RELAY_STATEMENT_TIMEOUT_MS
};

// Reads ApiOptions from the SYNAPS_* environment; throws ConfigError on bad values.
ApiOptions ApiOptionsFromEnv();

class ApiServer {
 public:
  // `bus` and `objects` must outlive the server; `bus` may be null (no relay).
  ApiServer(ApiOptions options, bus::Bus* bus, objstore::ObjectStore* objects);
  ~ApiServer();
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  // Starts the relay and the HTTP server; returns the bound port.
  Result<uint16_t> Start();
  void Stop();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace synaps::api
