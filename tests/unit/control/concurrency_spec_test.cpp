// The `concurrency` kind's validator (docs/flow-control.md) and its key patterns.
#include "control/concurrency_spec.h"

#include <gtest/gtest.h>

#include "control/spec.h"

namespace synaps::control {
namespace {

using nlohmann::json;

void ExpectBad(const char* spec, const std::string& field) {
  auto r = ParseConcurrency("c", json::parse(spec));
  ASSERT_FALSE(r) << spec;
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(r.error().field, field) << r.error().message;
}

TEST(ConcurrencySpecTest, IsTheSeventhKind) {
  EXPECT_TRUE(IsKind("concurrency"));
  EXPECT_NE(KindList().find("concurrency"), std::string::npos);
  EXPECT_TRUE(ValidateSpec("concurrency", "per-user", json::parse(R"({"maxRunning":2})")));
  EXPECT_FALSE(ValidateSpec("concurrency", "per-user", json::parse(R"({"maxRunning":0})")));
}

TEST(ConcurrencySpecTest, ReadsLimitsAndWeights) {
  auto limit = ParseConcurrency(
      "per-user",
      json::parse(
          R"({"match":{"tenant":"acme","key":"user:*"},"maxRunning":2,"strategy":"cancelNewest"})"));
  ASSERT_TRUE(limit) << limit.error().message;
  EXPECT_EQ(limit->max_running, 2);
  EXPECT_FALSE(limit->weight);
  EXPECT_EQ(limit->tenant, "acme");
  EXPECT_EQ(limit->key, "user:*");
  EXPECT_EQ(ConcurrencyStrategyName(limit->strategy), "cancelNewest");

  auto weight =
      ParseConcurrency("gold", json::parse(R"({"match":{"fairnessKey":"gold"},"weight":5})"));
  ASSERT_TRUE(weight) << weight.error().message;
  EXPECT_EQ(weight->weight, 5);
  EXPECT_EQ(weight->fairness_key, "gold");
  EXPECT_EQ(weight->strategy, ConcurrencyStrategy::kQueue);
}

TEST(ConcurrencySpecTest, RefusesWhatItCannotEnforce) {
  ExpectBad(R"({})", "spec");
  ExpectBad(R"({"weight":2,"maxRunning":2})", "spec");
  ExpectBad(R"({"maxRunning":0})", "spec.maxRunning");
  ExpectBad(R"({"maxRunning":10001})", "spec.maxRunning");
  ExpectBad(R"({"maxRunning":1.5})", "spec.maxRunning");
  ExpectBad(R"({"weight":0})", "spec.weight");
  ExpectBad(R"({"weight":1001})", "spec.weight");
  ExpectBad(R"({"maxRunning":1,"strategy":"drop"})", "spec.strategy");
  ExpectBad(R"({"weight":1,"strategy":"queue"})", "spec.strategy");
  ExpectBad(R"({"maxRunning":1,"colour":1})", "spec.colour");
  ExpectBad(R"({"maxRunning":1,"match":{"skill":"x"}})", "spec.match.skill");
  ExpectBad(R"({"maxRunning":1,"match":{"key":"a b"}})", "spec.match.key");
  ExpectBad(R"({"maxRunning":1,"match":{"key":"a*b"}})", "spec.match.key");
  ExpectBad(R"({"maxRunning":1,"match":{"fairnessKey":"a"}})", "spec.match.fairnessKey");
  ExpectBad(R"({"weight":1,"match":{"key":"a"}})", "spec.match.key");
  ExpectBad(R"({"weight":1,"match":{"tenant":""}})", "spec.match.tenant");
  ExpectBad(R"({"weight":1,"match":[]})", "spec.match");
}

TEST(ConcurrencySpecTest, KeysAndPatterns) {
  EXPECT_TRUE(IsValidFlowKey("user:42/doc@v1.2_x-y"));
  EXPECT_FALSE(IsValidFlowKey(""));
  EXPECT_FALSE(IsValidFlowKey(std::string(129, 'a')));
  EXPECT_FALSE(IsValidFlowKey("a%"));
  EXPECT_FALSE(IsValidFlowKey("ä"));
  EXPECT_TRUE(IsValidFlowPattern("*"));
  EXPECT_TRUE(IsValidFlowPattern("user:*"));
  EXPECT_FALSE(IsValidFlowPattern("us*er"));
}

}  // namespace
}  // namespace synaps::control
