// Arbiter checks on a task's final answer (docs/control.md, "Arbiters") as the built-in worker
// runs them: every check that needs no model, and the decision, come from control/arbitration.h
// (shared with the API, which arbitrates remote completions); the judge check needs a model
// call, which TaskRun makes with JudgeRequest() and scores with JudgeVerdict().
#pragma once

#include <string>
#include <vector>

#include "control/arbitration.h"
#include "control/spec.h"
#include "providers/provider.h"

namespace synaps::worker {

using control::AnswerFacts;
using control::ArbiterVerdict;
using control::CheckVerdict;
using control::CostUsd;
using control::Decide;
using control::Decision;
using control::EvaluateCheck;
using control::FeedbackMessage;

// The request asking the judge route's model to score `answer` for `task_text` against the
// check's rubric; it must answer with a JSON object {"score": 0..1, "reason": "..."}.
std::vector<providers::ChatMessage> JudgeRequest(const control::ArbiterCheck& check,
                                                 const std::string& task_text,
                                                 const std::string& answer);

// Scores the judge's reply: passed when its score >= minScore. A failed call or a reply without
// a usable score fails the check, saying why.
CheckVerdict JudgeVerdict(const control::ArbiterCheck& check,
                          const Result<providers::ChatResponse>& reply);

}  // namespace synaps::worker
