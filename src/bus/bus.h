// The message bus: wakeups and invalidations only, never the source of truth. Anything
// published may be lost; consumers also poll PostgreSQL.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "core/error.h"

namespace synaps::bus {

// An active subscription; unsubscribes when destroyed.
class Subscription {
 public:
  virtual ~Subscription() = default;
};

class Bus {
 public:
  // Called on a bus-owned thread with the subject and payload of each message.
  using Handler = std::function<void(const std::string& subject, const std::string& payload)>;

  virtual ~Bus() = default;
  // Publishes durably (JetStream) with `msg_id` as the de-duplication id; kUnavailable when
  // the server does not acknowledge in time.
  virtual Status Publish(const std::string& subject, const std::string& payload,
                         const std::string& msg_id) = 0;
  // Subscribes to `subject` (wildcards allowed). Survives reconnects.
  virtual Result<std::unique_ptr<Subscription>> Subscribe(const std::string& subject,
                                                          Handler handler) = 0;
  // True while connected to the server.
  virtual bool connected() const = 0;
};

}  // namespace synaps::bus
