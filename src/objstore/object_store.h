// Where artifact bytes live. Keys are content-addressed (ContentKey), so writing the same bytes
// twice is a no-op and a retried upload is idempotent. Implementations are thread-safe.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/error.h"

namespace synaps::objstore {

class ObjectStore {
 public:
  virtual ~ObjectStore() = default;
  // Stores `data` under `key`, atomically: readers see all of it or nothing.
  virtual Status Put(const std::string& key, const std::string& data,
                     const std::string& content_type) = 0;
  // kNotFound when absent.
  virtual Result<std::string> Get(const std::string& key) = 0;
  virtual Result<bool> Exists(const std::string& key) = 0;
  virtual Result<std::vector<std::string>> List(const std::string& prefix) = 0;
  virtual Status Delete(const std::string& key) = 0;
  // A human-readable location for logs ("file:///var/lib/synaps/objects").
  virtual std::string Describe() const = 0;
};

// "objects/sha256/ab/cdef..." for the given lower-case hex digest.
std::string ContentKey(const std::string& sha256_hex);

// Opens the store named by a SYNAPS_OBJECT_STORE URL. Throws ConfigError for a malformed or
// unsupported URL, naming the setting.
std::unique_ptr<ObjectStore> OpenObjectStore(const std::string& url);

}  // namespace synaps::objstore
