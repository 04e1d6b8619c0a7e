#include "devstack/nats_server.h"

#include <filesystem>

namespace synaps::devstack {

Result<std::unique_ptr<NatsServer>> NatsServer::Start(NatsServerOptions options) {
  std::error_code ec;
  std::filesystem::create_directories(options.store_dir, ec);
  if (ec) return Fail(ErrorCode::kUnavailable, "cannot create " + options.store_dir);
  std::unique_ptr<NatsServer> server(new NatsServer(std::move(options)));
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
  return server;
}

NatsServer::~NatsServer() { Stop(); }

Status NatsServer::Launch() {
  ProcessOptions run;
  run.argv = {"nats-server", "-js", "-a", "127.0.0.1", "-p", std::to_string(options_.port),
              "-sd", options_.store_dir};
  run.log_path = options_.log_path;
  auto spawned = ChildProcess::Spawn(run);
  if (!spawned) {
    return Fail(ErrorCode::kUnavailable,
                "cannot start nats-server (" + spawned.error().message +
                    "); run scripts/install-deps");
  }
  process_ = std::move(*spawned);
  auto ready = WaitForTcp("127.0.0.1", options_.port, std::chrono::seconds(20));
  if (!ready || !process_.running()) {
    process_.Stop();
    return Fail(ErrorCode::kUnavailable, "nats-server did not start on port " +
                                             std::to_string(options_.port) + "; see " +
                                             options_.log_path);
  }
  return Ok();
}

void NatsServer::Stop() { process_.Stop(std::chrono::seconds(10)); }

Status NatsServer::Restart() {
  Stop();
  return Launch();
}

}  // namespace synaps::devstack
