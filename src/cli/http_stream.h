// Streaming HTTP GET for the CLI (libcurl easy handle, one call at a time): the body is handed
// over as it arrives, so `synaps runs watch` can follow Server-Sent Events and `synaps artifacts
// get` can ask whether a version exists without downloading it. Plus an incremental parser for
// the event-stream format that, unlike the providers' parser, keeps each event's `id` (needed to
// resume with Last-Event-ID).
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace synaps::cli {

struct StreamRequest {
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  // The connection is given up (kUnavailable) when no byte arrives for this long. The API sends
  // a keep-alive comment every 15 s on an idle event stream.
  std::chrono::milliseconds idle_timeout = std::chrono::seconds(45);
  std::chrono::milliseconds connect_timeout = std::chrono::seconds(5);
};

struct StreamCallbacks {
  // The status line arrived (before any body byte). Return false to stop here.
  std::function<bool(long status)> on_status;
  // A piece of a 2xx body. Return false to stop.
  std::function<bool(std::string_view bytes)> on_data;
  // Called about every 250 ms while the connection is open, also when nothing arrives (for a
  // progress line, or to notice Ctrl-C). Return false to stop.
  std::function<bool()> on_tick;
};

struct StreamEnd {
  long status = 0;
  bool stopped = false;    // a callback returned false
  std::string error_body;  // the body of a non-2xx answer (for its error message)
};

// Performs the GET on the calling thread. An answer of any status is a StreamEnd (a non-2xx body
// is collected into error_body, not passed to on_data). kUnavailable when the server cannot be
// reached, the connection breaks mid-body or stays idle longer than idle_timeout.
Result<StreamEnd> StreamGet(const StreamRequest& request, const StreamCallbacks& callbacks);

// One Server-Sent Event.
struct ServerEvent {
  std::string id;    // the `id:` field of this event; empty when it had none
  std::string type;  // the `event:` field; "message" when absent
  std::string data;  // `data:` lines joined with "\n"
};

// Incremental event-stream parser (WHATWG HTML "server-sent events"): lines end in "\n", "\r\n"
// or "\r"; comments (":...") are skipped; an event is dispatched at a blank line when it has
// data. Not thread-safe.
class EventStreamParser {
 public:
  // Return false to stop; the rest of the current Feed is then dropped.
  using OnEvent = std::function<bool(const ServerEvent&)>;

  // Returns false when `on_event` asked to stop, or when one line exceeds 16 MiB.
  bool Feed(std::string_view bytes, const OnEvent& on_event);

 private:
  bool Line(std::string_view line, const OnEvent& on_event);

  static constexpr size_t kMaxLineBytes = 16 << 20;
  std::string line_;
  bool after_cr_ = false;
  ServerEvent event_;
  bool has_data_ = false;
};

}  // namespace synaps::cli
