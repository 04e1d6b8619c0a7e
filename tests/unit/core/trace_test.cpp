#include "core/trace.h"

#include <gtest/gtest.h>

namespace synaps {
namespace {

constexpr const char* kValid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

TEST(TraceContextTest, ParsesAValidTraceparentAndKeepsTracestate) {
  auto t = TraceContext::Parse(kValid, "congo=t61rcWkgMzE");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(t->span_id, "00f067aa0ba902b7");
  EXPECT_TRUE(t->sampled);
  EXPECT_EQ(t->tracestate, "congo=t61rcWkgMzE");
  EXPECT_EQ(t->Traceparent(), kValid);
  auto unsampled = TraceContext::Parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
  ASSERT_TRUE(unsampled);
  EXPECT_FALSE(unsampled->sampled);
}

TEST(TraceContextTest, RefusesMalformedHeaders) {
  for (const char* bad : {
           "",
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",      // no flags
           "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",   // upper case
           "00-00000000000000000000000000000000-00f067aa0ba902b7-01",   // zero trace id
           "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",   // zero span id
           "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   // forbidden version
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", // 00 is exactly 55
           "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
           "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0\r",
       }) {
    EXPECT_FALSE(TraceContext::Parse(bad)) << bad;
  }
}

TEST(TraceContextTest, LaterVersionsAreReadByTheirFirstFields) {
  auto t = TraceContext::Parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->Traceparent(), kValid) << "we speak version 00";
  EXPECT_FALSE(TraceContext::Parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x"));
}

TEST(TraceContextTest, DropsATracestateItCannotCarry) {
  EXPECT_EQ(TraceContext::Parse(kValid, std::string(513, 'a'))->tracestate, "");
  EXPECT_EQ(TraceContext::Parse(kValid, "a=b\r\nX-Injected: 1")->tracestate, "");
}

TEST(TraceContextTest, StartAndChildMakeFreshIds) {
  TraceContext a = TraceContext::Start();
  EXPECT_TRUE(TraceContext::Parse(a.Traceparent())) << a.Traceparent();
  TraceContext b = TraceContext::Start();
  EXPECT_NE(a.trace_id, b.trace_id);
  TraceContext child = a.Child();
  EXPECT_EQ(child.trace_id, a.trace_id);
  EXPECT_NE(child.span_id, a.span_id);
  EXPECT_EQ(child.span_id.size(), 16u);
}

}  // namespace
}  // namespace synaps
