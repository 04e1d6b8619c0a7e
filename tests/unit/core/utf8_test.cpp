// Text and JSON made storable in PostgreSQL (core/utf8.h).
#include "core/utf8.h"

#include <gtest/gtest.h>

namespace synaps {
namespace {

using nlohmann::json;

const std::string kFffd = "\xEF\xBF\xBD";

TEST(Utf8Test, ValidTextIsKeptAndEverythingElseReplaced) {
  EXPECT_EQ(ValidUtf8("héllo ✓ 😀"), "héllo ✓ 😀");
  EXPECT_EQ(ValidUtf8(std::string("a\0b", 3)), "a" + kFffd + "b");
  EXPECT_EQ(ValidUtf8("a\xff"), "a" + kFffd);
  EXPECT_EQ(ValidUtf8("\xC0\xAF"), kFffd + kFffd) << "overlong '/'";
  EXPECT_EQ(ValidUtf8("\xED\xA0\x80"), kFffd + kFffd + kFffd) << "a surrogate";
  EXPECT_EQ(ValidUtf8("\xF4\x90\x80\x80"), kFffd + kFffd + kFffd + kFffd) << "above U+10FFFF";
  EXPECT_EQ(ValidUtf8("\xE2\x9C"), kFffd + kFffd) << "cut short";
}

TEST(Utf8Test, PrefixNeverSplitsASequence) {
  EXPECT_EQ(Utf8Prefix("héllo", 2), "h");
  EXPECT_EQ(Utf8Prefix("héllo", 3), "hé");
  EXPECT_EQ(Utf8Prefix("abc", 10), "abc");
}

TEST(Utf8Test, StorableJsonFixesStringsKeysAndDepth) {
  json v = {{std::string("k\0", 2), std::string("v\0", 2)}, {"ok", {1, "x\xff"}}};
  json s = StorableJson(v);
  EXPECT_EQ(s["k" + kFffd], "v" + kFffd);
  EXPECT_EQ(s["ok"][1], "x" + kFffd);
  EXPECT_NO_THROW((void)s.dump());

  json deep = 1;
  for (int i = 0; i < 100; ++i) deep = json::array({deep});
  json cut = StorableJson(deep, 10);
  const json* p = &cut;
  int depth = 0;
  while (p->is_array()) {
    p = &(*p)[0];
    ++depth;
  }
  EXPECT_EQ(depth, 10);
  EXPECT_EQ(*p, "[nested too deep]");
}

TEST(Utf8Test, JsonTextDepthCountsBracketsOutsideStrings) {
  EXPECT_EQ(JsonTextDepth("{}"), 1);
  EXPECT_EQ(JsonTextDepth(R"({"a": [1, {"b": "[[[["}]})"), 3);
  EXPECT_EQ(JsonTextDepth(R"("\"[")"), 0);
  EXPECT_EQ(JsonTextDepth(std::string(100000, '[')), 100000);
}

}  // namespace
}  // namespace synaps
