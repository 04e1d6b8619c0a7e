// A Synaps deployment made of real processes for end-to-end and fault tests: one `synaps api`
// and any number of `synaps worker`s, sharing a fresh database, the stack's nats-server and a
// file object store. Processes can be killed, frozen and restarted individually.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/process.h"
#include "db/connection.h"
#include "http/client.h"

namespace synaps::testing {

class Cluster {
 public:
  static constexpr const char* kToken = "cluster-admin-token";

  // `env` is added to every process's environment (e.g. SYNAPS_POLL_INTERVAL_MS).
  explicit Cluster(std::map<std::string, std::string> env = {});
  ~Cluster();

  // Starts the API with extra environment on top of the cluster's.
  void StartApi(const std::map<std::string, std::string>& extra = {});
  // Starts one more `synaps api` on the same database and NATS, on its own port, with extra
  // environment; returns its base URL. Stopped with the cluster.
  std::string StartExtraApi(const std::map<std::string, std::string>& extra = {});
  // Starts a worker with extra environment on top of the cluster's; returns its index.
  size_t StartWorker(const std::map<std::string, std::string>& extra = {});
  ChildProcess& worker(size_t i) { return workers_[i]; }
  ChildProcess& api() { return api_; }
  std::string WorkerLog(size_t i) const;
  const std::string& base_url() const { return base_; }
  const std::string& database_url() const { return database_url_; }
  // The file object store's root directory (SYNAPS_OBJECT_STORE).
  std::string objects_dir() const { return dir_ + "/objects"; }
  // The API's log file.
  std::string api_log() const { return dir_ + "/api.log"; }

  // POST /v1/commands/submit with `body`; expects 201 and returns the response.
  nlohmann::json Submit(const nlohmann::json& body, const std::vector<std::string>& headers = {});
  nlohmann::json SubmitText(const std::string& text);
  http::Response Call(const std::string& method, const std::string& path,
                      const std::string& body = {}, const std::vector<std::string>& headers = {});
  // Polls the run until it is finished (or fails the test after `seconds`).
  nlohmann::json WaitFinished(const std::string& run_id, int seconds = 60);

  // A direct database connection, for assertions.
  db::Connection& db();
  int64_t Scalar(const std::string& sql, const db::Params& params = {});
  // Polls `sql` (a count) until it reaches at least `want`.
  void WaitForCount(const std::string& sql, int64_t want, int seconds = 30);

 private:
  std::map<std::string, std::string> env_;
  std::string dir_;
  std::string base_;
  std::string database_url_;
  ChildProcess api_;
  std::vector<ChildProcess> workers_;
  std::vector<ChildProcess> extra_apis_;
  std::unique_ptr<db::Connection> db_;
};

// Polls `predicate` until true or `seconds` pass; returns whether it became true.
bool Eventually(const std::function<bool()>& predicate, int seconds = 30);

// The file's contents ("" when missing).
std::string ReadFile(const std::string& path);

}  // namespace synaps::testing
