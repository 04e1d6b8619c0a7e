#include "providers/registry.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <cstdlib>

#include "core/error.h"

namespace synaps::providers {
namespace {

class RegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    unsetenv("OPENAI_API_KEY");
    unsetenv("MOONSHOT_API_KEY");
    unsetenv("SYNAPS_TEST_VLLM_API_KEY");
  }
  void TearDown() override { SetUp(); }

  boost::asio::io_context io;
  ProviderRegistry registry{io.get_executor()};
};

TEST_F(RegistryTest, MakesEachKindAndKeepsIt) {
  setenv("OPENAI_API_KEY", "sk-test", 1);
  setenv("MOONSHOT_API_KEY", "sk-moon", 1);
  auto openai = registry.Get({"openai"});
  ASSERT_TRUE(openai) << openai.error().message;
  EXPECT_EQ((*openai)->name(), "openai");
  auto kimi = registry.Get({"kimi"});
  ASSERT_TRUE(kimi) << kimi.error().message;
  EXPECT_EQ((*kimi)->name(), "kimi");
  auto vllm = registry.Get({"openai-compatible", "http://vllm:8000/v1/"});
  ASSERT_TRUE(vllm) << vllm.error().message;
  EXPECT_EQ((*vllm)->name(), "openai-compatible");
  auto local = registry.Get({"local"});
  ASSERT_TRUE(local);
  EXPECT_EQ((*local)->name(), "local");

  EXPECT_EQ(*registry.Get({"openai"}), *openai);
  EXPECT_EQ(*registry.Get({"openai-compatible", "http://vllm:8000/v1"}), *vllm);
  EXPECT_NE(*registry.Get({"openai-compatible", "http://other:8000/v1"}), *vllm);
}

TEST_F(RegistryTest, MissingKeyNamesTheVariable) {
  auto r = registry.Get({"openai"});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(r.error().field, "apiKeyEnv");
  EXPECT_NE(r.error().message.find("OPENAI_API_KEY is not set"), std::string::npos)
      << r.error().message;
  auto k = registry.Get({"kimi"});
  ASSERT_FALSE(k);
  EXPECT_NE(k.error().message.find("MOONSHOT_API_KEY"), std::string::npos);
  // Set later, it is found: a missing key is not remembered.
  setenv("OPENAI_API_KEY", "sk-test", 1);
  EXPECT_TRUE(registry.Get({"openai"}));
}

ProviderSettings BoundTo(const std::string& bindings) {
  ProviderSettings settings;
  auto parsed = KeyHostBindings::Parse(bindings);
  EXPECT_TRUE(parsed) << parsed.error().message;
  if (parsed) settings.key_hosts = *parsed;
  return settings;
}

TEST_F(RegistryTest, KeyVariableCanBeNamedByTheRoute) {
  ProviderRegistry bound(io.get_executor(), BoundTo("SYNAPS_TEST_VLLM_API_KEY=vllm"));
  auto missing = bound.Get({"openai-compatible", "http://vllm/v1", "SYNAPS_TEST_VLLM_API_KEY"});
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("SYNAPS_TEST_VLLM_API_KEY"), std::string::npos);
  setenv("SYNAPS_TEST_VLLM_API_KEY", "k", 1);
  EXPECT_TRUE(bound.Get({"openai-compatible", "http://vllm/v1", "SYNAPS_TEST_VLLM_API_KEY"}));
}

// No route can ship a key to a host of its choosing: a key goes only where it is bound.
TEST_F(RegistryTest, KeysGoOnlyToTheHostsTheyAreBoundTo) {
  setenv("OPENAI_API_KEY", "sk-test", 1);
  setenv("SYNAPS_TEST_VLLM_API_KEY", "k", 1);
  auto elsewhere = registry.Get({"openai", "http://127.0.0.1:47090/v1"});
  ASSERT_FALSE(elsewhere);
  EXPECT_EQ(elsewhere.error().code, ErrorCode::kPermissionDenied);
  EXPECT_EQ(elsewhere.error().field, "apiKeyEnv");
  EXPECT_NE(elsewhere.error().message.find(
                "OPENAI_API_KEY may be sent only to api.openai.com, not to 127.0.0.1:47090"),
            std::string::npos)
      << elsewhere.error().message;
  auto compatible =
      registry.Get({"openai-compatible", "http://attacker.example/v1", "OPENAI_API_KEY"});
  ASSERT_FALSE(compatible);
  EXPECT_EQ(compatible.error().code, ErrorCode::kPermissionDenied);
  auto unbound = registry.Get({"openai-compatible", "http://vllm/v1", "SYNAPS_TEST_VLLM_API_KEY"});
  ASSERT_FALSE(unbound);
  EXPECT_NE(unbound.error().message.find("SYNAPS_TEST_VLLM_API_KEY is bound to no host"),
            std::string::npos)
      << unbound.error().message;
  EXPECT_NE(unbound.error().message.find("SYNAPS_PROVIDER_KEY_HOSTS"), std::string::npos);

  // The operator binds more hosts; a port in the binding must match.
  ProviderRegistry bound(io.get_executor(),
                         BoundTo("OPENAI_API_KEY=gateway.corp:8443, SYNAPS_TEST_VLLM_API_KEY=vllm"));
  EXPECT_TRUE(bound.Get({"openai"})) << "the built-in binding stays";
  EXPECT_TRUE(bound.Get({"openai", "https://gateway.corp:8443/v1"}));
  EXPECT_FALSE(bound.Get({"openai", "https://gateway.corp/v1"}));
  EXPECT_TRUE(bound.Get({"openai-compatible", "http://vllm/v1", "SYNAPS_TEST_VLLM_API_KEY"}));
  // A route without a key may go anywhere the address policy allows.
  EXPECT_TRUE(registry.Get({"openai-compatible", "http://anywhere.example/v1"}));
}

