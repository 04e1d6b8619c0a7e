// Arbiter checks and the decision over their verdicts (worker/arbiters.h), as pure functions.
#include "worker/arbiters.h"

#include <gtest/gtest.h>

namespace synaps::worker {
namespace {

using control::ArbiterCheck;
using control::CheckType;
using control::OnFail;
using nlohmann::json;

AnswerFacts Facts(std::string text) {
  return {.text = std::move(text), .prompt_tokens = 10, .completion_tokens = 5, .steps = 2};
}

TEST(ArbiterChecksTest, BudgetCountsTokensStepsAndCost) {
  ArbiterCheck c{.type = CheckType::kBudget, .max_tokens = 15, .max_steps = 2};
  EXPECT_TRUE(EvaluateCheck(c, Facts("x")).passed);
  c.max_tokens = 14;
  auto over = EvaluateCheck(c, Facts("x"));
  EXPECT_FALSE(over.passed);
  EXPECT_NE(over.reason.find("15 tokens"), std::string::npos) << over.reason;

  // A cost limit without a price fails rather than passing unchecked.
  ArbiterCheck cost{.type = CheckType::kBudget, .max_cost_usd = 0.01};
  auto unknown = EvaluateCheck(cost, Facts("x"));
  EXPECT_FALSE(unknown.passed);
  EXPECT_NE(unknown.reason.find("pricing"), std::string::npos) << unknown.reason;
  AnswerFacts priced = Facts("x");
  priced.cost_usd = CostUsd({{"pricing", {{"promptPerMillion", 1000}, {"completionPerMillion", 0}}}},
                            10, 5);
  ASSERT_TRUE(priced.cost_usd);
  EXPECT_DOUBLE_EQ(*priced.cost_usd, 0.01);
  EXPECT_TRUE(EvaluateCheck(cost, priced).passed);
  EXPECT_FALSE(CostUsd(json::object(), 10, 5));
}

TEST(ArbiterChecksTest, RegexDeniesAndRequires) {
  ArbiterCheck c{.type = CheckType::kRegex, .deny = {"secret"}, .require = {"^Dear", "thanks$"}};
  EXPECT_TRUE(EvaluateCheck(c, Facts("Dear Ada, thanks")).passed);
  auto denied = EvaluateCheck(c, Facts("Dear Ada, the secret, thanks"));
  EXPECT_FALSE(denied.passed);
  EXPECT_NE(denied.reason.find("/secret/"), std::string::npos) << denied.reason;
  auto missing = EvaluateCheck(c, Facts("Hi Ada, thanks"));
  EXPECT_FALSE(missing.passed);
  EXPECT_NE(missing.reason.find("/^Dear/"), std::string::npos) << missing.reason;
}

TEST(ArbiterChecksTest, RegexIsLinearOnLongAnswers) {
  // Patterns that make a backtracking engine recurse per character (std::regex overflowed its
  // stack on 30 KB here) run in linear time with RE2.
  std::string line(2'000'000, 'a');
  ArbiterCheck c{.type = CheckType::kRegex, .deny = {".*secret", "(a|b)*c", "[\\s\\S]*secret"}};
  EXPECT_TRUE(EvaluateCheck(c, Facts(line)).passed);
  EXPECT_FALSE(EvaluateCheck(c, Facts(line + "secret")).passed);
  // A pattern RE2 cannot run is refused when the arbiter is stored.
  EXPECT_FALSE(control::ParseArbiter(
      "x", {{"checks", {{{"type", "regex"}, {"deny", {"(?=lookahead)"}}}}}, {"onFail", "fail"}}));
}

TEST(ArbiterChecksTest, MalformedPricingNeverThrows) {
  EXPECT_FALSE(CostUsd({{"pricing", {{"promptPerMillion", "cheap"}}}}, 10, 5).value_or(-1) != 0);
  EXPECT_FALSE(control::ParseRoute(
      "r", {{"provider", "local"}, {"model", "echo"},
            {"params", {{"pricing", {{"promptPerMillion", "cheap"}}}}}}));
  EXPECT_TRUE(control::ParseRoute(
      "r", {{"provider", "local"}, {"model", "echo"},
            {"params", {{"pricing", {{"promptPerMillion", 0.15}, {"completionPerMillion", 0.6}}}}}}));
}

TEST(ArbiterChecksTest, JsonSchemaParsesTheAnswerFencedOrNot) {
  ArbiterCheck c{.type = CheckType::kJsonSchema,
                 .schema = {{"type", "object"},
                            {"required", {"amount"}},
                            {"properties", {{"amount", {{"type", "number"}}}}}}};
  EXPECT_TRUE(EvaluateCheck(c, Facts(R"({"amount": 3})")).passed);
  EXPECT_TRUE(EvaluateCheck(c, Facts("```json\n{\"amount\": 3}\n```")).passed);
  auto wrong = EvaluateCheck(c, Facts(R"({"amount": "three"})"));
  EXPECT_FALSE(wrong.passed);
  EXPECT_NE(wrong.reason.find("$.amount"), std::string::npos) << wrong.reason;
  EXPECT_FALSE(EvaluateCheck(c, Facts("three")).passed);
}

TEST(ArbiterChecksTest, JudgeScoresItsReply) {
  ArbiterCheck c{.type = CheckType::kJudge, .route = "strong", .rubric = "Polite.", .min_score = 0.7};
  auto msgs = JudgeRequest(c, "the task", "the answer");
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_NE(msgs[0].content.find("Polite."), std::string::npos);
  EXPECT_NE(msgs[1].content.find("the answer"), std::string::npos);

  providers::ChatResponse reply;
  reply.text = R"({"score": 0.8, "reason": "kind"})";
  auto good = JudgeVerdict(c, reply);
  EXPECT_TRUE(good.passed);
  EXPECT_DOUBLE_EQ(*good.score, 0.8);
  reply.text = R"({"score": 0.5})";
  EXPECT_FALSE(JudgeVerdict(c, reply).passed);
  reply.text = "I think it is fine";
  auto unusable = JudgeVerdict(c, reply);
  EXPECT_FALSE(unusable.passed);
  EXPECT_NE(unusable.reason.find("no numeric score"), std::string::npos);
  reply.text = R"({"score": 7})";
  EXPECT_FALSE(JudgeVerdict(c, reply).passed) << "scores are 0..1";
  EXPECT_FALSE(JudgeVerdict(c, Fail(ErrorCode::kUnavailable, "down")).passed);
}

ArbiterVerdict Verdict(OnFail on_fail, std::vector<CheckVerdict> checks) {
  return {.arbiter = "a", .version = 1, .on_fail = on_fail, .checks = std::move(checks)};
}

TEST(ArbiterDecisionTest, FailBeatsRetryBeatsHold) {
  CheckVerdict ok{.type = CheckType::kRegex, .passed = true};
  CheckVerdict bad{.type = CheckType::kRegex, .passed = false, .reason = "nope"};
  CheckVerdict approval{.type = CheckType::kApproval, .passed = false};
  EXPECT_EQ(Decide({}), Decision::kPass);
  EXPECT_EQ(Decide({Verdict(OnFail::kFail, {ok})}), Decision::kPass);
  EXPECT_EQ(Decide({Verdict(OnFail::kRetry, {bad})}), Decision::kRetry);
  EXPECT_EQ(Decide({Verdict(OnFail::kHold, {bad})}), Decision::kHold);
  EXPECT_EQ(Decide({Verdict(OnFail::kRetry, {bad}), Verdict(OnFail::kFail, {bad})}),
            Decision::kFail);
  EXPECT_EQ(Decide({Verdict(OnFail::kHold, {bad}), Verdict(OnFail::kRetry, {bad})}),
            Decision::kRetry);
  // An approval check holds whatever onFail says.
  EXPECT_EQ(Decide({Verdict(OnFail::kFail, {ok, approval})}), Decision::kHold);
  // Feedback names failed checks, not approvals.
  std::string feedback = FeedbackMessage({Verdict(OnFail::kRetry, {bad, approval})});
  EXPECT_NE(feedback.find("nope"), std::string::npos);
  EXPECT_EQ(feedback.find("approval"), std::string::npos) << feedback;
}

}  // namespace
}  // namespace synaps::worker
