// Arbiter checks on a task's final answer (docs/control.md, "Arbiters") that need no model:
// budget, regex, JSON Schema and approval, and the decision over all verdicts. Pure functions,
// shared by the built-in worker (worker/arbiters.h adds the judge check, which calls a model)
// and the API, which runs them on remote workers' completions (ArbitrateWithoutModel).
//
// Decision over the verdicts of all matching arbiters (Decide):
//   - every check of every arbiter passed              -> kPass
//   - a failed arbiter says onFail "fail"              -> kFail (the task fails, no retry)
//   - else an approval check, or a failed "hold"       -> kHold (awaiting_approval)
//   - else (failed arbiters all say "retry")           -> kRetry (feedback to the model)
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "control/spec.h"

namespace synaps::control {

// What the checks look at.
struct AnswerFacts {
  std::string text;           // the final answer
  int64_t prompt_tokens = 0;  // summed over every model call of the task
  int64_t completion_tokens = 0;
  int steps = 0;                   // model calls
  std::optional<double> cost_usd;  // unknown when the route has no params.pricing
};

struct CheckVerdict {
  CheckType type = CheckType::kApproval;
  bool passed = false;
  std::string reason;           // why it failed, or a short note when it passed
  std::optional<double> score;  // judge only
};

struct ArbiterVerdict {
  std::string arbiter;
  int version = 0;
  OnFail on_fail = OnFail::kFail;
  std::vector<CheckVerdict> checks;

  bool passed() const;
  bool needs_approval() const;  // has an approval check
  // {arbiter, version, onFail, passed, checks: [{type, passed, reason, score?}]}
  nlohmann::json ToJson() const;
};

// Evaluates a check other than judge. An approval check never passes: a person decides.
CheckVerdict EvaluateCheck(const ArbiterCheck& check, const AnswerFacts& facts);

enum class Decision { kPass, kRetry, kHold, kFail };
Decision Decide(const std::vector<ArbiterVerdict>& verdicts);

struct Arbitration {
  std::vector<ArbiterVerdict> verdicts;
  Decision decision = Decision::kPass;
};

// Every check of `arbiters` that needs no model, over `facts`, and the decision. A judge check
// cannot run without a model: it is recorded as not passed ("held for a person") and, unless a
// check that did run asks for fail or retry, the decision is kHold, so the answer waits for a
// person to approve or reject it instead of passing unjudged.
Arbitration ArbitrateWithoutModel(const std::vector<const Arbiter*>& arbiters,
                                  const AnswerFacts& facts);

// The user message that sends failed verdicts back to the model on retry.
std::string FeedbackMessage(const std::vector<ArbiterVerdict>& verdicts);

// Cost of the usage under route params {"pricing": {"promptPerMillion": usd,
// "completionPerMillion": usd}}; nullopt when the params name no pricing.
std::optional<double> CostUsd(const nlohmann::json& route_params, int64_t prompt_tokens,
                              int64_t completion_tokens);

// `text` without a surrounding Markdown code fence (```json ... ```), for answers that are JSON.
std::string StripCodeFence(const std::string& text);

}  // namespace synaps::control
