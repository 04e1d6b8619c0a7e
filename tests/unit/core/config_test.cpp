#include "core/config.h"

#include <gtest/gtest.h>

#include <cstdlib>

#include "core/error.h"

namespace synaps::config {
namespace {

TEST(ConfigTest, EnvIntUsesFallbackWhenUnset) {
  unsetenv("SYNAPS_TEST_INT");
  EXPECT_EQ(EnvInt("SYNAPS_TEST_INT", 16, 1, 100), 16);
}

TEST(ConfigTest, EnvIntRejectsGarbageNamingTheVariable) {
  setenv("SYNAPS_TEST_INT", "12abc", 1);
  try {
    EnvInt("SYNAPS_TEST_INT", 16, 1, 100);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("SYNAPS_TEST_INT"), std::string::npos);
  }
  unsetenv("SYNAPS_TEST_INT");
}

TEST(ConfigTest, EnvIntRejectsOutOfRange) {
  setenv("SYNAPS_TEST_INT", "0", 1);
  EXPECT_THROW(EnvInt("SYNAPS_TEST_INT", 16, 1, 100), ConfigError);
  unsetenv("SYNAPS_TEST_INT");
}

TEST(ConfigTest, SplitListTrimsAndDropsEmpties) {
  EXPECT_EQ(SplitList(" a, b ,,c "), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_TRUE(SplitList("").empty());
}

TEST(ConfigTest, ParseHostPort) {
  auto hp = ParseHostPort("SYNAPS_LISTEN", "0.0.0.0:8081");
  EXPECT_EQ(hp.host, "0.0.0.0");
  EXPECT_EQ(hp.port, 8081);
  EXPECT_EQ(ParseHostPort("x", "[::1]:0").host, "::1");
  EXPECT_THROW(ParseHostPort("SYNAPS_LISTEN", "8081"), ConfigError);
  EXPECT_THROW(ParseHostPort("SYNAPS_LISTEN", "host:99999"), ConfigError);
}

}  // namespace
}  // namespace synaps::config
