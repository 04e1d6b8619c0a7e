// Model providers behind one asynchronous interface. A call is started on the worker's event
// loop and reports back there exactly once, so one worker can keep many calls in flight
// without a thread per call.
//
// The message format is OpenAI's chat completions format, which every provider here speaks
// (OpenAI, Moonshot/Kimi, vLLM, Ollama, llama.cpp server), including tool calls:
//   user asks            {role: user, content}
//   model calls tools    {role: assistant, content: "", tool_calls: [{id, name, arguments}]}
//   tool answers         {role: tool, tool_call_id, content}
// and the model is called again with the whole conversation.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace synaps::providers {

// A function call the model asked for (OpenAI `tool_calls[i]`, type "function").
struct ToolCall {
  std::string id;         // the provider's id, echoed back in the tool message's tool_call_id
  std::string name;       // the tool's name
  std::string arguments;  // JSON text exactly as the model wrote it; may be invalid JSON
};

// A tool the model may call (OpenAI `tools[i]`, type "function").
struct ToolDefinition {
  std::string name;
  std::string description;
  nlohmann::json parameters = nlohmann::json::object();  // JSON Schema of the arguments
};

struct ChatMessage {
  std::string role;     // system, developer, user, assistant, tool
  std::string content;
  std::vector<ToolCall> tool_calls;  // assistant only: the calls it made
  std::string tool_call_id;          // tool only: the ToolCall::id this message answers
  std::string name;                  // optional participant name
};

// A piece of a streamed answer, delivered while the call runs.
struct ChatDelta {
  // Attempt number, from 1. When a retry restarts a stream that already produced deltas, the
  // next delta carries a higher attempt number: the text of earlier attempts is void.
  int attempt = 1;
  std::string text;       // the next piece of the answer's content
  std::string reasoning;  // the next piece of reasoning (`reasoning_content`), if the model sends it
};

// Runs on the provider's event loop, inside the network read. It may call Call::Cancel() on
// any call; it must not block, and must not destroy the provider.
using DeltaCallback = std::function<void(const ChatDelta&)>;

struct ChatRequest {
  std::string model;
  std::vector<ChatMessage> messages;
  // Extra body fields: temperature, max_tokens, top_p, response_format, ... The fields the
  // provider sets itself (model, messages, stream, stream_options, tools, tool_choice) are
  // refused here with kInvalidArgument.
  nlohmann::json params = nlohmann::json::object();
  std::vector<ToolDefinition> tools;
  // null: the provider's default; otherwise "auto", "none", "required" or
  // {"type": "function", "function": {"name": ...}}.
  nlohmann::json tool_choice;
  // Stream the answer (SSE). The final ChatResponse is the same either way; streaming lets
  // on_delta report progress and keeps idle connections from looking dead to proxies.
  bool stream = true;
  DeltaCallback on_delta;  // optional
  // Called (on the provider's event loop) when the provider answers 429 with a Retry-After,
  // with the wait it asked for, before the call waits or gives up; optional. The worker shares
  // it with every worker using the route (docs/flow-control.md).
  std::function<void(std::chrono::milliseconds)> on_retry_after;
  // Called (on the provider's event loop) before each retry of this call goes out, after its
  // back-off or Retry-After wait, with the function that sends it; optional. The worker takes a
  // rate-limit slot for the retry first (a retry is a request like any other), then calls it;
  // calling it after the call finished or was cancelled does nothing.
  std::function<void(std::function<void()> send)> before_retry;
  // Per-call overrides of the provider's settings; zero means "use the provider's".
  std::chrono::milliseconds timeout{0};  // total time of one attempt
  int max_attempts = 0;                  // attempts including the first
  // W3C trace context of this model call (core/trace.h), sent as `traceparent` and
  // `tracestate` headers on every attempt; empty: none. Values come from TraceContext, which
  // admits no control characters.
  std::string traceparent;
  std::string tracestate;
};

struct Usage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
};

struct ChatResponse {
  std::string text;
  std::string reasoning;  // reasoning_content, for models that send it
  std::string model;      // as reported by the provider
  std::string id;         // the provider's completion id, when it sends one
  // "stop", "length", "tool_calls", "content_filter", ... as the provider said; empty when a
  // stream ended with [DONE] but never named a reason.
  std::string finish_reason = "stop";
  std::vector<ToolCall> tool_calls;
  Usage usage;
  std::chrono::milliseconds latency{0};              // Start() to the answer, all attempts
  std::chrono::milliseconds time_to_first_token{0};  // Start() to the first delta (streams)
  int attempts = 1;
};

// An in-flight call. Destroying it does not cancel it; Cancel() does.
class Call {
 public:
  virtual ~Call() = default;
  // Aborts the call; its callback then runs with kCancelled (if it has not run already), and
  // no more deltas are delivered. Called on the provider's event loop it takes effect at once
  // (the transfer is closed); from another thread it is posted there. Never runs the callback
  // itself: the callback is always posted.
  virtual void Cancel() = 0;
};

class Provider {
 public:
  // Runs exactly once, on the event loop the provider was created with, never inside Start()
  // or Cancel(). Errors: kUnavailable and kDeadlineExceeded are worth retrying later (the
  // provider already retried what it could); kInvalidArgument (the request or the route is
  // wrong), kPermissionDenied (bad key), kResourceExhausted (quota), kInternal (the provider
  // answered something unparseable) and kCancelled are not.
  using Done = std::function<void(Result<ChatResponse>)>;

  virtual ~Provider() = default;
  virtual std::string name() const = 0;
  // Call on the provider's event loop. Nothing is sent before Start() returns.
  virtual std::unique_ptr<Call> Start(const ChatRequest& request, Done done) = 0;
};

}  // namespace synaps::providers
