// Model providers behind one asynchronous interface. A call is started on the worker's event
// loop and reports back there exactly once, so one worker can keep many calls in flight
// without a thread per call.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace synaps::providers {

struct ChatMessage {
  std::string role;     // system, user, assistant, tool
  std::string content;
};

struct ChatRequest {
  std::string model;
  std::vector<ChatMessage> messages;
  nlohmann::json params = nlohmann::json::object();  // temperature, max_tokens, ...
};

struct Usage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
};

struct ChatResponse {
  std::string text;
  std::string model;
  std::string finish_reason = "stop";
  Usage usage;
};

// An in-flight call. Destroying it does not cancel it; Cancel() does.
class Call {
 public:
  virtual ~Call() = default;
  // Aborts the call; its callback then runs with kCancelled (if it has not run already).
  virtual void Cancel() = 0;
};

class Provider {
 public:
  // Runs exactly once, on the event loop the provider was created with. Errors: kUnavailable
  // or kDeadlineExceeded are worth retrying; kInvalidArgument and others are not.
  using Done = std::function<void(Result<ChatResponse>)>;

  virtual ~Provider() = default;
  virtual std::string name() const = 0;
  virtual std::unique_ptr<Call> Start(const ChatRequest& request, Done done) = 0;
};

}  // namespace synaps::providers
