#include "providers/detail/openai_wire.h"

#include <gtest/gtest.h>

namespace synaps::providers::detail {
namespace {

using nlohmann::json;

ChatRequest Simple() {
  ChatRequest r;
  r.model = "m";
  r.messages = {{"user", "hi"}};
  return r;
}

TEST(OpenAiWireTest, BodyForAStreamedRequest) {
  ChatRequest r = Simple();
  r.params = {{"temperature", 0}, {"response_format", {{"type", "json_object"}}}};
  auto body = BuildChatBody(r, /*stream=*/true, /*include_usage=*/true);
  ASSERT_TRUE(body) << body.error().message;
  EXPECT_EQ(*body, (json{{"model", "m"},
                         {"messages", {{{"role", "user"}, {"content", "hi"}}}},
                         {"temperature", 0},
                         {"response_format", {{"type", "json_object"}}},
                         {"stream", true},
                         {"stream_options", {{"include_usage", true}}}}));
}

TEST(OpenAiWireTest, BodyWithoutUsageOption) {
  auto body = BuildChatBody(Simple(), true, /*include_usage=*/false);
  ASSERT_TRUE(body);
  EXPECT_FALSE(body->contains("stream_options"));
}

TEST(OpenAiWireTest, RefusesRequestsThatCannotBeSent) {
  struct Case {
    std::function<void(ChatRequest&)> change;
    std::string field;
  };
  std::vector<Case> cases = {
      {[](ChatRequest& r) { r.model.clear(); }, "model"},
      {[](ChatRequest& r) { r.messages.clear(); }, "messages"},
      {[](ChatRequest& r) { r.messages[0].role = "robot"; }, "messages[0].role"},
      {[](ChatRequest& r) { r.messages.push_back({"tool", "x"}); }, "messages[1].tool_call_id"},
      {[](ChatRequest& r) { r.messages[0].tool_call_id = "c"; }, "messages[0].tool_call_id"},
      {[](ChatRequest& r) { r.messages[0].tool_calls = {{"c", "f", "{}"}}; },
       "messages[0].tool_calls"},
      {[](ChatRequest& r) { r.params = json::array(); }, "params"},
      {[](ChatRequest& r) { r.params = {{"messages", json::array()}}; }, "params.messages"},
      {[](ChatRequest& r) { r.tools = {{"", "", json::object()}}; }, "tools[0].name"},
      {[](ChatRequest& r) { r.tools = {{"f", "", json::array()}}; }, "tools[0].parameters"},
      {[](ChatRequest& r) { r.tool_choice = 3; }, "tool_choice"},
  };
  for (const auto& c : cases) {
    ChatRequest r = Simple();
    c.change(r);
    auto body = BuildChatBody(r, true, true);
    ASSERT_FALSE(body) << c.field;
    EXPECT_EQ(body.error().code, ErrorCode::kInvalidArgument);
    EXPECT_EQ(body.error().field, c.field);
  }
}

TEST(OpenAiWireTest, ParsesAWholeCompletion) {
  json body = json::parse(R"({
    "id": "chatcmpl-1", "model": "gpt-x",
    "choices": [{"index": 0, "finish_reason": "length",
                 "message": {"role": "assistant", "content": "Hi", "reasoning_content": "hmm"}}],
    "usage": {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10}})");
  auto r = ParseCompletion(body);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->text, "Hi");
  EXPECT_EQ(r->reasoning, "hmm");
  EXPECT_EQ(r->finish_reason, "length");
  EXPECT_EQ(r->model, "gpt-x");
  EXPECT_EQ(r->id, "chatcmpl-1");
  EXPECT_EQ(r->usage.prompt_tokens, 9);
  EXPECT_EQ(r->usage.completion_tokens, 1);
}

TEST(OpenAiWireTest, ParsesToolCallsWithObjectArguments) {
  // Some servers send arguments as an object instead of a JSON string.
  json body = json::parse(R"({"choices": [{"finish_reason": "tool_calls", "message": {
    "content": null, "tool_calls": [{"id": "c1", "type": "function",
      "function": {"name": "f", "arguments": {"a": 1}}}]}}]})");
  auto r = ParseCompletion(body);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->text, "");
  ASSERT_EQ(r->tool_calls.size(), 1u);
  EXPECT_EQ(r->tool_calls[0].arguments, R"({"a":1})");
}

TEST(OpenAiWireTest, RejectsAnswersThatAreNotCompletions) {
  EXPECT_EQ(ParseCompletion(json::array()).error().code, ErrorCode::kInternal);
  EXPECT_EQ(ParseCompletion(json{{"choices", json::array()}}).error().code, ErrorCode::kInternal);
  EXPECT_EQ(ParseCompletion(json{{"choices", {{{"text", "legacy"}}}}}).error().code,
            ErrorCode::kInternal);
  EXPECT_EQ(ParseCompletion(json{{"error", {{"message", "boom"}}}}).error().code,
            ErrorCode::kUnavailable);
}

