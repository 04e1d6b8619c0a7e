#include "support/cluster.h"

#include <gtest/gtest.h>

#include <fstream>
#include <thread>

#include "support/synaps_process.h"
#include "support/test_stack.h"

namespace synaps::testing {

using nlohmann::json;

bool Eventually(const std::function<bool()>& predicate, int seconds) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (!predicate()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  return true;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

Cluster::Cluster(std::map<std::string, std::string> env) : env_(std::move(env)) {
  auto& stack = TestStack::Get();
  dir_ = stack.TempDir("cluster");
  database_url_ = stack.FreshDatabase();
  auto port = PickFreePort();
  EXPECT_TRUE(port);
  base_ = "http://127.0.0.1:" + std::to_string(*port);
  env_.emplace("SYNAPS_DATABASE_URL", database_url_);
  env_.emplace("SYNAPS_NATS_URL", stack.nats().Url());
  env_.emplace("SYNAPS_OBJECT_STORE", "file://" + dir_ + "/objects");
  env_.emplace("SYNAPS_LISTEN", "127.0.0.1:" + std::to_string(*port));
  env_.emplace("SYNAPS_ADMIN_TOKEN", kToken);
  env_.emplace("SYNAPS_POLL_INTERVAL_MS", "200");
  env_.emplace("SYNAPS_OUTBOX_SWEEP_MS", "200");
  // Every answer becomes the thread's answer.md artifact, as the tests of artifacts, archives
  // and the console expect; tests of short answers kept in the task's output alone pass their
  // own value (the worker's default is 16384).
  env_.emplace("SYNAPS_ANSWER_ARTIFACT_MIN_BYTES", "0");
}

Cluster::~Cluster() {
  for (auto& a : extra_apis_) a.Stop(std::chrono::seconds(5));
  for (auto& w : workers_) w.Stop(std::chrono::seconds(5));
  api_.Stop(std::chrono::seconds(5));
}

void Cluster::StartApi(const std::map<std::string, std::string>& extra) {
  auto env = env_;
  for (const auto& [k, v] : extra) env[k] = v;
  api_ = StartSynaps("api", env, dir_ + "/api.log");
  WaitUntilReady(base_);
}

std::string Cluster::StartExtraApi(const std::map<std::string, std::string>& extra) {
  auto env = env_;
  auto port = PickFreePort();
  EXPECT_TRUE(port);
  std::string base = "http://127.0.0.1:" + std::to_string(*port);
  env["SYNAPS_LISTEN"] = "127.0.0.1:" + std::to_string(*port);
  for (const auto& [k, v] : extra) env[k] = v;
  std::string log = dir_ + "/api-extra" + std::to_string(extra_apis_.size()) + ".log";
  extra_apis_.push_back(StartSynaps("api", env, log));
  WaitUntilReady(base);
  return base;
}

size_t Cluster::StartWorker(const std::map<std::string, std::string>& extra) {
  auto env = env_;
  for (const auto& [k, v] : extra) env[k] = v;
  size_t i = workers_.size();
  workers_.push_back(StartSynaps("worker", env, WorkerLog(i)));
  return i;
}

std::string Cluster::WorkerLog(size_t i) const {
  return dir_ + "/worker" + std::to_string(i) + ".log";
}

http::Response Cluster::Call(const std::string& method, const std::string& path,
                             const std::string& body, const std::vector<std::string>& headers) {
  return ApiCall(method, base_ + path, kToken, body, headers);
}

json Cluster::Submit(const json& body, const std::vector<std::string>& headers) {
  auto r = Call("POST", "/v1/commands/submit", body.dump(), headers);
  EXPECT_EQ(r.status, 201) << r.body;
  return json::parse(r.body, nullptr, false);
}

json Cluster::SubmitText(const std::string& text) {
  return Submit({{"kind", "prompt"}, {"input", {{"text", text}}}});
}

json Cluster::WaitFinished(const std::string& run_id, int seconds) {
  json run;
  bool done = Eventually(
      [&] {
        auto r = Call("GET", "/v1/runs/" + run_id);
        run = json::parse(r.body, nullptr, false);
        std::string s = run.is_object() ? run.value("status", "") : "";
        return s == "succeeded" || s == "failed" || s == "cancelled";
      },
      seconds);
  EXPECT_TRUE(done) << "run " << run_id << " did not finish: " << run.dump();
  return run;
}

db::Connection& Cluster::db() {
  if (!db_ || !db_->healthy()) {
    auto c = db::Connection::Connect(database_url_);
    EXPECT_TRUE(c) << c.error().message;
    db_ = std::make_unique<db::Connection>(std::move(*c));
  }
  return *db_;
}

int64_t Cluster::Scalar(const std::string& sql, const db::Params& params) {
  auto r = db().Exec(sql, params);
  if (!r && r.error().code == ErrorCode::kUnavailable) {
    db_.reset();  // the server restarted under us: once more on a new connection
    r = db().Exec(sql, params);
  }
  if (!r) {
    db_.reset();
    ADD_FAILURE() << sql << ": " << r.error().message;
    return -1;
  }
  return r->rows() > 0 && !r->IsNull(0, 0) ? r->GetInt(0, 0) : 0;
}

void Cluster::WaitForCount(const std::string& sql, int64_t want, int seconds) {
  int64_t last = -1;
  bool ok = Eventually(
      [&] {
        auto r = db().Exec(sql);
        if (!r) {
          db_.reset();
          return false;
        }
        last = r->GetInt(0, 0);
        return last >= want;
      },
      seconds);
  EXPECT_TRUE(ok) << sql << " reached " << last << ", wanted " << want;
}

}  // namespace synaps::testing
