// A private s3rver (the npm S3-compatible server) for tests: started by the fixture in a temp
// directory, on 127.0.0.1 and a port the OS picked, and stopped with its owner (and with the test
// process, through PR_SET_PDEATHSIG). s3rver accepts only the access key S3RVER; it checks that
// x-amz-content-sha256 is present but does not verify SigV4 signatures, which the unit tests in
// tests/unit/objstore do against AWS's worked examples.
//
// s3rver is installed into tools/node/node_modules by scripts/install-deps (npm ci); when it is
// missing, Start fails with a message saying so. SYNAPS_S3RVER overrides the script's path.
#pragma once

#include <memory>
#include <string>

#include "core/process.h"
#include "objstore/s3_store.h"

namespace synaps::testing {

class S3Server {
 public:
  static constexpr const char* kAccessKey = "S3RVER";
  static constexpr const char* kSecretKey = "S3RVER";

  struct Options {
    std::string data_dir;  // created if needed
    std::string log_path;
  };
  static Result<std::unique_ptr<S3Server>> Start(const Options& options);
  // One server per test binary, started on first use in its own temporary directory. Fails the
  // calling test (and returns null) when it cannot start.
  static S3Server* Shared();

  ~S3Server();
  S3Server(const S3Server&) = delete;
  S3Server& operator=(const S3Server&) = delete;

  uint16_t port() const { return port_; }
  // http://127.0.0.1:<port>, for path-style addressing.
  std::string Endpoint() const;
  // http://s3.localhost:<port>: s3rver serves <bucket>.s3.localhost as virtual-host style, and
  // libcurl resolves *.localhost to the loopback address.
  std::string VirtualHostEndpoint() const;
  // Creates a bucket; succeeds when it exists already.
  Status CreateBucket(const std::string& bucket);
  // Options for an S3ObjectStore on `bucket` with s3rver's credentials.
  objstore::S3Options StoreOptions(const std::string& bucket, bool path_style = true) const;
  // The SYNAPS_OBJECT_STORE URL for `bucket` (credentials go in AWS_* variables).
  std::string StoreUrl(const std::string& bucket, bool path_style = true) const;

  // Stops the server (requests then fail to connect); Restart brings it back on the same port
  // with the same data.
  void Stop();
  Status Restart();

 private:
  explicit S3Server(Options options) : options_(std::move(options)) {}
  Status Launch();

  Options options_;
  uint16_t port_ = 0;  // 0 until first started; then kept across restarts
  ChildProcess process_;
};

}  // namespace synaps::testing
