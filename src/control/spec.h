// The control registry's kinds and their specs (docs/control.md): typed views of the first five
// kinds (schedules: control/schedule_spec.h; concurrency: control/concurrency_spec.h), and the
// validators that turn a spec's JSON into them. Pure functions, no I/O.
//
// Every validator refuses unknown fields, wrong types and out-of-range values with
// kInvalidArgument whose `field` is the JSON path of the bad value, starting at "spec"
// (e.g. "spec.checks[1].minScore"). The store validates every spec before it is written, so a
// stored spec always parses, unless a later release tightened a rule (see Snapshot::invalid).
#pragma once

#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace synaps::control {

// The kinds, in the order the API lists them.
inline constexpr std::array<std::string_view, 7> kKinds = {
    "prompts", "skills", "tools", "routes", "arbiters", "schedules", "concurrency"};
bool IsKind(std::string_view kind);
// "prompts, skills, tools, routes, arbiters, schedules, concurrency", for messages.
std::string KindList();

// Item names: [a-z0-9][a-z0-9_.-]{0,63}.
bool IsValidName(std::string_view name);

// kInvalidArgument (field "kind" or "name") unless both are valid.
Status ValidateKindAndName(std::string_view kind, std::string_view name);

// The route used when no other route matches (see SelectRoute in control/routing.h).
inline constexpr std::string_view kDefaultRoute = "default";

// Builtin tools the worker implements; a tool of type builtin must be named after one.
const std::set<std::string, std::less<>>& BuiltinToolNames();

// Providers a route may name.
inline constexpr std::array<std::string_view, 4> kProviders = {"openai", "kimi",
                                                               "openai-compatible", "local"};

// Which tasks a route or an arbiter applies to. An absent field matches anything; `tags` match
// when every listed tag is among the task's tags.
struct Match {
  std::optional<std::string> kind;   // the command kind (prompt, agent, ...)
  std::optional<std::string> skill;  // the skill the task names
  std::vector<std::string> tags;
  std::optional<std::string> tenant;
};

struct Prompt {
  std::string name;
  int version = 0;
  std::string template_text;
  std::string description;
  std::vector<std::string> variables;  // the template's placeholders, first use first
};

struct Skill {
  std::string name;
  int version = 0;
  std::string system;                // system text for the model
  std::vector<std::string> tools;    // tool names
  std::optional<std::string> route;  // default route name
  std::string description;
};

enum class ToolType { kHttp, kBuiltin };

struct Tool {
  std::string name;
  int version = 0;
  ToolType type = ToolType::kHttp;
  std::string description;
  nlohmann::json parameters;    // a JSON Schema of type object
  std::string url;              // http only
  std::string method = "POST";  // http only: GET or POST
  // http only: hosts the tool may reach ("*.example.com" covers subdomains); when the spec
  // gives none, the url's host.
  std::vector<std::string> allow_hosts;
  int timeout_ms = 30000;
};

// A route's provider rate limits, shared by every worker (docs/flow-control.md). An empty
// `limits: {}` sets no rate but still shares a provider's Retry-After among workers.
struct RouteLimits {
  int64_t requests_per_minute = 0;  // 0: no request limit
  int64_t tokens_per_minute = 0;    // 0: no token limit
};

struct Route {
  std::string name;
  int version = 0;
  Match match;
  std::string provider;  // one of kProviders
  std::string model;
  std::string base_url;     // empty: the provider's default
  std::string api_key_env;  // empty: the provider's default variable
  nlohmann::json params = nlohmann::json::object();
  std::vector<std::string> fallbacks;  // route names, tried in order after this one fails
  int weight = 100;                    // 0..1000; 0 = never chosen by matching
  int64_t order = 0;                   // lower first
  std::optional<RouteLimits> limits;   // none: calls go straight to the provider
};

enum class CheckType { kBudget, kRegex, kJsonSchema, kJudge, kApproval };
std::string_view CheckTypeName(CheckType type);  // "budget", "regex", "jsonSchema", ...

// One arbiter check. Which fields are meaningful depends on `type`.
struct ArbiterCheck {
  CheckType type = CheckType::kApproval;
  // budget
  std::optional<int64_t> max_tokens;
  std::optional<int64_t> max_steps;
  std::optional<double> max_cost_usd;
  // regex (RE2 syntax, control/pattern.h; every pattern compiles)
  std::vector<std::string> deny;
  std::vector<std::string> require;
  // jsonSchema
  nlohmann::json schema;
  // judge: the route of the judging model, the rubric, and the lowest passing score in [0, 1]
  std::string route;
  std::string rubric;
  double min_score = 0;
};

enum class OnFail { kRetry, kFail, kHold };
std::string_view OnFailName(OnFail on_fail);  // "retry", "fail", "hold"

struct Arbiter {
  std::string name;
  int version = 0;
  Match match;
  std::vector<ArbiterCheck> checks;
  OnFail on_fail = OnFail::kFail;
};

// Parsers: validate `spec` for an item called `name` and return its typed view (version 0).
Result<Prompt> ParsePrompt(std::string_view name, const nlohmann::json& spec);
Result<Skill> ParseSkill(std::string_view name, const nlohmann::json& spec);
Result<Tool> ParseTool(std::string_view name, const nlohmann::json& spec);
Result<Route> ParseRoute(std::string_view name, const nlohmann::json& spec);
Result<Arbiter> ParseArbiter(std::string_view name, const nlohmann::json& spec);

// Validates kind, name and spec together (the store's gate before every write).
Status ValidateSpec(std::string_view kind, std::string_view name, const nlohmann::json& spec);

// Names other items that `spec` refers to, as "kind/name" (skill → tools and route, route →
// fallbacks, judge check → route). For warnings about references that do not resolve; the
// registry does not require them to exist, so that items can be applied in any order.
std::vector<std::string> References(std::string_view kind, const nlohmann::json& spec);

}  // namespace synaps::control
