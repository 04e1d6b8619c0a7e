#include "stack.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "cost.h"
#include "db/migrate.h"
#include "http/client.h"

namespace synaps::bench {

namespace fs = std::filesystem;

bool BenchOptions::Wants(const std::string& name) const {
  return only.empty() || std::find(only.begin(), only.end(), name) != only.end();
}

void Must(const Status& s, const std::string& what) {
  if (!s) throw BenchError(what + ": " + s.error().message);
}

Stack::Stack(bool durable) {
  std::string tmpl = "/var/tmp/synaps-bench-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) throw BenchError("mkdtemp failed");
  root_ = tmpl;
  chmod(root_.c_str(), 0755);  // the postgres user must reach the data directory
  Log("stack in " + root_);
  postgres_ = Must(devstack::PostgresServer::Start({.data_dir = root_ + "/pg",
                                                    .log_path = root_ + "/postgres.log",
                                                    .durable = durable}),
                   "PostgreSQL");
  // Room for the bulk history load without a checkpoint storm; everything else is the
  // devstack's (shared_buffers 256MB, max_connections 300) or PostgreSQL's default.
  auto admin = Connect("postgres");
  Must(admin.Exec("ALTER SYSTEM SET max_wal_size = '4GB'"), "max_wal_size");
  // pg_stat_statements counts each queue's statements per task (bench/cost.h).
  Must(admin.Exec("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'"),
       "shared_preload_libraries");
  admin = db::Connection();
  Must(postgres_->Restart(), "restart PostgreSQL");
  admin = Connect("postgres");
  Must(admin.Exec("CREATE EXTENSION IF NOT EXISTS pg_stat_statements"), "pg_stat_statements");
  nats_ = Must(devstack::NatsServer::Start(
                   {.store_dir = root_ + "/nats", .log_path = root_ + "/nats.log"}),
               "nats-server");
}

Stack::~Stack() {
  nats_.reset();
  postgres_.reset();
  std::error_code ec;
  if (!getenv("BENCH_KEEP")) fs::remove_all(root_, ec);
}

db::Connection Stack::Connect(const std::string& db) {
  return Must(db::Connection::Connect(Url(db), std::chrono::seconds(10)), "connect " + db);
}

db::Connection Stack::ConnectForLoad(const std::string& db,
                                     std::chrono::milliseconds statement_timeout) {
  db::ConnectOptions options;
  options.connect_timeout = std::chrono::seconds(10);
  options.statement_timeout = statement_timeout;
  return Must(db::Connection::Connect(Url(db), options), "connect " + db);
}

std::string Stack::NextName(const std::string& prefix) {
  return prefix + "_" + std::to_string(++counter_);
}

void Stack::CloneDb(const std::string& from, const std::string& to) {
  auto admin = Connect("postgres");
  Must(admin.Exec("CREATE DATABASE " + to + " TEMPLATE " + from + " STRATEGY FILE_COPY"),
       "clone " + from);
}

std::string Stack::FreshSynapsDb() {
  if (!base_template_) {
    Must(postgres_->CreateDatabase("tmpl_synaps"), "template");
    auto conn = Connect("tmpl_synaps");
    Must(db::Migrate(conn, db::EmbeddedMigrations()), "migrate");
    base_template_ = true;
  }
  std::string name = NextName("synaps");
  CloneDb("tmpl_synaps", name);
  return name;
}

std::string Stack::QueuedSynapsDb(int n) {
  auto it = queued_templates_.find(n);
  if (it == queued_templates_.end()) {
    std::string tmpl = FreshSynapsDb();
    {
      auto start = std::chrono::steady_clock::now();
      CostReading before = ReadCost(*this, tmpl, "", /*start=*/true);
      auto conn = Connect(tmpl);
      SubmitBulk(conn, n);
      conn = db::Connection();  // its commits reach pg_stat_database as it closes
      submit_costs_[n] = CostPerUnit(before, ReadCost(*this, tmpl, "", /*start=*/false), n);
      conn = Connect(tmpl);
      Must(conn.Exec("VACUUM ANALYZE"), "vacuum");
      Log("  template with " + std::to_string(n) + " queued tasks made in " +
          std::to_string(Seconds(std::chrono::steady_clock::now() - start)) + " s");
    }
    it = queued_templates_.emplace(n, tmpl).first;
  }
  std::string name = NextName("queued");
  CloneDb(it->second, name);
  return name;
}

std::string Stack::FreshEmptyDb(const std::string& prefix) {
  std::string name = NextName(prefix);
  Must(postgres_->CreateDatabase(name), "create " + name);
  return name;
}

void Stack::DropDb(const std::string& name) {
  auto admin = Connect("postgres");
  // Cleanup after a benchmark: a database left behind costs disk, not a result.
  (void)admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
}

json Stack::ServerFacts() {
  auto conn = Connect("postgres");
  json facts;
  auto version = conn.Exec("SHOW server_version");
  if (version) facts["server_version"] = version->GetString(0, 0);
  json settings = json::object();
  for (const char* s : {"fsync", "synchronous_commit", "full_page_writes", "wal_level",
                        "shared_buffers", "max_wal_size", "checkpoint_timeout", "work_mem",
                        "max_connections", "wal_sync_method", "effective_io_concurrency",
                        "jit"}) {
    auto r = conn.Exec(std::string("SHOW ") + s);
    if (r) settings[s] = r->GetString(0, 0);
  }
  facts["settings"] = settings;
  return facts;
}

std::string Stack::TempDir(const std::string& prefix) {
  std::string tmpl = root_ + "/" + prefix + "-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) throw BenchError("mkdtemp failed");
  chmod(tmpl.c_str(), 0755);
  return tmpl;
}

std::string CommandJson(const std::string& text, const std::string& queue) {
  json input = {{"text", text}};
  json spec = {{"kind", "prompt"}, {"input", input}, {"maxAttempts", 3}};
  json command = {{"kind", "prompt"},
                  {"payload", {{"kind", "prompt"}, {"input", input}}},
                  {"queue", queue},
                  {"priority", 0},
                  {"maxAttempts", 3},
                  {"tasks", json::array({{{"name", "main"},
                                          {"kind", "prompt"},
                                          {"spec", spec},
                                          {"dependsOn", json::array()}}})}};
  return command.dump();
}

void SubmitBulk(db::Connection& conn, int n, const std::string& queue) {
  // The same shape as CommandJson, with a distinct input text per command.
  const std::string sql =
      "SELECT count(synaps.submit_command('bench', 'bench', NULL, 'h' || g,"
      " jsonb_build_object('kind', 'prompt',"
      "  'payload', jsonb_build_object('kind', 'prompt', 'input', jsonb_build_object('text', 'n' || g)),"
      "  'queue', $3::text, 'priority', 0, 'maxAttempts', 3,"
      "  'tasks', jsonb_build_array(jsonb_build_object('name', 'main', 'kind', 'prompt',"
      "   'spec', jsonb_build_object('kind', 'prompt', 'input', jsonb_build_object('text', 'n' || g)),"
      "   'dependsOn', '[]'::jsonb)))))"
      " FROM generate_series($1::integer, $2::integer) g";
  for (int from = 1; from <= n; from += 2000) {
    int to = std::min(n, from + 1999);
    Must(conn.Exec(sql, {std::to_string(from), std::to_string(to), queue}), "submit bulk");
  }
}

std::map<std::string, std::string> ApiEnv(Stack& stack, const std::string& db, uint16_t port) {
  return {
      {"SYNAPS_DATABASE_URL", stack.Url(db)},
      {"SYNAPS_NATS_URL", stack.nats().Url()},
      {"SYNAPS_OBJECT_STORE", "file://" + stack.TempDir("objects")},
      {"SYNAPS_LISTEN", "127.0.0.1:" + std::to_string(port)},
      {"SYNAPS_ADMIN_TOKEN", kBenchToken},
      {"SYNAPS_RATE_LIMIT_RPS", "0"},
      {"SYNAPS_API_ADDRESS_RPS", "0"},
  };
}

ChildProcess StartSynaps(const std::string& verb, const std::map<std::string, std::string>& env,
                         const std::string& log) {
  // SYNAPS_BENCH_BINARY runs another build (e.g. a patched worker) under the same harness.
  const char* binary = getenv("SYNAPS_BENCH_BINARY");
  ProcessOptions opts;
  opts.argv = {binary && *binary ? binary : SYNAPS_BINARY, verb};
  opts.env = env;
  opts.log_path = log;
  return Must(ChildProcess::Spawn(opts), "synaps " + verb);
}

std::string RunTool(const std::vector<std::string>& argv,
                    const std::map<std::string, std::string>& env, const std::string& log,
                    std::chrono::seconds timeout) {
  ProcessOptions opts;
  opts.argv = argv;
  opts.env = env;
  opts.log_path = log;
  auto p = Must(ChildProcess::Spawn(opts), argv[0]);
  auto status = p.Wait(timeout);
  if (!status) {
    p.Stop(std::chrono::seconds(2));
    throw BenchError(argv[0] + " did not finish in " + std::to_string(timeout.count()) +
                     " s; see " + log);
  }
  std::ifstream in(log);
  std::stringstream ss;
  ss << in.rdbuf();
  if (!WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
    throw BenchError(argv[0] + " failed; see " + log + "\n" + ss.str().substr(0, 2000));
  }
  return ss.str();
}

void WaitUntil(const std::function<bool()>& condition, std::chrono::milliseconds timeout,
               const std::string& what, std::chrono::milliseconds every) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) {
      throw BenchError("timed out waiting for " + what);
    }
    std::this_thread::sleep_for(every);
  }
}

