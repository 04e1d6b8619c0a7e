// The CLI's view of a Control API: where it is and which token to present. URL from
// SYNAPS_API_URL, else the file `api-url` in the dev state dir, else http://127.0.0.1:8081;
// token from SYNAPS_TOKEN, else the dev state dir's `token` file. The state dir is
// SYNAPS_STATE_DIR or ./.synaps.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "http/client.h"

namespace synaps::cli {

class ApiClient {
 public:
  ApiClient(std::string base_url, std::string token)
      : base_url_(std::move(base_url)), token_(std::move(token)) {}
  static ApiClient FromEnvironment();

  // Sends a JSON request; a non-2xx answer becomes an Error carrying the server's message.
  Result<nlohmann::json> Call(const std::string& method, const std::string& path,
                              const nlohmann::json* body = nullptr,
                              const std::string& idempotency_key = {}) const;
  // Raw bytes of a GET (artifact content).
  Result<std::string> Fetch(const std::string& path) const;
  // A GET whose 2xx answer is returned whole, headers included (artifact content with its
  // content type and ETag); other answers become the same Errors as Call's.
  Result<http::Response> Download(const std::string& path,
                                  std::chrono::milliseconds timeout) const;
  // Polls GET /v1/runs/{id} until the run is finished or `timeout_seconds` pass.
  Result<nlohmann::json> WaitForRun(const std::string& run_id, int timeout_seconds) const;

  const std::string& base_url() const { return base_url_; }
  // "Authorization: Bearer <token>" (empty vector without a token), for streaming requests.
  std::vector<std::string> AuthHeaders() const;
  // The Error for a refused request: the status mapped to a code, and a message that says what
  // happened in words ("not found (HTTP 404): run ... not found") plus, for 401 and 403, what
  // to do about it.
  Error ErrorForStatus(long status, const std::string& body) const;

 private:
  std::string base_url_;
  std::string token_;
};

// The dev state directory (SYNAPS_STATE_DIR or ./.synaps), absolute.
std::string StateDir();

// Percent-encodes a query value or path segment (RFC 3986 unreserved characters stay as they
// are).
std::string PercentEncode(std::string_view value);

// Human-readable rendering of a run, with its artifacts' text when `artifacts` is given.
std::string FormatRun(const nlohmann::json& run);

}  // namespace synaps::cli
