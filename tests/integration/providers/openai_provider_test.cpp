// The OpenAI-compatible provider against a fake server (tests/support/fake_openai.h): model
// providers are paid outside services, so the protocol, retries, timeouts and cancellation are
// tested against a fake that speaks the same HTTP; providers_live_test talks to the real ones
// when a key is set.
#include "providers/openai_provider.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <optional>

#include "support/fake_openai.h"

namespace synaps::providers {
namespace {

namespace asio = boost::asio;
using nlohmann::json;
using testing::FakeOpenAi;
using testing::FakeReply;
using testing::FakeRequest;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

class OpenAiProviderTest : public ::testing::Test {
 protected:
  OpenAiOptions Options(const FakeOpenAi& fake) {
    OpenAiOptions o;
    o.name = "fake";
    o.base_url = fake.base_url();
    o.api_key = "test-key";
    o.connect_timeout = 2s;
    o.request_timeout = 10s;
    o.retry.max_attempts = 3;
    o.retry.base_delay = 10ms;
    o.retry.max_delay = 40ms;
    return o;
  }

  ChatRequest Request(bool stream = true) {
    ChatRequest r;
    r.model = "fake-model";
    r.messages = {{"system", "Be brief."}, {"user", "Say hello"}};
    r.stream = stream;
    r.on_delta = [this](const ChatDelta& d) { deltas.push_back(d); };
    return r;
  }

  // Starts the call and runs the loop until its callback ran (or `deadline` passed), then a
  // little longer to catch a second callback.
  Result<ChatResponse> Run(Provider& provider, const ChatRequest& request,
                           std::chrono::milliseconds deadline = 20s) {
    std::optional<Result<ChatResponse>> result;
    call = provider.Start(request, [&](Result<ChatResponse> r) {
      ++callbacks;
      result = std::move(r);
    });
    started = Clock::now();
    RunUntil([&] { return result.has_value(); }, deadline);
    elapsed = Clock::now() - started;
    io.run_for(30ms);
    if (!result) return Fail(ErrorCode::kInternal, "test: no callback before the deadline");
    return std::move(*result);
  }

  void RunUntil(const std::function<bool()>& done, std::chrono::milliseconds deadline) {
    io.restart();
    auto until = Clock::now() + deadline;
    while (!done() && Clock::now() < until) io.run_one_for(20ms);
  }

  asio::io_context io;
  std::vector<ChatDelta> deltas;
  std::unique_ptr<Call> call;
  int callbacks = 0;
  Clock::time_point started;
  Clock::duration elapsed{};
};

std::string Joined(const std::vector<ChatDelta>& deltas, int attempt = 0) {
  std::string s;
  for (const auto& d : deltas) {
    if (attempt == 0 || d.attempt == attempt) s += d.text;
  }
  return s;
}

TEST_F(OpenAiProviderTest, PlainAnswer) {
  FakeOpenAi fake(
      [](const FakeRequest&, int) { return FakeOpenAi::Completion("Hello there", 7, 2); });
  OpenAiCompatibleProvider provider(io.get_executor(), Options(fake));
  auto r = Run(provider, Request(/*stream=*/false));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->text, "Hello there");
  EXPECT_EQ(r->finish_reason, "stop");
  EXPECT_EQ(r->model, "fake-model");
  EXPECT_EQ(r->usage.prompt_tokens, 7);
  EXPECT_EQ(r->usage.completion_tokens, 2);
  EXPECT_EQ(r->attempts, 1);
  EXPECT_EQ(callbacks, 1);
  EXPECT_TRUE(deltas.empty());

