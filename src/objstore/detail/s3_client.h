// One S3 request, signed by libcurl (CURLOPT_AWS_SIGV4 "aws:amz:<region>:s3"), with the
// x-amz-content-sha256 header that libcurl 7.88 does not add by itself. S3ObjectStore builds every
// operation on Send/SendWithRetry, so tests that check signatures here check the real path.
//
// Why requests are shaped as they are (libcurl 7.88 signs exactly what it sends, with no
// normalization of its own):
// - the object key is percent-encoded once, '/' kept, which is S3's canonical URI;
// - the query is sent already sorted and encoded (CanonicalQuery), and flag parameters carry an
//   empty value ("uploads="), because libcurl signs the query string as written;
// - bodies go through CURLOPT_UPLOAD with a read callback, never CURLOPT_POSTFIELDS, for which
//   libcurl signs a content-type header even when none is sent;
// - every header we add (Content-Type, x-amz-*) is signed, since libcurl signs all custom
//   headers.
//
// Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.h"
#include "curl/handles.h"
#include "objstore/s3_store.h"

namespace synaps::objstore::detail {

struct S3Request {
  std::string method = "GET";                              // GET, HEAD, PUT, POST, DELETE
  std::string key;                                         // object key; empty addresses the bucket
  std::vector<std::pair<std::string, std::string>> query;  // not encoded
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers, signed
  std::string_view body;                                     // must outlive the call
  // The most response body bytes taken; a longer body aborts the request (kResourceExhausted,
  // which SendWithRetry does not retry).
  uint64_t max_body = UINT64_MAX;
};

struct S3Response {
  long status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
};

class S3Client {
 public:
  // `options` must outlive the client.
  explicit S3Client(const S3Options& options);

  // The URL `request` is sent to.
  std::string UrlFor(const S3Request& request) const;
  // One attempt. Transport failures are errors (kUnavailable, kDeadlineExceeded); any HTTP
  // status is a response.
  Result<S3Response> Send(const S3Request& request);
  // Up to options.max_attempts attempts while the failure is transient (transport errors, 5xx,
  // 429, S3's SlowDown/RequestTimeout), sleeping with exponential backoff and full jitter.
  // Returns the last response or error.
  Result<S3Response> SendWithRetry(const S3Request& request);

 private:
  curl::EasyHandle TakeHandle();
  void ReturnHandle(curl::EasyHandle handle);

  const S3Options& options_;
  std::string scheme_;     // "http" or "https"
  std::string authority_;  // host[:port] of the endpoint
  std::string sigv4_;      // "aws:amz:<region>:s3"
  std::mutex mu_;
  std::vector<curl::EasyHandle> idle_;  // guarded by mu_
};

// How long to wait before attempt `attempt` + 1: uniform in [0, min(cap, base * 2^(attempt-1))].
std::chrono::milliseconds RetryDelay(const S3Options& options, int attempt);

// True when an S3 reply asks to be retried: 5xx, 429, or a 400 whose code is RequestTimeout.
bool IsRetryableStatus(const S3Response& response);
// The Error for a reply that is not 2xx: 404 → kNotFound, 403 → kPermissionDenied, 400/405/411/
// 412/416 → kInvalidArgument, 409 → kConflict, 301/307 (wrong region) → kInvalidArgument,
// retryable ones → kUnavailable, else kInternal. `what` names the operation and key; the message
// carries S3's error code and message.
Error ErrorFromResponse(const S3Response& response, const std::string& what);

}  // namespace synaps::objstore::detail
