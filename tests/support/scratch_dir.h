// Temporary directories that belong to one test process. A test binary's servers (PostgreSQL,
// nats-server, s3rver) write hundreds of megabytes under them, so none may outlive the run:
//  - at normal exit the process stops what writes into each directory (`before_remove`, in
//    reverse order of creation) and removes it;
//  - a process that dies without exiting (SIGKILL, a timeout, a crash) leaves its directories,
//    and the next test process to create one removes every `synaps-*` directory whose owner
//    process no longer exists (each directory records its owner's pid).
#pragma once

#include <functional>
#include <string>
#include <string_view>

namespace synaps::testing {

// Creates <temp>/synaps-<prefix>-XXXXXX, mode 0755 (the postgres user must reach data directories
// under it). Throws std::runtime_error when the directory cannot be created. Thread-safe.
std::string MakeScratchDir(std::string_view prefix, std::function<void()> before_remove = {});

}  // namespace synaps::testing