  ASSERT_EQ(fake.request_count(), 1);
  FakeRequest seen = fake.requests()[0];
  EXPECT_EQ(seen.method, "POST");
  EXPECT_EQ(seen.target, "/v1/chat/completions");
  EXPECT_EQ(seen.headers["authorization"], "Bearer test-key");
  EXPECT_EQ(seen.headers["content-type"], "application/json");
  json body = seen.Json();
  EXPECT_EQ(body["model"], "fake-model");
  EXPECT_EQ(body["stream"], false);
  EXPECT_FALSE(body.contains("stream_options"));
  EXPECT_EQ(body["messages"][1], (json{{"role", "user"}, {"content", "Say hello"}}));
}

TEST_F(OpenAiProviderTest, StreamedAnswerDeliversDeltasAndUsage) {
  FakeOpenAi fake([](const FakeRequest&, int) {
    FakeReply r = FakeOpenAi::Stream({"Hel", "lo", " world"}, 11, 3);
    r.event_interval = 20ms;
    return r;
  });
  OpenAiCompatibleProvider provider(io.get_executor(), Options(fake));
  ChatRequest request = Request();
  request.params = {{"temperature", 0.2}, {"max_tokens", 50}};
  auto r = Run(provider, request);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->text, "Hello world");
  EXPECT_EQ(r->finish_reason, "stop");
  EXPECT_EQ(r->usage.prompt_tokens, 11);
  EXPECT_EQ(r->usage.completion_tokens, 3);
  EXPECT_EQ(r->id, "chatcmpl-fake");
  ASSERT_EQ(deltas.size(), 3u);
  EXPECT_EQ(deltas[0].text, "Hel");
  EXPECT_EQ(deltas[2].text, " world");
  EXPECT_EQ(deltas[0].attempt, 1);
  EXPECT_GT(r->latency.count(), 0);
  EXPECT_LE(r->time_to_first_token, r->latency);
  EXPECT_EQ(callbacks, 1);

  FakeRequest seen = fake.requests().at(0);
  EXPECT_EQ(seen.headers["accept"], "text/event-stream");
  json body = seen.Json();
  EXPECT_EQ(body["stream"], true);
  EXPECT_EQ(body["stream_options"], (json{{"include_usage", true}}));
  EXPECT_EQ(body["temperature"], 0.2);
  EXPECT_EQ(body["max_tokens"], 50);
}

TEST_F(OpenAiProviderTest, RateLimitedWithRetryAfterThenSucceeds) {
  FakeOpenAi fake([](const FakeRequest&, int index) {
    if (index == 0) {
      FakeReply r = FakeOpenAi::Error(429, "Rate limit reached", "rate_limit_exceeded");
      r.headers.push_back({"Retry-After", "1"});
      return r;
    }
    return FakeOpenAi::Stream({"ok"});
  });
  OpenAiCompatibleProvider provider(io.get_executor(), Options(fake));
  auto r = Run(provider, Request());
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->text, "ok");
  EXPECT_EQ(r->attempts, 2);
  EXPECT_EQ(fake.request_count(), 2);
  // The fake asked for a second; the default backoff here is tens of milliseconds.
  EXPECT_GE(elapsed, 1s);
  EXPECT_LT(elapsed, 5s);
}

TEST_F(OpenAiProviderTest, RetryAfterBeyondTheLimitFailsAtOnceAsRetryable) {
  FakeOpenAi fake([](const FakeRequest&, int) {
    FakeReply r = FakeOpenAi::Error(429, "Rate limit reached");
    r.headers.push_back({"Retry-After", "3600"});
    return r;
  });
  OpenAiCompatibleProvider provider(io.get_executor(), Options(fake));
  auto r = Run(provider, Request());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
  EXPECT_TRUE(r.error().retryable());
  EXPECT_NE(r.error().message.find("asked to wait 3600 s"), std::string::npos) << r.error().message;
  EXPECT_EQ(fake.request_count(), 1);
}

TEST_F(OpenAiProviderTest, ARetryAfterSharedWithOtherWorkersIsCappedLikeAnInCallWait) {
  FakeOpenAi fake([](const FakeRequest&, int) {
    FakeReply r = FakeOpenAi::Error(429, "Rate limit reached");
    r.headers.push_back({"Retry-After", "86400"});
    return r;
  });
  OpenAiCompatibleProvider provider(io.get_executor(), Options(fake));
  ChatRequest request = Request();
  std::vector<std::chrono::milliseconds> shared;
  request.on_retry_after = [&](std::chrono::milliseconds wait) { shared.push_back(wait); };
  auto r = Run(provider, std::move(request));
  ASSERT_FALSE(r);
  ASSERT_EQ(shared.size(), 1u);
  EXPECT_EQ(shared[0], Options(fake).retry.max_retry_after) << "a day's block was shared";
}

