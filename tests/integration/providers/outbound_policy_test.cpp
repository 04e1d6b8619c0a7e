// Providers under the shared outbound policy (net/url_policy.h), against a real server on
// loopback: every connection is checked at the socket, after libcurl resolved the name, so
// SYNAPS_TOOLS_DENY_PRIVATE keeps a provider off loopback whether the route names an address or
// a name that resolves to one; nothing reaches the server then. Without the switch the same
// provider works, and a key goes only to the host it is bound to (through the registry).
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <optional>

#include "providers/openai_provider.h"
#include "providers/registry.h"
#include "support/fake_openai.h"

namespace synaps::providers {
namespace {

using testing::FakeOpenAi;
using namespace std::chrono_literals;

class ProviderOutboundTest : public ::testing::Test {
 protected:
  Result<ChatResponse> Run(Provider& provider) {
    ChatRequest request;
    request.model = "m";
    request.messages = {{"user", "hello"}};
    request.stream = false;
    std::optional<Result<ChatResponse>> result;
    auto call = provider.Start(request, [&](Result<ChatResponse> r) { result = std::move(r); });
    io.restart();
    auto until = std::chrono::steady_clock::now() + 20s;
    while (!result && std::chrono::steady_clock::now() < until) {
      if (io.stopped()) io.restart();
      io.run_one_for(20ms);
    }
    if (!result) return Fail(ErrorCode::kInternal, "test: no callback before the deadline");
    return std::move(*result);
  }

  OpenAiOptions Options(const std::string& base_url, bool deny_private) {
    OpenAiOptions o;
    o.base_url = base_url;
    o.api_key = "secret";
    o.connect_timeout = 2s;
    o.request_timeout = 5s;
    o.retry.max_attempts = 3;
    o.retry.base_delay = 10ms;
    o.address_policy.deny_private = deny_private;
    return o;
  }

  FakeOpenAi fake{[](const testing::FakeRequest&, int) { return FakeOpenAi::Completion("hi"); }};
  boost::asio::io_context io;
};

TEST_F(ProviderOutboundTest, DenyPrivateRefusesLoopbackAtTheSocketForAddressesAndNames) {
  for (std::string host : {"127.0.0.1", "localhost"}) {
    std::string url = "http://" + host + ":" + std::to_string(fake.port()) + "/v1";
    OpenAiCompatibleProvider denied(io.get_executor(), Options(url, /*deny_private=*/true));
    auto r = Run(denied);
    ASSERT_FALSE(r) << url;
    EXPECT_EQ(r.error().code, ErrorCode::kPermissionDenied) << r.error().message;
    EXPECT_NE(r.error().message.find("loopback address, refused by SYNAPS_TOOLS_DENY_PRIVATE"),
              std::string::npos)
        << r.error().message;
  }
  EXPECT_EQ(fake.request_count(), 0) << "nothing was sent, and a refusal is not retried";

  OpenAiCompatibleProvider allowed(
      io.get_executor(),
      Options("http://localhost:" + std::to_string(fake.port()) + "/v1", /*deny_private=*/false));
  auto ok = Run(allowed);
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(ok->text, "hi");
  EXPECT_EQ(fake.request_count(), 1);
}

TEST_F(ProviderOutboundTest, AForbiddenBaseUrlFailsEveryCallWithoutConnecting) {
  OpenAiCompatibleProvider metadata(io.get_executor(),
                                    Options("http://[::ffff:169.254.169.254]/v1", false));
  auto r = Run(metadata);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kPermissionDenied);
  EXPECT_NE(r.error().message.find("cloud metadata"), std::string::npos) << r.error().message;
}

TEST_F(ProviderOutboundTest, TheRegistrySendsAKeyOnlyToItsBoundHost) {
  setenv("DEMO_API_KEY", "the-workers-demo-key", 1);
  std::string base = fake.base_url();
  ProviderRegistry unbound(io.get_executor());
  auto refused = unbound.Get({"openai-compatible", base, "DEMO_API_KEY"});
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kPermissionDenied);
  EXPECT_EQ(fake.request_count(), 0);

  ProviderSettings settings;
  settings.key_hosts =
      *KeyHostBindings::Parse("DEMO_API_KEY=127.0.0.1:" + std::to_string(fake.port()));
  ProviderRegistry bound(io.get_executor(), settings);
  auto provider = bound.Get({"openai-compatible", base, "DEMO_API_KEY"});
  ASSERT_TRUE(provider) << provider.error().message;
  auto ok = Run(**provider);
  ASSERT_TRUE(ok) << ok.error().message;
  ASSERT_EQ(fake.request_count(), 1);
  EXPECT_EQ(fake.requests()[0].headers.at("authorization"), "Bearer the-workers-demo-key");
  unsetenv("DEMO_API_KEY");
}

}  // namespace
}  // namespace synaps::providers
