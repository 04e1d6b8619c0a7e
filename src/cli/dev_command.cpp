// synaps dev: the embedded stack on one machine.
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "api/api_server.h"
#include "api/console_assets.h"
#include "bus/nats_bus.h"
#include "cli/api_client.h"
#include "cli/commands.h"
#include "core/config.h"
#include "core/ids.h"
#include "db/deadlines.h"
#include "db/migrate.h"
#include "devstack/nats_server.h"
#include "devstack/postgres_server.h"
#include "objstore/file_store.h"
#include "worker/worker.h"

namespace synaps::cli {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// True when every ancestor of `dir` lets others traverse it, so the postgres user can reach it.
bool OthersCanReach(const fs::path& dir) {
  for (fs::path p = dir.parent_path(); !p.empty() && p != p.root_path(); p = p.parent_path()) {
    struct stat st;
    if (stat(p.c_str(), &st) != 0 || (st.st_mode & S_IXOTH) == 0) return false;
  }
  return true;
}

std::string LoadOrCreateToken(const fs::path& path) {
  std::ifstream in(path);
  std::string token;
  if (in && std::getline(in, token) && !token.empty()) return token;
  token = "synaps_dev_" + RandomHex(24);
  std::ofstream out(path, std::ios::trunc);
  out << token << "\n";
  out.close();
  chmod(path.c_str(), 0600);
  return token;
}

void Step(const std::string& what) { std::cout << "  " << what << std::flush; }
void Done(const std::string& detail) {
  std::cout << " ok" << (detail.empty() ? "" : " (" + detail + ")") << "\n";
}

int RunDemo(const ApiClient& client, const std::string& text) {
  std::cout << "\ndemo: submitting \"" << text << "\"\n";
  json body = {{"kind", "prompt"}, {"input", {{"text", text}}}};
  auto submitted = client.Call("POST", "/v1/commands/submit", &body);
  if (!submitted) {
    std::cerr << "demo: submit failed: " << submitted.error().message << "\n";
    return 1;
  }
  auto run = client.WaitForRun((*submitted)["runId"].get<std::string>(), 60);
  if (!run) {
    std::cerr << "demo: " << run.error().message << "\n";
    return 1;
  }
  std::cout << FormatRun(*run);
  for (const auto& a : (*run)["artifacts"]) {
    for (const auto& v : a["versions"]) {
      auto bytes = client.Fetch("/v1/artifacts/" + a["id"].get<std::string>() + "/versions/" +
                                std::to_string(v["version"].get<int>()) + "/content");
      if (!bytes) {
        std::cerr << "demo: cannot fetch artifact: " << bytes.error().message << "\n";
        return 1;
      }
      std::cout << "\n--- " << a["name"].get<std::string>() << " (version "
                << v["version"].get<int>() << ") ---\n"
                << *bytes << "\n---\n";
    }
  }
  return (*run)["status"] == "succeeded" ? 0 : 1;
}

// A step that failed: ends its progress line and prints why (synaps dev then exits 1).
int StepFailed(const std::string& message) {
  std::cout << "\n";
  std::cerr << "synaps dev: " << message << "\n";
  return 1;
}

// PostgreSQL with its data under `state`, or under /var/tmp when the postgres user cannot
// reach `state` (PostgreSQL refuses to run as root; e.g. a state directory under /root).
Result<std::unique_ptr<devstack::PostgresServer>> StartPostgres(const fs::path& state) {
  fs::path pg_dir = state / "pg";
  if (geteuid() == 0 && !OthersCanReach(pg_dir)) {
    pg_dir = fs::path("/var/tmp") / ("synaps-pg-" + Sha256Hex(state.string()).substr(0, 12));
    std::cout << "  note: PostgreSQL data goes to " << pg_dir.string()
              << " (the postgres user cannot reach " << state.string() << ")\n";
  }
  Step("starting PostgreSQL...");
  return devstack::PostgresServer::Start(
      {.data_dir = pg_dir.string(), .log_path = (state / "logs" / "postgres.log").string()});
}

// What a person needs once the stack is up: where the API and console are, the token, a first
// command to try, where the logs are.
void PrintUp(const fs::path& state, const std::string& url, const std::string& token,
             const std::string& console_url) {
  std::cout << "\nSynaps is up.\n"
            << "  API    " << url << "\n"
            << (console_url.empty() ? "" : "  web    " + console_url + "\n") << "  token  " << token
            << "  (also in " << (state / "token").string() << ")\n"
            << "  try    synaps submit \"hello\" --wait\n"
            << "  logs   " << (state / "logs").string() << "\n";
}

}  // namespace

