// PeriodicThread (core/periodic_thread.h): a step at start, then every period; a step that
// throws does not end the thread; Stop() does not wait for the period.
#include "core/periodic_thread.h"

#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>

namespace synaps {
namespace {

bool WaitFor(const std::function<bool()>& predicate) {
  for (int i = 0; i < 500 && !predicate(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return predicate();
}

TEST(PeriodicThreadTest, RunsAtStartThenEveryPeriodAndSurvivesAThrowingStep) {
  std::atomic<int> runs{0};
  PeriodicThread t("test step", std::chrono::milliseconds(20), [&] {
    if (++runs == 2) throw std::runtime_error("one bad pass");
  });
  t.Start();
  EXPECT_TRUE(WaitFor([&] { return runs >= 4; })) << "runs: " << runs;
  EXPECT_FALSE(t.stopping());
  t.Stop();
  EXPECT_TRUE(t.stopping());
  int after = runs;
  std::this_thread::sleep_for(std::chrono::milliseconds(60));
  EXPECT_EQ(runs, after) << "no step after Stop()";
}

TEST(PeriodicThreadTest, StopDoesNotWaitForTheNextPeriod) {
  std::atomic<int> runs{0};
  PeriodicThread t("slow period", std::chrono::hours(1), [&] { ++runs; });
  t.Start();
  ASSERT_TRUE(WaitFor([&] { return runs == 1; }));
  auto started = std::chrono::steady_clock::now();
  t.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
}

TEST(PeriodicThreadTest, AZeroPeriodNeverStarts) {
  std::atomic<int> runs{0};
  PeriodicThread t("off", std::chrono::milliseconds(0), [&] { ++runs; });
  t.Start();
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  EXPECT_EQ(runs, 0);
}

}  // namespace
}  // namespace synaps
