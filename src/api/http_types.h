// Plain HTTP request/response values, so that handlers do not depend on Boost.Beast (which
// stays inside http_server.cpp).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace synaps::api {

struct HttpRequest {
  std::string method;   // "GET", "POST", ...
  std::string target;   // path and query, as sent
  std::map<std::string, std::string> headers;  // keys lower-cased
  std::string body;
  std::string remote;   // peer address

  // The header's value, or "" when absent. `name` must be lower-case.
  const std::string& header(const std::string& name) const {
    static const std::string kEmpty;
    auto it = headers.find(name);
    return it == headers.end() ? kEmpty : it->second;
  }
};

// One step of a streamed (chunked) body, such as Server-Sent Events.
struct StreamStep {
  std::string data;                           // written as one chunk when non-empty
  bool done = false;                          // true: end the body after `data`
  std::chrono::milliseconds wait{250};        // pause before the next step
};

// Produces a streamed body step by step. Each call runs on a handler thread; between calls no
// thread is held, so thousands of idle streams cost only their sockets. Stops being called once
// it returns done or the client goes away.
using StreamProducer = std::function<StreamStep()>;

struct HttpResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string content_type = "application/json";
  std::string body;
  StreamProducer stream;  // when set, `body` is ignored and the response is chunked
};

// The name of the first header of `response` (Content-Type included) that must not be sent: a
// name that is not an RFC 9110 token, or a value with a control character other than HTAB
// (core/http_grammar.h IsSafeHeaderValue). "" when every header is safe. The HTTP server
// refuses to send such a response (500 instead), so no value can split it. Pure.
std::string UnsafeResponseHeader(const HttpResponse& response);

// Checks a request head against RFC 9112 framing rules (http_server.h lists them, except sizes).
// Returns 0 when it may be served, else the status to refuse it with; `why` says which rule.
// `transfer_encoding` holds every Transfer-Encoding field value joined with ", " ("" when
// absent). Pure; exposed for tests and the fuzzer.
int CheckRequestFraming(unsigned version, std::string_view method, std::string_view target,
                        int host_fields, std::string_view transfer_encoding,
                        bool has_content_length, std::string* why);

// The origin-form target ("/path?query") of an origin-form or absolute-form target; "" when
// `target` is neither.
std::string OriginFormTarget(std::string_view target);

}  // namespace synaps::api
