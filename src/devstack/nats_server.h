// A private nats-server with JetStream on 127.0.0.1 and a port the OS picked, storing its
// stream in a directory. Used by `synaps dev` and the test fixtures.
#pragma once

#include <memory>
#include <string>

#include "core/process.h"

namespace synaps::devstack {

struct NatsServerOptions {
  std::string store_dir;
  std::string log_path;
  uint16_t port = 0;  // 0 = pick a free one
};

class NatsServer {
 public:
  static Result<std::unique_ptr<NatsServer>> Start(NatsServerOptions options);
  ~NatsServer();

  uint16_t port() const { return options_.port; }
  std::string Url() const { return "nats://127.0.0.1:" + std::to_string(options_.port); }
  void Stop();
  // Starts again on the same port after Stop().
  Status Restart();

 private:
  explicit NatsServer(NatsServerOptions options) : options_(std::move(options)) {}
  Status Launch();

  NatsServerOptions options_;
  ChildProcess process_;
};

}  // namespace synaps::devstack
