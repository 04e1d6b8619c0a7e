// Arbiter checks on a task's final answer (docs/control.md, "Arbiters"). Pure functions: the
// judge check needs a model call, which TaskRun makes with JudgeRequest() and scores with
// JudgeVerdict(); every other check is evaluated here from the answer's facts.
//
// Decision over the verdicts of all matching arbiters (Decide):
//   - every check of every arbiter passed              -> kPass
//   - a failed arbiter says onFail "fail"              -> kFail (the task fails, no retry)
//   - else an approval check, or a failed "hold"       -> kHold (awaiting_approval)
//   - else (failed arbiters all say "retry")           -> kRetry (feedback to the model)
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "control/spec.h"
#include "providers/provider.h"

namespace synaps::worker {

// What the checks look at.
struct AnswerFacts {
  std::string text;                // the final answer
  int64_t prompt_tokens = 0;       // summed over every model call of the task
  int64_t completion_tokens = 0;
  int steps = 0;                   // model calls
  std::optional<double> cost_usd;  // unknown when the route has no params.pricing
};

struct CheckVerdict {
  control::CheckType type = control::CheckType::kApproval;
  bool passed = false;
  std::string reason;            // why it failed, or a short note when it passed
  std::optional<double> score;   // judge only
};

struct ArbiterVerdict {
  std::string arbiter;
  int version = 0;
  control::OnFail on_fail = control::OnFail::kFail;
  std::vector<CheckVerdict> checks;

  bool passed() const;
  bool needs_approval() const;  // has an approval check
  // {arbiter, version, onFail, passed, checks: [{type, passed, reason, score?}]}
  nlohmann::json ToJson() const;
};

// Evaluates a check other than judge. An approval check never passes: a person decides.
CheckVerdict EvaluateCheck(const control::ArbiterCheck& check, const AnswerFacts& facts);

// The request asking the judge route's model to score `answer` for `task_text` against the
// check's rubric; it must answer with a JSON object {"score": 0..1, "reason": "..."}.
std::vector<providers::ChatMessage> JudgeRequest(const control::ArbiterCheck& check,
                                                 const std::string& task_text,
                                                 const std::string& answer);

// Scores the judge's reply: passed when its score >= minScore. A failed call or a reply without
// a usable score fails the check, saying why.
CheckVerdict JudgeVerdict(const control::ArbiterCheck& check,
                          const Result<providers::ChatResponse>& reply);

enum class Decision { kPass, kRetry, kHold, kFail };
Decision Decide(const std::vector<ArbiterVerdict>& verdicts);

// The user message that sends failed verdicts back to the model on retry.
std::string FeedbackMessage(const std::vector<ArbiterVerdict>& verdicts);

// Cost of the usage under route params {"pricing": {"promptPerMillion": usd,
// "completionPerMillion": usd}}; nullopt when the params name no pricing.
std::optional<double> CostUsd(const nlohmann::json& route_params, int64_t prompt_tokens,
                              int64_t completion_tokens);

}  // namespace synaps::worker
