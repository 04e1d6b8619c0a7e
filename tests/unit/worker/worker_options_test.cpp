// WorkerOptionsFromEnv: the answer-artifact threshold (docs/worker.md, "Store"), the slots and
// the provider connections kept open for them (docs/providers.md).
#include <gtest/gtest.h>

#include <cstdlib>

#include "core/error.h"
#include "worker/worker.h"

namespace synaps::worker {
namespace {

TEST(WorkerOptionsTest, AnswerArtifactThresholdDefaultsTo16KiBAndRefusesNonsense) {
  unsetenv("SYNAPS_ANSWER_ARTIFACT_MIN_BYTES");
  EXPECT_EQ(WorkerOptionsFromEnv().answer_artifact_min_bytes, 16384u);
  setenv("SYNAPS_ANSWER_ARTIFACT_MIN_BYTES", "0", 1);  // every answer is answer.md
  EXPECT_EQ(WorkerOptionsFromEnv().answer_artifact_min_bytes, 0u);
  for (const char* bad : {"-1", "lots", "16k", "2147483648"}) {
    setenv("SYNAPS_ANSWER_ARTIFACT_MIN_BYTES", bad, 1);
    EXPECT_THROW(WorkerOptionsFromEnv(), ConfigError) << bad;
  }
  unsetenv("SYNAPS_ANSWER_ARTIFACT_MIN_BYTES");
}

// 128 slots by default; libcurl's connection cache holds at least one connection per slot
// unless SYNAPS_PROVIDER_MAX_IDLE_CONNECTIONS says otherwise (a smaller cache closes every
// connection whose call ends while more are in flight than it holds).
TEST(WorkerOptionsTest, ProviderConnectionsFollowTheSlotsUnlessSet) {
  unsetenv("SYNAPS_WORKER_CONCURRENCY");
  unsetenv("SYNAPS_PROVIDER_MAX_IDLE_CONNECTIONS");
  WorkerOptions o = WorkerOptionsFromEnv();
  EXPECT_EQ(o.concurrency, 128);
  EXPECT_EQ(o.provider_settings.max_idle_connections, 256);
  setenv("SYNAPS_WORKER_CONCURRENCY", "10000", 1);
  EXPECT_EQ(WorkerOptionsFromEnv().provider_settings.max_idle_connections, 10000);
  setenv("SYNAPS_PROVIDER_MAX_IDLE_CONNECTIONS", "64", 1);
  EXPECT_EQ(WorkerOptionsFromEnv().provider_settings.max_idle_connections, 64);
  unsetenv("SYNAPS_WORKER_CONCURRENCY");
  unsetenv("SYNAPS_PROVIDER_MAX_IDLE_CONNECTIONS");
}

}  // namespace
}  // namespace synaps::worker
