#include "devstack/postgres_server.h"

#include <libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "db/connection.h"

namespace synaps::devstack {

namespace fs = std::filesystem;

namespace {

bool RunningAsRoot() { return geteuid() == 0; }

Status ChownTree(const fs::path& dir, const std::string& user) {
  struct passwd* pw = getpwnam(user.c_str());
  if (pw == nullptr) {
    return Fail(ErrorCode::kUnavailable,
                "user '" + user + "' does not exist; run scripts/install-deps (package postgresql)");
  }
  std::error_code ec;
  if (chown(dir.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
    return Fail(ErrorCode::kUnavailable, "cannot chown " + dir.string());
  }
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (lchown(it->path().c_str(), pw->pw_uid, pw->pw_gid) != 0) {
      return Fail(ErrorCode::kUnavailable, "cannot chown " + it->path().string());
    }
  }
  return Ok();
}

Status RunToCompletion(const ProcessOptions& opts, const std::string& what) {
  ASSIGN_OR_RETURN(ChildProcess p, ChildProcess::Spawn(opts));
  auto status = p.Wait(std::chrono::minutes(2));
  if (!status || !WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
    return Fail(ErrorCode::kUnavailable, what + " failed; see " + opts.log_path);
  }
  return Ok();
}

}  // namespace

Result<std::string> FindPostgresBinDir() {
  std::string best;
  int best_version = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    int v = std::atoi(e.path().filename().c_str());
    if (v > best_version && fs::exists(e.path() / "bin" / "postgres")) {
      best_version = v;
      best = (e.path() / "bin").string();
    }
  }
  if (best.empty()) {
    return Fail(ErrorCode::kUnavailable,
                "PostgreSQL server binaries not found under /usr/lib/postgresql; "
                "run scripts/install-deps");
  }
  return best;
}

Result<std::unique_ptr<PostgresServer>> PostgresServer::Start(PostgresOptions options) {
  ASSIGN_OR_RETURN(std::string bin, FindPostgresBinDir());
  std::error_code ec;
  fs::create_directories(options.data_dir, ec);
  if (ec) return Fail(ErrorCode::kUnavailable, "cannot create " + options.data_dir);
  std::optional<std::string> user;
  if (RunningAsRoot()) {
    user = "postgres";
    RETURN_IF_ERROR(ChownTree(options.data_dir, *user));
    if (access(options.log_path.c_str(), F_OK) != 0) {
      FILE* f = fopen(options.log_path.c_str(), "a");
      if (f) fclose(f);
    }
  }
  if (!fs::exists(fs::path(options.data_dir) / "PG_VERSION")) {
    ProcessOptions init;
    init.argv = {bin + "/initdb", "-D", options.data_dir, "-U", "postgres", "-A", "trust",
                 "-E", "UTF8", "--no-locale", "--no-instructions"};
    if (!options.durable) init.argv.push_back("--no-sync");
    init.log_path = options.log_path;
    init.run_as_user = user;
    RETURN_IF_ERROR(RunToCompletion(init, "initdb"));
  }
  std::unique_ptr<PostgresServer> server(new PostgresServer(std::move(options)));
  bool pick = server->options_.port == 0;
  Status launched = Ok();
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (pick) {
      ASSIGN_OR_RETURN(server->options_.port, PickFreePort());
    }
    launched = server->Launch();
    if (launched || !pick) break;
  }
  RETURN_IF_ERROR(launched);
  RETURN_IF_ERROR(server->CreateDatabase("synaps"));
  return server;
}

PostgresServer::~PostgresServer() { Stop(); }

std::string PostgresServer::Url(const std::string& db) const {
  return "postgresql://postgres@127.0.0.1:" + std::to_string(options_.port) + "/" + db;
}

Status PostgresServer::Launch() {
  ASSIGN_OR_RETURN(std::string bin, FindPostgresBinDir());
  ProcessOptions run;
  run.argv = {bin + "/postgres", "-D", options_.data_dir, "-p", std::to_string(options_.port),
              "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
              "-c", "max_connections=300", "-c", "shared_buffers=256MB"};
  if (!options_.durable) {
    // Scratch servers: no fsync, and a small WAL (each test database copied from the template is
    // WAL-logged; the default 1 GB max_wal_size would keep hundreds of MB per test binary).
    for (const char* s : {"fsync=off", "synchronous_commit=off", "full_page_writes=off",
                          "max_wal_size=64MB", "min_wal_size=32MB"}) {
      run.argv.push_back("-c");
      run.argv.push_back(s);
    }
  }
  run.log_path = options_.log_path;
  if (RunningAsRoot()) run.run_as_user = "postgres";
  run.stop_signal = SIGINT;  // fast shutdown: do not wait for clients to leave
  ASSIGN_OR_RETURN(process_, ChildProcess::Spawn(run));
  std::string conninfo = "host=127.0.0.1 port=" + std::to_string(options_.port) +
                         " user=postgres dbname=postgres connect_timeout=2";
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    if (PQping(conninfo.c_str()) == PQPING_OK) return Ok();
    if (!process_.running()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  process_.Stop();
  return Fail(ErrorCode::kUnavailable,
              "PostgreSQL did not start on port " + std::to_string(options_.port) + "; see " +
                  options_.log_path);
}

Status PostgresServer::CreateDatabase(const std::string& name) {
  ASSIGN_OR_RETURN(db::Connection conn, db::Connection::Connect(Url("postgres")));
  ASSIGN_OR_RETURN(db::PgResult r,
                   conn.Exec("SELECT 1 FROM pg_database WHERE datname = $1", {name}));
  if (r.rows() > 0) return Ok();
  std::string quoted = "\"";
  for (char c : name) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  quoted += '"';
  auto created = conn.Exec("CREATE DATABASE " + quoted);
  if (!created && created.error().code != ErrorCode::kAlreadyExists) {
    return std::unexpected(created.error());
  }
  return Ok();
}

void PostgresServer::Stop() { process_.Stop(std::chrono::seconds(30)); }

Status PostgresServer::Restart() {
  Stop();
  return Launch();
}

void PostgresServer::Kill() {
  process_.Signal(SIGKILL);
  process_.Stop();
}

}  // namespace synaps::devstack
