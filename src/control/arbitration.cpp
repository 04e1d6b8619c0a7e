#include "control/arbitration.h"

#include <fmt/format.h>

#include "control/json_schema.h"
#include "control/pattern.h"

namespace synaps::control {

using nlohmann::json;

std::string StripCodeFence(const std::string& text) {
  size_t begin = text.find_first_not_of(" \n\r\t");
  if (begin == std::string::npos || text.compare(begin, 3, "```") != 0) return text;
  size_t first_line_end = text.find('\n', begin);
  size_t end = text.rfind("```");
  if (first_line_end == std::string::npos || end <= first_line_end) return text;
  return text.substr(first_line_end + 1, end - first_line_end - 1);
}

namespace {

CheckVerdict Budget(const ArbiterCheck& c, const AnswerFacts& f) {
  CheckVerdict v{.type = CheckType::kBudget, .passed = true};
  std::vector<std::string> over;
  int64_t tokens = f.prompt_tokens + f.completion_tokens;
  if (c.max_tokens && tokens > *c.max_tokens) {
    over.push_back(fmt::format("used {} tokens, limit {}", tokens, *c.max_tokens));
  }
  if (c.max_steps && f.steps > *c.max_steps) {
    over.push_back(fmt::format("took {} model steps, limit {}", f.steps, *c.max_steps));
  }
  if (c.max_cost_usd) {
    if (!f.cost_usd) {
      // A cost limit that cannot be checked must not pass silently.
      over.push_back("cost unknown: the route has no params.pricing, limit " +
                     fmt::format("{} USD", *c.max_cost_usd));
    } else if (*f.cost_usd > *c.max_cost_usd) {
      over.push_back(fmt::format("cost {:.6f} USD, limit {} USD", *f.cost_usd, *c.max_cost_usd));
    }
  }
  if (!over.empty()) {
    v.passed = false;
    v.reason = fmt::format("over budget: {}", fmt::join(over, "; "));
  } else {
    v.reason = fmt::format("{} tokens in {} steps", tokens, f.steps);
  }
  return v;
}

CheckVerdict Regex(const ArbiterCheck& c, const AnswerFacts& f) {
  CheckVerdict v{.type = CheckType::kRegex, .passed = true};
  std::vector<std::string> problems;
  // RE2: linear in the answer's length whatever the pattern (control/pattern.h).
  for (const auto& p : c.deny) {
    if (PatternFound(p, f.text)) problems.push_back("matches denied pattern /" + p + "/");
  }
  for (const auto& p : c.require) {
    if (!PatternFound(p, f.text)) problems.push_back("lacks required pattern /" + p + "/");
  }
  if (!problems.empty()) {
    v.passed = false;
    v.reason = fmt::format("the answer {}", fmt::join(problems, "; "));
  }
  return v;
}

CheckVerdict Schema(const ArbiterCheck& c, const AnswerFacts& f) {
  CheckVerdict v{.type = CheckType::kJsonSchema, .passed = true};
  json value = json::parse(StripCodeFence(f.text), nullptr, false);
  if (value.is_discarded()) {
    v.passed = false;
    v.reason = "the answer is not valid JSON";
    return v;
  }
  if (Status s = ValidateJson(value, c.schema); !s) {
    v.passed = false;
    v.reason =
        "the answer does not match the schema at " + s.error().field + ": " + s.error().message;
  }
  return v;
}

}  // namespace

bool ArbiterVerdict::passed() const {
  for (const auto& c : checks) {
    if (!c.passed) return false;
  }
  return true;
}

bool ArbiterVerdict::needs_approval() const {
  for (const auto& c : checks) {
    if (c.type == CheckType::kApproval) return true;
  }
  return false;
}

json ArbiterVerdict::ToJson() const {
  json out = {{"arbiter", arbiter},
              {"version", version},
              {"onFail", std::string(OnFailName(on_fail))},
              {"passed", passed()},
              {"checks", json::array()}};
  for (const auto& c : checks) {
    json j = {
        {"type", std::string(CheckTypeName(c.type))}, {"passed", c.passed}, {"reason", c.reason}};
    if (c.score) j["score"] = *c.score;
    out["checks"].push_back(std::move(j));
  }
  return out;
}

CheckVerdict EvaluateCheck(const ArbiterCheck& check, const AnswerFacts& facts) {
  switch (check.type) {
    case CheckType::kBudget:
      return Budget(check, facts);
    case CheckType::kRegex:
      return Regex(check, facts);
    case CheckType::kJsonSchema:
      return Schema(check, facts);
    case CheckType::kApproval:
      return {.type = CheckType::kApproval, .passed = false, .reason = "needs a person's approval"};
    case CheckType::kJudge:
      break;
  }
  return {.type = check.type, .passed = false, .reason = "judge checks need a model call"};
}

Decision Decide(const std::vector<ArbiterVerdict>& verdicts) {
  bool hold = false, retry = false;
  for (const auto& v : verdicts) {
    if (v.passed()) continue;
    bool only_approval = true;
    for (const auto& c : v.checks) {
      if (!c.passed && c.type != CheckType::kApproval) only_approval = false;
    }
    if (only_approval) {
      hold = true;  // nothing is wrong with the answer; a person must look at it
      continue;
    }
    switch (v.on_fail) {
      case OnFail::kFail:
        return Decision::kFail;
      case OnFail::kHold:
        hold = true;
        break;
      case OnFail::kRetry:
        retry = true;
        break;
    }
  }
  // A retry rewrites the answer, and approvals look at the final one: retry first.
  if (retry) return Decision::kRetry;
  if (hold) return Decision::kHold;
  return Decision::kPass;
}

std::string FeedbackMessage(const std::vector<ArbiterVerdict>& verdicts) {
  std::string out = "Your previous answer was not accepted by review:\n";
  for (const auto& v : verdicts) {
    for (const auto& c : v.checks) {
      if (c.passed || c.type == CheckType::kApproval) continue;
      out += fmt::format("- {} ({}): {}\n", v.arbiter, CheckTypeName(c.type), c.reason);
    }
  }
  out += "Answer the original request again, fixing these problems.";
  return out;
}

std::optional<double> CostUsd(const json& route_params, int64_t prompt_tokens,
                              int64_t completion_tokens) {
  if (!route_params.is_object() || !route_params.contains("pricing")) return std::nullopt;
  const json& p = route_params["pricing"];
  if (!p.is_object()) return std::nullopt;
  auto price = [&](const char* key) {
    auto it = p.find(key);
    return it != p.end() && it->is_number() ? it->get<double>() : 0.0;
  };
  double in = price("promptPerMillion");
  double out = price("completionPerMillion");
  return (static_cast<double>(prompt_tokens) * in + static_cast<double>(completion_tokens) * out) /
         1e6;
}

Arbitration ArbitrateWithoutModel(const std::vector<const Arbiter*>& arbiters,
                                  const AnswerFacts& facts) {
  Arbitration out;
  bool judged = false;
  for (const Arbiter* a : arbiters) {
    ArbiterVerdict v{.arbiter = a->name, .version = a->version, .on_fail = a->on_fail};
    for (const ArbiterCheck& check : a->checks) {
      if (check.type == CheckType::kJudge) {
        judged = true;
        v.checks.push_back({.type = CheckType::kJudge,
                            .passed = false,
                            .reason = "a judge check needs a model, which a remote completion "
                                      "does not get: held for a person to approve or reject"});
      } else {
        v.checks.push_back(EvaluateCheck(check, facts));
      }
    }
    out.verdicts.push_back(std::move(v));
  }
  // Decide over the checks that ran: a deterministic failure decides as for the worker; the
  // unjudged answer never passes on its own.
  std::vector<ArbiterVerdict> ran = out.verdicts;
  for (auto& v : ran) {
    for (auto& c : v.checks) {
      if (c.type == CheckType::kJudge) c.passed = true;
    }
  }
  out.decision = Decide(ran);
  if (judged && out.decision == Decision::kPass) out.decision = Decision::kHold;
  return out;
}

}  // namespace synaps::control