TEST(OpenAiWireTest, AssemblesAStreamWithUsageInTheChoice) {
  // Moonshot reports usage inside the final choice rather than in a chunk of its own.
  StreamAssembler a;
  auto d1 = a.Apply(json::parse(
      R"({"id":"c","model":"kimi","choices":[{"index":0,"delta":{"role":"assistant","reasoning_content":"think "}}]})"));
  ASSERT_TRUE(d1);
  EXPECT_EQ(d1->reasoning, "think ");
  auto d2 = a.Apply(json::parse(R"({"choices":[{"index":0,"delta":{"content":"po"}}]})"));
  EXPECT_EQ(d2->text, "po");
  EXPECT_FALSE(a.finished());
  ASSERT_TRUE(a.Apply(json::parse(
      R"({"choices":[{"index":0,"delta":{"content":"ng"},"finish_reason":"stop","usage":{"prompt_tokens":4,"completion_tokens":2}}]})")));
  EXPECT_TRUE(a.finished());
  ChatResponse r = a.Take();
  EXPECT_EQ(r.text, "pong");
  EXPECT_EQ(r.reasoning, "think ");
  EXPECT_EQ(r.model, "kimi");
  EXPECT_EQ(r.finish_reason, "stop");
  EXPECT_EQ(r.usage.prompt_tokens, 4);
  EXPECT_EQ(r.usage.completion_tokens, 2);
}

TEST(OpenAiWireTest, AssemblesToolCallsSentWithoutIndex) {
  StreamAssembler a;
  ASSERT_TRUE(a.Apply(json::parse(
      R"({"choices":[{"delta":{"tool_calls":[{"id":"a","function":{"name":"f","arguments":"{}"}}]}}]})")));
  ASSERT_TRUE(a.Apply(json::parse(
      R"({"choices":[{"delta":{"tool_calls":[{"id":"b","function":{"name":"g","arguments":"{\"x\":"}}]}}]})")));
  ASSERT_TRUE(a.Apply(json::parse(
      R"({"choices":[{"delta":{"tool_calls":[{"function":{"arguments":"1}"}}]}}],"usage":null})")));
  ASSERT_TRUE(a.Apply(json::parse(R"({"choices":[{"delta":{},"finish_reason":"tool_calls"}]})")));
  ChatResponse r = a.Take();
  ASSERT_EQ(r.tool_calls.size(), 2u);
  EXPECT_EQ(r.tool_calls[0].name, "f");
  EXPECT_EQ(r.tool_calls[1].name, "g");
  EXPECT_EQ(r.tool_calls[1].arguments, R"({"x":1})");
}

TEST(OpenAiWireTest, IgnoresOtherChoicesAndReportsErrorChunks) {
  StreamAssembler a;
  auto d = a.Apply(json::parse(R"({"choices":[{"index":1,"delta":{"content":"other"}}]})"));
  ASSERT_TRUE(d);
  EXPECT_EQ(d->text, "");
  auto e = a.Apply(json::parse(R"({"error":{"message":"overloaded"}})"));
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(e.error().message.find("overloaded"), std::string::npos);
  EXPECT_EQ(a.Apply(json("text")).error().code, ErrorCode::kInternal);
  EXPECT_EQ(a.Apply(json::parse(R"({"choices":[{"delta":{"tool_calls":[{"index":99999}]}}]})"))
                .error()
                .code,
            ErrorCode::kInternal);
}

TEST(OpenAiWireTest, ErrorMessagesFromTheUsualBodies) {
  std::string code;
  EXPECT_EQ(ErrorBodyMessage(R"({"error":{"message":"bad key","type":"invalid_request_error","code":"invalid_api_key"}})", &code),
            "bad key");
  EXPECT_EQ(code, "invalid_api_key");
  EXPECT_EQ(ErrorBodyMessage(R"({"error":{"message":"x","type":"server_error","code":null}})", &code), "x");
  EXPECT_EQ(code, "server_error");
  EXPECT_EQ(ErrorBodyMessage(R"({"error":"model not found"})"), "model not found");
  EXPECT_EQ(ErrorBodyMessage(R"({"object":"error","message":"too long","code":400})"), "too long");
  EXPECT_EQ(ErrorBodyMessage(R"({"detail":"Not Found"})"), "Not Found");
  EXPECT_EQ(ErrorBodyMessage("upstream connect error\n"), "upstream connect error");
  EXPECT_EQ(ErrorBodyMessage(""), "(empty body)");
  EXPECT_EQ(ErrorBodyMessage(std::string(1000, 'x')).size(), 303u);
}

