// The message bus: wakeups and invalidations only, never the source of truth. Anything
// published may be lost; consumers also poll PostgreSQL.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "core/error.h"

namespace synaps::bus {

// An active subscription. Destroying it unsubscribes and waits until a handler call in progress
// has returned: no handler call starts or runs after the destructor returns (it may be
// destroyed from inside its own handler, which then is the last call).
class Subscription {
 public:
  virtual ~Subscription() = default;
};

class Bus {
 public:
  // Called on a bus-owned thread with the subject and payload of each message. Returns an error
  // (kInvalidArgument, from the typed parsers of bus/messages.h) when the payload is not what
  // the subject carries: the bus then counts the message as rejected, logs it (at most once per
  // interval per subject family) and drops it. A handler that throws is treated the same way,
  // as a bug: the exception is caught at the bus thread's barrier (core/barrier.h).
  using Handler = std::function<Status(const std::string& subject, const std::string& payload)>;

  virtual ~Bus() = default;
  // Publishes durably (JetStream) with `msg_id` as the de-duplication id; kUnavailable when
  // the server does not acknowledge in time.
  virtual Status Publish(const std::string& subject, const std::string& payload,
                         const std::string& msg_id) = 0;
  // Subscribes to `subject` (wildcards allowed). Survives reconnects. When it returns while
  // connected, the server has registered the subscription (a message published afterwards is
  // delivered). Payloads larger than bus::kMaxPayloadBytes are rejected without calling
  // `handler`. The subscription must be destroyed before the bus.
  virtual Result<std::unique_ptr<Subscription>> Subscribe(const std::string& subject,
                                                          Handler handler) = 0;
  // True while connected to the server.
  virtual bool connected() const = 0;
  // Messages dropped since the start by subject family ("synaps.ctrl.*": n): the counter
  // synaps_bus_messages_rejected_total. Thread-safe.
  virtual std::map<std::string, uint64_t> RejectedCounts() const = 0;
};

}  // namespace synaps::bus
