#include "providers/detail/sse_parser.h"

namespace synaps::providers::detail {

SseParser::Status SseParser::Feed(std::string_view bytes, const OnEvent& on_event) {
  size_t i = 0;
  if (after_cr_ && !bytes.empty() && bytes[0] == '\n') i = 1;
  after_cr_ = false;
  while (i < bytes.size()) {
    size_t end = bytes.find_first_of("\r\n", i);
    if (end == std::string_view::npos) {
      line_.append(bytes.substr(i));
      if (line_.size() + event_.data.size() > max_event_bytes_) return Status::kOverflow;
      return Status::kOk;
    }
    bool ok;
    if (line_.empty()) {
      ok = Line(bytes.substr(i, end - i), on_event);
    } else {
      line_.append(bytes.substr(i, end - i));
      std::string line = std::move(line_);
      line_.clear();
      ok = Line(line, on_event);
    }
    if (bytes[end] == '\r') {
      if (end + 1 == bytes.size()) {
        after_cr_ = true;
      } else if (bytes[end + 1] == '\n') {
        ++end;
      }
    }
    i = end + 1;
    if (!ok) return Status::kStopped;
    if (event_.data.size() > max_event_bytes_) return Status::kOverflow;
  }
  return Status::kOk;
}

SseParser::Status SseParser::Finish(const OnEvent& on_event) {
  line_.clear();
  if (!Dispatch(on_event)) return Status::kStopped;
  return Status::kOk;
}

bool SseParser::Line(std::string_view line, const OnEvent& on_event) {
  if (line.empty()) return Dispatch(on_event);
  if (line[0] == ':') return true;  // comment, often used as a keep-alive
  size_t colon = line.find(':');
  std::string_view field = line.substr(0, colon);
  std::string_view value;
  if (colon != std::string_view::npos) {
    value = line.substr(colon + 1);
    if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
  }
  if (field == "data") {
    if (has_data_) event_.data.push_back('\n');
    event_.data.append(value);
    has_data_ = true;
  } else if (field == "event") {
    event_.type.assign(value);
  }
  return true;
}

bool SseParser::Dispatch(const OnEvent& on_event) {
  if (!has_data_) {
    event_.type.clear();
    return true;
  }
  SseEvent event = std::move(event_);
  event_ = SseEvent{};
  has_data_ = false;
  return on_event(event);
}

}  // namespace synaps::providers::detail