TEST(OpenAiWireTest, ClassifiesStatuses) {
  auto c = [](long status, const std::string& body = "{}", const std::string& hint = "") {
    return ClassifyHttpStatus(status, body, hint);
  };
  EXPECT_EQ(c(400).error.code, ErrorCode::kInvalidArgument);
  EXPECT_FALSE(c(400).retry);
  EXPECT_EQ(c(404).error.code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(c(401).error.code, ErrorCode::kPermissionDenied);
  EXPECT_EQ(c(403).error.code, ErrorCode::kPermissionDenied);
  EXPECT_FALSE(c(403).retry);
  EXPECT_EQ(c(408).error.code, ErrorCode::kDeadlineExceeded);
  EXPECT_TRUE(c(408).retry);
  EXPECT_EQ(c(429).error.code, ErrorCode::kUnavailable);
  EXPECT_TRUE(c(429).retry);
  auto quota = c(429, R"({"error":{"message":"quota","code":"insufficient_quota"}})");
  EXPECT_EQ(quota.error.code, ErrorCode::kResourceExhausted);
  EXPECT_FALSE(quota.retry);
  EXPECT_EQ(c(500).error.code, ErrorCode::kUnavailable);
  EXPECT_TRUE(c(502).retry);
  EXPECT_TRUE(c(529).retry);
  EXPECT_FALSE(c(503, "{}", "false").retry);
  EXPECT_TRUE(c(409, "{}", "true").retry);
  EXPECT_EQ(c(302).error.code, ErrorCode::kInternal);
}

TEST(OpenAiWireTest, ClassifiesCurlErrors) {
  EXPECT_EQ(ClassifyCurlError(CURLE_OPERATION_TIMEDOUT, "").error.code,
            ErrorCode::kDeadlineExceeded);
  EXPECT_TRUE(ClassifyCurlError(CURLE_OPERATION_TIMEDOUT, "").retry);
  EXPECT_EQ(ClassifyCurlError(CURLE_COULDNT_CONNECT, "").error.code, ErrorCode::kUnavailable);
  EXPECT_TRUE(ClassifyCurlError(CURLE_COULDNT_RESOLVE_HOST, "").retry);
  EXPECT_EQ(ClassifyCurlError(CURLE_UNSUPPORTED_PROTOCOL, "").error.code,
            ErrorCode::kInvalidArgument);
  EXPECT_FALSE(ClassifyCurlError(CURLE_PEER_FAILED_VERIFICATION, "").retry);
  auto partial = ClassifyCurlError(CURLE_PARTIAL_FILE, "transfer closed with 10 bytes left");
  EXPECT_TRUE(partial.retry);
  EXPECT_NE(partial.error.message.find("10 bytes left"), std::string::npos);
}

}  // namespace
}  // namespace synaps::providers::detail

namespace synaps::providers::detail {
namespace {

// Provider replies are outside input (docs/reliability.md, "Bus and thread barriers"): every
// field of the wrong type gives a value or an error for that call, never an exception.
TEST(OpenAiWireTest, MistypedRepliesNeverThrow) {
  const std::vector<std::string> replies = {
      R"({"choices": "x"})",
      R"({"choices": [{"message": {"content": 5, "tool_calls": "no"}}]})",
      R"({"choices": [{"message": {"tool_calls": [5, {"function": "f"}, {"function": {"name": 3}}]}}]})",
      R"({"choices": [{"message": {"content": "a"}, "usage": "lots", "finish_reason": 7}]})",
      R"({"choices": [{"message": {"content": "a"}}], "usage": {"prompt_tokens": "x", "completion_tokens": 1e300}})",
      R"({"choices": [{"message": {"content": "a", "reasoning_content": [1]}}], "model": {}, "id": 4})",
      R"({"error": 5})",
      R"({"error": null, "choices": [null]})",
      R"({"choices": [{"message": {"tool_calls": [{"function": {"name": "f", "arguments": 7}}]}}]})",
  };
  for (const auto& text : replies) {
    json body = json::parse(text);
    EXPECT_NO_THROW({ (void)ParseCompletion(body); }) << text;  // a value or an error
    StreamAssembler assembler;
    EXPECT_NO_THROW({ (void)assembler.Apply(body); }) << text;
  }
  const std::vector<std::string> chunks = {
      R"({"choices": [{"index": "0", "delta": {"content": 5}}]})",
      R"({"choices": [{"delta": {"tool_calls": [{"index": "x", "function": {"arguments": 5}}]}}]})",
      R"({"choices": [{"delta": {"tool_calls": [{"index": 1e300}]}}]})",
      R"({"choices": [{"delta": "x", "finish_reason": []}], "usage": []})",
  };
  StreamAssembler assembler;
  for (const auto& text : chunks) {
    EXPECT_NO_THROW({ (void)assembler.Apply(json::parse(text)); }) << text;
  }
  EXPECT_NO_THROW({ (void)assembler.Take(); });
}

}  // namespace
}  // namespace synaps::providers::detail