int RunDev(const DevFlags& flags) {
  fs::path state = fs::absolute(flags.state_dir);
  fs::create_directories(state / "logs");
  std::cout << "synaps dev: embedded stack in " << state.string() << "\n";

  auto pg = StartPostgres(state);
  if (!pg) return StepFailed(pg.error().message);
  Done("127.0.0.1:" + std::to_string((*pg)->port()));
  Step("starting nats-server (JetStream)...");
  auto nats = devstack::NatsServer::Start(
      {.store_dir = (state / "nats").string(), .log_path = (state / "logs" / "nats.log").string()});
  if (!nats) return StepFailed(nats.error().message);
  Done((*nats)->Url());
  Step("migrating...");
  std::string db_url = (*pg)->Url();
  auto report = MigrateDatabase(db_url);
  if (!report) return StepFailed(report.error().message);
  Done(std::to_string(report->applied.size()) + " applied");

  std::string token = LoadOrCreateToken(state / "token");
  bus::NatsBus bus({.url = (*nats)->Url(), .name = "synaps-dev"});
  objstore::FileObjectStore objects(state / "objects");

  api::ApiOptions api_options = api::ApiOptionsFromEnv();
  api_options.database_url = db_url;
  api_options.admin_token = token;
  api_options.listen = flags.listen.value_or(config::EnvOr("SYNAPS_LISTEN", "127.0.0.1:8081"));
  Step("starting API on " + api_options.listen + "...");
  api::ApiServer api(api_options, &bus, &objects);
  auto port = api.Start();
  if (!port) {
    return StepFailed(port.error().message + " (set SYNAPS_LISTEN or --listen to another address)");
  }
  auto hp = config::ParseHostPort("listen", api_options.listen);
  std::string host = hp.host == "0.0.0.0" ? "127.0.0.1" : hp.host;
  std::string url = "http://" + host + ":" + std::to_string(*port);
  Done(url);

  worker::WorkerOptions worker_options = worker::WorkerOptionsFromEnv();
  worker_options.database_url = db_url;
  worker::Worker worker(worker_options, &bus, &objects);
  std::thread worker_thread([&] { worker.Run(); });
  std::cout << "  worker running (concurrency " << worker_options.concurrency << ")\n";

  { std::ofstream(state / "api-url") << url << "\n"; }
  // The fragment never reaches the server: the console reads the token from it and removes it.
  std::string console_url = api::EmbeddedConsoleAssets().empty() ? "" : url + "/#token=" + token;
  PrintUp(state, url, token, console_url);

  int rc = 0;
  if (flags.demo_text) rc = RunDemo(ApiClient(url, token), *flags.demo_text);
  if (!flags.exit_after_demo) {
    if (!console_url.empty()) std::cout << "\nOpen the console: " << console_url << "\n";
    std::cout << "\nServing until Ctrl-C.\n" << std::flush;
    WaitForShutdownSignal();
    std::cout << "\nstopping...\n";
  }
  worker.Stop();
  worker_thread.join();
  api.Stop();
  // The bus, NATS and PostgreSQL stop as their owners go out of scope (reverse of start).
  std::cout << "stopped.\n";
  return rc;
}

}  // namespace synaps::cli
