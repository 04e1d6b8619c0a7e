#include "db/deadlines.h"

#include "core/config.h"

namespace synaps::db {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr int64_t kDay = 86'400'000;

milliseconds Millis(const char* name, int64_t fallback, int64_t min, int64_t max) {
  return milliseconds(config::EnvInt(name, fallback, min, max));
}

milliseconds StatementTimeout(Role role) {
  switch (role) {
    case Role::kApi: return Millis("SYNAPS_API_STATEMENT_TIMEOUT_MS", 15'000, 10, kDay);
    case Role::kRelay: return Millis("SYNAPS_RELAY_STATEMENT_TIMEOUT_MS", 15'000, 10, kDay);
    case Role::kWorker: return Millis("SYNAPS_WORKER_STATEMENT_TIMEOUT_MS", 10'000, 10, kDay);
    case Role::kMigrate: return Millis("SYNAPS_MIGRATE_STATEMENT_TIMEOUT_MS", 600'000, 10, kDay);
    case Role::kCli: return Millis("SYNAPS_CLI_STATEMENT_TIMEOUT_MS", 300'000, 10, kDay);
  }
  return milliseconds(15'000);
}

}  // namespace

ConnectOptions ConnectOptionsFromEnv(Role role) {
  ConnectOptions o;
  o.connect_timeout = Millis("SYNAPS_DB_CONNECT_TIMEOUT_MS", 5'000, 100, 600'000);
  o.keepalive_idle = seconds(config::EnvInt("SYNAPS_DB_KEEPALIVE_IDLE_SECONDS", 30, 1, 7'200));
  o.keepalive_interval =
      seconds(config::EnvInt("SYNAPS_DB_KEEPALIVE_INTERVAL_SECONDS", 10, 1, 600));
  o.keepalive_count = static_cast<int>(config::EnvInt("SYNAPS_DB_KEEPALIVE_COUNT", 3, 1, 100));
  o.tcp_user_timeout = Millis("SYNAPS_DB_TCP_USER_TIMEOUT_MS", 30'000, 0, 3'600'000);
  o.deadline_grace = Millis("SYNAPS_DB_DEADLINE_GRACE_MS", 2'000, 10, 600'000);
  o.statement_timeout = StatementTimeout(role);
  return o;
}

milliseconds MigrateLockTimeoutFromEnv() {
  return Millis("SYNAPS_MIGRATE_LOCK_TIMEOUT_MS", 120'000, 0, kDay);
}

}  // namespace synaps::db
