// The HTTP tools' network policy: which urls, hosts and addresses a tool call may reach.
#include "tools/network_policy.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <map>

namespace synaps::tools {
namespace {

using Hosts = std::vector<std::string>;

// What HttpTools decides before it connects: CheckUrl, then CheckAddresses on the literal or
// on what `dns` says the name resolves to.
Status Decide(const std::string& url, const Hosts& allow, NetworkPolicy policy = {},
              const std::map<std::string, std::vector<std::string>>& dns = {}) {
  ASSIGN_OR_RETURN(ToolTarget target, CheckUrl(url, allow));
  std::vector<IpAddress> addresses;
  if (target.literal) {
    addresses.push_back(*target.literal);
  } else if (auto it = dns.find(target.host); it != dns.end()) {
    for (const auto& a : it->second) addresses.push_back(*ParseIpAddress(a));
  }
  return CheckAddresses(target, addresses, policy);
}

template <class R>
void ExpectDenied(const R& status, const std::string& says) {
  ASSERT_FALSE(status) << "expected a refusal mentioning \"" << says << "\"";
  EXPECT_EQ(status.error().code, ErrorCode::kPermissionDenied) << status.error().message;
  EXPECT_NE(status.error().message.find(says), std::string::npos) << status.error().message;
}

TEST(MatchHostTest, ExactNames) {
  EXPECT_EQ(MatchHost("api.example.com", "api.example.com", 443), HostMatch::kExact);
  EXPECT_EQ(MatchHost("API.Example.com.", "api.example.com", 443), HostMatch::kExact);
  EXPECT_EQ(MatchHost("api.example.com", "api.example.com.", 443), HostMatch::kExact);
  EXPECT_EQ(MatchHost("api.example.com", "example.com", 443), HostMatch::kNone);
  EXPECT_EQ(MatchHost("example.com", "api.example.com", 443), HostMatch::kNone);
  EXPECT_EQ(MatchHost("example.com", "evilexample.com", 443), HostMatch::kNone);
}

TEST(MatchHostTest, WildcardsCoverSubdomainsOnly) {
  EXPECT_EQ(MatchHost("*.example.com", "api.example.com", 443), HostMatch::kWildcard);
  EXPECT_EQ(MatchHost("*.example.com", "a.b.example.com", 443), HostMatch::kWildcard);
  EXPECT_EQ(MatchHost("*.example.com", "example.com", 443), HostMatch::kNone);
  EXPECT_EQ(MatchHost("*.example.com", "evilexample.com", 443), HostMatch::kNone);
  EXPECT_EQ(MatchHost("*.example.com", "example.com.evil.net", 443), HostMatch::kNone);
  EXPECT_EQ(MatchHost("*.0.0.1", "127.0.0.1", 80), HostMatch::kNone);  // never an IP literal
}

TEST(MatchHostTest, PortsMatchWhenNamed) {
  EXPECT_EQ(MatchHost("api.example.com:8443", "api.example.com", 8443), HostMatch::kExact);
  EXPECT_EQ(MatchHost("api.example.com:8443", "api.example.com", 443), HostMatch::kNone);
  EXPECT_EQ(MatchHost("*.example.com:8443", "a.example.com", 443), HostMatch::kNone);
  EXPECT_EQ(MatchHost("10.0.0.7:9000", "10.0.0.7", 9000), HostMatch::kExact);
  EXPECT_EQ(MatchHost("10.0.0.7:9000", "10.0.0.7", 9001), HostMatch::kNone);
  EXPECT_EQ(MatchHost("api.example.com:0", "api.example.com", 443), HostMatch::kNone);
  EXPECT_EQ(MatchHost("api.example.com:x", "api.example.com", 443), HostMatch::kNone);
}

TEST(MatchHostTest, IpLiteralsCompareByAddress) {
  EXPECT_EQ(MatchHost("[fd00::7]", "fd00:0:0::7", 80), HostMatch::kExact);
  EXPECT_EQ(MatchHost("[fd00::7]:8080", "fd00::7", 8080), HostMatch::kExact);
  EXPECT_EQ(MatchHost("[fd00::7]:8080", "fd00::7", 80), HostMatch::kNone);
  EXPECT_EQ(MatchHost("fd00::7", "fd00::7", 80), HostMatch::kExact);
  EXPECT_EQ(MatchHost("127.0.0.1", "127.0.0.1", 80), HostMatch::kExact);
  EXPECT_EQ(MatchHost("127.0.0.1", "::ffff:127.0.0.1", 80), HostMatch::kNone);
}

TEST(CheckUrlTest, AcceptsAnAllowedUrl) {
  auto target = CheckUrl("HTTPS://API.Example.com./v1/search?x=1#frag", {"api.example.com"});
  ASSERT_TRUE(target) << target.error().message;
  EXPECT_EQ(target->scheme, "https");
  EXPECT_EQ(target->host, "api.example.com");
  EXPECT_EQ(target->port, 443);
  EXPECT_FALSE(target->literal);
  EXPECT_TRUE(target->exact_match);
  EXPECT_EQ(target->url, "https://api.example.com/v1/search?x=1");

  auto v6 = CheckUrl("http://[FD00::7]:8080/x", {"[fd00::7]"});
  ASSERT_TRUE(v6) << v6.error().message;
  EXPECT_EQ(v6->host, "fd00::7");
  EXPECT_EQ(v6->UrlHost(), "[fd00::7]");
  EXPECT_EQ(v6->url, "http://[fd00::7]:8080/x");

  auto wildcard = CheckUrl("http://a.example.com/", {"*.example.com"});
  ASSERT_TRUE(wildcard);
  EXPECT_FALSE(wildcard->exact_match);
}

TEST(CheckUrlTest, RefusesWhatThePolicyForbids) {
  ExpectDenied(CheckUrl("ftp://api.example.com/", {"api.example.com"}), "only http and https");
  ExpectDenied(CheckUrl("file:///etc/passwd", {"api.example.com"}), "only http and https");
  ExpectDenied(CheckUrl("http://user@api.example.com/", {"api.example.com"}), "user info");
  ExpectDenied(CheckUrl("http://u:p@api.example.com/", {"api.example.com"}), "user info");
  ExpectDenied(CheckUrl("http://api.example.com\\@evil.com/", {"evil.com"}), "user info");
  ExpectDenied(CheckUrl("http://api.example.com:0/", {"api.example.com"}), "port");
  ExpectDenied(CheckUrl("http://evil.com/", {"api.example.com"}),
               "evil.com:80 is not in allowHosts (api.example.com)");
  ExpectDenied(CheckUrl("http://api.example.com:8080/", {"api.example.com:443"}),
               "not in allowHosts");
  ExpectDenied(CheckUrl("http://[fe80::1%25eth0]/", {"[fe80::1]"}), "zone");
  ExpectDenied(CheckUrl("http://\xef\xbd\x85xample.com/", {"example.com"}), "plain ASCII");
  ExpectDenied(CheckUrl("http://metadata.google.internal/computeMetadata/v1/",
                        {"metadata.google.internal"}),
               "cloud metadata");
  ExpectDenied(CheckUrl("http://METADATA./", {"metadata"}), "cloud metadata");
  EXPECT_EQ(CheckUrl("http://exa mple.com/", {"example.com"}).error().code,
            ErrorCode::kInvalidArgument);
}

TEST(CheckUrlTest, NumericHostsAreReadAsTheAddressTheyMean) {
  // libcurl connects to 169.254.169.254 for each of these, so they are that address: refused
  // whatever the allowlist, even when it names the host the same odd way.
  for (const char* url : {"http://2852039166/", "http://0xA9FEA9FE/", "http://0xa9.0xfe.0xa9.0xfe/",
                          "http://0251.0376.0251.0376/", "http://169.254.43518/"}) {
    std::string host = std::string(url).substr(7, std::string(url).size() - 8);
    ExpectDenied(Decide(url, {host}), "169.254.169.254 is a cloud metadata address");
    ExpectDenied(Decide(url, {"169.254.169.254"}), "169.254.169.254 is a cloud metadata address");
  }
  // An allowed address in an odd form is that address, and must be allowed as such.
  ExpectDenied(Decide("http://127.1/", {"127.1"}), "127.0.0.1:80 is not in allowHosts");
  EXPECT_TRUE(Decide("http://127.1/", {"127.0.0.1"}));
  ExpectDenied(CheckUrl("http://0/", {"0"}), "tool host 0.0.0.0 is an unspecified address");
}

TEST(CheckAddressesTest, ForbiddenAddressesAreRefusedWhateverTheAllowlist) {
  ExpectDenied(Decide("http://169.254.169.254/latest/meta-data/", {"169.254.169.254"}),
               "tool host 169.254.169.254 is a cloud metadata address, which tools never reach");
  ExpectDenied(Decide("http://[fd00:ec2::254]/", {"[fd00:ec2::254]"}), "cloud metadata");
  ExpectDenied(Decide("http://[::ffff:169.254.169.254]/", {"[::ffff:169.254.169.254]"}),
               "cloud metadata");
  ExpectDenied(Decide("http://[::ffff:a9fe:a9fe]/", {"[::ffff:a9fe:a9fe]"}), "cloud metadata");
  ExpectDenied(Decide("http://169.254.1.1/", {"169.254.1.1"}), "link-local");
  ExpectDenied(Decide("http://[fe80::1]/", {"[fe80::1]"}), "link-local");
  ExpectDenied(Decide("http://[::]/", {"[::]"}), "unspecified");
  ExpectDenied(Decide("http://224.0.0.1/", {"224.0.0.1"}), "multicast");
  ExpectDenied(Decide("http://255.255.255.255/", {"255.255.255.255"}), "broadcast");
}

TEST(CheckAddressesTest, EveryResolvedAddressMustPass) {
  std::map<std::string, std::vector<std::string>> dns = {
      {"api.example.com", {"93.184.216.34", "2606:2800:220:1::1"}},
      {"rebind.example.com", {"93.184.216.34", "169.254.169.254"}},
      {"mapped.example.com", {"::ffff:169.254.169.254"}},
      {"svc.internal.example.com", {"10.0.3.7"}},
      {"nowhere.example.com", {}}};
  EXPECT_TRUE(Decide("https://api.example.com/", {"api.example.com"}, {}, dns));
  ExpectDenied(Decide("https://rebind.example.com/", {"rebind.example.com"}, {}, dns),
               "rebind.example.com resolves to 169.254.169.254, which is a cloud metadata");
  ExpectDenied(Decide("https://mapped.example.com/", {"*.example.com"}, {}, dns),
               "cloud metadata");
  auto none = Decide("https://nowhere.example.com/", {"nowhere.example.com"}, {}, dns);
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code, ErrorCode::kUnavailable);
}

TEST(CheckAddressesTest, InternalAddressesNeedAnExactEntryAndArePolicyControlled) {
  std::map<std::string, std::vector<std::string>> dns = {{"svc.internal.example.com", {"10.0.3.7"}},
                                                         {"localhost", {"127.0.0.1", "::1"}}};
  EXPECT_TRUE(Decide("http://svc.internal.example.com/", {"svc.internal.example.com"}, {}, dns));
  EXPECT_TRUE(Decide("http://localhost:8080/", {"localhost"}, {}, dns));
  EXPECT_TRUE(Decide("http://10.0.3.7/", {"10.0.3.7"}));
  ExpectDenied(Decide("http://svc.internal.example.com/", {"*.example.com"}, {}, dns),
               "only hosts listed exactly in allowHosts");
  NetworkPolicy deny{.deny_private = true};
  ExpectDenied(Decide("http://svc.internal.example.com/", {"svc.internal.example.com"}, deny, dns),
               "10.0.3.7, which is a private address, refused by SYNAPS_TOOLS_DENY_PRIVATE");
  ExpectDenied(Decide("http://localhost/", {"localhost"}, deny, dns), "loopback");
  ExpectDenied(Decide("http://[::ffff:10.0.0.1]/", {"[::ffff:10.0.0.1]"}, deny), "private");
  EXPECT_TRUE(Decide("http://8.8.8.8/", {"8.8.8.8"}, deny));
}

TEST(NetworkPolicyTest, FromEnvironment) {
  unsetenv("SYNAPS_TOOLS_DENY_PRIVATE");
  EXPECT_FALSE(NetworkPolicy::FromEnvironment().deny_private);
  setenv("SYNAPS_TOOLS_DENY_PRIVATE", "1", 1);
  EXPECT_TRUE(NetworkPolicy::FromEnvironment().deny_private);
  setenv("SYNAPS_TOOLS_DENY_PRIVATE", "false", 1);
  EXPECT_FALSE(NetworkPolicy::FromEnvironment().deny_private);
  setenv("SYNAPS_TOOLS_DENY_PRIVATE", "yes please", 1);
  EXPECT_THROW(NetworkPolicy::FromEnvironment(), ConfigError);
  unsetenv("SYNAPS_TOOLS_DENY_PRIVATE");
}

}  // namespace
}  // namespace synaps::tools
