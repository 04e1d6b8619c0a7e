#include "providers/retry.h"

#include <gtest/gtest.h>

#include <set>

namespace synaps::providers {
namespace {

using namespace std::chrono_literals;

TEST(RetryTest, BackoffGrowsExponentiallyWithJitterAndIsCapped) {
  RetryPolicy policy;
  policy.base_delay = 100ms;
  policy.max_delay = 1000ms;
  std::mt19937_64 rng(42);
  for (int i = 0; i < 200; ++i) {
    auto first = BackoffDelay(policy, 2, rng);
    EXPECT_GE(first, 50ms);
    EXPECT_LE(first, 100ms);
    auto third = BackoffDelay(policy, 4, rng);
    EXPECT_GE(third, 200ms);
    EXPECT_LE(third, 400ms);
    auto late = BackoffDelay(policy, 40, rng);
    EXPECT_GE(late, 500ms);
    EXPECT_LE(late, 1000ms);
  }
}

TEST(RetryTest, BackoffIsJittered) {
  RetryPolicy policy;
  policy.base_delay = 1000ms;
  std::mt19937_64 rng(7);
  std::set<int64_t> seen;
  for (int i = 0; i < 20; ++i) seen.insert(BackoffDelay(policy, 2, rng).count());
  EXPECT_GT(seen.size(), 10u);
}

TEST(RetryTest, RetryAfterInSeconds) {
  auto now = std::chrono::system_clock::now();
  EXPECT_EQ(ParseRetryAfter("2", "", now), 2000ms);
  EXPECT_EQ(ParseRetryAfter(" 0 ", "", now), 0ms);
  EXPECT_EQ(ParseRetryAfter("1.5", "", now), 1500ms);
}

TEST(RetryTest, RetryAfterMillisecondsHeaderWins) {
  auto now = std::chrono::system_clock::now();
  EXPECT_EQ(ParseRetryAfter("20", "250", now), 250ms);
}

TEST(RetryTest, RetryAfterAsHttpDate) {
  // Wed, 21 Oct 2015 07:28:00 GMT is 1445412480 seconds after the epoch.
  auto date = std::chrono::system_clock::from_time_t(1445412480);
  EXPECT_EQ(ParseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT", "", date - 30s), 30000ms);
  EXPECT_EQ(ParseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT", "", date + 30s), 0ms);
}

TEST(RetryTest, GarbageRetryAfterIsIgnored) {
  auto now = std::chrono::system_clock::now();
  EXPECT_EQ(ParseRetryAfter("", "", now), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("soon", "", now), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("-5", "", now), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("5s", "", now), std::nullopt);
}

}  // namespace
}  // namespace synaps::providers