TEST_F(OpenAiProviderTest, ServerErrorThenSuccess) {
  FakeOpenAi fake([](const FakeRequest&, int index) {
    if (index == 0) return FakeOpenAi::Error(500, "The server had an error");
    return FakeOpenAi::Stream({"fine"});
  });
  OpenAiCompatibleProvider provider(io.get_executor(), Options(fake));
  auto r = Run(provider, Request());
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->text, "fine");
  EXPECT_EQ(r->attempts, 2);
  EXPECT_EQ(fake.request_count(), 2);
}

TEST_F(OpenAiProviderTest, ServerErrorForeverGivesUpAfterBoundedAttempts) {
  FakeOpenAi fake([](const FakeRequest&, int) {
    FakeReply r = FakeOpenAi::Error(503, "overloaded, try later");
    r.headers.push_back({"x-request-id", "req_123"});
    return r;
  });
  OpenAiCompatibleProvider provider(io.get_executor(), Options(fake));
  auto r = Run(provider, Request());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
  EXPECT_TRUE(r.error().retryable());
  const std::string& m = r.error().message;
  EXPECT_NE(m.find("fake: HTTP 503: overloaded, try later"), std::string::npos) << m;
  EXPECT_NE(m.find("req_123"), std::string::npos) << m;
  EXPECT_NE(m.find("gave up after 3 attempts"), std::string::npos) << m;
  EXPECT_EQ(fake.request_count(), 3);
  EXPECT_EQ(callbacks, 1);
}

TEST_F(OpenAiProviderTest, HangingServerTimesOut) {
  FakeOpenAi fake([](const FakeRequest&, int) {
    FakeReply r;
    r.hang = true;
    return r;
  });
  OpenAiOptions o = Options(fake);
  o.retry.max_attempts = 2;
  OpenAiCompatibleProvider provider(io.get_executor(), o);
  ChatRequest request = Request();
  request.timeout = 300ms;
  auto r = Run(provider, request);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kDeadlineExceeded);
  EXPECT_NE(r.error().message.find("timed out"), std::string::npos) << r.error().message;
  EXPECT_EQ(fake.request_count(), 2);
  EXPECT_GE(elapsed, 600ms);
  EXPECT_LT(elapsed, 3s);
  // The timed-out connections are closed, not left hanging.
  EXPECT_TRUE(FakeOpenAi::WaitFor([&] { return fake.open_connections() == 0; }, 2s));
}

TEST_F(OpenAiProviderTest, HangingStreamHitsTheIdleTimeout) {
  FakeOpenAi fake([](const FakeRequest&, int) {
    FakeReply r = FakeOpenAi::Stream({"never", "finished"});
    r.events.resize(2);  // role chunk and "never", then silence
    r.stream_end = FakeReply::StreamEnd::kStall;
    return r;
  });
  OpenAiOptions o = Options(fake);
  o.retry.max_attempts = 1;
  o.idle_timeout = 1s;
  OpenAiCompatibleProvider provider(io.get_executor(), o);
  auto r = Run(provider, Request());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kDeadlineExceeded) << r.error().message;
  EXPECT_EQ(Joined(deltas), "never");
  // libcurl averages the transfer speed over a few seconds, so the idle limit is approximate.
  EXPECT_GE(elapsed, 1s);
  EXPECT_LT(elapsed, 10s);
}

class TruncatedStreamTest : public OpenAiProviderTest,
                            public ::testing::WithParamInterface<FakeReply::StreamEnd> {};

TEST_P(TruncatedStreamTest, IsRetriedAndTheNewAttemptRestartsTheText) {
  FakeReply::StreamEnd end = GetParam();
  FakeOpenAi fake([end](const FakeRequest&, int index) {
    FakeReply r = FakeOpenAi::Stream({"Hello", " world"});
    if (index == 0) {
      r.events.resize(2);  // the role chunk and "Hello", then the connection goes
      r.stream_end = end;
    }
    return r;
  });
  OpenAiCompatibleProvider provider(io.get_executor(), Options(fake));
  auto r = Run(provider, Request());
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->text, "Hello world");
  EXPECT_EQ(r->attempts, 2);
  EXPECT_EQ(Joined(deltas, 1), "Hello");
  EXPECT_EQ(Joined(deltas, 2), "Hello world");
}

