#include "objstore/object_store.h"

#include "objstore/file_store.h"

namespace synaps::objstore {

std::string ContentKey(const std::string& sha256_hex) {
  return "objects/sha256/" + sha256_hex.substr(0, 2) + "/" + sha256_hex;
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
    throw ConfigError("SYNAPS_OBJECT_STORE='" + url +
                      "': the s3 store is not built yet in this version; use file:///path");
  }
  throw ConfigError("SYNAPS_OBJECT_STORE='" + url +
                    "' is not supported: use file:///path or s3://bucket?endpoint=...");
}

}  // namespace synaps::objstore
