// One real call to a real provider, through the registry as the worker makes it. Providers
// are paid services, so this runs only when OPENAI_API_KEY or MOONSHOT_API_KEY is set;
// otherwise it reports itself skipped. SYNAPS_LIVE_MODEL overrides the model.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdlib>
#include <optional>

#include "core/config.h"
#include "providers/registry.h"

namespace synaps::providers {
namespace {

using namespace std::chrono_literals;

TEST(ProviderLiveTest, StreamsAShortAnswer) {
  ProviderSpec spec;
  std::string model;
  if (config::Env("OPENAI_API_KEY")) {
    spec.provider = "openai";
    model = "gpt-4o-mini";
  } else if (config::Env("MOONSHOT_API_KEY")) {
    spec.provider = "kimi";
    model = "moonshot-v1-8k";
  } else {
    GTEST_SKIP() << "neither OPENAI_API_KEY nor MOONSHOT_API_KEY is set: the live smoke test "
                    "calls a paid provider and runs only with a key";
  }
  model = config::EnvOr("SYNAPS_LIVE_MODEL", model);

  boost::asio::io_context io;
  ProviderSettings settings;
  settings.request_timeout = 60s;
  ProviderRegistry registry(io.get_executor(), settings);
  auto provider = registry.Get(spec);
  ASSERT_TRUE(provider) << provider.error().message;

  ChatRequest request;
  request.model = model;
  request.messages = {{"user", "Reply with the single word: pong"}};
  request.params = {{"max_tokens", 16}};
  int deltas = 0;
  request.on_delta = [&](const ChatDelta&) { ++deltas; };
  std::optional<Result<ChatResponse>> result;
  auto call = (*provider)->Start(request, [&](Result<ChatResponse> r) { result = std::move(r); });
  auto deadline = std::chrono::steady_clock::now() + 90s;
  while (!result && std::chrono::steady_clock::now() < deadline) io.run_one_for(100ms);
  ASSERT_TRUE(result.has_value()) << "no answer in 90 s";
  ASSERT_TRUE(*result) << (*result).error().message;
  const ChatResponse& r = **result;
  std::cout << spec.provider << "/" << r.model << ": '" << r.text << "' finish=" << r.finish_reason
            << " usage=" << r.usage.prompt_tokens << "+" << r.usage.completion_tokens
            << " latency=" << r.latency.count() << " ms ttft=" << r.time_to_first_token.count()
            << " ms" << std::endl;
  EXPECT_FALSE(r.text.empty());
  EXPECT_GT(deltas, 0);
  EXPECT_GT(r.usage.prompt_tokens, 0);
  EXPECT_GT(r.usage.completion_tokens, 0);
}

}  // namespace
}  // namespace synaps::providers
