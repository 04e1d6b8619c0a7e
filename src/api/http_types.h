// Plain HTTP request/response values, so that handlers do not depend on Boost.Beast (which
// stays inside http_server.cpp).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <string>
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

}  // namespace synaps::api
