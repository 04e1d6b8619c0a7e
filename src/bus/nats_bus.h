// Bus over NATS with JetStream (nats.c). Connecting never fails because the server is down:
// the client keeps retrying in the background (forever, with jittered waits), subscriptions
// are replayed on reconnect, and publishing reports kUnavailable while disconnected.
// The stream SYNAPS (subjects synaps.>, short max age, duplicate window) is created on first
// publish after each (re)connect. Thread-safe.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include "bus/bus.h"

typedef struct __natsConnection natsConnection;
typedef struct __jsCtx jsCtx;

namespace synaps::bus {

struct NatsOptions {
  std::string url;                  // nats://host:port[,nats://...]
  std::string name = "synaps";      // client name shown by the server
  int publish_timeout_ms = 2000;
  int stream_max_age_seconds = 600;
  int duplicate_window_seconds = 120;
  // Copies of the stream in a JetStream cluster (1 for a single server; 3 for a 3-node
  // cluster, so wakeups survive a node loss). Applies when the stream is created.
  int stream_replicas = 1;
};

// Options for `url` and `name` with the stream settings from the environment:
// SYNAPS_NATS_STREAM_REPLICAS (1..5), SYNAPS_NATS_STREAM_MAX_AGE_SECONDS (1..86400). Throws
// ConfigError for bad values.
NatsOptions NatsOptionsFromEnv(std::string url, std::string name);

class NatsBus final : public Bus {
 public:
  // Starts connecting; returns at once. Throws ConfigError for a malformed URL.
  explicit NatsBus(NatsOptions options);
  ~NatsBus() override;
  NatsBus(const NatsBus&) = delete;
  NatsBus& operator=(const NatsBus&) = delete;

  Status Publish(const std::string& subject, const std::string& payload,
                 const std::string& msg_id) override;
  Result<std::unique_ptr<Subscription>> Subscribe(const std::string& subject,
                                                  Handler handler) override;
  bool connected() const override;

  // Messages currently stored in the SYNAPS stream (operators and tests: duplicates dropped by
  // Nats-Msg-Id are not stored).
  Result<uint64_t> StreamMessageCount();

 private:
  static void OnReconnected(natsConnection* nc, void* closure);
  Status EnsureStream();

  const NatsOptions options_;
  natsConnection* conn_ = nullptr;   // owned; destroyed in the destructor
  jsCtx* js_ = nullptr;              // owned
  std::mutex stream_mu_;
  std::atomic<bool> stream_ready_{false};
};

}  // namespace synaps::bus
