#include "core/http_grammar.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace synaps {
namespace {

TEST(HttpGrammarTest, HeaderValuesWithControlCharactersAreUnsafe) {
  EXPECT_TRUE(IsSafeHeaderValue("text/plain; charset=utf-8"));
  EXPECT_TRUE(IsSafeHeaderValue("a\tb"));
  EXPECT_TRUE(IsSafeHeaderValue(""));
  EXPECT_TRUE(IsSafeHeaderValue("caf\xc3\xa9"));  // obs-text passes
  for (const std::string& bad : std::vector<std::string>{
           "text/plain\r\nX-Smuggled: 1", "a\rb", "a\nb", std::string("a\0b", 3), "a\x01", "a\x1f",
           "a\x7f", " leading", "trailing\t"}) {
    EXPECT_FALSE(IsSafeHeaderValue(bad)) << bad;
  }
}

TEST(HttpGrammarTest, MediaTypesFollowRfc9110) {
  for (const char* good : {"text/plain", "text/plain; charset=utf-8", "text/plain;charset=utf-8",
                           "application/vnd.api+json", "multipart/x; boundary=\"a \\\" b\"",
                           "image/png", "a/b ; c=d ;e=\"\""}) {
    EXPECT_TRUE(IsMediaType(good)) << good;
  }
  for (const std::string& bad : std::vector<std::string>{
           "", "text", "text/", "/plain", "text/plain;", "text/plain; charset",
           "text/plain; charset=", "text/pl ain", "text/plain ", "text/plain; a=\"unterminated",
           "text/plain\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK",
           "text/html\r\nSet-Cookie: pwned=1", std::string("text/plain\0x", 12),
           "text/plain; a=\"\x01\"", "t\xc3\xa9xt/plain", "text/plain; a=b c",
           "text/" + std::string(200, 'a')}) {
    EXPECT_FALSE(IsMediaType(bad)) << bad;
  }
  EXPECT_EQ(MediaTypeEssence("Text/HTML; charset=utf-8"), "text/html");
  EXPECT_EQ(MediaTypeEssence("text/html\r\n"), "");
}

TEST(HttpGrammarTest, TenantIdsAreTheApiKeyGrammar) {
  EXPECT_TRUE(IsTenantId("ta"));
  EXPECT_TRUE(IsTenantId("acme.eu-1_x"));
  EXPECT_TRUE(IsTenantId(std::string(64, 'a')));
  EXPECT_FALSE(IsTenantId(""));
  EXPECT_FALSE(IsTenantId(std::string(65, 'a')));
  EXPECT_FALSE(IsTenantId(std::string("ta\0zzz", 6)));
  EXPECT_FALSE(IsTenantId(".ta"));
  EXPECT_FALSE(IsTenantId("t a"));
  EXPECT_FALSE(IsTenantId("t\xc3\xa9"));
}

}  // namespace
}  // namespace synaps
