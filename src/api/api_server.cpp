#include "api/api_server.h"

#include <spdlog/spdlog.h>

#include "api/abuse_limits.h"
#include "api/flow_sweep.h"
#include "api/metrics.h"
#include "api/openapi.h"
#include "api/outbox_relay.h"
#include "api/rate_limiter.h"
#include "api/read_routing.h"
#include "api/revocation_list.h"
#include "api/router.h"
#include "api/run_feeds.h"
#include "api/usage_rollup.h"
#include "auth/jwt.h"
#include "core/config.h"
#include "db/deadlines.h"
#include "db/pool.h"
#include "history/archive.h"
#include "history/expiry.h"
#include "otel/exporter.h"
#include "schedules/scheduler.h"

namespace synaps::api {

ApiOptions ApiOptionsFromEnv() {
  ApiOptions o;
  o.database_url = config::EnvOr("SYNAPS_DATABASE_URL", "");
  o.read_database_url = config::EnvOr("SYNAPS_DATABASE_READ_URL", "");
  o.listen = config::EnvOr("SYNAPS_LISTEN", o.listen);
  o.admin_token = config::EnvOr("SYNAPS_ADMIN_TOKEN", "");
  o.jwt_secret = config::EnvOr("SYNAPS_JWT_SECRET", "");
  if (!o.jwt_secret.empty() && o.jwt_secret.size() < auth::kMinSecretBytes) {
    throw ConfigError(
        "SYNAPS_JWT_SECRET is shorter than 32 bytes: use a longer random secret "
        "(e.g. openssl rand -hex 32)");
  }
  if (auto v = config::Env("SYNAPS_JWT_ISSUER")) o.jwt_issuer = *v;
  if (auto v = config::Env("SYNAPS_JWT_AUDIENCE")) o.jwt_audience = *v;
  o.rate_limit_rps = static_cast<double>(config::EnvInt("SYNAPS_RATE_LIMIT_RPS", 200, 0, 1000000));
  o.rate_limit_burst =
      static_cast<double>(config::EnvInt("SYNAPS_RATE_LIMIT_BURST", 400, 1, 10000000));
  o.address_rate_rps =
      static_cast<double>(config::EnvInt("SYNAPS_API_ADDRESS_RPS", 1000, 0, 10000000));
  o.address_rate_burst =
      static_cast<double>(config::EnvInt("SYNAPS_API_ADDRESS_BURST", 2000, 1, 100000000));
  o.rate_limit_keys = config::EnvInt("SYNAPS_API_RATE_LIMIT_KEYS", 100000, 100, 100000000);
  o.invalid_token_cache = config::EnvInt("SYNAPS_API_INVALID_TOKEN_CACHE", 10000, 1, 10000000);
  o.invalid_token_ttl_ms = config::EnvInt("SYNAPS_API_INVALID_TOKEN_TTL_MS", 30000, 0, 3600000);
  o.max_connections = config::EnvInt("SYNAPS_API_MAX_CONNECTIONS", 10000, 0, 10000000);
  o.max_connections_per_address =
      config::EnvInt("SYNAPS_API_MAX_CONNECTIONS_PER_ADDRESS", 1000, 0, 10000000);
  o.max_streams_per_principal =
      config::EnvInt("SYNAPS_API_MAX_STREAMS_PER_PRINCIPAL", 64, 0, 10000000);
  o.drain_ms = config::EnvInt("SYNAPS_API_DRAIN_MS", 10000, 0, 600000);
  o.revocation_refresh_ms = config::EnvInt("SYNAPS_API_REVOCATION_REFRESH_MS", 5000, 100, 3600000);
  o.jwt_max_ttl = auth::MaxLifetimeFromEnv();
  o.db_pool_size = static_cast<int>(config::EnvInt("SYNAPS_DB_POOL_SIZE", 16, 1, 1000));
  o.io_threads = static_cast<int>(config::EnvInt("SYNAPS_API_IO_THREADS", 2, 1, 256));
  o.body_limit = static_cast<size_t>(
      config::EnvInt("SYNAPS_BODY_LIMIT_BYTES", 1 << 20, 1024, int64_t{1} << 30));
  o.batch_body_limit = static_cast<size_t>(
      config::EnvInt("SYNAPS_BATCH_BODY_LIMIT_BYTES", 16 << 20, 1024, int64_t{1} << 30));
  o.max_large_bodies = static_cast<int>(config::EnvInt("SYNAPS_API_MAX_LARGE_BODIES", 4, 1, 10000));
  o.relay_sweep_ms = static_cast<int>(config::EnvInt("SYNAPS_OUTBOX_SWEEP_MS", 1000, 10, 600000));
  o.schedule_tick_ms =
      static_cast<int>(config::EnvInt("SYNAPS_SCHEDULE_TICK_MS", 1000, 0, 3600000));
  o.usage_rollup_seconds =
      static_cast<int>(config::EnvInt("SYNAPS_USAGE_ROLLUP_SECONDS", 60, 0, 86400));
  o.flow_sweep_ms = static_cast<int>(config::EnvInt("SYNAPS_FLOW_SWEEP_MS", 30000, 0, 86400000));
  o.expiry_seconds = static_cast<int>(config::EnvInt("SYNAPS_EXPIRY_SECONDS", 300, 0, 86400));
  o.expiry_batch_runs =
      static_cast<int>(config::EnvInt("SYNAPS_EXPIRY_BATCH_RUNS", 500, 1, 100000));
  o.db_options = db::ConnectOptionsFromEnv(db::Role::kApi);
  o.relay_db_options = db::ConnectOptionsFromEnv(db::Role::kRelay);
  return o;
}

class ApiServer::Impl {
 public:
  Impl(ApiOptions options, bus::Bus* bus, objstore::ObjectStore* objects)
      : options_(std::move(options)),
        pool_(options_.database_url, options_.db_pool_size, options_.db_options),
        relay_pool_(options_.database_url, kRelayConnections, options_.relay_db_options) {
    if (!options_.read_database_url.empty()) {
      read_pool_ = std::make_unique<db::Pool>(options_.read_database_url, options_.db_pool_size,
                                              options_.db_options);
      spdlog::info("reads off the primary: SYNAPS_DATABASE_READ_URL is set");
    }
    reads_ = std::make_unique<ReadRouting>(&pool_, read_pool_.get());
    if (options_.database_url.empty()) {
      throw ConfigError(
          "SYNAPS_DATABASE_URL is not set: give the PostgreSQL URL, e.g. "
          "postgresql://synaps@localhost:5432/synaps");
    }
    if (bus != nullptr) {
      relay_ = std::make_unique<OutboxRelay>(
          OutboxRelayOptions{.sweep_interval_ms = options_.relay_sweep_ms}, bus, &relay_pool_);
    }
    scheduler_ = std::make_unique<schedules::Scheduler>(
        schedules::SchedulerOptions{.tick_ms = options_.schedule_tick_ms}, &pool_, relay_.get(),
        &metrics_);
    const auto keys = static_cast<size_t>(options_.rate_limit_keys);
    limiter_ =
        std::make_unique<RateLimiter>(options_.rate_limit_rps, options_.rate_limit_burst, keys);
    address_limiter_ =
        std::make_unique<RateLimiter>(options_.address_rate_rps, options_.address_rate_burst, keys);
    invalid_tokens_ =
        std::make_unique<ExpiringSet>(static_cast<size_t>(options_.invalid_token_cache),
                                      std::chrono::milliseconds(options_.invalid_token_ttl_ms));
    stream_slots_ = std::make_unique<StreamSlots>(options_.max_streams_per_principal);
    revocations_ = std::make_unique<RevocationList>(
        &pool_, std::chrono::milliseconds(options_.revocation_refresh_ms));
    auto tracer = otel::Exporter::FromEnvironment("synaps-api");
    if (!tracer) throw ConfigError(tracer.error().message);
    tracer_ = std::move(*tracer);
    usage_rollup_ = std::make_unique<UsageRollup>(
        &pool_, std::chrono::seconds(options_.usage_rollup_seconds));
    flow_sweep_ =
        std::make_unique<FlowSweep>(&pool_, std::chrono::milliseconds(options_.flow_sweep_ms));
    // Without an object store, tenants that archive are skipped by expiry (history/expiry.h).
    if (objects != nullptr) archiver_ = std::make_unique<history::ObjectStoreArchiver>(objects);
    expiry_ = std::make_unique<history::ExpiryThread>(
        &pool_, archiver_.get(), std::chrono::seconds(options_.expiry_seconds),
        history::ExpiryOptions{.batch_runs = options_.expiry_batch_runs});
    run_feeds_ = std::make_unique<RunFeeds>(&pool_, &metrics_, std::chrono::milliseconds(200),
                                            20000, reads_->catch_up_pool());
    tenant_feeds_ = std::make_unique<TenantFeeds>(&pool_, &metrics_);
    router_ = std::make_unique<Router>(RouterDeps{.pool = &pool_,
                                                  .bus = bus,
                                                  .objects = objects,
                                                  .relay = relay_.get(),
                                                  .admin_token = options_.admin_token,
                                                  .jwt_secret = options_.jwt_secret,
                                                  .jwt_issuer = options_.jwt_issuer,
                                                  .jwt_audience = options_.jwt_audience,
                                                  .metrics = &metrics_,
                                                  .limiter = limiter_.get(),
                                                  .address_limiter = address_limiter_.get(),
                                                  .invalid_tokens = invalid_tokens_.get(),
                                                  .stream_slots = stream_slots_.get(),
                                                  .revocations = revocations_.get(),
                                                  .run_feeds = run_feeds_.get(),
                                                  .tenant_feeds = tenant_feeds_.get(),
                                                  .jwt_max_lifetime = options_.jwt_max_ttl,
                                                  .openapi_json = OpenApiJson(),
                                                  .scheduler = scheduler_.get(),
                                                  .tracer = tracer_.get(),
                                                  .reads = reads_.get(),
                                                  .body_limit = options_.body_limit});
    auto hp = config::ParseHostPort("SYNAPS_LISTEN", options_.listen);
    HttpServerOptions http{.host = hp.host,
                           .port = hp.port,
                           .io_threads = options_.io_threads,
                           .handler_threads = options_.db_pool_size,
                           .body_limit = options_.body_limit,
                           .large_body_limit = options_.batch_body_limit,
                           .large_body_routes = {"POST /v1/commands/submit"},
                           .max_large_bodies = options_.max_large_bodies,
                           .max_connections = options_.max_connections,
                           .max_connections_per_address = options_.max_connections_per_address,
                           .drain_timeout = std::chrono::milliseconds(options_.drain_ms),
                           .observer = &metrics_};
    server_ = std::make_unique<HttpServer>(
        http, [this](const HttpRequest& r) { return router_->Handle(r); },
        [](int status, const std::string& code, const std::string& message) {
          return Router::ErrorResponse(status, code, message, "-");
        });
  }