TEST_P(TruncatedStreamTest, FailsClearlyWhenEveryAttemptIsCut) {
  FakeReply::StreamEnd end = GetParam();
  FakeOpenAi fake([end](const FakeRequest&, int) {
    FakeReply r = FakeOpenAi::Stream({"Hello", " world"});
    r.events.resize(2);
    r.stream_end = end;
    return r;
  });
  OpenAiOptions o = Options(fake);
  o.retry.max_attempts = 2;
  OpenAiCompatibleProvider provider(io.get_executor(), o);
  auto r = Run(provider, Request());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
  EXPECT_TRUE(r.error().retryable());
  EXPECT_NE(r.error().message.find("before the answer was complete"), std::string::npos)
      << r.error().message;
  EXPECT_EQ(fake.request_count(), 2);
}

INSTANTIATE_TEST_SUITE_P(Ends, TruncatedStreamTest,
                         ::testing::Values(FakeReply::StreamEnd::kDrop,
                                           FakeReply::StreamEnd::kCloseClean),
                         [](const auto& info) {
                           return info.param == FakeReply::StreamEnd::kDrop ? "BrokenChunking"
                                                                            : "CleanClose";
                         });

TEST_F(OpenAiProviderTest, InvalidJsonInTheStreamIsAnErrorNotRetried) {
  FakeOpenAi fake([](const FakeRequest&, int) {
    FakeReply r = FakeOpenAi::Stream({"fine so far"});
    r.events.insert(r.events.begin() + 2, "{\"choices\": [oops");
    return r;
  });
  OpenAiCompatibleProvider provider(io.get_executor(), Options(fake));
  auto r = Run(provider, Request());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kInternal);
  EXPECT_NE(r.error().message.find("invalid JSON"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("[oops"), std::string::npos) << r.error().message;
  EXPECT_EQ(fake.request_count(), 1);
}

TEST_F(OpenAiProviderTest, InvalidJsonBodyIsAnError) {
  FakeOpenAi fake([](const FakeRequest&, int) {
    FakeReply r;
    r.body = "<html>bad gateway page</html>";
    return r;
  });
  OpenAiCompatibleProvider provider(io.get_executor(), Options(fake));
  auto r = Run(provider, Request(/*stream=*/false));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kInternal);
  EXPECT_NE(r.error().message.find("not valid JSON: <html>"), std::string::npos)
      << r.error().message;
  EXPECT_EQ(fake.request_count(), 1);
}

TEST_F(OpenAiProviderTest, BadRequestFailsAtOnceWithTheProvidersMessage) {
  FakeOpenAi fake([](const FakeRequest&, int) {
    return FakeOpenAi::Error(400, "The model `gpt-nope` does not exist", "model_not_found");
  });
  OpenAiCompatibleProvider provider(io.get_executor(), Options(fake));
  auto r = Run(provider, Request());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  EXPECT_FALSE(r.error().retryable());
  EXPECT_NE(r.error().message.find("HTTP 400: The model `gpt-nope` does not exist"),
            std::string::npos)
      << r.error().message;
  EXPECT_EQ(fake.request_count(), 1);
  EXPECT_EQ(callbacks, 1);
}

TEST_F(OpenAiProviderTest, BadKeyIsPermissionDenied) {
  FakeOpenAi fake([](const FakeRequest&, int) {
    return FakeOpenAi::Error(401, "Incorrect API key provided", "invalid_api_key");
  });
  OpenAiCompatibleProvider provider(io.get_executor(), Options(fake));
  auto r = Run(provider, Request());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kPermissionDenied);
  EXPECT_EQ(fake.request_count(), 1);
}

TEST_F(OpenAiProviderTest, SpentQuotaIsNotRetried) {
  FakeOpenAi fake([](const FakeRequest&, int) {
    return FakeOpenAi::Error(429, "You exceeded your current quota", "insufficient_quota");
  });
  OpenAiCompatibleProvider provider(io.get_executor(), Options(fake));
  auto r = Run(provider, Request());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kResourceExhausted);
  EXPECT_EQ(fake.request_count(), 1);
}

