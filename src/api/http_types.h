// Plain HTTP request/response values, so that handlers do not depend on Boost.Beast (which
// stays inside http_server.cpp).
#pragma once

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

struct HttpResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string content_type = "application/json";
  std::string body;
};

}  // namespace synaps::api
