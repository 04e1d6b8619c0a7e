// The built-in `local` provider: deterministic, offline, free. Model `echo`:
//  - answers with the last user message verbatim;
//  - when the conversation ends with tool results, answers with the last tool message's
//    content verbatim (so an agent loop can be tested end to end);
//  - when the last user message is "/tool NAME ARGS" and NAME is among the request's tools,
//    asks for that tool instead: one ToolCall {id "call_<n>", NAME, ARGS or "{}"}, with
//    finish_reason "tool_calls" and no text.
// Scripted (for offline tests of agents and arbiters): route params {"script": [step, ...]}
// answer the k-th model turn (k = assistant messages already in the conversation; the last step
// repeats) with {"text": ...}, {"toolCalls": [{"name", "arguments"}]}, {"score", "reason"?} (a
// judge's JSON reply) or {"echo": true}. See ScriptedAnswer in local_provider.cpp.
// Usage counts words. A streamed request gets the answer as one delta per word. An optional
// latency (SYNAPS_LOCAL_LATENCY_MS) is a timer on the event loop, not a sleeping thread, so
// thousands of local calls can be in flight.
#pragma once

#include <boost/asio/any_io_executor.hpp>

#include "providers/provider.h"

namespace synaps::providers {

class LocalProvider final : public Provider {
 public:
  LocalProvider(boost::asio::any_io_executor executor, int latency_ms);

  std::string name() const override { return "local"; }
  std::unique_ptr<Call> Start(const ChatRequest& request, Done done) override;

  // The answer the `echo` model gives, or kInvalidArgument for an unknown model. Exposed for
  // tests and for synchronous use.
  static Result<ChatResponse> Answer(const ChatRequest& request);

 private:
  boost::asio::any_io_executor executor_;
  int latency_ms_;
};

}  // namespace synaps::providers
