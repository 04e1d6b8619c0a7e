// Counts messages a subscriber refused (malformed, mistyped, binary, oversized, or its handler
// threw) by subject family (bus/messages.h SubjectFamily), for the Prometheus counter
// synaps_bus_messages_rejected_total{subject=<family>}, and logs them at most once per interval
// per family so that a flood of junk cannot flood the log. Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "core/error.h"

namespace synaps::bus {

class RejectedMessages {
 public:
  // Families beyond this many are counted under "other" (the label's cardinality stays bounded
  // even if a wildcard subscription sees many subjects).
  static constexpr size_t kMaxFamilies = 32;

  explicit RejectedMessages(std::chrono::milliseconds log_interval = std::chrono::seconds(10));

  // Counts one dropped message on `subject`; logs a warning naming the subject and `why` unless
  // one was logged for its family within the interval (the next one says how many it skipped).
  void Record(std::string_view subject, const Error& why);

  // Totals by family since the start.
  std::map<std::string, uint64_t> Counts() const;

 private:
  struct Family {
    uint64_t total = 0;
    uint64_t unlogged = 0;  // counted since the last warning
    std::chrono::steady_clock::time_point last_logged{};
    bool logged = false;
  };

  const std::chrono::milliseconds log_interval_;
  mutable std::mutex mu_;
  std::map<std::string, Family> families_;  // guarded by mu_
};

}  // namespace synaps::bus
