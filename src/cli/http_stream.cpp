#include "cli/http_stream.h"

#include "curl/handles.h"

namespace synaps::cli {
namespace {

// State shared with libcurl's callbacks for one transfer.
struct Transfer {
  CURL* curl = nullptr;
  const StreamCallbacks* callbacks = nullptr;
  StreamEnd end;
  bool status_seen = false;
  bool idle = false;
  std::chrono::steady_clock::time_point last_byte;
  std::chrono::steady_clock::time_point last_tick;
  std::chrono::milliseconds idle_timeout{0};

  long Status() {
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    return status;
  }

  // Called before the first body byte; false stops the transfer.
  bool SeeStatus() {
    if (status_seen) return true;
    status_seen = true;
    end.status = Status();
    if (callbacks->on_status && !callbacks->on_status(end.status)) {
      end.stopped = true;
      return false;
    }
    return true;
  }
};

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t bytes = size * n;
  t->last_byte = std::chrono::steady_clock::now();
  if (!t->SeeStatus()) return 0;  // fewer bytes than offered: libcurl aborts the transfer
  if (t->end.status < 200 || t->end.status >= 300) {
    if (t->end.error_body.size() < 64 * 1024) t->end.error_body.append(data, bytes);
    return bytes;
  }
  if (t->callbacks->on_data && !t->callbacks->on_data(std::string_view(data, bytes))) {
    t->end.stopped = true;
    return 0;  // fewer bytes than offered: libcurl aborts the transfer
  }
  return bytes;
}

size_t OnHeader(char*, size_t size, size_t n, void* user) {
  // Any header line counts as life on the connection.
  static_cast<Transfer*>(user)->last_byte = std::chrono::steady_clock::now();
  return size * n;
}

int OnProgress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(user);
  auto now = std::chrono::steady_clock::now();
  if (now - t->last_byte > t->idle_timeout) {
    t->idle = true;
    return 1;
  }
  if (now - t->last_tick >= std::chrono::milliseconds(250)) {
    t->last_tick = now;
    if (t->callbacks->on_tick && !t->callbacks->on_tick()) {
      t->end.stopped = true;
      return 1;
    }
  }
  return 0;
}

}  // namespace

Result<StreamEnd> StreamGet(const StreamRequest& request, const StreamCallbacks& callbacks) {
  curl::EasyHandle easy = curl::NewEasy();
  if (!easy) return Fail(ErrorCode::kInternal, "curl_easy_init failed");
  curl::HeaderList headers;
  for (const auto& h : request.headers) {
    if (!headers.Append(h)) return Fail(ErrorCode::kInternal, "out of memory for headers");
  }

  Transfer t;
  t.curl = easy.get();
  t.callbacks = &callbacks;
  t.idle_timeout = request.idle_timeout;
  t.last_byte = t.last_tick = std::chrono::steady_clock::now();
  CURL* c = easy.get();
  curl_easy_setopt(c, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &OnBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, &OnHeader);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, &OnProgress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(request.connect_timeout.count()));
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
  CURLcode rc = curl_easy_perform(c);

  if (t.end.stopped) return t.end;
  if (t.idle) {
    return Fail(ErrorCode::kUnavailable, "no data from " + request.url + " for " +
                                             std::to_string(request.idle_timeout.count() / 1000) +
                                             " s");
  }
  if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
      rc == CURLE_OPERATION_TIMEDOUT) {
    return Fail(ErrorCode::kUnavailable,
                "cannot reach " + request.url + " (" + curl_easy_strerror(rc) + ")");
  }
  if (rc != CURLE_OK) {
    return Fail(ErrorCode::kUnavailable,
                "connection to " + request.url + " broke: " + curl_easy_strerror(rc));
  }
  // A response without a body never went through OnBody.
  if (!t.status_seen) t.end.status = t.Status();
  return t.end;
}

bool EventStreamParser::Feed(std::string_view bytes, const OnEvent& on_event) {
  for (char ch : bytes) {
    if (after_cr_) {
      after_cr_ = false;
      if (ch == '\n') continue;  // the "\n" of a "\r\n"
    }
    if (ch == '\r' || ch == '\n') {
      after_cr_ = ch == '\r';
      std::string line = std::move(line_);
      line_.clear();
      if (!Line(line, on_event)) return false;
      continue;
    }
    if (line_.size() >= kMaxLineBytes) return false;
    line_.push_back(ch);
  }
  return true;
}

bool EventStreamParser::Line(std::string_view line, const OnEvent& on_event) {
  if (line.empty()) {
    bool keep_going = true;
    if (has_data_) {
      if (event_.type.empty()) event_.type = "message";
      keep_going = on_event(event_);
    }
    event_ = ServerEvent{};
    has_data_ = false;
    return keep_going;
  }
  if (line.front() == ':') return true;  // comment, e.g. ": keep-alive"
  size_t colon = line.find(':');
  std::string_view field = line.substr(0, colon);
  std::string_view value;
  if (colon != std::string_view::npos) {
    value = line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  }
  if (field == "data") {
    if (has_data_) event_.data.push_back('\n');
    event_.data.append(value);
    has_data_ = true;
  } else if (field == "event") {
    event_.type = std::string(value);
  } else if (field == "id") {
    if (value.find('\0') == std::string_view::npos) event_.id = std::string(value);
  }
  // "retry" and unknown fields are ignored.
  return true;
}

}  // namespace synaps::cli
