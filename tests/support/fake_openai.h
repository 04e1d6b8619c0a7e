// A fake OpenAI-compatible chat completions server for provider tests. Model providers are
// paid outside services, so tests of the provider client run against this fake (a live smoke
// test runs only when a real key is set); everything else — HTTP/1.1 framing, chunked SSE,
// Retry-After, connections that hang or drop — is real, over a real socket.
//
// The fake listens on 127.0.0.1 on a port the OS picks and runs its own event loop on its own
// thread. A handler decides, per request, what to answer; every request is recorded.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace synaps::testing {

struct FakeRequest {
  std::string method;
  std::string target;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;

  nlohmann::json Json() const { return nlohmann::json::parse(body, nullptr, false); }
};

// What the fake does with one request.
struct FakeReply {
  int status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;  // extra response headers
  std::string body;  // sent whole, with Content-Length, unless `events` is set

  // When set, the reply is an SSE stream (text/event-stream, chunked): one event per entry,
  // each sent as `data: <entry>\n\n` in its own chunk, `event_interval` apart.
  std::vector<std::string> events;
  std::chrono::milliseconds event_interval{0};
  enum class StreamEnd {
    kComplete,    // the terminating chunk, then the connection stays open for the next request
    kDrop,        // the connection closes without the terminating chunk (a broken transfer)
    kCloseClean,  // no chunked framing at all: the body ends when the connection closes
    kStall,       // nothing more is sent, and the connection stays open until the client leaves
  };
  StreamEnd stream_end = StreamEnd::kComplete;

  std::chrono::milliseconds delay{0};  // before the status line
  bool hang = false;                   // never answer; wait for the client to give up
};

class FakeOpenAi {
 public:
  // Runs on the fake's thread; `index` counts requests from 0.
  using Handler = std::function<FakeReply(const FakeRequest& request, int index)>;

  explicit FakeOpenAi(Handler handler);
  ~FakeOpenAi();
  FakeOpenAi(const FakeOpenAi&) = delete;
  FakeOpenAi& operator=(const FakeOpenAi&) = delete;

  // "http://127.0.0.1:<port>/v1"
  std::string base_url() const;
  int port() const;

  int request_count() const;
  std::vector<FakeRequest> requests() const;
  // Client connections currently open, and accepted since the start.
  int open_connections() const;
  int accepted_connections() const;
  // Polls `condition` every few milliseconds until it holds or `timeout` passes.
  static bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout);

  // Replies in OpenAI's format.
  static FakeReply Completion(const std::string& text, int prompt_tokens = 3,
                              int completion_tokens = 5);
  // One chunk per piece of text, then a chunk with finish_reason "stop", a usage chunk (empty
  // choices, as with stream_options.include_usage) and [DONE].
  static FakeReply Stream(const std::vector<std::string>& pieces, int prompt_tokens = 3,
                          int completion_tokens = 5);
  static FakeReply Error(int status, const std::string& message, const std::string& code = "");
  // A chat.completion.chunk with `delta` as choices[0].delta and the given finish_reason
  // (null when empty).
  static std::string Chunk(const nlohmann::json& delta, const std::string& finish_reason = "");

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace synaps::testing
