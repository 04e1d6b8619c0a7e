#include "auth/base64url.h"

#include <gtest/gtest.h>

namespace synaps::auth {
namespace {

TEST(Base64UrlTest, EncodesRfc4648Vectors) {
  EXPECT_EQ(Base64UrlEncode(""), "");
  EXPECT_EQ(Base64UrlEncode("f"), "Zg");
  EXPECT_EQ(Base64UrlEncode("fo"), "Zm8");
  EXPECT_EQ(Base64UrlEncode("foo"), "Zm9v");
  EXPECT_EQ(Base64UrlEncode("foob"), "Zm9vYg");
  EXPECT_EQ(Base64UrlEncode("fooba"), "Zm9vYmE");
  EXPECT_EQ(Base64UrlEncode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(Base64UrlEncode("\xfb\xff\xbf"), "-_-_");  // the URL-safe characters
}

TEST(Base64UrlTest, RoundTripsEveryLengthAndByte) {
  std::string bytes;
  for (int i = 0; i < 300; ++i) {
    bytes.push_back(static_cast<char>(i * 37 % 256));
    auto decoded = Base64UrlDecode(Base64UrlEncode(bytes));
    ASSERT_TRUE(decoded) << i;
    EXPECT_EQ(*decoded, bytes);
  }
}

TEST(Base64UrlTest, DecodesStrictly) {
  EXPECT_FALSE(Base64UrlDecode("Zg=="));    // padding
  EXPECT_FALSE(Base64UrlDecode("+/+/"));    // standard alphabet
  EXPECT_FALSE(Base64UrlDecode("Zm9v\n"));  // whitespace
  EXPECT_FALSE(Base64UrlDecode("Z"));       // a lone character is never a byte
  EXPECT_FALSE(Base64UrlDecode("Zh"));      // non-zero unused bits: a second encoding of "f"
  EXPECT_EQ(Base64UrlDecode("Zg"), "f");
}

}  // namespace
}  // namespace synaps::auth
