#include "objstore/file_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/ids.h"

namespace synaps::objstore {

namespace fs = std::filesystem;

FileObjectStore::FileObjectStore(fs::path root) : root_(std::move(root)) {
  std::error_code ec;
  fs::create_directories(root_, ec);
  if (ec) {
    throw ConfigError("SYNAPS_OBJECT_STORE: cannot create " + root_.string() + ": " +
                      ec.message());
  }
}

Result<fs::path> FileObjectStore::PathFor(const std::string& key) const {
  if (key.empty() || key.front() == '/' || key.find("..") != std::string::npos ||
      key.find('\0') != std::string::npos) {
    return Fail(ErrorCode::kInvalidArgument, "invalid object key: " + key);
  }
  return root_ / key;
}

Status FileObjectStore::Put(const std::string& key, const std::string& data,
                            const std::string& /*content_type*/) {
  ASSIGN_OR_RETURN(fs::path path, PathFor(key));
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  if (ec) return Fail(ErrorCode::kUnavailable, "cannot create " + path.parent_path().string());
  fs::path tmp = path;
  tmp += ".tmp-" + RandomHex(6);
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    return Fail(ErrorCode::kUnavailable, "cannot write " + tmp.string() + ": " + strerror(errno));
  }
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      close(fd);
      unlink(tmp.c_str());
      return Fail(ErrorCode::kUnavailable, "write failed: " + std::string(strerror(err)));
    }
    off += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0 || close(fd) != 0) {
    unlink(tmp.c_str());
    return Fail(ErrorCode::kUnavailable, "fsync failed for " + tmp.string());
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    unlink(tmp.c_str());
    return Fail(ErrorCode::kUnavailable, "rename failed for " + path.string());
  }
  return Ok();
}

Result<std::string> FileObjectStore::Get(const std::string& key) {
  ASSIGN_OR_RETURN(fs::path path, PathFor(key));
  std::ifstream in(path, std::ios::binary);
  if (!in) return Fail(ErrorCode::kNotFound, "object " + key + " not found");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Result<bool> FileObjectStore::Exists(const std::string& key) {
  ASSIGN_OR_RETURN(fs::path path, PathFor(key));
  std::error_code ec;
  return fs::is_regular_file(path, ec);
}

Result<std::vector<std::string>> FileObjectStore::List(const std::string& prefix) {
  std::vector<std::string> keys;
  std::error_code ec;
  if (!fs::exists(root_, ec)) return keys;
  for (auto it = fs::recursive_directory_iterator(root_, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file()) continue;
    std::string key = fs::relative(it->path(), root_).string();
    if (key.find(".tmp-") != std::string::npos) continue;
    if (key.starts_with(prefix)) keys.push_back(std::move(key));
  }
  if (ec) return Fail(ErrorCode::kUnavailable, "cannot list " + root_.string() + ": " + ec.message());
  return keys;
}

Status FileObjectStore::Delete(const std::string& key) {
  ASSIGN_OR_RETURN(fs::path path, PathFor(key));
  std::error_code ec;
  fs::remove(path, ec);
  if (ec) return Fail(ErrorCode::kUnavailable, "cannot delete " + key + ": " + ec.message());
  return Ok();
}

}  // namespace synaps::objstore
