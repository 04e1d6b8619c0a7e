#include "objstore/s3_store.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <thread>

#include "objstore/detail/s3_client.h"
#include "objstore/detail/s3_wire.h"

namespace synaps::objstore {

using detail::ErrorFromResponse;
using detail::S3Request;
using detail::S3Response;

namespace {

constexpr const char* kSetting = "SYNAPS_OBJECT_STORE";
constexpr size_t kMaxParts = 10000;
// Room for an error body (a few hundred bytes of XML) when a read caps what it takes.
constexpr uint64_t kErrorBody = 64 * 1024;

[[noreturn]] void BadUrl(const std::string& url, const std::string& why) {
  throw ConfigError(std::string(kSetting) + "='" + url + "': " + why +
                    ". Expected s3://bucket?endpoint=http://host:port&region=us-east-1&path_style=1"
                    " (every parameter optional; see docs/storage.md)");
}

std::string PercentDecode(const std::string& url, std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%') {
      if (i + 2 >= text.size() || !std::isxdigit(static_cast<unsigned char>(text[i + 1])) ||
          !std::isxdigit(static_cast<unsigned char>(text[i + 2]))) {
        BadUrl(url, "bad percent-encoding in '" + std::string(text) + "'");
      }
      out.push_back(static_cast<char>(std::stoi(std::string(text.substr(i + 1, 2)), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

// S3's bucket naming rules (the DNS-compatible ones, so virtual-host style always works).
bool ValidBucketName(const std::string& name) {
  if (name.size() < 3 || name.size() > 63) return false;
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!alnum(name.front()) || !alnum(name.back())) return false;
  return std::all_of(name.begin(), name.end(),
                     [&](char c) { return alnum(c) || c == '-' || c == '.'; });
}

bool ValidRegion(const std::string& region) {
  return !region.empty() && std::all_of(region.begin(), region.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

Status CheckReply(const Result<S3Response>& reply, const std::string& what) {
  if (!reply) return std::unexpected(reply.error());
  if (reply->status / 100 != 2) return std::unexpected(ErrorFromResponse(*reply, what));
  return Ok();
}

}  // namespace

S3Options ParseS3Url(const std::string& url) {
  if (!url.starts_with("s3://")) BadUrl(url, "not an s3:// URL");
  std::string rest = url.substr(5);
  std::string query;
  if (size_t q = rest.find('?'); q != std::string::npos) {
    query = rest.substr(q + 1);
    rest.resize(q);
  }
  if (rest.ends_with('/')) rest.pop_back();
  if (rest.empty()) BadUrl(url, "the bucket name is missing");
  if (rest.find('/') != std::string::npos) {
    BadUrl(url, "an s3 URL names a bucket only, without a path");
  }
  if (!ValidBucketName(rest)) {
    BadUrl(url, "'" + rest +
                    "' is not a valid bucket name (3-63 characters: a-z, 0-9, '.', '-', "
                    "starting and ending with a letter or digit)");
  }
  S3Options options;
  options.bucket = rest;
  std::map<std::string, std::string> params;
  size_t start = 0;
  while (start <= query.size() && !query.empty()) {
    size_t amp = query.find('&', start);
    std::string pair =
        query.substr(start, amp == std::string::npos ? std::string::npos : amp - start);
    start = amp == std::string::npos ? query.size() + 1 : amp + 1;
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    std::string name = pair.substr(0, eq);
    std::string value = eq == std::string::npos ? "" : PercentDecode(url, pair.substr(eq + 1));
    if (name != "endpoint" && name != "region" && name != "path_style") {
      BadUrl(url, "unknown parameter '" + name + "' (known: endpoint, region, path_style)");
    }
    if (!params.emplace(name, value).second) BadUrl(url, "parameter '" + name + "' given twice");
  }
  if (params.contains("region")) {
    options.region = params["region"];
    if (!ValidRegion(options.region)) {
      BadUrl(url, "region '" + options.region + "' is not a region name like us-east-1");
    }
  }
  if (params.contains("path_style")) {
    const std::string& v = params["path_style"];
    if (v == "1" || v == "true") {
      options.path_style = true;
    } else if (v == "0" || v == "false") {
      options.path_style = false;
    } else {
      BadUrl(url, "path_style must be 1 or 0, not '" + v + "'");
    }
  }
  if (params.contains("endpoint")) {
    options.endpoint = params["endpoint"];
    auto endpoint = detail::ParseEndpoint(options.endpoint);
    if (!endpoint) BadUrl(url, "endpoint '" + options.endpoint + "': " + endpoint.error().message);
  }
  return options;
}

namespace {

S3Options Normalize(S3Options options) {
  if (options.bucket.empty()) throw ConfigError(std::string(kSetting) + ": no bucket given");
  if (options.endpoint.empty())
    options.endpoint = "https://s3." + options.region + ".amazonaws.com";
  auto endpoint = detail::ParseEndpoint(options.endpoint);
  if (!endpoint) {
    throw ConfigError(std::string(kSetting) + ": endpoint '" + options.endpoint +
                      "': " + endpoint.error().message);
  }
  if (options.access_key_id.empty() || options.secret_access_key.empty()) {
    throw ConfigError(
        "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must both be set for the s3 object store "
        "(SYNAPS_OBJECT_STORE=s3://" +
        options.bucket + ")");
  }
  if (options.part_size == 0) options.part_size = 8u << 20;
  if (options.list_page_size <= 0 || options.list_page_size > 1000) options.list_page_size = 1000;
  return options;
}

}  // namespace

S3ObjectStore::S3ObjectStore(S3Options options)
    : options_(Normalize(std::move(options))),
      client_(std::make_unique<detail::S3Client>(options_)) {}

S3ObjectStore::~S3ObjectStore() = default;

std::string S3ObjectStore::Describe() const {
  return "s3://" + options_.bucket + " (endpoint " + options_.endpoint + ", region " +
         options_.region + ", " + (options_.path_style ? "path-style" : "virtual-host") + ")";
}

Status S3ObjectStore::Put(const std::string& key, const std::string& data,
                          const std::string& content_type) {
  RETURN_IF_ERROR(ValidateKey(key));
  const std::string type = content_type.empty() ? "application/octet-stream" : content_type;
  if (data.size() > options_.multipart_threshold) return PutMultipart(key, data, type);
  S3Request request{.method = "PUT", .key = key, .headers = {{"Content-Type", type}}, .body = data};
  return CheckReply(client_->SendWithRetry(request), "put " + key);
}

Status S3ObjectStore::PutMultipart(const std::string& key, const std::string& data,
                                   const std::string& content_type) {
  S3Request create{.method = "POST",
                   .key = key,
                   .query = {{"uploads", ""}},
                   .headers = {{"Content-Type", content_type}}};
  auto created = client_->SendWithRetry(create);
  RETURN_IF_ERROR(CheckReply(created, "create multipart upload of " + key));
  auto upload_id = detail::XmlText(created->body, "UploadId");
  if (!upload_id || upload_id->empty()) {
    return Fail(ErrorCode::kInternal,
                "create multipart upload of " + key + ": no UploadId in reply");
  }

  auto upload_parts = [&]() -> Status {
    size_t part_size = std::max(options_.part_size, (data.size() + kMaxParts - 1) / kMaxParts);
    std::string manifest = "<CompleteMultipartUpload>";
    int number = 0;
    for (size_t offset = 0; offset < data.size(); offset += part_size) {
      ++number;
      S3Request part{.method = "PUT",
                     .key = key,
                     .query = {{"partNumber", std::to_string(number)}, {"uploadId", *upload_id}},
                     .body = std::string_view(data).substr(offset, part_size)};
      auto reply = client_->SendWithRetry(part);
      RETURN_IF_ERROR(CheckReply(reply, "upload part " + std::to_string(number) + " of " + key));
      auto etag = reply->headers.find("etag");
      if (etag == reply->headers.end() || etag->second.empty()) {
        return Fail(ErrorCode::kInternal,
                    "upload part " + std::to_string(number) + " of " + key + ": no ETag in reply");
      }
      manifest += "<Part><PartNumber>" + std::to_string(number) + "</PartNumber><ETag>" +
                  detail::XmlEscape(etag->second) + "</ETag></Part>";
    }
    manifest += "</CompleteMultipartUpload>";

    S3Request complete{.method = "POST",
                       .key = key,
                       .query = {{"uploadId", *upload_id}},
                       .headers = {{"Content-Type", "application/xml"}},
                       .body = manifest};
    const int attempts = std::max(1, options_.max_attempts);
    for (int attempt = 1;; ++attempt) {
      auto reply = client_->SendWithRetry(complete);
      Status status = CheckReply(reply, "complete multipart upload of " + key);
      bool error_in_body = false;
      // S3 may answer 200 and still fail: the error is then in the body, and SendWithRetry has
      // not retried it.
      if (status && reply->body.find("<Error>") != std::string::npos) {
        S3Response failed = *reply;
        std::string code = detail::XmlText(failed.body, "Code").value_or("");
        failed.status = (code == "InternalError" || code == "SlowDown") ? 503 : 400;
        status = std::unexpected(ErrorFromResponse(failed, "complete multipart upload of " + key));
        error_in_body = true;
      }
      if (status) return Ok();
      if (status.error().code == ErrorCode::kNotFound) {
        // NoSuchUpload after a retried Complete: the first may have succeeded unseen.
        auto head = client_->SendWithRetry({.method = "HEAD", .key = key});
        if (head && head->status == 200 &&
            head->headers["content-length"] == std::to_string(data.size())) {
          return Ok();
        }
        return status;
      }
      if (!error_in_body || !status.error().retryable() || attempt >= attempts) return status;
      std::this_thread::sleep_for(detail::RetryDelay(options_, attempt));
    }
  };

  Status result = upload_parts();
  if (!result) {
    S3Request abort{.method = "DELETE", .key = key, .query = {{"uploadId", *upload_id}}};
    Status aborted = CheckReply(client_->SendWithRetry(abort), "abort multipart upload of " + key);
    if (!aborted) {
      spdlog::warn(
          "multipart upload {} of {} not aborted ({}); a bucket lifecycle rule for "
          "incomplete multipart uploads removes its parts",
          *upload_id, key, aborted.error().message);
    }
  }
  return result;
}

Result<std::string> S3ObjectStore::Get(const std::string& key) {
  return GetAtMost(key, UINT64_MAX);  // no cap: the transfer is not cut off
}

Result<std::string> S3ObjectStore::GetAtMost(const std::string& key, uint64_t max_bytes) {
  RETURN_IF_ERROR(ValidateKey(key));
  auto reply = client_->SendWithRetry(
      {.method = "GET", .key = key, .max_body = std::max(max_bytes, kErrorBody)});
  // Cut off mid-transfer, or an error-sized body that is still over the cap.
  const bool too_large = reply ? reply->status / 100 == 2 && reply->body.size() > max_bytes
                               : reply.error().code == ErrorCode::kResourceExhausted;
  if (too_large) {
    return Fail(ErrorCode::kResourceExhausted, "object " + key + " in " + Describe() +
                                                   " holds more than the " +
                                                   std::to_string(max_bytes) + " bytes read");
  }
  if (!reply) return std::unexpected(reply.error());
  if (reply->status == 404) {
    return Fail(ErrorCode::kNotFound, "object " + key + " not found in " + Describe());
  }
  RETURN_IF_ERROR(CheckReply(reply, "get " + key));
  return std::move(reply->body);
}

Result<std::string> S3ObjectStore::GetRange(const std::string& key, uint64_t offset,
                                            uint64_t length) {
  RETURN_IF_ERROR(ValidateKey(key));
  if (length == 0) return Fail(ErrorCode::kInvalidArgument, "empty range of object " + key);
  const std::string range =
      "bytes=" + std::to_string(offset) + "-" + std::to_string(offset + length - 1);
  // A store that ignores the range is cut off soon after `length` bytes.
  auto reply = client_->SendWithRetry({.method = "GET",
                                       .key = key,
                                       .headers = {{"Range", range}},
                                       .max_body = std::max(length, kErrorBody)});
  if (!reply && reply.error().code == ErrorCode::kResourceExhausted) {
    return Fail(ErrorCode::kInternal, "get " + key + " " + range +
                                          ": the store answered more than the range (does it "
                                          "ignore Range?)");
  }
  if (!reply) return std::unexpected(reply.error());
  if (reply->status == 404) {
    return Fail(ErrorCode::kNotFound, "object " + key + " not found in " + Describe());
  }
  if (reply->status == 416) {
    return Fail(ErrorCode::kInvalidArgument,
                "object " + key + " ends before byte " + std::to_string(offset + length));
  }
  RETURN_IF_ERROR(CheckReply(reply, "get " + key + " " + range));
  // A range that runs past the end is answered with what there is.
  if (reply->status == 206 && reply->body.size() < length) {
    return Fail(ErrorCode::kInvalidArgument,
                "object " + key + " ends before byte " + std::to_string(offset + length));
  }
  if (reply->status != 206 || reply->body.size() != length) {
    return Fail(ErrorCode::kInternal, "get " + key + " " + range + ": the store answered " +
                                          std::to_string(reply->body.size()) + " bytes with HTTP " +
                                          std::to_string(reply->status) + ", not the 206 with " +
                                          std::to_string(length) + " bytes asked for");
  }
  return std::move(reply->body);
}

Result<bool> S3ObjectStore::Exists(const std::string& key) {
  RETURN_IF_ERROR(ValidateKey(key));
  auto reply = client_->SendWithRetry({.method = "HEAD", .key = key});
  if (!reply) return std::unexpected(reply.error());
  if (reply->status == 404) return false;
  RETURN_IF_ERROR(CheckReply(reply, "head " + key));
  return true;
}

Result<std::vector<ObjectInfo>> S3ObjectStore::List(const std::string& prefix) {
  std::vector<ObjectInfo> objects;
  std::string token;
  while (true) {
    S3Request request{.method = "GET",
                      .query = {{"list-type", "2"},
                                {"max-keys", std::to_string(options_.list_page_size)},
                                {"prefix", prefix}}};
    if (!token.empty()) request.query.emplace_back("continuation-token", token);
    auto reply = client_->SendWithRetry(request);
    RETURN_IF_ERROR(CheckReply(reply, "list " + prefix));
    for (std::string_view entry : detail::XmlElements(reply->body, "Contents")) {
      ObjectInfo info;
      auto key = detail::XmlText(entry, "Key");
      auto size = detail::XmlText(entry, "Size");
      auto modified = detail::XmlText(entry, "LastModified");
      if (!key || !size || !modified) {
        return Fail(ErrorCode::kInternal, "list " + prefix +
                                              ": an entry lacks Key, Size or "
                                              "LastModified");
      }
      info.key = std::move(*key);
      try {
        info.size = std::stoll(*size);
      } catch (const std::exception&) {
        return Fail(ErrorCode::kInternal, "list " + prefix + ": bad Size '" + *size + "'");
      }
      auto when = detail::ParseIso8601(*modified);
      if (!when) return Fail(ErrorCode::kInternal, "list " + prefix + ": " + when.error().message);
      info.last_modified = *when;
      objects.push_back(std::move(info));
    }
    bool truncated = detail::XmlText(reply->body, "IsTruncated").value_or("false") == "true";
    if (!truncated) break;
    token = detail::XmlText(reply->body, "NextContinuationToken").value_or("");
    if (token.empty()) {
      return Fail(ErrorCode::kInternal, "list " + prefix + ": truncated page without a token");
    }
  }
  return objects;
}

Status S3ObjectStore::Delete(const std::string& key) {
  RETURN_IF_ERROR(ValidateKey(key));
  auto reply = client_->SendWithRetry({.method = "DELETE", .key = key});
  if (reply && reply->status == 404) return Ok();
  return CheckReply(reply, "delete " + key);
}

}  // namespace synaps::objstore
