// Child processes with one owner: the ChildProcess object. Destroying it stops the child
// (SIGTERM, then SIGKILL after a grace period) and reaps it. Children also receive SIGKILL when
// the parent dies (PR_SET_PDEATHSIG), so a crashed test or `synaps dev` leaves no servers behind.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"

namespace synaps {

struct ProcessOptions {
  std::vector<std::string> argv;            // argv[0] is the program (PATH is searched)
  std::map<std::string, std::string> env;   // added to / overriding the parent's environment
  std::string log_path;                     // stdout and stderr go here; empty = inherit
  std::string cwd;                          // empty = inherit
  std::optional<std::string> run_as_user;   // switch to this user (needs root)
  int stop_signal = 15;                     // what Stop() sends first (SIGTERM)
};

class ChildProcess {
 public:
  static Result<ChildProcess> Spawn(const ProcessOptions& options);

  ChildProcess() = default;
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess();

  pid_t pid() const { return pid_; }
  bool running();
  // Sends `signal` (no-op once exited).
  void Signal(int signal);
  // Waits up to `timeout` for exit; returns the exit status as from waitpid, or nullopt.
  std::optional<int> Wait(std::chrono::milliseconds timeout);
  // The stop signal (SIGTERM unless set), wait up to `grace`, then SIGKILL; always reaps.
  void Stop(std::chrono::milliseconds grace = std::chrono::seconds(10));

 private:
  ChildProcess(pid_t pid, int stop_signal) : pid_(pid), stop_signal_(stop_signal) {}
  pid_t pid_ = -1;
  int stop_signal_ = 15;
  std::optional<int> exit_status_;
};

// A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, read it, close).
Result<uint16_t> PickFreePort();

// Waits until a TCP connect to host:port succeeds or `timeout` passes.
Status WaitForTcp(const std::string& host, uint16_t port, std::chrono::milliseconds timeout);

}  // namespace synaps