  Result<uint16_t> Start() {
    if (relay_) relay_->Start();
    auto port = server_->Start();
    if (port) scheduler_->Start();
    if (port) usage_rollup_->Start();
    if (port) flow_sweep_->Start();
    if (port) expiry_->Start();
    return port;
  }

  void Stop() {
    expiry_->Stop();
    flow_sweep_->Stop();
    usage_rollup_->Stop();
    scheduler_->Stop();
    server_->Stop();
    if (relay_) relay_->Stop();
  }

 private:
  // The relay's own connections: its deadlines differ from requests', and requests that wait
  // for a connection never hold up publishing.
  static constexpr int kRelayConnections = 2;

  const ApiOptions options_;
  db::Pool pool_;
  db::Pool relay_pool_;
  std::unique_ptr<db::Pool> read_pool_;  // SYNAPS_DATABASE_READ_URL; null without one
  std::unique_ptr<ReadRouting> reads_;
  ApiMetrics metrics_;
  std::unique_ptr<RateLimiter> limiter_;
  std::unique_ptr<RateLimiter> address_limiter_;
  std::unique_ptr<ExpiringSet> invalid_tokens_;
  std::unique_ptr<StreamSlots> stream_slots_;
  std::unique_ptr<RevocationList> revocations_;
  std::unique_ptr<otel::Exporter> tracer_;  // before the router and server, which use it
  std::unique_ptr<UsageRollup> usage_rollup_;
  std::unique_ptr<history::ObjectStoreArchiver> archiver_;  // before expiry_, which uses it
  std::unique_ptr<FlowSweep> flow_sweep_;
  std::unique_ptr<history::ExpiryThread> expiry_;
  std::unique_ptr<RunFeeds> run_feeds_;
  std::unique_ptr<TenantFeeds> tenant_feeds_;
  std::unique_ptr<OutboxRelay> relay_;
  std::unique_ptr<schedules::Scheduler> scheduler_;
  std::unique_ptr<Router> router_;
  std::unique_ptr<HttpServer> server_;
};

ApiServer::ApiServer(ApiOptions options, bus::Bus* bus, objstore::ObjectStore* objects)
    : impl_(std::make_unique<Impl>(std::move(options), bus, objects)) {}
ApiServer::~ApiServer() { impl_->Stop(); }
Result<uint16_t> ApiServer::Start() { return impl_->Start(); }
void ApiServer::Stop() { impl_->Stop(); }

}  // namespace synaps::api