TEST_F(RegistryTest, KeyHostBindingsAreValidated) {
  EXPECT_TRUE(KeyHostBindings::Parse(""));
  EXPECT_TRUE(KeyHostBindings::Parse("A_API_KEY=h.example:1,B_API_KEY=[fd00::7]"));
  EXPECT_FALSE(KeyHostBindings::Parse("SYNAPS_JWT_SECRET=h.example"));
  EXPECT_FALSE(KeyHostBindings::Parse("A_API_KEY"));
  EXPECT_FALSE(KeyHostBindings::Parse("A_API_KEY="));
  EXPECT_FALSE(KeyHostBindings::Parse("A_API_KEY=169.254.169.254"));
  EXPECT_FALSE(KeyHostBindings::Parse("A_API_KEY=[::ffff:a9fe:a9fe]"));
  setenv("SYNAPS_PROVIDER_KEY_HOSTS", "A_API_KEY=metadata.google.internal", 1);
  EXPECT_THROW(KeyHostBindings::FromEnvironment(), ConfigError);
  unsetenv("SYNAPS_PROVIDER_KEY_HOSTS");
}

TEST_F(RegistryTest, BaseUrlGoesThroughTheAddressPolicy) {
  for (const char* url : {"http://2852039166/v1", "http://[::ffff:169.254.169.254]/v1",
                          "http://169.254.169.254/v1", "http://metadata.google.internal/v1"}) {
    auto r = registry.Get({"openai-compatible", url});
    ASSERT_FALSE(r) << url;
    EXPECT_EQ(r.error().code, ErrorCode::kPermissionDenied) << url;
    EXPECT_EQ(r.error().field, "baseUrl") << url;
  }
}

TEST_F(RegistryTest, KeyFromAFileMountedSecretIsTrimmedAndChecked) {
  setenv("OPENAI_API_KEY", "sk-test\n", 1);
  EXPECT_TRUE(registry.Get({"openai"}));
  setenv("MOONSHOT_API_KEY", "sk-a\r\nX-Injected: 1", 1);
  auto r = registry.Get({"kimi"});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("control characters"), std::string::npos);
}

TEST_F(RegistryTest, RefusesKeyVariablesThatAreNotApiKeys) {
  for (const char* name : {"SYNAPS_JWT_SECRET", "AWS_SECRET_ACCESS_KEY", "SYNAPS_DATABASE_URL",
                           "openai_api_key", "_API_KEY", "MY-API_KEY"}) {
    auto r = registry.Get({"openai-compatible", "http://evil.example/v1", name});
    ASSERT_FALSE(r) << name;
    EXPECT_EQ(r.error().field, "apiKeyEnv") << name;
  }
}

TEST_F(RegistryTest, RefusesBadSpecs) {
  auto unknown = registry.Get({"anthropic"});
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().field, "provider");
  EXPECT_NE(unknown.error().message.find("known: openai, kimi, openai-compatible, local"),
            std::string::npos);
  EXPECT_EQ(registry.Get({"openai-compatible"}).error().field, "baseUrl");
  EXPECT_EQ(registry.Get({"openai-compatible", "ftp://x/v1"}).error().field, "baseUrl");
  EXPECT_EQ(registry.Get({"openai-compatible", "http://x/v1/chat/completions"}).error().field,
            "baseUrl");
  EXPECT_EQ(registry.Get({"local", "http://x/v1"}).error().field, "provider");
}

TEST_F(RegistryTest, SpecFromRouteJson) {
  auto spec = ProviderSpecFromJson(
      {{"provider", "openai-compatible"}, {"baseUrl", "http://ollama:11434/v1"},
       {"apiKeyEnv", "OLLAMA_API_KEY"}, {"model", "llama3"}});
  ASSERT_TRUE(spec);
  EXPECT_EQ(spec->provider, "openai-compatible");
  EXPECT_EQ(spec->base_url, "http://ollama:11434/v1");
  EXPECT_EQ(spec->api_key_env, "OLLAMA_API_KEY");
  EXPECT_EQ(ProviderSpecFromJson({{"model", "x"}}).error().field, "route.provider");
  EXPECT_EQ(ProviderSpecFromJson({{"provider", 1}}).error().field, "route.provider");
  EXPECT_EQ(ProviderSpecFromJson({{"provider", "openai"}, {"baseUrl", true}}).error().field,
            "route.baseUrl");
}

TEST(ProviderSettingsTest, FromEnvironment) {
  setenv("SYNAPS_PROVIDER_MAX_ATTEMPTS", "6", 1);
  setenv("SYNAPS_PROVIDER_TIMEOUT_MS", "120000", 1);
  ProviderSettings s = ProviderSettingsFromEnv();
  EXPECT_EQ(s.retry.max_attempts, 6);
  EXPECT_EQ(s.request_timeout, std::chrono::milliseconds(120000));
  setenv("SYNAPS_PROVIDER_MAX_ATTEMPTS", "0", 1);
  EXPECT_THROW(ProviderSettingsFromEnv(), ConfigError);
  unsetenv("SYNAPS_PROVIDER_MAX_ATTEMPTS");
  unsetenv("SYNAPS_PROVIDER_TIMEOUT_MS");
}

}  // namespace
}  // namespace synaps::providers
