// Bounded structures of the abuse limits (src/api/rate_limiter.h, src/api/abuse_limits.h).
#include "api/rate_limiter.h"

#include <gtest/gtest.h>

#include <thread>

#include "api/abuse_limits.h"

namespace synaps::api {
namespace {

TEST(RateLimiterTest, LimitsEachKeyApart) {
  RateLimiter limiter(1, 2);
  EXPECT_EQ(limiter.Acquire("a"), 0);
  EXPECT_EQ(limiter.Acquire("a"), 0);
  EXPECT_GE(limiter.Acquire("a"), 1);
  EXPECT_EQ(limiter.Acquire("b"), 0);
  RateLimiter off(0, 1);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(off.Acquire("a"), 0);
  EXPECT_EQ(off.size(), 0u);
}

TEST(RateLimiterTest, KeepsAtMostMaxKeysBuckets) {
  RateLimiter limiter(1000, 1, /*max_keys=*/100);
  for (int i = 0; i < 10000; ++i) limiter.Acquire("address-" + std::to_string(i));
  EXPECT_LE(limiter.size(), 100u);
  // A bucket in use survives a sweep that evicts refilled ones.
  RateLimiter slow(0.001, 1, /*max_keys=*/2);
  EXPECT_EQ(slow.Acquire("busy"), 0);
  EXPECT_GE(slow.Acquire("busy"), 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  slow.Acquire("x");
  slow.Acquire("y");
  EXPECT_LE(slow.size(), 2u);
}

TEST(ExpiringSetTest, ForgetsAfterItsTtlAndStaysBounded) {
  ExpiringSet set(3, std::chrono::milliseconds(50));
  set.Add("a");
  EXPECT_TRUE(set.Contains("a"));
  EXPECT_FALSE(set.Contains("b"));
  for (int i = 0; i < 100; ++i) set.Add("k" + std::to_string(i));
  EXPECT_LE(set.size(), 3u);
  EXPECT_TRUE(set.Contains("k99"));
  std::this_thread::sleep_for(std::chrono::milliseconds(80));
  EXPECT_FALSE(set.Contains("k99"));
}

TEST(StreamSlotsTest, CapsPerKeyAndGivesSlotsBack) {
  StreamSlots slots(2);
  auto a = slots.TryOpen("p");
  auto b = slots.TryOpen("p");
  ASSERT_TRUE(a && b);
  EXPECT_FALSE(slots.TryOpen("p"));
  EXPECT_TRUE(slots.TryOpen("q"));  // released at once: a temporary
  EXPECT_EQ(slots.open(), 2);
  auto copy = a;  // a stream producer's copies share one slot
  a.reset();
  EXPECT_FALSE(slots.TryOpen("p"));
  copy.reset();
  EXPECT_TRUE(slots.TryOpen("p"));
  EXPECT_EQ(slots.open(), 1);
}

}  // namespace
}  // namespace synaps::api
