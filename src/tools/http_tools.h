// HTTP tools for the agent loop: calls a registry tool of type http (control::Tool) with the
// arguments a model wrote, under the network policy of tools/network_policy.h.
//
// Request. POST (the default): the arguments object itself is the body, Content-Type
// application/json. GET: each top-level argument becomes a query parameter appended to the
// url's query (strings as they are, other values as JSON text), percent-encoded. Either way the
// request carries `Accept: application/json` and `X-Synaps-Tool: <name>`. The model chooses
// arguments only: the scheme, host and port come from the registry, and the url is checked
// before every call.
//
// Result (the value given to the model):
//   2xx, JSON body                 the body
//   2xx, empty body                {"status": 204}
//   2xx, other body                {"status", "contentType", "body": text, "truncated"?: true}
//   3xx                            {"status", "error": "redirect not followed", "location"}
//   4xx, 5xx                       {"status", "error": "HTTP 500", "body": JSON or text}
// Bodies are read up to HttpToolsOptions::result_limit_bytes; a longer body is cut there (the
// transfer stops) and given as text with "truncated": true. Text is made valid UTF-8.
//
// Errors (Result's error; give the model k8s::BuiltinTools::ErrorResult(error)):
//   kInvalidArgument   arguments are not a JSON object, do not match the tool's parameters
//                      schema (control::ValidateJson; `field` is their JSON path), or the tool
//                      is not of type http
//   kPermissionDenied  the network policy refused the url, the host or an address it resolves
//                      to (the message names which and why); nothing was sent
//   kNotFound          the host name does not exist
//   kUnavailable       resolution failed temporarily, connection refused or broken, TLS failed
//   kDeadlineExceeded  no complete answer within the tool's timeoutMs (counted from Invoke)
//
// Redirects are never followed: a 3xx is the tool's answer. Proxies from the environment
// (http_proxy, ...) are ignored, so the checked address is the one connected to.
//
// Execution. Each call resolves the host with getaddrinfo, checks every address, pins the
// checked addresses for the transfer (CURLOPT_RESOLVE), and runs a blocking libcurl easy
// transfer; a socket-open hook also refuses any address that was not checked. This runs on a
// small thread pool owned by HttpTools (tools are called far less often than models, so a
// thread per running call is cheap); calls beyond `threads` wait their turn, and their wait
// counts against their timeout.
//
// Use from the agent loop, on the worker's event loop:
//   auto http_tools = tools::HttpTools::FromEnvironment(io.get_executor());
//   http_tools->InvokeText(tool_spec, call.arguments, [&](Result<nlohmann::json> r) {
//     std::string content = (r ? *r : k8s::BuiltinTools::ErrorResult(r.error())).dump();
//     messages.push_back({"tool", content, {}, call.id});
//   });
//
// Thread safety: construct, call and destroy on the executor's thread. Every `done` runs
// exactly once, on that executor, never inside Invoke(); none runs after destruction. The
// destructor aborts running transfers and waits for the pool's threads, which may take as
// long as a DNS lookup in progress (bounded by the resolver's own timeouts).
#pragma once

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "control/spec.h"
#include "core/error.h"
#include "core/trace.h"
#include "tools/network_policy.h"

namespace synaps::tools {

// Resolves a host name to its addresses (IPv4 and IPv6, without duplicates). kNotFound when the
// name does not exist, kUnavailable when the lookup failed otherwise.
using Resolver = std::function<Result<std::vector<IpAddress>>(const std::string& host)>;
// The system resolver (getaddrinfo).
Result<std::vector<IpAddress>> ResolveHost(const std::string& host);

struct HttpToolsOptions {
  size_t threads = 4;  // calls running at once
  NetworkPolicy policy;
  size_t result_limit_bytes = 16 * 1024;
  size_t max_argument_bytes = 256 * 1024;  // larger arguments are kInvalidArgument
  // Caps Tool::timeout_ms (which the registry already bounds to 1..120000).
  std::chrono::milliseconds max_timeout = std::chrono::seconds(120);
  Resolver resolve = ResolveHost;  // tests substitute names of their own

  // Policy from SYNAPS_TOOLS_DENY_PRIVATE (NetworkPolicy::FromEnvironment); throws ConfigError.
  static HttpToolsOptions FromEnvironment();
};

class HttpTools {
 public:
  using Done = std::function<void(Result<nlohmann::json>)>;

  explicit HttpTools(boost::asio::any_io_executor executor, HttpToolsOptions options = {});
  ~HttpTools();
  HttpTools(const HttpTools&) = delete;
  HttpTools& operator=(const HttpTools&) = delete;

  static std::unique_ptr<HttpTools> FromEnvironment(boost::asio::any_io_executor executor);

  // Calls `tool` (type http) with `arguments` (a JSON object; null means {}). With `trace`, the
  // request carries its `traceparent` (and `tracestate`): the call is that span.
  void Invoke(const control::Tool& tool, const nlohmann::json& arguments, Done done,
              const std::optional<TraceContext>& trace = std::nullopt);
  // The same with the arguments as the model wrote them (ToolCall::arguments): kInvalidArgument
  // when they are not valid JSON. An empty text means {}.
  void InvokeText(const control::Tool& tool, std::string_view arguments, Done done);

  const HttpToolsOptions& options() const { return options_; }

 private:
  void Reply(Done done, Result<nlohmann::json> result);

  boost::asio::any_io_executor executor_;
  HttpToolsOptions options_;
  std::shared_ptr<char> alive_;    // posted replies hold it weakly: none runs after destruction
  std::atomic<bool> stopping_{false};  // read by running transfers, which then abort
  boost::asio::thread_pool pool_;
};

}  // namespace synaps::tools
