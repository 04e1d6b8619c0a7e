#include "objstore/detail/s3_client.h"

#include <algorithm>
#include <cctype>
#include <random>
#include <thread>

#include "core/ids.h"
#include "objstore/detail/s3_wire.h"

namespace synaps::objstore::detail {

namespace {

struct BodyReader {
  std::string_view data;
  size_t offset = 0;
};

size_t ReadBody(char* buffer, size_t size, size_t n, void* user) {
  auto* reader = static_cast<BodyReader*>(user);
  size_t count = std::min(size * n, reader->data.size() - reader->offset);
  std::copy_n(reader->data.data() + reader->offset, count, buffer);
  reader->offset += count;
  return count;
}

// libcurl rewinds the body when it must send it again (a redirect or an auth retry).
int SeekBody(void* user, curl_off_t offset, int origin) {
  auto* reader = static_cast<BodyReader*>(user);
  if (origin != SEEK_SET || offset < 0 || static_cast<size_t>(offset) > reader->data.size()) {
    return CURL_SEEKFUNC_CANTSEEK;
  }
  reader->offset = static_cast<size_t>(offset);
  return CURL_SEEKFUNC_OK;
}

struct BodyWriter {
  std::string* body;
  uint64_t max;
  bool overflow = false;
};

size_t WriteBody(char* data, size_t size, size_t n, void* user) {
  auto* writer = static_cast<BodyWriter*>(user);
  if (size * n > writer->max - writer->body->size()) {
    writer->overflow = true;
    return 0;  // libcurl ends the transfer with CURLE_WRITE_ERROR
  }
  writer->body->append(data, size * n);
  return size * n;
}

size_t WriteHeader(char* data, size_t size, size_t n, void* user) {
  auto* headers = static_cast<std::map<std::string, std::string>*>(user);
  std::string_view line(data, size * n);
  if (line.starts_with("HTTP/")) {
    headers->clear();  // a new response begins (after "100 Continue", for instance)
    return size * n;
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return size * n;
  std::string name(line.substr(0, colon));
  for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  std::string_view value = line.substr(colon + 1);
  size_t b = value.find_first_not_of(" \t");
  size_t e = value.find_last_not_of(" \t\r\n");
  (*headers)[name] = b == std::string_view::npos ? "" : std::string(value.substr(b, e - b + 1));
  return size * n;
}

// The one place where libcurl's codes become ours.
Error TranslateCurlCode(CURLcode rc, const std::string& url) {
  std::string detail = std::string(curl_easy_strerror(rc)) + " (" + url + ")";
  switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
      return {ErrorCode::kDeadlineExceeded, "object store timed out: " + detail};
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return {ErrorCode::kUnavailable, "object store unreachable: " + detail};
    case CURLE_OUT_OF_MEMORY:
      return {ErrorCode::kUnavailable, "out of memory talking to the object store: " + detail};
    default:
      return {ErrorCode::kInternal, "object store request failed: " + detail};
  }
}

}  // namespace

std::chrono::milliseconds RetryDelay(const S3Options& options, int attempt) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  int64_t ceiling = options.retry_base.count() << std::clamp(attempt - 1, 0, 20);
  ceiling = std::min<int64_t>(ceiling, options.retry_cap.count());
  if (ceiling <= 0) return std::chrono::milliseconds(0);
  return std::chrono::milliseconds(std::uniform_int_distribution<int64_t>(0, ceiling)(rng));
}

S3Client::S3Client(const S3Options& options)
    : options_(options), sigv4_("aws:amz:" + options.region + ":s3") {
  // The store validated the endpoint before making the client.
  auto endpoint = ParseEndpoint(options.endpoint);
  if (endpoint) {
    scheme_ = endpoint->scheme;
    authority_ = endpoint->authority;
  }
}

std::string S3Client::UrlFor(const S3Request& request) const {
  std::string url = scheme_ + "://";
  std::string path;
  if (options_.path_style) {
    url += authority_;
    path = "/" + UriEncode(options_.bucket, false);
    if (!request.key.empty()) path += "/" + UriEncode(request.key, true);
  } else {
    url += options_.bucket + "." + authority_;
    path = "/" + UriEncode(request.key, true);
  }
  url += path;
  if (!request.query.empty()) url += "?" + CanonicalQuery(request.query);
  return url;
}

curl::EasyHandle S3Client::TakeHandle() {
  {
    std::lock_guard lock(mu_);
    if (!idle_.empty()) {
      curl::EasyHandle handle = std::move(idle_.back());
      idle_.pop_back();
      return handle;
    }
  }
  return curl::NewEasy();
}

void S3Client::ReturnHandle(curl::EasyHandle handle) {
  // Forget this request's options (and pointers into it); keep the live connection.
  curl_easy_reset(handle.get());
  std::lock_guard lock(mu_);
  if (idle_.size() < 64) idle_.push_back(std::move(handle));
}

