// Bus over NATS with JetStream (nats.c). Connecting never fails because the server is down:
// the client keeps retrying in the background (forever, with jittered waits), subscriptions
// are replayed on reconnect, and publishing reports kUnavailable while disconnected.
// The stream SYNAPS (subjects synaps.>, short max age, duplicate window) is created on first
// publish after each (re)connect. Thread-safe.
//
// Ownership: each nats.c handle has one RAII owner (in nats_bus.cpp): the connection
// (closed, and its last callback awaited, before it is destroyed), the JetStream context, each
// subscription (unsubscribed, and its handler's last call awaited, before it is destroyed), each
// message. A constructor that fails releases what it had created.
//
// Incoming messages pass a barrier on the nats.c delivery thread: a payload over
// kMaxPayloadBytes is dropped unread, a handler's error or exception drops the message; each is
// counted by subject family (RejectedCounts()) and logged at most once per interval per family.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include "bus/bus.h"
#include "bus/rejected_messages.h"

typedef struct __jsCtx jsCtx;

namespace synaps::bus {

namespace detail {
class NatsConnection;
struct JsCtxDeleter {
  void operator()(jsCtx* js) const;
};
}  // namespace detail

struct NatsOptions {
  std::string url;              // nats://host:port[,nats://...]
  std::string name = "synaps";  // client name shown by the server
  int publish_timeout_ms = 2000;
  int stream_max_age_seconds = 600;
  int duplicate_window_seconds = 120;
  // Copies of the stream in a JetStream cluster (1 for a single server; 3 for a 3-node
  // cluster, so wakeups survive a node loss). Applies when the stream is created.
  int stream_replicas = 1;
  // How long Subscribe waits for the server to confirm a new subscription (when connected).
  int subscribe_flush_timeout_ms = 2000;
  // Rejected messages are logged at most once per this interval per subject family.
  std::chrono::milliseconds reject_log_interval = std::chrono::seconds(10);
};

// Options for `url` and `name` with the stream settings from the environment:
// SYNAPS_NATS_STREAM_REPLICAS (1..5), SYNAPS_NATS_STREAM_MAX_AGE_SECONDS (1..86400). Throws
// ConfigError for bad values.
NatsOptions NatsOptionsFromEnv(std::string url, std::string name);

class NatsBus final : public Bus {
 public:
  // Starts connecting; returns at once. Throws ConfigError for a malformed URL.
  explicit NatsBus(NatsOptions options);
  // Closes the connection and waits for its last callback. Subscriptions must be gone already.
  ~NatsBus() override;
  NatsBus(const NatsBus&) = delete;
  NatsBus& operator=(const NatsBus&) = delete;

  using Bus::Publish;
  Status Publish(const std::string& subject, const std::string& payload,
                 const std::string& msg_id, const Headers& headers) override;
  Result<std::unique_ptr<Subscription>> SubscribeMessages(const std::string& subject,
                                                          MessageHandler handler) override;
  bool connected() const override;
  std::map<std::string, uint64_t> RejectedCounts() const override;

  // Messages currently stored in the SYNAPS stream (operators and tests: duplicates dropped by
  // Nats-Msg-Id are not stored).
  Result<uint64_t> StreamMessageCount();

 private:
  Status EnsureStream();

  const NatsOptions options_;
  RejectedMessages rejected_;
  std::unique_ptr<detail::NatsConnection> conn_;
  std::unique_ptr<jsCtx, detail::JsCtxDeleter> js_;
  std::mutex stream_mu_;
  // The connection count (NatsConnection::connects()) at which the stream was last known to
  // exist (kNever: not yet); a reconnect may reach a fresh server without it. Guarded by
  // stream_mu_.
  static constexpr uint64_t kNever = ~uint64_t{0};
  uint64_t stream_ready_at_ = kNever;
};

}  // namespace synaps::bus