TEST_F(OpenAiProviderTest, ErrorEventMidStreamIsRetried) {
  FakeOpenAi fake([](const FakeRequest&, int index) {
    FakeReply r = FakeOpenAi::Stream({"partial"});
    if (index == 0) {
      r.events.resize(2);
      r.events.push_back(R"({"error":{"message":"upstream overloaded","type":"server_error"}})");
    }
    return r;
  });
  OpenAiCompatibleProvider provider(io.get_executor(), Options(fake));
  auto r = Run(provider, Request());
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->attempts, 2);
  EXPECT_EQ(r->text, "partial");
}

TEST_F(OpenAiProviderTest, UnreachableServerIsUnavailable) {
  int port;
  {
    FakeOpenAi closed([](const FakeRequest&, int) { return FakeReply{}; });
    port = closed.port();
  }
  OpenAiOptions o;
  o.name = "fake";
  o.base_url = "http://127.0.0.1:" + std::to_string(port) + "/v1";
  o.retry.max_attempts = 2;
  o.retry.base_delay = 5ms;
  OpenAiCompatibleProvider provider(io.get_executor(), o);
  auto r = Run(provider, Request());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(r.error().message.find("connection failed"), std::string::npos) << r.error().message;
}

TEST_F(OpenAiProviderTest, CancelFromTheDeltaCallbackStopsTheStream) {
  FakeOpenAi fake([](const FakeRequest&, int) {
    FakeReply r = FakeOpenAi::Stream(std::vector<std::string>(500, "tick "));
    r.event_interval = 10ms;
    return r;
  });
  OpenAiCompatibleProvider provider(io.get_executor(), Options(fake));
  ChatRequest request = Request();
  request.on_delta = [&](const ChatDelta& d) {
    deltas.push_back(d);
    if (deltas.size() == 3) call->Cancel();
  };
  auto r = Run(provider, request);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kCancelled);
  EXPECT_EQ(deltas.size(), 3u);
  io.run_for(100ms);
  EXPECT_EQ(callbacks, 1);
  EXPECT_EQ(deltas.size(), 3u);
  EXPECT_EQ(provider.calls_in_flight(), 0u);
  EXPECT_TRUE(FakeOpenAi::WaitFor([&] { return fake.open_connections() == 0; }, 2s))
      << "the cancelled transfer's connection should be closed";
  EXPECT_EQ(fake.request_count(), 1);
}

TEST_F(OpenAiProviderTest, CancelFromOutsideAbortsTheTransfer) {
  FakeOpenAi fake([](const FakeRequest&, int) {
    FakeReply r = FakeOpenAi::Stream(std::vector<std::string>(500, "tick "));
    r.event_interval = 10ms;
    return r;
  });
  OpenAiCompatibleProvider provider(io.get_executor(), Options(fake));
  // Cancel from outside once the stream has started (not at a fixed time: a slow build, e.g.
  // under the sanitizers, may not have seen a delta yet).
  asio::steady_timer timer(io, 10ms);
  std::function<void(boost::system::error_code)> cancel_once_streaming =
      [&](boost::system::error_code) {
        if (deltas.empty()) {
          timer.expires_after(10ms);
          timer.async_wait(cancel_once_streaming);
          return;
        }
        call->Cancel();
      };
  timer.async_wait(cancel_once_streaming);
  auto r = Run(provider, Request());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kCancelled);
  EXPECT_FALSE(deltas.empty());
  EXPECT_LT(deltas.size(), 500u) << "the transfer was aborted before the stream ended";
  size_t seen = deltas.size();
  call->Cancel();  // a second cancel is harmless
  io.run_for(100ms);
  EXPECT_EQ(callbacks, 1);
  EXPECT_EQ(deltas.size(), seen);
  EXPECT_TRUE(FakeOpenAi::WaitFor([&] { return fake.open_connections() == 0; }, 2s));
}

