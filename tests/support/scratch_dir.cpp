#include "support/scratch_dir.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <stdexcept>
#include <vector>

namespace synaps::testing {
namespace {

namespace fs = std::filesystem;

constexpr const char* kOwnerFile = ".synaps-owner-pid";

struct Entry {
  std::string path;
  std::function<void()> before_remove;
};

struct Registry {
  std::mutex mu;
  std::vector<Entry> entries;
  pid_t owner = getpid();
};

// Leaked on purpose: the exit hook below must still find it after static destructors ran.
Registry& registry() {
  static Registry* r = new Registry();
  return *r;
}

bool ProcessExists(pid_t pid) { return kill(pid, 0) == 0 || errno == EPERM; }

// Removes directories left by test processes that died without exiting.
void ReapOrphans() {
  std::error_code ec;
  for (const auto& dir : fs::directory_iterator(fs::temp_directory_path(), ec)) {
    if (dir.path().filename().string().rfind("synaps-", 0) != 0) continue;
    std::ifstream owner(dir.path() / kOwnerFile);
    long pid = 0;
    if (!(owner >> pid) || pid <= 0 || ProcessExists(static_cast<pid_t>(pid))) continue;
    fs::remove_all(dir.path(), ec);
  }
}

void RemoveAtExit() {
  Registry& r = registry();
  // A forked child that calls exit() instead of exec'ing must not remove its parent's directories.
  if (getpid() != r.owner) return;
  std::vector<Entry> entries;
  {
    std::lock_guard lock(r.mu);
    entries.swap(r.entries);
  }
  for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
    if (it->before_remove) it->before_remove();
    std::error_code ec;
    fs::remove_all(it->path, ec);
  }
}

}  // namespace

std::string MakeScratchDir(std::string_view prefix, std::function<void()> before_remove) {
  static std::once_flag once;
  std::call_once(once, [] {
    ReapOrphans();
    std::atexit(RemoveAtExit);
  });
  std::string tmpl =
      (fs::temp_directory_path() / ("synaps-" + std::string(prefix) + "-XXXXXX")).string();
  if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed: " + tmpl);
  chmod(tmpl.c_str(), 0755);
  std::ofstream(fs::path(tmpl) / kOwnerFile) << getpid() << "\n";
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  r.entries.push_back({tmpl, std::move(before_remove)});
  return tmpl;
}

}  // namespace synaps::testing
