#include "providers/detail/sse_parser.h"

#include <gtest/gtest.h>

#include <vector>

namespace synaps::providers::detail {
namespace {

struct Collected {
  std::vector<SseEvent> events;
  SseParser::OnEvent sink() {
    return [this](const SseEvent& e) {
      events.push_back(e);
      return true;
    };
  }
};

TEST(SseParserTest, SplitsEventsOnBlankLines) {
  SseParser p;
  Collected c;
  EXPECT_EQ(p.Feed("data: {\"a\":1}\n\ndata: [DONE]\n\n", c.sink()), SseParser::Status::kOk);
  ASSERT_EQ(c.events.size(), 2u);
  EXPECT_EQ(c.events[0].data, "{\"a\":1}");
  EXPECT_EQ(c.events[1].data, "[DONE]");
}

TEST(SseParserTest, ReassemblesAcrossArbitraryFeeds) {
  const std::string stream =
      "data: first\r\n\r\n: keep-alive comment\n\nevent: error\ndata: {\"x\"\ndata: :2}\r\r"
      "data:no-space\n\n";
  for (size_t step = 1; step <= stream.size(); ++step) {
    SseParser p;
    Collected c;
    for (size_t i = 0; i < stream.size(); i += step) {
      ASSERT_EQ(p.Feed(std::string_view(stream).substr(i, step), c.sink()),
                SseParser::Status::kOk);
    }
    ASSERT_EQ(c.events.size(), 3u) << "step " << step;
    EXPECT_EQ(c.events[0].data, "first");
    EXPECT_EQ(c.events[0].type, "");
    EXPECT_EQ(c.events[1].type, "error");
    EXPECT_EQ(c.events[1].data, "{\"x\"\n:2}");
    EXPECT_EQ(c.events[2].data, "no-space");
  }
}

TEST(SseParserTest, FinishDeliversACompleteEventWithoutItsBlankLine) {
  SseParser p;
  Collected c;
  p.Feed("data: [DONE]\n", c.sink());
  EXPECT_TRUE(c.events.empty());
  p.Finish(c.sink());
  ASSERT_EQ(c.events.size(), 1u);
  EXPECT_EQ(c.events[0].data, "[DONE]");
}

TEST(SseParserTest, FinishDropsAPartialLine) {
  SseParser p;
  Collected c;
  p.Feed("data: {\"choices\":[{\"del", c.sink());
  EXPECT_TRUE(p.has_partial_line());
  p.Finish(c.sink());
  EXPECT_TRUE(c.events.empty());
}

TEST(SseParserTest, StopsWhenTheCallbackSaysSo) {
  SseParser p;
  int seen = 0;
  auto status = p.Feed("data: 1\n\ndata: 2\n\n", [&](const SseEvent&) {
    ++seen;
    return false;
  });
  EXPECT_EQ(status, SseParser::Status::kStopped);
  EXPECT_EQ(seen, 1);
}

TEST(SseParserTest, ReportsAnOversizedEvent) {
  SseParser p(/*max_event_bytes=*/16);
  Collected c;
  EXPECT_EQ(p.Feed("data: 0123456789abcdefXYZ", c.sink()), SseParser::Status::kOverflow);
}

}  // namespace
}  // namespace synaps::providers::detail
