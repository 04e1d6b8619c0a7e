// synaps api | worker | migrate
#include <signal.h>
#include <spdlog/spdlog.h>

#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "api/api_server.h"
#include "bus/nats_bus.h"
#include "cli/commands.h"
#include "cli/worker_health.h"
#include "core/config.h"
#include "otel/exporter.h"
#include "db/deadlines.h"
#include "db/migrate.h"
#include "objstore/object_store.h"
#include "worker/worker.h"

namespace synaps::cli {

void BlockShutdownSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int WaitForShutdownSignal() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  int sig = 0;
  sigwait(&set, &sig);
  return sig;
}

namespace {

std::string RequireDatabaseUrl(const ServiceFlags& flags) {
  std::string url = config::FlagOrEnv(flags.database_url, "SYNAPS_DATABASE_URL");
  if (url.empty()) {
    throw ConfigError(
        "SYNAPS_DATABASE_URL is not set (or pass --database-url): give the PostgreSQL URL, e.g. "
        "postgresql://synaps:secret@localhost:5432/synaps");
  }
  return url;
}

}  // namespace

int RunApi(const ServiceFlags& flags) {
  api::ApiOptions options = api::ApiOptionsFromEnv();
  options.database_url = RequireDatabaseUrl(flags);
  if (flags.listen) options.listen = *flags.listen;
  if (options.admin_token.empty()) {
    spdlog::warn("SYNAPS_ADMIN_TOKEN is not set: only API keys are accepted");
  }
  std::string nats_url =
      config::FlagOrEnv(flags.nats_url, "SYNAPS_NATS_URL", "nats://127.0.0.1:4222");
  auto objects = objstore::OpenObjectStore(config::FlagOrEnv(
      flags.object_store, "SYNAPS_OBJECT_STORE", "file:///var/lib/synaps/objects"));
  bus::NatsBus bus(bus::NatsOptionsFromEnv(nats_url, "synaps-api"));
  api::ApiServer server(options, &bus, objects.get());
  auto port = server.Start();
  if (!port) {
    spdlog::error("{}", port.error().message);
    return 1;
  }
  spdlog::info("synaps api listening on port {} (objects: {})", *port, objects->Describe());
  int sig = WaitForShutdownSignal();
  spdlog::info("signal {} received: shutting down", sig);
  server.Stop();
  return 0;
}

int RunWorker(const ServiceFlags& flags) {
  worker::WorkerOptions options = worker::WorkerOptionsFromEnv();
  options.database_url = RequireDatabaseUrl(flags);
  if (flags.concurrency) options.concurrency = *flags.concurrency;
  if (flags.queues) options.queues = config::SplitList(*flags.queues);
  std::string nats_url =
      config::FlagOrEnv(flags.nats_url, "SYNAPS_NATS_URL", "nats://127.0.0.1:4222");
  auto objects = objstore::OpenObjectStore(config::FlagOrEnv(
      flags.object_store, "SYNAPS_OBJECT_STORE", "file:///var/lib/synaps/objects"));
  bus::NatsBus bus(bus::NatsOptionsFromEnv(nats_url, "synaps-worker"));
  auto tracer = otel::Exporter::FromEnvironment("synaps-worker");
  if (!tracer) throw ConfigError(tracer.error().message);
  worker::Worker worker(options, &bus, objects.get(), tracer->get());
  std::unique_ptr<WorkerHealthServer> health;
  if (std::string listen = config::EnvOr("SYNAPS_WORKER_LISTEN", ""); !listen.empty()) {
    int stall = static_cast<int>(config::EnvInt("SYNAPS_WORKER_STALL_SECONDS", 30, 2, 3600));
    int unready =
        static_cast<int>(config::EnvInt("SYNAPS_WORKER_DB_UNREADY_SECONDS", 15, 1, 3600));
    auto call_deadline = options.db_options.call_deadline();
    if (call_deadline >= std::chrono::seconds(stall)) {
      spdlog::warn("SYNAPS_WORKER_STALL_SECONDS={} is not above a DB call's deadline ({} ms): a "
                   "slow statement will fail the liveness probe",
                   stall, call_deadline.count());
    }
    health = std::make_unique<WorkerHealthServer>(worker, listen, stall, unready);
    auto port = health->Start();
    if (!port) {
      spdlog::error("worker probes: {}", port.error().message);
      return 1;
    }
    spdlog::info("worker probes and metrics on port {} (/healthz, /readyz, /metrics)", *port);
  }
  std::thread signals([&] {
    int sig = WaitForShutdownSignal();
    spdlog::info("signal {} received: draining", sig);
    worker.Stop();
  });
  worker.Run();
  // Run returned after Stop(); wake the signal thread if it is still waiting.
  if (signals.joinable()) {
    pthread_kill(signals.native_handle(), SIGTERM);
    signals.join();
  }
  return 0;
}

Result<db::MigrationReport> MigrateDatabase(const std::string& database_url) {
  ASSIGN_OR_RETURN(auto conn, db::Connection::Connect(
                                  database_url, db::ConnectOptionsFromEnv(db::Role::kMigrate)));
  return db::Migrate(conn, db::EmbeddedMigrations(), db::MigrateLockTimeoutFromEnv());
}

int RunMigrate(const ServiceFlags& flags, bool json) {
  auto report = MigrateDatabase(RequireDatabaseUrl(flags));
  if (!report) {
    std::cerr << "synaps migrate: " << report.error().message << "\n";
    return 1;
  }
  if (json) {
    std::cout << nlohmann::json{{"applied", report->applied}, {"skipped", report->skipped}}.dump()
              << "\n";
  } else {
    for (const auto& m : report->applied) std::cout << "applied  " << m << "\n";
    std::cout << report->applied.size() << " applied, " << report->skipped.size()
              << " already present\n";
  }
  return 0;
}

}  // namespace synaps::cli
