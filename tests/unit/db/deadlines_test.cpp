// Per-role connection deadlines from the environment (db/deadlines.h): defaults, overrides, and
// a clear startup error naming the variable for a bad value.
#include "db/deadlines.h"

#include <gtest/gtest.h>
#include <stdlib.h>

namespace synaps::db {
namespace {

using std::chrono::milliseconds;

class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) { setenv(name, value, 1); }
  ~ScopedEnv() { unsetenv(name_); }

 private:
  const char* name_;
};

TEST(DeadlinesTest, DefaultsPerRole) {
  EXPECT_EQ(ConnectOptionsFromEnv(Role::kWorker).statement_timeout, milliseconds(10'000));
  EXPECT_EQ(ConnectOptionsFromEnv(Role::kApi).statement_timeout, milliseconds(15'000));
  EXPECT_EQ(ConnectOptionsFromEnv(Role::kRelay).statement_timeout, milliseconds(15'000));
  EXPECT_EQ(ConnectOptionsFromEnv(Role::kMigrate).statement_timeout, milliseconds(600'000));
  auto o = ConnectOptionsFromEnv(Role::kWorker);
  EXPECT_EQ(o.connect_timeout, milliseconds(5'000));
  EXPECT_EQ(o.call_deadline(), milliseconds(12'000));
  EXPECT_EQ(o.keepalive_idle.count(), 30);
  EXPECT_EQ(o.tcp_user_timeout, milliseconds(30'000));
  EXPECT_EQ(MigrateLockTimeoutFromEnv(), milliseconds(120'000));
}

TEST(DeadlinesTest, VariablesOverrideTheirRoleOnly) {
  ScopedEnv worker("SYNAPS_WORKER_STATEMENT_TIMEOUT_MS", "750");
  ScopedEnv grace("SYNAPS_DB_DEADLINE_GRACE_MS", "250");
  EXPECT_EQ(ConnectOptionsFromEnv(Role::kWorker).call_deadline(), milliseconds(1'000));
  EXPECT_EQ(ConnectOptionsFromEnv(Role::kApi).call_deadline(), milliseconds(15'250));
}

TEST(DeadlinesTest, ABadValueNamesTheVariable) {
  {
    ScopedEnv bad("SYNAPS_DB_CONNECT_TIMEOUT_MS", "5s");
    try {
      ConnectOptionsFromEnv(Role::kApi);
      FAIL() << "no error";
    } catch (const ConfigError& e) {
      EXPECT_STREQ(e.what(), "SYNAPS_DB_CONNECT_TIMEOUT_MS='5s' is not an integer");
    }
  }
  ScopedEnv zero("SYNAPS_API_STATEMENT_TIMEOUT_MS", "0");
  EXPECT_THROW(ConnectOptionsFromEnv(Role::kApi), ConfigError);
  EXPECT_NO_THROW(ConnectOptionsFromEnv(Role::kWorker));
}

}  // namespace
}  // namespace synaps::db
