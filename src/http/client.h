// A small blocking HTTP client over libcurl (one easy handle per call), for the CLI verbs and
// tests. Not for the worker's provider calls, which need many calls in flight.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "core/error.h"

namespace synaps::http {

struct Response {
  long status = 0;
  std::map<std::string, std::string> headers;  // keys lower-cased
  std::string body;
};

struct RequestOptions {
  std::string method = "GET";
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::string body;
  std::chrono::milliseconds timeout = std::chrono::seconds(30);
};

// kUnavailable when the server cannot be reached (message says so plainly), kDeadlineExceeded
// on timeout. Any HTTP status is a successful Response.
Result<Response> Send(const RequestOptions& options);

}  // namespace synaps::http
