// WorkerOptionsFromEnv: the answer-artifact threshold (docs/worker.md, "Store").
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

}  // namespace
}  // namespace synaps::worker
