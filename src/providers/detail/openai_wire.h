// The OpenAI chat completions wire format, shared by every OpenAI-compatible provider:
// building the request body, reading a whole completion, assembling a streamed one from its
// chunks, and reading error bodies. Pure functions over JSON: no I/O, fully unit-tested.
//
// Outside input is never trusted: every parse failure is an Error value.
#pragma once

#include <curl/curl.h>

#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "providers/provider.h"

namespace synaps::providers::detail {

// The JSON body for POST {base}/chat/completions. With `stream`, asks for SSE and, when
// `include_usage`, for the final usage chunk (stream_options.include_usage). kInvalidArgument
// (with `field`) for a request that cannot be sent: no model, no messages, an unknown role, a
// tool message without tool_call_id, params that are not an object or that set a field the
// provider owns.
Result<nlohmann::json> BuildChatBody(const ChatRequest& request, bool stream, bool include_usage);

// Reads a non-streamed completion (`choices[0].message`). kInternal when it is not one.
Result<ChatResponse> ParseCompletion(const nlohmann::json& body);

// Accumulates a streamed completion, one `chat.completion.chunk` at a time. Only choice 0 is
// read (requests ask for one choice). Tool calls arrive in fragments keyed by their index: the
// first carries id and name, later ones pieces of the arguments.
class StreamAssembler {
 public:
  // Applies one chunk and returns what it added to the answer's text and reasoning (often
  // nothing). A chunk carrying {"error": ...} is returned as kUnavailable (the provider failed
  // mid-answer; trying again may work); a chunk that is not an object is kInternal.
  Result<ChatDelta> Apply(const nlohmann::json& chunk);

  // A choice has named its finish_reason.
  bool finished() const { return finished_; }
  bool empty() const { return !started_; }
  // The assembled answer so far.
  ChatResponse Take();

 private:
  ChatResponse response_;
  bool finished_ = false;
  bool started_ = false;
};

// The human-readable message in an error body. Understands OpenAI's {"error": {"message"}},
// {"error": "text"}, vLLM's {"message"} and FastAPI's {"detail"}; otherwise the start of the
// body itself. `code` gets error.code or error.type when present (e.g. "insufficient_quota").
std::string ErrorBodyMessage(const std::string& body, std::string* code = nullptr);

// What one attempt's HTTP failure means.
struct HttpFailure {
  Error error;
  bool retry = false;  // worth another attempt inside this call
};

// Classifies a non-2xx reply. 408, 429 and 5xx are retried; 401 and 403 are kPermissionDenied,
// other 4xx kInvalidArgument, not retried. A 429 whose code says the quota is spent
// (insufficient_quota) is kResourceExhausted and not retried. `x_should_retry` ("true",
// "false" or empty) is OpenAI's explicit hint and wins when present.
HttpFailure ClassifyHttpStatus(long status, const std::string& body,
                               const std::string& x_should_retry);

// Classifies a libcurl transfer error (not CURLE_OK). Timeouts are kDeadlineExceeded,
// connection trouble kUnavailable, both retried; a bad URL or unsupported scheme is
// kInvalidArgument.
HttpFailure ClassifyCurlError(CURLcode code, const std::string& detail);

}  // namespace synaps::providers::detail
