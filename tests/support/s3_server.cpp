#include "support/s3_server.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/config.h"
#include "http/client.h"
#include "support/scratch_dir.h"

namespace synaps::testing {

namespace fs = std::filesystem;

namespace {

std::string S3rverScript() {
  if (auto path = config::Env("SYNAPS_S3RVER")) return *path;
  return std::string(SYNAPS_SOURCE_DIR) + "/tools/node/node_modules/s3rver/bin/s3rver.js";
}

std::string NodeBinary() {
  if (fs::exists("/usr/bin/node")) return "/usr/bin/node";
  return "node";  // PATH
}

// The port from s3rver's "S3rver listening on 127.0.0.1:PORT" line, or 0.
uint16_t PortFromLog(const std::string& log_path) {
  std::ifstream in(log_path);
  std::string line;
  uint16_t port = 0;
  while (std::getline(in, line)) {
    size_t at = line.find("S3rver listening on ");
    if (at == std::string::npos) continue;
    size_t colon = line.rfind(':');
    if (colon == std::string::npos) continue;
    try {
      port = static_cast<uint16_t>(std::stoi(line.substr(colon + 1)));
    } catch (const std::exception&) {
      port = 0;
    }
  }
  return port;
}

}  // namespace

Result<std::unique_ptr<S3Server>> S3Server::Start(const Options& options) {
  std::error_code ec;
  fs::create_directories(options.data_dir, ec);
  if (ec) return Fail(ErrorCode::kUnavailable, "cannot create " + options.data_dir);
  std::unique_ptr<S3Server> server(new S3Server(options));
  RETURN_IF_ERROR(server->Launch());
  return server;
}

S3Server* S3Server::Shared() {
  // Leaked on purpose, like TestStack: stopped and its directory removed at exit by the scratch
  // directory's hook (or by PDEATHSIG and the next test process, when this one is killed).
  static S3Server* shared = []() -> S3Server* {
    static S3Server* started_server = nullptr;
    std::string dir = MakeScratchDir("s3", [] {
      if (started_server != nullptr) started_server->Stop();
    });
    auto started = Start({.data_dir = dir + "/data", .log_path = dir + "/s3rver.log"});
    if (!started) {
      ADD_FAILURE() << started.error().message;
      return nullptr;
    }
    started_server = started->release();
    return started_server;
  }();
  if (shared == nullptr) ADD_FAILURE() << "the shared s3rver is not running";
  return shared;
}

S3Server::~S3Server() { Stop(); }

Status S3Server::Launch() {
  const std::string script = S3rverScript();
  if (!fs::exists(script)) {
    return Fail(ErrorCode::kUnavailable,
                "s3rver is not installed (" + script +
                    " is missing): run scripts/install-deps, which runs `npm ci` in tools/node");
  }
  // Truncate the log so the port line we read is this launch's.
  { std::ofstream truncate(options_.log_path, std::ios::trunc); }
  ProcessOptions run;
  // s3rver encrypts ListObjectsV2 continuation tokens with DES, which OpenSSL 3 keeps in its
  // legacy provider: without the flag every truncated listing fails with InternalError.
  run.argv = {NodeBinary(),
              "--openssl-legacy-provider",
              script,
              "--directory",
              options_.data_dir,
              "--address",
              "127.0.0.1",
              "--port",
              std::to_string(port_),
              "--service-endpoint",
              "localhost"};
  run.log_path = options_.log_path;
  auto spawned = ChildProcess::Spawn(run);
  if (!spawned) {
    return Fail(ErrorCode::kUnavailable, "cannot start s3rver with node (" +
                                             spawned.error().message +
                                             "); run scripts/install-deps");
  }
  process_ = std::move(*spawned);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    if (uint16_t port = PortFromLog(options_.log_path); port != 0) {
      port_ = port;
      return Ok();
    }
    if (!process_.running()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::ifstream log(options_.log_path);
  std::stringstream text;
  text << log.rdbuf();
  process_.Stop(std::chrono::seconds(2));
  return Fail(ErrorCode::kUnavailable,
              "s3rver did not start; its output (" + options_.log_path + "):\n" + text.str());
}

std::string S3Server::Endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }

std::string S3Server::VirtualHostEndpoint() const {
  return "http://s3.localhost:" + std::to_string(port_);
}

Status S3Server::CreateBucket(const std::string& bucket) {
  // s3rver lets unsigned requests through as anonymous; creating a bucket needs nothing more.
  auto reply = http::Send({.method = "PUT", .url = Endpoint() + "/" + bucket});
  if (!reply) return std::unexpected(reply.error());
  if (reply->status != 200 && reply->body.find("BucketAlreadyOwnedByYou") == std::string::npos) {
    return Fail(ErrorCode::kInternal, "create bucket " + bucket + ": HTTP " +
                                          std::to_string(reply->status) + " " + reply->body);
  }
  return Ok();
}

objstore::S3Options S3Server::StoreOptions(const std::string& bucket, bool path_style) const {
  objstore::S3Options options;
  options.bucket = bucket;
  options.region = "us-east-1";
  options.endpoint = path_style ? Endpoint() : VirtualHostEndpoint();
  options.path_style = path_style;
  options.access_key_id = kAccessKey;
  options.secret_access_key = kSecretKey;
  options.retry_base = std::chrono::milliseconds(10);
  options.retry_cap = std::chrono::milliseconds(100);
  return options;
}

std::string S3Server::StoreUrl(const std::string& bucket, bool path_style) const {
  return "s3://" + bucket + "?endpoint=" + (path_style ? Endpoint() : VirtualHostEndpoint()) +
         "&region=us-east-1&path_style=" + (path_style ? "1" : "0");
}

void S3Server::Stop() { process_.Stop(std::chrono::seconds(5)); }

Status S3Server::Restart() {
  Stop();
  return Launch();
}

}  // namespace synaps::testing