void WaitUntilReady(const std::string& base_url) {
  WaitUntil(
      [&] {
        auto r = http::Send({.url = base_url + "/readyz", .timeout = std::chrono::seconds(2)});
        return r && r->status == 200;
      },
      std::chrono::seconds(30), base_url + "/readyz");
}

int64_t Scalar(db::Connection& conn, const std::string& sql, const db::Params& params) {
  auto r = Must(conn.Exec(sql, params), sql.substr(0, 80));
  return r.rows() > 0 && !r.IsNull(0, 0) ? r.GetInt(0, 0) : 0;
}

double ScalarDouble(db::Connection& conn, const std::string& sql, const db::Params& params) {
  auto r = Must(conn.Exec(sql, params), sql.substr(0, 80));
  return r.rows() > 0 && !r.IsNull(0, 0) ? std::stod(r.GetString(0, 0)) : 0.0;
}

double PeakRssMiB(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;  // kB
  }
  return 0;
}

double CpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string content((std::istreambuf_iterator<char>(in)), {});
  auto close = content.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(content.substr(close + 2));
  std::string field;
  std::vector<std::string> f;
  while (rest >> field) f.push_back(field);
  // After the command: state(0) ... utime is field 14 of the line, i.e. index 11 here.
  if (f.size() < 13) return 0;
  return (std::stod(f[11]) + std::stod(f[12])) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

Summary Summarize(std::vector<double> v) {
  Summary s;
  s.n = v.size();
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  auto pct = [&](double p) {
    double idx = p * (v.size() - 1);
    size_t lo = static_cast<size_t>(std::floor(idx));
    size_t hi = std::min(v.size() - 1, lo + 1);
    return v[lo] + (v[hi] - v[lo]) * (idx - lo);
  };
  s.min = v.front();
  s.max = v.back();
  s.median = s.p50 = pct(0.5);
  s.p95 = pct(0.95);
  s.p99 = pct(0.99);
  double sum = 0;
  for (double x : v) sum += x;
  s.mean = sum / v.size();
  return s;
}

json ToJson(const Summary& s) {
  return {{"n", s.n},     {"median", s.median}, {"min", s.min}, {"max", s.max},
          {"p50", s.p50}, {"p95", s.p95},       {"p99", s.p99}, {"mean", s.mean}};
}

double Seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

void Log(const std::string& line) {
  auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  char buf[16];
  std::strftime(buf, sizeof buf, "%H:%M:%S", std::localtime(&now));
  std::cerr << "[bench " << buf << "] " << line << std::endl;
}

}  // namespace synaps::bench