TEST_F(OpenAiProviderTest, CancelDuringBackoffReportsCancelledOnce) {
  FakeOpenAi fake([](const FakeRequest&, int) {
    FakeReply r = FakeOpenAi::Error(429, "slow down");
    r.headers.push_back({"Retry-After", "30"});
    return r;
  });
  OpenAiOptions o = Options(fake);
  o.retry.max_retry_after = 60s;
  OpenAiCompatibleProvider provider(io.get_executor(), o);
  asio::steady_timer timer(io, 200ms);
  timer.async_wait([&](boost::system::error_code) { call->Cancel(); });
  auto r = Run(provider, Request());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kCancelled);
  EXPECT_LT(elapsed, 5s);
  EXPECT_EQ(callbacks, 1);
  EXPECT_EQ(fake.request_count(), 1);
}

TEST_F(OpenAiProviderTest, StreamedToolCallsAreAssembledFromFragments) {
  FakeOpenAi fake([](const FakeRequest&, int) {
    auto call = [](int index, json fn, const char* id = nullptr) {
      json c = {{"index", index}, {"function", std::move(fn)}};
      if (id != nullptr) {
        c["id"] = id;
        c["type"] = "function";
      }
      return FakeOpenAi::Chunk({{"tool_calls", json::array({c})}});
    };
    FakeReply r;
    r.events = {
        FakeOpenAi::Chunk({{"role", "assistant"}, {"content", nullptr}}),
        call(0, {{"name", "get_weather"}, {"arguments", ""}}, "call_a"),
        call(0, {{"arguments", "{\"city\":"}}),
        call(0, {{"arguments", "\"Paris\"}"}}),
        call(1, {{"name", "get_time"}, {"arguments", "{\"tz\":\"CET\"}"}}, "call_b"),
        FakeOpenAi::Chunk(json::object(), "tool_calls"),
        "[DONE]",
    };
    return r;
  });
  OpenAiCompatibleProvider provider(io.get_executor(), Options(fake));
  ChatRequest request = Request();
  request.tools = {{"get_weather",
                    "Weather in a city",
                    {{"type", "object"}, {"properties", {{"city", {{"type", "string"}}}}}}},
                   {"get_time", "", {{"type", "object"}}}};
  request.tool_choice = "auto";
  auto r = Run(provider, request);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->finish_reason, "tool_calls");
  EXPECT_EQ(r->text, "");
  ASSERT_EQ(r->tool_calls.size(), 2u);
  EXPECT_EQ(r->tool_calls[0].id, "call_a");
  EXPECT_EQ(r->tool_calls[0].name, "get_weather");
  EXPECT_EQ(r->tool_calls[0].arguments, R"({"city":"Paris"})");
  EXPECT_EQ(r->tool_calls[1].id, "call_b");
  EXPECT_EQ(r->tool_calls[1].name, "get_time");
  EXPECT_EQ(r->tool_calls[1].arguments, R"({"tz":"CET"})");

  json body = fake.requests().at(0).Json();
  EXPECT_EQ(body["tool_choice"], "auto");
  ASSERT_EQ(body["tools"].size(), 2u);
  EXPECT_EQ(body["tools"][0]["type"], "function");
  EXPECT_EQ(body["tools"][0]["function"]["name"], "get_weather");
  EXPECT_EQ(body["tools"][0]["function"]["parameters"]["properties"]["city"]["type"], "string");
}

TEST_F(OpenAiProviderTest, ToolResultsGoBackInOpenAisFormat) {
  FakeOpenAi fake([](const FakeRequest&, int) {
    json body = {{"id", "x"},
                 {"model", "fake-model"},
                 {"choices",
                  {{{"index", 0},
                    {"message",
                     {{"role", "assistant"},
                      {"content", nullptr},
                      {"tool_calls",
                       {{{"id", "call_c"},
                         {"type", "function"},
                         {"function", {{"name", "lookup"}, {"arguments", "{\"q\":1}"}}}}}}}},
                    {"finish_reason", "tool_calls"}}}}};
    FakeReply r;
    r.body = body.dump();
    return r;
  });
  OpenAiCompatibleProvider provider(io.get_executor(), Options(fake));
  ChatRequest request = Request(/*stream=*/false);
  request.tools = {{"lookup", "", {{"type", "object"}}}};
  request.messages.push_back({"assistant", "", {{"call_a", "lookup", "{\"q\":0}"}}});
  request.messages.push_back({"tool", "result zero", {}, "call_a"});
  auto r = Run(provider, request);
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->tool_calls.size(), 1u);
  EXPECT_EQ(r->tool_calls[0].id, "call_c");
  EXPECT_EQ(r->tool_calls[0].arguments, "{\"q\":1}");

  json messages = fake.requests().at(0).Json()["messages"];
  ASSERT_EQ(messages.size(), 4u);
  EXPECT_EQ(messages[2],
            (json{{"role", "assistant"},
                  {"content", nullptr},
                  {"tool_calls",
                   {{{"id", "call_a"},
                     {"type", "function"},
                     {"function", {{"name", "lookup"}, {"arguments", "{\"q\":0}"}}}}}}}));
  EXPECT_EQ(messages[3],
            (json{{"role", "tool"}, {"tool_call_id", "call_a"}, {"content", "result zero"}}));
}

