// ObjectStore on a local directory. Put writes a temporary file, fsyncs and renames it into
// place (then fsyncs the directory), so a crash never leaves a partial object under its key.
// Temporary files are never listed. Thread-safe: every call works on its own files.
#pragma once

#include <filesystem>

#include "objstore/object_store.h"

namespace synaps::objstore {

class FileObjectStore final : public ObjectStore {
 public:
  // Creates `root` if needed.
  explicit FileObjectStore(std::filesystem::path root);

  Status Put(const std::string& key, const std::string& data,
             const std::string& content_type) override;
  Result<std::string> Get(const std::string& key) override;
  Result<std::string> GetAtMost(const std::string& key, uint64_t max_bytes) override;
  Result<std::string> GetRange(const std::string& key, uint64_t offset, uint64_t length) override;
  Result<bool> Exists(const std::string& key) override;
  Result<std::vector<ObjectInfo>> List(const std::string& prefix) override;
  Status Delete(const std::string& key) override;
  std::string Describe() const override { return "file://" + root_.string(); }

 private:
  // kInvalidArgument for keys that could escape the root.
  Result<std::filesystem::path> PathFor(const std::string& key) const;
  const std::filesystem::path root_;
};

}  // namespace synaps::objstore
