// The pod's service-account token, read from its file and re-read whenever the file changes.
//
// Bound service-account tokens expire (one hour by default) and the kubelet rotates them by
// writing the new token into a fresh directory and swapping a symlink, so the path stays the
// same while the file behind it changes. Current() checks the file's identity (device, inode,
// size, modification time, following symlinks) with one stat() per call and reads it again
// when any of them changed; a file rewritten in place is caught by its modification time.
//
// Thread safety: none; use it on one thread (the client's event loop). The reads are of a small
// local file (tmpfs in a pod), so they may run on the event loop.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "core/error.h"

namespace synaps::k8s {

class ServiceAccountToken {
 public:
  explicit ServiceAccountToken(std::string path);

  // The token as it is in the file now (surrounding whitespace removed). kUnauthenticated when
  // the file cannot be read or is empty; the message names the path, never the token.
  Result<std::string> Current();

  const std::string& path() const { return path_; }
  // How often the file was actually read (for tests: rotation is picked up, unchanged files are
  // not re-read).
  int64_t reads() const { return reads_; }

 private:
  struct Identity {
    dev_t device = 0;
    ino_t inode = 0;
    off_t size = -1;
    int64_t modified_ns = 0;
    bool operator==(const Identity&) const = default;
  };

  std::string path_;
  Identity identity_;  // of the file `token_` was read from
  std::string token_;  // empty until the first good read
  int64_t reads_ = 0;
};

}  // namespace synaps::k8s
