// ObjectStore on S3 and S3-compatible servers (AWS, MinIO, s3rver), over libcurl with libcurl's
// own AWS Signature V4 signing. See docs/storage.md for configuration and the decisions.
//
// Put uploads with one PutObject up to `multipart_threshold` bytes and with a multipart upload
// above it (aborted when any step fails, so no parts are left billed). Every request is retried
// with exponential backoff and full jitter on connection errors, timeouts, 5xx and 429/SlowDown;
// other 4xx replies fail at once. Put always uploads, also when the key exists: overwriting a
// content-addressed key with the same bytes is harmless and refreshes LastModified, which the
// garbage collector's grace period relies on.
//
// Thread-safe: requests run on the calling thread with an easy handle taken from a pool guarded
// by a mutex (idle handles keep their connections alive between calls).
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "objstore/object_store.h"

namespace synaps::objstore {

namespace detail {
class S3Client;
}

struct S3Options {
  std::string bucket;
  std::string region = "us-east-1";
  // scheme://host[:port] without a path. Empty means https://s3.<region>.amazonaws.com.
  std::string endpoint;
  // Path style puts the bucket in the path (http://host/bucket/key), as MinIO and s3rver need;
  // otherwise virtual-host style (http://bucket.host/key), as AWS prefers.
  bool path_style = false;
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // optional, for temporary credentials

  // Objects larger than this are uploaded in parts of `part_size` bytes. AWS wants every part
  // but the last to be at least 5 MiB; at most 10,000 parts (part_size grows to fit).
  size_t multipart_threshold = 8u << 20;
  size_t part_size = 8u << 20;
  int list_page_size = 1000;  // max-keys of each ListObjectsV2 page
  int max_attempts = 4;       // per HTTP request, the first included
  std::chrono::milliseconds retry_base{200};
  std::chrono::milliseconds retry_cap{5000};
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds request_timeout{120000};  // each HTTP request, body included

  // For tests only. `fixed_amz_date` ("20130524T000000Z") makes requests carry that
  // x-amz-date, which libcurl then signs with (libcurl 7.88 also adds its own copy of the
  // header with the same value). `connect_to` entries are CURLOPT_CONNECT_TO
  // ("host:port:127.0.0.1:port"), to reach a local server under a public host name.
  std::string fixed_amz_date;
  std::vector<std::string> connect_to;
};

// Parses "s3://bucket?endpoint=...&region=...&path_style=1" (every parameter optional; no others
// allowed). Credentials are left empty. Throws ConfigError naming SYNAPS_OBJECT_STORE.
S3Options ParseS3Url(const std::string& url);

class S3ObjectStore final : public ObjectStore {
 public:
  // Throws ConfigError when options cannot work (no bucket or credentials, bad endpoint).
  explicit S3ObjectStore(S3Options options);
  ~S3ObjectStore() override;
  S3ObjectStore(const S3ObjectStore&) = delete;
  S3ObjectStore& operator=(const S3ObjectStore&) = delete;

  Status Put(const std::string& key, const std::string& data,
             const std::string& content_type) override;
  Result<std::string> Get(const std::string& key) override;
  Result<std::string> GetAtMost(const std::string& key, uint64_t max_bytes) override;
  // A GET with "Range: bytes=offset-(offset+length-1)", answered 206 with exactly those bytes.
  Result<std::string> GetRange(const std::string& key, uint64_t offset, uint64_t length) override;
  Result<bool> Exists(const std::string& key) override;
  Result<std::vector<ObjectInfo>> List(const std::string& prefix) override;
  Status Delete(const std::string& key) override;
  std::string Describe() const override;

  const S3Options& options() const { return options_; }

 private:
  Status PutMultipart(const std::string& key, const std::string& data,
                      const std::string& content_type);

  const S3Options options_;
  std::unique_ptr<detail::S3Client> client_;
};

}  // namespace synaps::objstore
