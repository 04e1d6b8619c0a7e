#include "providers/local_provider.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <optional>

namespace synaps::providers {
namespace {

TEST(LocalProviderTest, EchoesTheLastUserMessage) {
  ChatRequest r;
  r.model = "echo";
  r.messages = {{"user", "first"}, {"assistant", "ok"}, {"user", "second one"}};
  auto a = LocalProvider::Answer(r);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->text, "second one");
  EXPECT_EQ(a->finish_reason, "stop");
  EXPECT_EQ(a->usage.prompt_tokens, 4);
  EXPECT_EQ(a->usage.completion_tokens, 2);
}

TEST(LocalProviderTest, UnknownModelIsInvalid) {
  ChatRequest r;
  r.model = "gpt-4o";
  r.messages = {{"user", "x"}};
  auto a = LocalProvider::Answer(r);
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error().code, ErrorCode::kInvalidArgument);
}

TEST(LocalProviderTest, AsksForAToolAndThenEchoesItsResult) {
  ChatRequest r;
  r.model = "echo";
  r.tools = {{"k8s.pods", "List pods", {{"type", "object"}}}};
  r.messages = {{"user", "/tool k8s.pods {\"namespace\":\"default\"}"}};
  auto first = LocalProvider::Answer(r);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->finish_reason, "tool_calls");
  EXPECT_EQ(first->text, "");
  ASSERT_EQ(first->tool_calls.size(), 1u);
  EXPECT_EQ(first->tool_calls[0].id, "call_1");
  EXPECT_EQ(first->tool_calls[0].name, "k8s.pods");
  EXPECT_EQ(first->tool_calls[0].arguments, "{\"namespace\":\"default\"}");

  r.messages.push_back({"assistant", "", first->tool_calls});
  r.messages.push_back({"tool", "pod-a Running", {}, "call_1"});
  auto second = LocalProvider::Answer(r);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->text, "pod-a Running");
  EXPECT_TRUE(second->tool_calls.empty());
  EXPECT_EQ(second->finish_reason, "stop");
}

TEST(LocalProviderTest, StreamsWordsAndReportsOnce) {
  boost::asio::io_context io;
  LocalProvider provider(io.get_executor(), 0);
  ChatRequest r;
  r.model = "echo";
  r.messages = {{"user", "one two  three"}};
  std::vector<std::string> pieces;
  r.on_delta = [&](const ChatDelta& d) { pieces.push_back(d.text); };
  int callbacks = 0;
  std::optional<Result<ChatResponse>> result;
  auto call = provider.Start(r, [&](Result<ChatResponse> a) {
    ++callbacks;
    result = std::move(a);
  });
  io.run();
  ASSERT_TRUE(result && *result);
  EXPECT_EQ((*result)->text, "one two  three");
  EXPECT_EQ(pieces, (std::vector<std::string>{"one ", "two  ", "three"}));
  EXPECT_EQ(callbacks, 1);
}

TEST(LocalProviderTest, CancelBeforeTheAnswerReportsCancelledOnce) {
  boost::asio::io_context io;
  LocalProvider provider(io.get_executor(), 10'000);
  ChatRequest r;
  r.model = "echo";
  r.messages = {{"user", "slow"}};
  int callbacks = 0;
  std::optional<Result<ChatResponse>> result;
  auto call = provider.Start(r, [&](Result<ChatResponse> a) {
    ++callbacks;
    result = std::move(a);
  });
  call->Cancel();
  call->Cancel();
  io.run_for(std::chrono::seconds(1));
  ASSERT_TRUE(result);
  ASSERT_FALSE(*result);
  EXPECT_EQ(result->error().code, ErrorCode::kCancelled);
  EXPECT_EQ(callbacks, 1);
}

}  // namespace
}  // namespace synaps::providers
