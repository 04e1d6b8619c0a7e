// Where artifact bytes live. Keys are content-addressed (ContentKey), so writing the same bytes
// twice stores the same object and a retried upload is idempotent. Implementations are
// thread-safe: one instance is shared by every thread of a process.
//
// Keys are relative, '/'-separated, at most 1024 bytes, with no "..", no leading '/', and no
// control characters; other keys are refused with kInvalidArgument.
//
// Failures are values: kNotFound (no such object), kInvalidArgument (bad key, or a request the
// store refused as malformed), kPermissionDenied (credentials refused), kUnavailable and
// kDeadlineExceeded (transient: the store could not be reached or answered 5xx after the
// implementation's own retries; the caller may try again later).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"

namespace synaps::objstore {

// One listed object.
struct ObjectInfo {
  std::string key;
  int64_t size = 0;
  // When the object was last written, by the store's clock (S3: LastModified; file: mtime).
  // Put of an existing key refreshes it; garbage collection relies on that (docs/storage.md).
  std::chrono::system_clock::time_point last_modified;
};

class ObjectStore {
 public:
  virtual ~ObjectStore() = default;
  // Stores `data` under `key`, atomically: readers see all of it or nothing. The object's
  // last-modified time is refreshed even when the key exists (garbage collection relies on it);
  // a store may skip rewriting a content-addressed object it already holds (the file store does).
  virtual Status Put(const std::string& key, const std::string& data,
                     const std::string& content_type) = 0;
  // kNotFound when absent.
  virtual Result<std::string> Get(const std::string& key) = 0;
  // The whole object when it holds at most `max_bytes`; kResourceExhausted when it holds more,
  // having received not much more than `max_bytes` of it (for objects that others than Synaps
  // may have written, read into memory); kNotFound when absent.
  virtual Result<std::string> GetAtMost(const std::string& key, uint64_t max_bytes) = 0;
  // Exactly the `length` bytes of `key` that start at byte `offset` (S3: a Range GET), never
  // receiving much more than that: kNotFound when absent; kInvalidArgument when `length` is 0 or
  // the object ends before offset + length; kInternal when the store answers other bytes.
  virtual Result<std::string> GetRange(const std::string& key, uint64_t offset,
                                       uint64_t length) = 0;
  virtual Result<bool> Exists(const std::string& key) = 0;
  // Every object whose key starts with `prefix`, in no particular order.
  virtual Result<std::vector<ObjectInfo>> List(const std::string& prefix) = 0;
  // Removes the object; deleting an absent key succeeds.
  virtual Status Delete(const std::string& key) = 0;
  // A human-readable location for logs ("file:///var/lib/synaps/objects"); never credentials.
  virtual std::string Describe() const = 0;
};

// The prefix under which every content-addressed object lives ("objects/").
inline constexpr const char* kContentPrefix = "objects/";

// "objects/sha256/ab/abcdef..." for the given lower-case hex digest.
std::string ContentKey(const std::string& sha256_hex);

// kInvalidArgument unless `key` follows the rules above.
Status ValidateKey(const std::string& key);

// Opens the store named by a SYNAPS_OBJECT_STORE URL:
//   file:///absolute/path
//   s3://bucket?endpoint=http://host:port&region=us-east-1&path_style=1
// (s3 credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and optional AWS_SESSION_TOKEN).
// Throws ConfigError for a malformed or unsupported URL or missing credentials, naming the
// setting and the fix.
std::unique_ptr<ObjectStore> OpenObjectStore(const std::string& url);

}  // namespace synaps::objstore
