// A provider for any server that speaks OpenAI's chat completions API: OpenAI itself, Moonshot
// (Kimi), vLLM, Ollama, llama.cpp server. The registry (providers/registry.h) makes these from
// route settings; construct one directly only in tests or tools.
//
// Each call is one POST {base_url}/chat/completions, streamed (SSE) by default, retried on
// 408/429/5xx, connection failures, timeouts and truncated streams with exponential backoff and
// jitter, honouring Retry-After. All calls of one provider share one libcurl multi handle on
// the provider's event loop: any number of calls in flight on one thread, connections reused
// (HTTP/2 multiplexing over TLS). Memory per call in flight is a few tens of KiB.
//
// Thread safety: Start() on the event loop only; Call::Cancel() from anywhere. The provider
// must be destroyed on the event loop (or after it stopped); calls still in flight are then
// abandoned: their transfers close and their callbacks never run.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "net/url_policy.h"
#include "providers/detail/curl_multi.h"
#include "providers/provider.h"
#include "providers/retry.h"

namespace synaps::providers {

struct OpenAiOptions {
  std::string name = "openai-compatible";  // Provider::name(), and the prefix of error messages
  std::string base_url;                    // e.g. "https://api.openai.com/v1"
  std::string api_key;                     // "Authorization: Bearer <key>"; empty sends none
  std::chrono::milliseconds connect_timeout{10'000};
  // The whole of one attempt, from connecting to the last byte (CURLOPT_TIMEOUT_MS).
  std::chrono::milliseconds request_timeout{600'000};
  // A streamed attempt that receives nothing for this long is abandoned as timed out (whole
  // seconds; 0 disables). Not applied to non-streamed calls, which are silent until done.
  std::chrono::milliseconds idle_timeout{300'000};
  RetryPolicy retry;
  bool include_usage = true;               // send stream_options.include_usage
  std::vector<std::string> extra_headers;  // "Name: value", e.g. "OpenAI-Organization: org-1"
  size_t max_response_bytes = 32 << 20;    // a larger non-streamed body is refused
  detail::CurlMultiOptions connections;
  // Outbound policy (net/url_policy.h): every connection is checked at the socket, so an address
  // the policy refuses is never connected to, whatever DNS says; proxies from the environment
  // are ignored so that the checked address is the one connected to. A base_url the policy
  // refuses makes every call fail with kPermissionDenied.
  net::AddressPolicy address_policy;
};

class OpenAiCompatibleProvider final : public Provider {
 public:
  // Throws std::runtime_error only if libcurl cannot be initialised.
  OpenAiCompatibleProvider(boost::asio::any_io_executor executor, OpenAiOptions options);
  ~OpenAiCompatibleProvider() override;
  OpenAiCompatibleProvider(const OpenAiCompatibleProvider&) = delete;
  OpenAiCompatibleProvider& operator=(const OpenAiCompatibleProvider&) = delete;

  std::string name() const override;
  std::unique_ptr<Call> Start(const ChatRequest& request, Done done) override;

  // Calls started and not yet finished (including those waiting to retry).
  size_t calls_in_flight() const;
  // Sockets libcurl currently has us watch (open connections doing something).
  size_t watched_sockets() const;

  struct Core;

 private:
  std::unique_ptr<Core> core_;
};

}  // namespace synaps::providers
