// The worker's span helpers (worker/task_trace.h) and its provider and wakeup tallies
// (worker/provider_stats.h).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "worker/provider_stats.h"
#include "worker/task_trace.h"

namespace synaps::worker {
namespace {

using nlohmann::json;

TEST(TaskTraceTest, TheSubmitsContextIsReadFromTheSpec) {
  auto t = TraceOfSpec({{"trace",
                         {{"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
                          {"tracestate", "k=v"}}}});
  ASSERT_TRUE(t);
  EXPECT_EQ(t->trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(t->span_id, "00f067aa0ba902b7");
  EXPECT_EQ(t->tracestate, "k=v");
  EXPECT_FALSE(TraceOfSpec(json::object()));
  EXPECT_FALSE(TraceOfSpec(json::array()));
  EXPECT_FALSE(TraceOfSpec({{"trace", "00-x"}}));
  EXPECT_FALSE(TraceOfSpec({{"trace", {{"traceparent", 7}}}}));
  EXPECT_FALSE(TraceOfSpec({{"trace", {{"traceparent", "not a traceparent"}}}}));
}

TEST(TaskTraceTest, AVersion7UuidNamesItsCreationTime) {
  // 0x0192_3456_789a ms = 1,727,340,000,410 (2024-09-26).
  EXPECT_EQ(UuidV7UnixMs("01923456-789a-7bcd-8ef0-123456789abc"), 0x0192'3456'789aLL);
  EXPECT_FALSE(UuidV7UnixMs("01923456-789a-4bcd-8ef0-123456789abc")) << "version 4";
  EXPECT_FALSE(UuidV7UnixMs("0192345g-789a-7bcd-8ef0-123456789abc"));
  EXPECT_FALSE(UuidV7UnixMs("01923456789a7bcd8ef0123456789abc"));
  EXPECT_FALSE(UuidV7UnixMs(""));
}

TEST(TaskTraceTest, AnUntracedTaskExportsNothingAndNamesNoTrace) {
  store::ClaimedItem item;
  item.task_id = "01923456-789a-7bcd-8ef0-123456789abc";
  item.attempt = 1;
  TaskSpans spans(nullptr, item);
  EXPECT_EQ(spans.trace_id(), "");
  spans.Claimed(1, 2, 1);  // no exporter, no trace: nothing to do, nothing to crash
  spans.Uploaded(1, 2, 3, Ok());
  spans.Completed(1, 2, 1, "completed", Ok());
}

TEST(ProviderStatsTest, CallsAreCountedPerProviderModelAndOutcomeWithBoundedLabels) {
  ProviderStats stats;
  stats.RecordCall("openai", "gpt", 0.003, "ok");
  stats.RecordCall("openai", "gpt", 0.2, "ok");
  stats.RecordCall("openai", "gpt", 500, "unavailable");
  auto calls = stats.Calls();
  const ProviderSeries& s = calls.at({"openai", "gpt"});
  EXPECT_EQ(s.latency.count, 3u);
  EXPECT_DOUBLE_EQ(s.latency.sum, 500.203);
  EXPECT_EQ(s.outcomes.at("ok"), 2u);
  EXPECT_EQ(s.outcomes.at("unavailable"), 1u);
  ASSERT_EQ(s.latency.buckets.size(), ProviderLatencyBounds().size() + 1);
  EXPECT_EQ(s.latency.buckets.front(), 1u) << "3 ms is under the first bound (5 ms)";
  EXPECT_EQ(s.latency.buckets.back(), 1u) << "500 s is above the last bound";

  for (int i = 0; i < 300; ++i) stats.RecordCall("p", "model-" + std::to_string(i), 0.1, "ok");
  calls = stats.Calls();
  EXPECT_LE(calls.size(), ProviderStats::kMaxSeries + 1);
  EXPECT_GT(calls.at({"other", "other"}).latency.count, 0u);
}

TEST(ProviderStatsTest, WakeupsFromAFastClockCountAsNoDelay) {
  ProviderStats stats;
  stats.RecordWakeup(0.0004);
  stats.RecordWakeup(-2);  // the publisher's clock is ahead of ours
  HistogramCounts h = stats.Wakeups();
  EXPECT_EQ(h.count, 2u);
  EXPECT_EQ(h.buckets[0], 1u) << "-2 s counts as 0";
  EXPECT_EQ(h.buckets[1], 1u) << "0.4 ms is in (0.25 ms, 0.5 ms]";
}

}  // namespace
}  // namespace synaps::worker
