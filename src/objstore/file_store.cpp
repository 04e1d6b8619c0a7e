#include "objstore/file_store.h"

#include <fcntl.h>
#include <sys/stat.h>
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
    throw ConfigError("SYNAPS_OBJECT_STORE: cannot create " + root_.string() + ": " + ec.message());
  }
}

Result<fs::path> FileObjectStore::PathFor(const std::string& key) const {
  RETURN_IF_ERROR(ValidateKey(key));
  return root_ / key;
}

namespace {

// Makes a rename in `dir` durable.
void SyncDirectory(const fs::path& dir) {
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  fsync(fd);
  close(fd);
}

}  // namespace

Status FileObjectStore::Put(const std::string& key, const std::string& data,
                            const std::string& /*content_type*/) {
  ASSIGN_OR_RETURN(fs::path path, PathFor(key));
  // A content-addressed object already held (same key and size: the same bytes, written and
  // fsynced before) is not written again; only its time is refreshed, which is what garbage
  // collection reads. Saves a write and two fsyncs per repeated answer.
  if (key.starts_with(kContentPrefix)) {
    struct stat st;
    if (stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        static_cast<size_t>(st.st_size) == data.size() &&
        utimensat(AT_FDCWD, path.c_str(), nullptr, 0) == 0) {
      return Ok();
    }
  }
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
  SyncDirectory(path.parent_path());
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

Result<std::string> FileObjectStore::GetAtMost(const std::string& key, uint64_t max_bytes) {
  ASSIGN_OR_RETURN(fs::path path, PathFor(key));
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Fail(ErrorCode::kNotFound, "object " + key + " not found");
    return Fail(ErrorCode::kUnavailable, "cannot read " + path.string() + ": " + strerror(errno));
  }
  // Read until the end or past the cap (by at most one buffer): a file that grows while it is
  // read is measured by what was read, not by a size taken before.
  std::string data;
  char buf[64 * 1024];
  while (true) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      close(fd);
      return Fail(ErrorCode::kUnavailable, "cannot read " + path.string() + ": " + strerror(err));
    }
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
    if (data.size() > max_bytes) {
      close(fd);
      return Fail(ErrorCode::kResourceExhausted, "object " + key + " holds more than the " +
                                                     std::to_string(max_bytes) + " bytes read");
    }
  }
  close(fd);
  return data;
}

Result<std::string> FileObjectStore::GetRange(const std::string& key, uint64_t offset,
                                              uint64_t length) {
  ASSIGN_OR_RETURN(fs::path path, PathFor(key));
  if (length == 0) return Fail(ErrorCode::kInvalidArgument, "empty range of object " + key);
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Fail(ErrorCode::kNotFound, "object " + key + " not found");
    return Fail(ErrorCode::kUnavailable, "cannot read " + path.string() + ": " + strerror(errno));
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || offset > static_cast<uint64_t>(st.st_size) ||
      length > static_cast<uint64_t>(st.st_size) - offset) {
    close(fd);
    return Fail(ErrorCode::kInvalidArgument,
                "object " + key + " ends before byte " + std::to_string(offset + length));
  }
  std::string out(length, '\0');
  size_t done = 0;
  while (done < length) {
    ssize_t n = pread(fd, out.data() + done, length - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = n < 0 ? errno : 0;
      close(fd);
      return Fail(ErrorCode::kUnavailable, "cannot read " + path.string() + ": " +
                                               (err != 0 ? strerror(err) : "it got shorter"));
    }
    done += static_cast<size_t>(n);
  }
  close(fd);
  return out;
}

Result<bool> FileObjectStore::Exists(const std::string& key) {
  ASSIGN_OR_RETURN(fs::path path, PathFor(key));
  std::error_code ec;
  return fs::is_regular_file(path, ec);
}

Result<std::vector<ObjectInfo>> FileObjectStore::List(const std::string& prefix) {
  std::vector<ObjectInfo> objects;
  std::error_code ec;
  // Walk only the deepest directory that the prefix names in full.
  fs::path start = root_;
  if (size_t slash = prefix.rfind('/'); slash != std::string::npos) {
    if (!ValidateKey(prefix.substr(0, slash))) return objects;
    start = root_ / prefix.substr(0, slash);
  }
  if (!fs::is_directory(start, ec)) return objects;
  for (auto it = fs::recursive_directory_iterator(start, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code entry_ec;
    if (!it->is_regular_file(entry_ec)) continue;
    std::string key = fs::relative(it->path(), root_, entry_ec).string();
    if (entry_ec || key.find(".tmp-") != std::string::npos || !key.starts_with(prefix)) continue;
    ObjectInfo info;
    info.size = static_cast<int64_t>(it->file_size(entry_ec));
    auto mtime = it->last_write_time(entry_ec);
    if (entry_ec) continue;  // removed while we walked
    info.last_modified = std::chrono::time_point_cast<std::chrono::system_clock::duration>(
        std::chrono::file_clock::to_sys(mtime));
    info.key = std::move(key);
    objects.push_back(std::move(info));
  }
  if (ec)
    return Fail(ErrorCode::kUnavailable, "cannot list " + start.string() + ": " + ec.message());
  return objects;
}

Status FileObjectStore::Delete(const std::string& key) {
  ASSIGN_OR_RETURN(fs::path path, PathFor(key));
  std::error_code ec;
  fs::remove(path, ec);
  if (ec) return Fail(ErrorCode::kUnavailable, "cannot delete " + key + ": " + ec.message());
  return Ok();
}

}  // namespace synaps::objstore
