#include "objstore/object_store.h"

#include "core/config.h"
#include "objstore/file_store.h"
#include "objstore/s3_store.h"

namespace synaps::objstore {

std::string ContentKey(const std::string& sha256_hex) {
  return std::string(kContentPrefix) + "sha256/" + sha256_hex.substr(0, 2) + "/" + sha256_hex;
}

Status ValidateKey(const std::string& key) {
  if (key.empty()) return Fail(ErrorCode::kInvalidArgument, "empty object key");
  if (key.size() > 1024) {
    return Fail(ErrorCode::kInvalidArgument, "object key longer than 1024 bytes");
  }
  if (key.front() == '/' || key.find("..") != std::string::npos) {
    return Fail(ErrorCode::kInvalidArgument, "invalid object key: " + key);
  }
  for (unsigned char c : key) {
    if (c < 0x20 || c == 0x7F) {
      return Fail(ErrorCode::kInvalidArgument, "object key with a control character");
    }
  }
  return Ok();
}

std::unique_ptr<ObjectStore> OpenObjectStore(const std::string& url) {
  if (url.starts_with("file://")) {
    std::string path = url.substr(7);
    if (path.empty() || path.front() != '/') {
      throw ConfigError("SYNAPS_OBJECT_STORE='" + url +
                        "' needs an absolute path, e.g. file:///var/lib/synaps/objects");
    }
    return std::make_unique<FileObjectStore>(path);
  }
  if (url.starts_with("s3://")) {
    S3Options options = ParseS3Url(url);
    options.access_key_id = config::EnvOr("AWS_ACCESS_KEY_ID", "");
    options.secret_access_key = config::EnvOr("AWS_SECRET_ACCESS_KEY", "");
    options.session_token = config::EnvOr("AWS_SESSION_TOKEN", "");
    return std::make_unique<S3ObjectStore>(std::move(options));
  }
  throw ConfigError("SYNAPS_OBJECT_STORE='" + url +
                    "' is not supported: use file:///path or s3://bucket?endpoint=...");
}

}  // namespace synaps::objstore