TEST_F(OpenAiProviderTest, ServerThatIgnoresStreamingStillAnswersWithOneDelta) {
  FakeOpenAi fake([](const FakeRequest&, int) { return FakeOpenAi::Completion("all at once"); });
  OpenAiCompatibleProvider provider(io.get_executor(), Options(fake));
  auto r = Run(provider, Request());
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->text, "all at once");
  ASSERT_EQ(deltas.size(), 1u);
  EXPECT_EQ(deltas[0].text, "all at once");
}

TEST_F(OpenAiProviderTest, InvalidRequestFailsWithoutSending) {
  FakeOpenAi fake([](const FakeRequest&, int) { return FakeOpenAi::Completion("x"); });
  OpenAiCompatibleProvider provider(io.get_executor(), Options(fake));
  ChatRequest request = Request();
  request.params = {{"stream", false}};
  auto r = Run(provider, request);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(r.error().field, "params.stream");
  EXPECT_EQ(fake.request_count(), 0);
  EXPECT_EQ(callbacks, 1);
}

TEST_F(OpenAiProviderTest, CancellingARefusedRequestReportsCancelled) {
  FakeOpenAi fake([](const FakeRequest&, int) { return FakeOpenAi::Completion("x"); });
  OpenAiCompatibleProvider provider(io.get_executor(), Options(fake));
  ChatRequest request = Request();
  request.model.clear();
  std::optional<Result<ChatResponse>> result;
  asio::post(io, [&] {
    call = provider.Start(request, [&](Result<ChatResponse> r) {
      ++callbacks;
      result = std::move(r);
    });
    call->Cancel();  // on the loop: takes effect before the refusal is reported
  });
  io.run_for(50ms);
  ASSERT_TRUE(result && !*result);
  EXPECT_EQ(result->error().code, ErrorCode::kCancelled);
  EXPECT_EQ(callbacks, 1);
}

TEST_F(OpenAiProviderTest, KeepAliveConnectionsAreReused) {
  FakeOpenAi fake([](const FakeRequest&, int) { return FakeOpenAi::Stream({"again"}); });
  OpenAiCompatibleProvider provider(io.get_executor(), Options(fake));
  for (int i = 0; i < 5; ++i) {
    auto r = Run(provider, Request());
    ASSERT_TRUE(r) << r.error().message;
  }
  EXPECT_EQ(fake.request_count(), 5);
  EXPECT_EQ(fake.open_connections(), 1);
}

TEST_F(OpenAiProviderTest, DestroyingTheProviderAbandonsCallsWithoutCallbacks) {
  FakeOpenAi fake([](const FakeRequest&, int) {
    FakeReply r;
    r.hang = true;
    return r;
  });
  auto provider = std::make_unique<OpenAiCompatibleProvider>(io.get_executor(), Options(fake));
  call = provider->Start(Request(), [&](Result<ChatResponse>) { ++callbacks; });
  RunUntil([&] { return fake.request_count() == 1; }, 5s);
  provider.reset();
  call->Cancel();
  io.run_for(100ms);
  EXPECT_EQ(callbacks, 0);
  EXPECT_TRUE(FakeOpenAi::WaitFor([&] { return fake.open_connections() == 0; }, 2s));
}

}  // namespace
}  // namespace synaps::providers
