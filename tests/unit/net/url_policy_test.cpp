// The shared outbound policy (net/url_policy.h) as providers and stored specs see it: numeric
// and IPv6-mapped forms of the metadata address are refused in every spelling, IPv6 literals
// come out canonical, host patterns refuse what can never be reached, and the one switch for
// internal addresses.
#include "net/url_policy.h"

#include <gtest/gtest.h>
#include <stdlib.h>

namespace synaps::net {
namespace {

template <class R>
void ExpectDenied(const R& r, const std::string& says) {
  ASSERT_FALSE(r) << "expected a refusal mentioning \"" << says << "\"";
  EXPECT_EQ(r.error().code, ErrorCode::kPermissionDenied) << r.error().message;
  EXPECT_NE(r.error().message.find(says), std::string::npos) << r.error().message;
}

TEST(ParseTargetTest, MetadataIsRefusedInEverySpelling) {
  for (const char* url :
       {"http://2852039166/v1", "http://0xA9FEA9FE/v1", "http://0251.0376.0251.0376/v1",
        "http://169.254.43518/v1", "http://[::ffff:169.254.169.254]/v1",
        "http://[::ffff:a9fe:a9fe]/v1", "http://169.254.169.254/v1", "http://[fd00:ec2::254]/v1",
        "http://100.100.100.200/v1", "http://metadata.google.internal/v1",
        "http://METADATA.GOOGLE.INTERNAL./v1", "http://[64:ff9b::a9fe:a9fe]/v1"}) {
    auto target = ParseTarget(url, kProviderSender);
    ASSERT_FALSE(target) << url << " was accepted as " << target->url;
    EXPECT_EQ(target.error().code, ErrorCode::kPermissionDenied) << url;
    EXPECT_NE(target.error().message.find("provider"), std::string::npos) << target.error().message;
  }
  ExpectDenied(ParseTarget("http://[::ffff:169.254.169.254]/v1", kProviderSender),
               "provider host ::ffff:169.254.169.254 is a cloud metadata address, which "
               "providers never reach");
  // libcurl reads a numeric host as the IPv4 address it means; so does the policy.
  ExpectDenied(ParseTarget("http://2852039166/v1", kProviderSender),
               "provider host 169.254.169.254 is a cloud metadata address");
}

TEST(ParseTargetTest, CanonicalFormsComeOut) {
  auto v6 = ParseTarget("HTTP://[FD00:0:0::7]:8000/v1#x", kProviderSender);
  ASSERT_TRUE(v6) << v6.error().message;
  EXPECT_EQ(v6->host, "fd00::7");
  EXPECT_EQ(v6->HostPort(), "[fd00::7]:8000");
  EXPECT_EQ(v6->url, "http://[fd00::7]:8000/v1");
  auto named = ParseTarget("https://API.OpenAI.com./v1", kProviderSender);
  ASSERT_TRUE(named) << named.error().message;
  EXPECT_EQ(named->host, "api.openai.com");
  EXPECT_EQ(named->port, 443);
  EXPECT_EQ(named->url, "https://api.openai.com/v1");
  ExpectDenied(ParseTarget("http://u:p@vllm:8000/v1", kProviderSender), "user info");
  ExpectDenied(ParseTarget("ftp://vllm/v1", kProviderSender), "only http and https");
  auto numeric = ParseTarget("http://127.1:8000/v1", kProviderSender);
  ASSERT_TRUE(numeric) << numeric.error().message;
  EXPECT_EQ(numeric->url, "http://127.0.0.1:8000/v1") << "normalized to the address it means";
  EXPECT_EQ(ParseTarget("http://a b/v1", kProviderSender).error().code,
            ErrorCode::kInvalidArgument);
}

TEST(CheckAddressTest, InternalAddressesFollowTheOneSwitch) {
  auto target = ParseTarget("http://vllm.internal:8000/v1", kProviderSender);
  ASSERT_TRUE(target);
  AddressPolicy open;
  AddressPolicy deny{.deny_private = true};
  EXPECT_TRUE(CheckAddress(*target, *ParseIpAddress("10.0.0.7"), open, kProviderSender));
  EXPECT_TRUE(CheckAddress(*target, *ParseIpAddress("8.8.8.8"), deny, kProviderSender));
  ExpectDenied(CheckAddress(*target, *ParseIpAddress("127.0.0.1"), deny, kProviderSender),
               "vllm.internal resolves to 127.0.0.1, which is a loopback address, refused by "
               "SYNAPS_TOOLS_DENY_PRIVATE");
  ExpectDenied(CheckAddress(*target, *ParseIpAddress("::ffff:10.1.2.3"), deny, kProviderSender),
               "private");
  ExpectDenied(CheckAddress(*target, *ParseIpAddress("169.254.169.254"), open, kProviderSender),
               "which providers never reach");
}

TEST(HostPatternTest, RefusesWhatCanNeverBeReached) {
  EXPECT_EQ(HostPatternProblem("api.openai.com"), "");
  EXPECT_EQ(HostPatternProblem("*.example.com:8443"), "");
  EXPECT_EQ(HostPatternProblem("127.0.0.1:47090"), "");
  EXPECT_EQ(HostPatternProblem("[fd00::7]"), "");
  EXPECT_NE(HostPatternProblem("169.254.169.254"), "");
  EXPECT_NE(HostPatternProblem("[::ffff:169.254.169.254]"), "");
  EXPECT_NE(HostPatternProblem("[::ffff:a9fe:a9fe]"), "");
  EXPECT_NE(HostPatternProblem("[fe80::1]"), "");
  EXPECT_NE(HostPatternProblem("2852039166"), "");
  EXPECT_NE(HostPatternProblem("0xa9fea9fe"), "");
  EXPECT_NE(HostPatternProblem("metadata.google.internal"), "");
  EXPECT_NE(HostPatternProblem("a b"), "");
  EXPECT_NE(HostPatternProblem("host:99999"), "");
}

TEST(AddressPolicyTest, FromEnvironment) {
  unsetenv("SYNAPS_TOOLS_DENY_PRIVATE");
  EXPECT_FALSE(AddressPolicy::FromEnvironment().deny_private);
  setenv("SYNAPS_TOOLS_DENY_PRIVATE", "true", 1);
  EXPECT_TRUE(AddressPolicy::FromEnvironment().deny_private);
  setenv("SYNAPS_TOOLS_DENY_PRIVATE", "maybe", 1);
  EXPECT_THROW(AddressPolicy::FromEnvironment(), ConfigError);
  unsetenv("SYNAPS_TOOLS_DENY_PRIVATE");
}

}  // namespace
}  // namespace synaps::net
