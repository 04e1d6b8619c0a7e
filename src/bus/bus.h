// The message bus: wakeups and invalidations only, never the source of truth. Anything
// published may be lost; consumers also poll PostgreSQL.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.h"

namespace synaps::bus {

// An active subscription. Destroying it unsubscribes and waits until a handler call in progress
// has returned: no handler call starts or runs after the destructor returns (it may be
// destroyed from inside its own handler, which then is the last call).
class Subscription {
 public:
  virtual ~Subscription() = default;
};

// Message headers (NATS 2.2+), in the order given. What Synaps sends (docs/architecture.md,
// "Message headers"): `traceparent`/`tracestate` of the request that caused the message, when
// there was one, and `Synaps-Published-At` (Unix nanoseconds at publish) on every message.
using Headers = std::vector<std::pair<std::string, std::string>>;

inline constexpr std::string_view kPublishedAtHeader = "Synaps-Published-At";

// A delivered message.
struct Message {
  std::string subject;
  std::string payload;
  Headers headers;

  // The first value of header `name` (case-sensitive, as NATS compares), "" when absent.
  std::string header(std::string_view name) const {
    for (const auto& [k, v] : headers) {
      if (k == name) return v;
    }
    return "";
  }
};

class Bus {
 public:
  // Called on a bus-owned thread with the subject and payload of each message. Returns an error
  // (kInvalidArgument, from the typed parsers of bus/messages.h) when the payload is not what
  // the subject carries: the bus then counts the message as rejected, logs it (at most once per
  // interval per subject family) and drops it. A handler that throws is treated the same way,
  // as a bug: the exception is caught at the bus thread's barrier (core/barrier.h).
  using Handler = std::function<Status(const std::string& subject, const std::string& payload)>;
  // The same, for a handler that reads the message's headers too.
  using MessageHandler = std::function<Status(const Message& message)>;

  virtual ~Bus() = default;
  // Publishes durably (JetStream) with `msg_id` as the de-duplication id; kUnavailable when
  // the server does not acknowledge in time.
  // `headers` go with the message (names and values must be printable ASCII without CR/LF;
  // anything else is refused with kInvalidArgument and nothing is sent).
  virtual Status Publish(const std::string& subject, const std::string& payload,
                         const std::string& msg_id, const Headers& headers) = 0;
  Status Publish(const std::string& subject, const std::string& payload,
                 const std::string& msg_id) {
    return Publish(subject, payload, msg_id, Headers{});
  }
  // Subscribes to `subject` (wildcards allowed). Survives reconnects. When it returns while
  // connected, the server has registered the subscription (a message published afterwards is
  // delivered). Payloads larger than bus::kMaxPayloadBytes are rejected without calling
  // `handler`. The subscription must be destroyed before the bus.
  virtual Result<std::unique_ptr<Subscription>> SubscribeMessages(const std::string& subject,
                                                                  MessageHandler handler) = 0;
  Result<std::unique_ptr<Subscription>> Subscribe(const std::string& subject, Handler handler) {
    return SubscribeMessages(subject, [h = std::move(handler)](const Message& m) {
      return h(m.subject, m.payload);
    });
  }
  // True while connected to the server.
  virtual bool connected() const = 0;
  // Messages dropped since the start by subject family ("synaps.ctrl.*": n): the counter
  // synaps_bus_messages_rejected_total. Thread-safe.
  virtual std::map<std::string, uint64_t> RejectedCounts() const = 0;
};

}  // namespace synaps::bus