Result<S3Response> S3Client::Send(const S3Request& request) {
  curl::EasyHandle easy = TakeHandle();
  if (!easy) return Fail(ErrorCode::kUnavailable, "curl_easy_init failed (out of memory)");
  CURL* c = easy.get();
  const std::string url = UrlFor(request);

  curl::HeaderList headers;
  bool ok = headers.Append("x-amz-content-sha256: " + Sha256Hex(request.body));
  if (!options_.fixed_amz_date.empty()) {
    ok = ok && headers.Append("x-amz-date: " + options_.fixed_amz_date);
  }
  if (!options_.session_token.empty()) {
    ok = ok && headers.Append("x-amz-security-token: " + options_.session_token);
  }
  for (const auto& [name, value] : request.headers) ok = ok && headers.Append(name + ": " + value);
  curl::HeaderList connect_to;
  for (const auto& entry : options_.connect_to) ok = ok && connect_to.Append(entry);
  if (!ok) return Fail(ErrorCode::kUnavailable, "out of memory building an S3 request");

  S3Response response;
  BodyReader reader{request.body, 0};
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_AWS_SIGV4, sigv4_.c_str());
  curl_easy_setopt(c, CURLOPT_USERNAME, options_.access_key_id.c_str());
  curl_easy_setopt(c, CURLOPT_PASSWORD, options_.secret_access_key.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  if (connect_to.get() != nullptr) curl_easy_setopt(c, CURLOPT_CONNECT_TO, connect_to.get());
  if (request.method == "HEAD") {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else if (request.method == "PUT" || request.method == "POST") {
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, &ReadBody);
    curl_easy_setopt(c, CURLOPT_READDATA, &reader);
    curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, &SeekBody);
    curl_easy_setopt(c, CURLOPT_SEEKDATA, &reader);
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
    if (request.method == "POST") curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "POST");
  } else if (request.method == "DELETE") {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "DELETE");
  } else if (request.method != "GET") {
    return Fail(ErrorCode::kInternal, "unsupported S3 method " + request.method);
  }
  BodyWriter writer{&response.body, request.max_body};
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &WriteBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &writer);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, &WriteHeader);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &response.headers);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(options_.connect_timeout.count()));
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.request_timeout.count()));
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);

  CURLcode rc = curl_easy_perform(c);
  if (rc == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &response.status);
  ReturnHandle(std::move(easy));
  if (rc == CURLE_WRITE_ERROR && writer.overflow) {
    return Fail(ErrorCode::kResourceExhausted, "object store answered more than the " +
                                                   std::to_string(request.max_body) +
                                                   " bytes expected (" + url + ")");
  }
  if (rc != CURLE_OK) return std::unexpected(TranslateCurlCode(rc, url));
  return response;
}

Result<S3Response> S3Client::SendWithRetry(const S3Request& request) {
  const int attempts = std::max(1, options_.max_attempts);
  for (int attempt = 1;; ++attempt) {
    auto result = Send(request);
    bool transient = result ? IsRetryableStatus(*result) : result.error().retryable();
    if (!transient || attempt >= attempts) return result;
    std::this_thread::sleep_for(RetryDelay(options_, attempt));
  }
}

bool IsRetryableStatus(const S3Response& response) {
  if (response.status >= 500 || response.status == 429) return true;
  if (response.status == 400) {
    auto code = XmlText(response.body, "Code");
    return code && (*code == "RequestTimeout" || *code == "SlowDown");
  }
  return false;
}

Error ErrorFromResponse(const S3Response& response, const std::string& what) {
  std::string code = XmlText(response.body, "Code").value_or("");
  std::string message = XmlText(response.body, "Message").value_or("");
  std::string text = what + ": HTTP " + std::to_string(response.status);
  if (!code.empty()) text += " " + code;
  if (!message.empty()) text += ": " + message;
  if (IsRetryableStatus(response)) return {ErrorCode::kUnavailable, text};
  switch (response.status) {
    case 404:
      return {ErrorCode::kNotFound, text};
    case 401:
    case 403:
      return {ErrorCode::kPermissionDenied, text +
                                                " (check AWS_ACCESS_KEY_ID, "
                                                "AWS_SECRET_ACCESS_KEY and the bucket policy)"};
    case 301:
    case 307: {
      std::string region = response.headers.contains("x-amz-bucket-region")
                               ? response.headers.at("x-amz-bucket-region")
                               : "";
      return {ErrorCode::kInvalidArgument, text + " (the bucket is in another region" +
                                               (region.empty() ? "" : ": set region=" + region) +
                                               " in SYNAPS_OBJECT_STORE)"};
    }
    case 400:
    case 405:
    case 411:
    case 412:
    case 416:
      return {ErrorCode::kInvalidArgument, text};
    case 409:
      return {ErrorCode::kConflict, text};
    default:
      return {ErrorCode::kInternal, text};
  }
}

}  // namespace synaps::objstore::detail
