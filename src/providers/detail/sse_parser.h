// An incremental parser for Server-Sent Events (the WHATWG "event stream" format), fed with
// whatever byte ranges the network delivers. Only what chat completion streams use is kept:
// an event's `event` name and its `data` (several data lines joined with "\n"); `id`, `retry`
// and comment lines are skipped. Lines may end in "\n", "\r\n" or "\r".
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace synaps::providers::detail {

struct SseEvent {
  std::string type;  // the `event:` field; empty means "message"
  std::string data;
};

class SseParser {
 public:
  // Return false to stop parsing (the rest of the current Feed is ignored).
  using OnEvent = std::function<bool(const SseEvent&)>;

  // `max_event_bytes` bounds the memory one unterminated line or event may take; beyond it
  // Feed reports an overflow.
  explicit SseParser(size_t max_event_bytes = 8 << 20) : max_event_bytes_(max_event_bytes) {}

  enum class Status { kOk, kStopped, kOverflow };
  Status Feed(std::string_view bytes, const OnEvent& on_event);
  // End of stream: an event whose data lines were complete but which lacked the final blank
  // line is delivered (servers often end with "data: [DONE]\n"). A partial last line is not.
  Status Finish(const OnEvent& on_event);

  // True when bytes are held that do not yet form a whole line.
  bool has_partial_line() const { return !line_.empty(); }

 private:
  // Handles one complete line; false when the callback asked to stop.
  bool Line(std::string_view line, const OnEvent& on_event);
  bool Dispatch(const OnEvent& on_event);

  size_t max_event_bytes_;
  std::string line_;     // the current, incomplete line
  bool after_cr_ = false;  // the last byte was '\r': a following '\n' belongs to it
  SseEvent event_;
  bool has_data_ = false;
};

}  // namespace synaps::providers::detail
