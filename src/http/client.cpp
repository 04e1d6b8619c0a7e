#include "http/client.h"

#include "curl/handles.h"

namespace synaps::http {
namespace {

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  std::string line(data, size * n);
  size_t colon = line.find(':');
  if (colon != std::string::npos) {
    std::string key = line.substr(0, colon);
    for (auto& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string value = line.substr(colon + 1);
    size_t b = value.find_first_not_of(" \t");
    size_t e = value.find_last_not_of(" \t\r\n");
    (*static_cast<std::map<std::string, std::string>*>(user))[key] =
        b == std::string::npos ? "" : value.substr(b, e - b + 1);
  }
  return size * n;
}

}  // namespace

Result<Response> Send(const RequestOptions& options) {
  curl::EasyHandle easy = curl::NewEasy();
  if (!easy) return Fail(ErrorCode::kInternal, "curl_easy_init failed");
  curl::HeaderList headers;
  for (const auto& h : options.headers) {
    if (!headers.Append(h)) return Fail(ErrorCode::kInternal, "out of memory for headers");
  }
  Response res;
  CURL* c = easy.get();
  curl_easy_setopt(c, CURLOPT_URL, options.url.c_str());
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, options.method.c_str());
  if (options.method != "GET" && options.method != "HEAD") {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, options.body.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(options.body.size()));
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &OnBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &res.body);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, &OnHeader);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &res.headers);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(options.timeout.count()));
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  CURLcode rc = curl_easy_perform(c);
  if (rc == CURLE_OPERATION_TIMEDOUT) {
    return Fail(ErrorCode::kDeadlineExceeded, "no answer from " + options.url + " in time");
  }
  if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST) {
    return Fail(ErrorCode::kUnavailable,
                "cannot reach " + options.url + " (" + curl_easy_strerror(rc) + ")");
  }
  if (rc != CURLE_OK) {
    return Fail(ErrorCode::kUnavailable,
                "request to " + options.url + " failed: " + curl_easy_strerror(rc));
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &res.status);
  return res;
}

}  // namespace synaps::http
