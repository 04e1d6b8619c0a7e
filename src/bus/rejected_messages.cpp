#include "bus/rejected_messages.h"

#include <spdlog/spdlog.h>

#include "bus/messages.h"

namespace synaps::bus {

RejectedMessages::RejectedMessages(std::chrono::milliseconds log_interval)
    : log_interval_(log_interval) {}

void RejectedMessages::Record(std::string_view subject, const Error& why) {
  std::string family = SubjectFamily(subject);
  uint64_t skipped = 0;
  {
    std::lock_guard lock(mu_);
    if (!families_.contains(family) && families_.size() >= kMaxFamilies) family = "other";
    Family& f = families_[family];
    ++f.total;
    auto now = std::chrono::steady_clock::now();
    if (f.logged && now - f.last_logged < log_interval_) {
      ++f.unlogged;
      return;
    }
    skipped = f.unlogged;
    f.unlogged = 0;
    f.logged = true;
    f.last_logged = now;
  }
  // The subject is outside input: cut it, so that one log line stays one line.
  std::string shown(subject.substr(0, 128));
  spdlog::warn("bus: dropped a message on {}: {}{}", shown, why.message,
               skipped == 0 ? std::string()
                            : " (and " + std::to_string(skipped) + " more on " + family +
                                  " since the last report)");
}

std::map<std::string, uint64_t> RejectedMessages::Counts() const {
  std::lock_guard lock(mu_);
  std::map<std::string, uint64_t> out;
  for (const auto& [family, f] : families_) out[family] = f.total;
  return out;
}

}  // namespace synaps::bus
