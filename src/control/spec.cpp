#include "control/spec.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <functional>
#include <regex>

#include "control/concurrency_spec.h"
#include "control/json_schema.h"
#include "control/pattern.h"
#include "control/schedule_spec.h"
#include "control/template.h"
#include "net/url_policy.h"

namespace synaps::control {

using nlohmann::json;

namespace {

constexpr size_t kMaxDescription = 4000;
constexpr size_t kMaxText = 200000;  // templates, system text
constexpr size_t kMaxList = 100;

std::unexpected<Error> Bad(const std::string& field, const std::string& message) {
  return Fail(ErrorCode::kInvalidArgument, field + ": " + message, field);
}

std::string At(const std::string& path, std::string_view key) {
  return path + "." + std::string(key);
}
std::string At(const std::string& path, size_t i) { return path + "[" + std::to_string(i) + "]"; }

// `v` must be an object whose keys are all in `allowed`.
Status Fields(const json& v, const std::string& path,
              std::initializer_list<std::string_view> allowed) {
  if (!v.is_object()) return Bad(path, "must be an object");
  for (auto it = v.begin(); it != v.end(); ++it) {
    if (std::find(allowed.begin(), allowed.end(), it.key()) == allowed.end()) {
      std::string known;
      for (auto k : allowed) known += (known.empty() ? "" : ", ") + std::string(k);
      return Bad(At(path, it.key()), "unknown field (known: " + known + ")");
    }
  }
  return Ok();
}

struct StringRule {
  bool required = false;
  bool non_empty = true;
  size_t max = 256;
};

Result<std::optional<std::string>> GetString(const json& obj, std::string_view key,
                                             const std::string& path, StringRule rule) {
  const std::string field = At(path, key);
  auto it = obj.find(key);
  if (it == obj.end()) {
    if (rule.required) return Bad(field, "required");
    return std::optional<std::string>();
  }
  if (!it->is_string()) return Bad(field, "must be a string");
  const auto& s = it->get_ref<const std::string&>();
  if (rule.non_empty && s.empty()) return Bad(field, "must not be empty");
  if (s.size() > rule.max) {
    return Bad(field, "must be at most " + std::to_string(rule.max) + " bytes");
  }
  return std::optional<std::string>(s);
}

Result<std::string> RequireString(const json& obj, std::string_view key, const std::string& path,
                                  size_t max, bool non_empty = true) {
  ASSIGN_OR_RETURN(auto s, GetString(obj, key, path, {true, non_empty, max}));
  return *s;
}

Result<std::optional<int64_t>> GetInt(const json& obj, std::string_view key,
                                      const std::string& path, int64_t min, int64_t max) {
  const std::string field = At(path, key);
  auto it = obj.find(key);
  if (it == obj.end()) return std::optional<int64_t>();
  bool integral = it->is_number_integer() || it->is_number_unsigned();
  if (!integral && it->is_number_float()) {
    double d = it->get<double>();
    integral = std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e15;
  }
  if (!integral) return Bad(field, "must be an integer");
  if (it->is_number_unsigned() && it->get<uint64_t>() > static_cast<uint64_t>(max)) {
    return Bad(field, "must be within " + std::to_string(min) + ".." + std::to_string(max));
  }
  int64_t n = it->is_number_float() ? static_cast<int64_t>(it->get<double>()) : it->get<int64_t>();
  if (n < min || n > max) {
    return Bad(field, "must be within " + std::to_string(min) + ".." + std::to_string(max));
  }
  return std::optional<int64_t>(n);
}

// A number in [min, max] (or (min, max] when `exclusive_min`).
Result<std::optional<double>> GetNumber(const json& obj, std::string_view key,
                                        const std::string& path, double min, double max,
                                        bool exclusive_min = false) {
  const std::string field = At(path, key);
  auto it = obj.find(key);
  if (it == obj.end()) return std::optional<double>();
  if (!it->is_number()) return Bad(field, "must be a number");
  double d = it->get<double>();
  if (!std::isfinite(d) || d > max || d < min || (exclusive_min && d == min)) {
    auto fmt = [](double x) {
      std::string s = json(x).dump();
      return s.ends_with(".0") ? s.substr(0, s.size() - 2) : s;
    };
    return Bad(field, std::string("must be ") + (exclusive_min ? "above " : "within ") + fmt(min) +
                          (exclusive_min ? " and at most " : "..") + fmt(max));
  }
  return std::optional<double>(d);
}

// A list of strings, each checked by `item` (which returns an error message or ""), without
// repeats.
Result<std::vector<std::string>> GetStringList(
    const json& obj, std::string_view key, const std::string& path,
    const std::function<std::string(const std::string&)>& item, size_t max_items = kMaxList) {
  const std::string field = At(path, key);
  std::vector<std::string> out;
  auto it = obj.find(key);
  if (it == obj.end()) return out;
  if (!it->is_array()) return Bad(field, "must be an array of strings");
  if (it->size() > max_items) {
    return Bad(field, "must hold at most " + std::to_string(max_items) + " items");
  }
  for (size_t i = 0; i < it->size(); ++i) {
    const json& e = (*it)[i];
    if (!e.is_string()) return Bad(At(field, i), "must be a string");
    std::string s = e.get<std::string>();
    if (std::string problem = item(s); !problem.empty()) return Bad(At(field, i), problem);
    if (std::find(out.begin(), out.end(), s) != out.end()) {
      return Bad(At(field, i), "repeats " + s);
    }
    out.push_back(std::move(s));
  }
  return out;
}

std::string NameProblem(const std::string& s) {
  return IsValidName(s) ? "" : "must be an item name matching [a-z0-9][a-z0-9_.-]{0,63}";
}

std::string TagProblem(const std::string& s) {
  static const std::regex kTag("[A-Za-z0-9_.:/-]{1,64}");
  return std::regex_match(s, kTag) ? "" : "must match [A-Za-z0-9_.:/-]{1,64}";
}

bool IsHostName(const std::string& h) {
  static const std::regex kHost(
      "(\\*\\.)?[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*");
  static const std::regex kIpv6("\\[[0-9a-f:.]{2,45}\\]");
  return h.size() <= 253 && (std::regex_match(h, kHost) || std::regex_match(h, kIpv6));
}

// An allowHosts entry: lower-case, and able to reach something (net::HostPatternProblem:
// never a metadata name or an address that is never reachable, in any spelling).
std::string HostProblem(const std::string& h) {
  if (!IsHostName(h)) {
    return "must be a lower-case host name, *.domain, an IPv4 address or a bracketed IPv6 address";
  }
  return net::HostPatternProblem(h);
}

struct ParsedUrl {
  std::string scheme;
  std::string host;       // canonical (net::Target::UrlHost): lower-case; IPv6 with brackets
  std::string canonical;  // the url as net::ParseTarget rebuilt it
};

// http(s)://host[:port][/path...], without user info, under the outbound policy.
Result<ParsedUrl> ParseHttpUrl(const std::string& url, const std::string& field,
                               net::Sender sender) {
  ParsedUrl out;
  size_t rest = 0;
  if (url.starts_with("https://")) {
    out.scheme = "https";
    rest = 8;
  } else if (url.starts_with("http://")) {
    out.scheme = "http";
    rest = 7;
  } else {
    return Bad(field, "must be an http:// or https:// URL");
  }
  size_t end = url.find_first_of("/?#", rest);
  std::string authority =
      url.substr(rest, end == std::string::npos ? std::string::npos : end - rest);
  if (authority.find('@') != std::string::npos) {
    return Bad(field, "must not carry user info (credentials belong in environment variables)");
  }
  std::string host = authority;
  std::string port;
  if (authority.starts_with("[")) {
    size_t close = authority.find(']');
    if (close == std::string::npos) return Bad(field, "malformed IPv6 host");
    host = authority.substr(0, close + 1);
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') return Bad(field, "malformed host");
      port = authority.substr(close + 2);
    }
  } else if (size_t colon = authority.rfind(':'); colon != std::string::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  std::transform(host.begin(), host.end(), host.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (host.empty() || host.starts_with("*.") || !IsHostName(host)) {
    return Bad(field, "has no valid host");
  }
  if (!port.empty() || authority.ends_with(":")) {
    bool digits =
        !port.empty() && port.size() <= 5 &&
        std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!digits || std::stoi(port) < 1 || std::stoi(port) > 65535) {
      return Bad(field, "port must be within 1..65535");
    }
  }
  if (url.find_first_of(" \t\r\n") != std::string::npos)
    return Bad(field, "must not contain spaces");
  // Then the outbound policy the call will meet (net/url_policy.h), so that a url refused when
  // called is refused when stored: numeric and IPv6-mapped spellings of metadata and other
  // never-reachable addresses, metadata names. Its canonical form is what the typed view keeps.
  auto target = net::ParseTarget(url, sender);
  if (!target) return Bad(field, target.error().message);
  out.host = target->UrlHost();
  out.canonical = target->url;
  return out;
}

// True when `pattern` (a host or *.domain) covers `host`.
bool HostAllowed(const std::string& pattern, const std::string& host) {
  if (pattern.starts_with("*.")) {
    std::string suffix = pattern.substr(1);  // ".domain"
    return host.size() > suffix.size() && host.ends_with(suffix);
  }
  return pattern == host;
}

Result<Match> ParseMatch(const json& spec, const std::string& path, bool with_tenant) {
  Match m;
  auto it = spec.find("match");
  if (it == spec.end()) return m;
  const std::string field = At(path, "match");
  if (with_tenant) {
    RETURN_IF_ERROR(Fields(*it, field, {"kind", "skill", "tags", "tenant"}));
  } else {
    RETURN_IF_ERROR(Fields(*it, field, {"kind", "skill", "tags"}));
  }
  ASSIGN_OR_RETURN(m.kind, GetString(*it, "kind", field, {false, true, 64}));
  if (m.kind) {
    static const std::regex kKind("[a-z][a-z0-9_.-]{0,63}");
    if (!std::regex_match(*m.kind, kKind)) {
      return Bad(At(field, "kind"), "must be a command kind matching [a-z][a-z0-9_.-]{0,63}");
    }
  }
  ASSIGN_OR_RETURN(m.skill, GetString(*it, "skill", field, {false, true, 64}));
  if (m.skill && !IsValidName(*m.skill)) {
    return Bad(At(field, "skill"), NameProblem(*m.skill));
  }
  ASSIGN_OR_RETURN(m.tags, GetStringList(*it, "tags", field, TagProblem, 32));
  ASSIGN_OR_RETURN(m.tenant, GetString(*it, "tenant", field, {false, true, 128}));
  return m;
}

Result<ArbiterCheck> ParseCheck(const json& c, const std::string& path) {
  ArbiterCheck check;
  if (!c.is_object()) return Bad(path, "must be an object");
  auto type = c.find("type");
  if (type == c.end()) return Bad(At(path, "type"), "required");
  if (!type->is_string()) return Bad(At(path, "type"), "must be a string");
  const std::string t = type->get<std::string>();
  if (t == "budget") {
    check.type = CheckType::kBudget;
    RETURN_IF_ERROR(Fields(c, path, {"type", "maxTokens", "maxSteps", "maxCostUsd"}));
    ASSIGN_OR_RETURN(check.max_tokens, GetInt(c, "maxTokens", path, 1, 1'000'000'000));
    ASSIGN_OR_RETURN(check.max_steps, GetInt(c, "maxSteps", path, 1, 10'000));
    ASSIGN_OR_RETURN(check.max_cost_usd, GetNumber(c, "maxCostUsd", path, 0, 1e6, true));
    if (!check.max_tokens && !check.max_steps && !check.max_cost_usd) {
      return Bad(path, "a budget check needs maxTokens, maxSteps or maxCostUsd");
    }
  } else if (t == "regex") {
    check.type = CheckType::kRegex;
    RETURN_IF_ERROR(Fields(c, path, {"type", "deny", "require"}));
    auto compiles = [](const std::string& p) -> std::string {
      if (p.empty()) return "must not be empty";
      if (p.size() > 1000) return "must be at most 1000 bytes";
      if (Status s = CheckPattern(p); !s) return s.error().message;
      return "";
    };
    ASSIGN_OR_RETURN(check.deny, GetStringList(c, "deny", path, compiles, 50));
    ASSIGN_OR_RETURN(check.require, GetStringList(c, "require", path, compiles, 50));
    if (check.deny.empty() && check.require.empty()) {
      return Bad(path, "a regex check needs deny or require patterns");
    }
  } else if (t == "jsonSchema") {
    check.type = CheckType::kJsonSchema;
    RETURN_IF_ERROR(Fields(c, path, {"type", "schema"}));
    if (!c.contains("schema")) return Bad(At(path, "schema"), "required");
    if (!c["schema"].is_object()) return Bad(At(path, "schema"), "must be a JSON Schema object");
    RETURN_IF_ERROR(CheckJsonSchema(c["schema"], At(path, "schema")));
    check.schema = c["schema"];
  } else if (t == "judge") {
    check.type = CheckType::kJudge;
    RETURN_IF_ERROR(Fields(c, path, {"type", "route", "rubric", "minScore"}));
    ASSIGN_OR_RETURN(check.route, RequireString(c, "route", path, 64));
    if (!IsValidName(check.route)) return Bad(At(path, "route"), NameProblem(check.route));
    ASSIGN_OR_RETURN(check.rubric, RequireString(c, "rubric", path, 20000));
    if (!c.contains("minScore")) return Bad(At(path, "minScore"), "required");
    ASSIGN_OR_RETURN(auto min_score, GetNumber(c, "minScore", path, 0, 1));
    check.min_score = *min_score;
  } else if (t == "approval") {
    check.type = CheckType::kApproval;
    RETURN_IF_ERROR(Fields(c, path, {"type"}));
  } else {
    return Bad(At(path, "type"), "must be one of budget, regex, jsonSchema, judge, approval");
  }
  return check;
}

}  // namespace

bool IsKind(std::string_view kind) {
  return std::find(kKinds.begin(), kKinds.end(), kind) != kKinds.end();
}

std::string KindList() {
  std::string out;
  for (auto k : kKinds) out += (out.empty() ? "" : ", ") + std::string(k);
  return out;
}

bool IsValidName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  auto lower_or_digit = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!lower_or_digit(name[0])) return false;
  return std::all_of(name.begin() + 1, name.end(),
                     [&](char c) { return lower_or_digit(c) || c == '_' || c == '.' || c == '-'; });
}

Status ValidateKindAndName(std::string_view kind, std::string_view name) {
  if (!IsKind(kind)) {
    return Fail(ErrorCode::kInvalidArgument, "kind: must be one of " + KindList(), "kind");
  }
  if (!IsValidName(name)) {
    return Fail(ErrorCode::kInvalidArgument, "name: must match [a-z0-9][a-z0-9_.-]{0,63}", "name");
  }
  return Ok();
}

const std::set<std::string, std::less<>>& BuiltinToolNames() {
  static const std::set<std::string, std::less<>> kNames = {"k8s.pods", "k8s.events"};
  return kNames;
}

std::string_view CheckTypeName(CheckType type) {
  switch (type) {
    case CheckType::kBudget:
      return "budget";
    case CheckType::kRegex:
      return "regex";
    case CheckType::kJsonSchema:
      return "jsonSchema";
    case CheckType::kJudge:
      return "judge";
    case CheckType::kApproval:
      return "approval";
  }
  return "approval";
}

std::string_view OnFailName(OnFail on_fail) {
  switch (on_fail) {
    case OnFail::kRetry:
      return "retry";
    case OnFail::kFail:
      return "fail";
    case OnFail::kHold:
      return "hold";
  }
  return "fail";
}

Result<Prompt> ParsePrompt(std::string_view name, const json& spec) {
  const std::string path = "spec";
  RETURN_IF_ERROR(Fields(spec, path, {"template", "description"}));
  Prompt p;
  p.name = std::string(name);
  ASSIGN_OR_RETURN(p.template_text, RequireString(spec, "template", path, kMaxText));
  ASSIGN_OR_RETURN(auto description,
                   GetString(spec, "description", path, {false, false, kMaxDescription}));
  p.description = description.value_or("");
  RETURN_IF_ERROR(CheckTemplate(p.template_text, "spec.template"));
  ASSIGN_OR_RETURN(p.variables, TemplateVariables(p.template_text));
  return p;
}

Result<Skill> ParseSkill(std::string_view name, const json& spec) {
  const std::string path = "spec";
  RETURN_IF_ERROR(Fields(spec, path, {"system", "tools", "route", "description"}));
  Skill s;
  s.name = std::string(name);
  ASSIGN_OR_RETURN(s.system, RequireString(spec, "system", path, kMaxText, /*non_empty=*/false));
  ASSIGN_OR_RETURN(s.tools, GetStringList(spec, "tools", path, NameProblem));
  ASSIGN_OR_RETURN(s.route, GetString(spec, "route", path, {false, true, 64}));
  if (s.route && !IsValidName(*s.route)) return Bad("spec.route", NameProblem(*s.route));
  ASSIGN_OR_RETURN(auto description,
                   GetString(spec, "description", path, {false, false, kMaxDescription}));
  s.description = description.value_or("");
  return s;
}

Result<Tool> ParseTool(std::string_view name, const json& spec) {
  const std::string path = "spec";
  RETURN_IF_ERROR(
      Fields(spec, path,
             {"description", "parameters", "type", "url", "method", "allowHosts", "timeoutMs"}));
  Tool t;
  t.name = std::string(name);
  ASSIGN_OR_RETURN(std::string type, RequireString(spec, "type", path, 16));
  if (type == "http") {
    t.type = ToolType::kHttp;
  } else if (type == "builtin") {
    t.type = ToolType::kBuiltin;
  } else {
    return Bad("spec.type", "must be http or builtin");
  }
  ASSIGN_OR_RETURN(t.description, RequireString(spec, "description", path, kMaxDescription));
  if (!spec.contains("parameters")) return Bad("spec.parameters", "required");
  const json& params = spec["parameters"];
  if (!params.is_object()) return Bad("spec.parameters", "must be a JSON Schema object");
  if (params.value("type", json()) != "object") {
    return Bad("spec.parameters.type", "must be \"object\" (tool arguments are a JSON object)");
  }
  RETURN_IF_ERROR(CheckJsonSchema(params, "spec.parameters"));
  t.parameters = params;
  ASSIGN_OR_RETURN(auto timeout, GetInt(spec, "timeoutMs", path, 1, 120000));
  if (timeout) t.timeout_ms = static_cast<int>(*timeout);

  if (t.type == ToolType::kBuiltin) {
    for (const char* http_only : {"url", "method", "allowHosts"}) {
      if (spec.contains(http_only)) {
        return Bad(At(path, http_only), "only http tools take this field");
      }
    }
    if (!BuiltinToolNames().contains(name)) {
      std::string known;
      for (const auto& b : BuiltinToolNames()) known += (known.empty() ? "" : ", ") + b;
      return Fail(ErrorCode::kInvalidArgument,
                  "name: a builtin tool must be named after a builtin (" + known + ")", "name");
    }
    return t;
  }

  ASSIGN_OR_RETURN(t.url, RequireString(spec, "url", path, 2048));
  ASSIGN_OR_RETURN(ParsedUrl url, ParseHttpUrl(t.url, "spec.url", net::kToolSender));
  ASSIGN_OR_RETURN(auto method, GetString(spec, "method", path, {false, true, 8}));
  if (method) {
    if (*method != "GET" && *method != "POST") return Bad("spec.method", "must be GET or POST");
    t.method = *method;
  }
  ASSIGN_OR_RETURN(t.allow_hosts, GetStringList(spec, "allowHosts", path, HostProblem, 50));
  if (spec.contains("allowHosts")) {
    if (t.allow_hosts.empty()) return Bad("spec.allowHosts", "must not be empty");
    bool covered = std::any_of(t.allow_hosts.begin(), t.allow_hosts.end(),
                               [&](const std::string& p) { return HostAllowed(p, url.host); });
    if (!covered) return Bad("spec.url", "host " + url.host + " is not in allowHosts");
  } else {
    t.allow_hosts = {url.host};
  }
  return t;
}

Result<Route> ParseRoute(std::string_view name, const json& spec) {
  const std::string path = "spec";
  RETURN_IF_ERROR(Fields(spec, path,
                         {"match", "provider", "model", "baseUrl", "apiKeyEnv", "params",
                          "fallbacks", "weight", "order", "limits"}));
  Route r;
  r.name = std::string(name);
  if (name == kDefaultRoute && spec.contains("match")) {
    return Bad("spec.match",
               "the route named default applies when no other route matches, so "
               "it takes no match");
  }
  ASSIGN_OR_RETURN(r.match, ParseMatch(spec, path, /*with_tenant=*/true));
  ASSIGN_OR_RETURN(r.provider, RequireString(spec, "provider", path, 32));
  if (std::find(kProviders.begin(), kProviders.end(), r.provider) == kProviders.end()) {
    return Bad("spec.provider", "must be one of openai, kimi, openai-compatible, local");
  }
  ASSIGN_OR_RETURN(r.model, RequireString(spec, "model", path, 256));
  ASSIGN_OR_RETURN(auto base_url, GetString(spec, "baseUrl", path, {false, true, 2048}));
  if (base_url) {
    ASSIGN_OR_RETURN(ParsedUrl url, ParseHttpUrl(*base_url, "spec.baseUrl", net::kProviderSender));
    r.base_url = url.canonical;
  } else if (r.provider == "openai-compatible") {
    return Bad("spec.baseUrl", "required for provider openai-compatible");
  }
  ASSIGN_OR_RETURN(auto key_env, GetString(spec, "apiKeyEnv", path, {false, true, 128}));
  if (key_env) {
    static const std::regex kEnv("[A-Z][A-Z0-9_]*_API_KEY");
    if (!std::regex_match(*key_env, kEnv)) {
      return Bad("spec.apiKeyEnv",
                 "must be an environment variable name ending in _API_KEY (the key itself is "
                 "never stored in the registry)");
    }
    r.api_key_env = *key_env;
  }
  if (spec.contains("params")) {
    if (!spec["params"].is_object()) return Bad("spec.params", "must be an object");
    // Synaps's own params, never sent to the provider: the price for budget checks.
    if (spec["params"].contains("pricing")) {
      const json& pricing = spec["params"]["pricing"];
      RETURN_IF_ERROR(
          Fields(pricing, "spec.params.pricing", {"promptPerMillion", "completionPerMillion"}));
      for (const char* k : {"promptPerMillion", "completionPerMillion"}) {
        if (!pricing.contains(k)) continue;
        const json& v = pricing[k];
        if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() < 0) {
          return Bad(std::string("spec.params.pricing.") + k,
                     "must be a number >= 0 (USD per million tokens)");
        }
      }
    }
    r.params = spec["params"];
  }
  ASSIGN_OR_RETURN(r.fallbacks, GetStringList(spec, "fallbacks", path, NameProblem, 10));
  for (size_t i = 0; i < r.fallbacks.size(); ++i) {
    if (r.fallbacks[i] == name)
      return Bad(At("spec.fallbacks", i), "a route cannot fall back to itself");
  }
  ASSIGN_OR_RETURN(auto weight, GetInt(spec, "weight", path, 0, 1000));
  if (weight) r.weight = static_cast<int>(*weight);
  ASSIGN_OR_RETURN(auto order, GetInt(spec, "order", path, -1'000'000, 1'000'000));
  if (order) r.order = *order;
  if (spec.contains("limits")) {
    const json& limits = spec["limits"];
    RETURN_IF_ERROR(Fields(limits, "spec.limits", {"requestsPerMinute", "tokensPerMinute"}));
    RouteLimits l;
    ASSIGN_OR_RETURN(auto rpm, GetInt(limits, "requestsPerMinute", "spec.limits", 1, 1'000'000));
    ASSIGN_OR_RETURN(auto tpm, GetInt(limits, "tokensPerMinute", "spec.limits", 1, 1'000'000'000));
    if (rpm) l.requests_per_minute = *rpm;
    if (tpm) l.tokens_per_minute = *tpm;
    r.limits = l;
  }
  return r;
}

Result<Arbiter> ParseArbiter(std::string_view name, const json& spec) {
  const std::string path = "spec";
  RETURN_IF_ERROR(Fields(spec, path, {"match", "checks", "onFail"}));
  Arbiter a;
  a.name = std::string(name);
  ASSIGN_OR_RETURN(a.match, ParseMatch(spec, path, /*with_tenant=*/true));
  if (!spec.contains("checks")) return Bad("spec.checks", "required");
  const json& checks = spec["checks"];
  if (!checks.is_array() || checks.empty()) return Bad("spec.checks", "must be a non-empty array");
  if (checks.size() > 20) return Bad("spec.checks", "must hold at most 20 checks");
  for (size_t i = 0; i < checks.size(); ++i) {
    ASSIGN_OR_RETURN(auto check, ParseCheck(checks[i], At("spec.checks", i)));
    a.checks.push_back(std::move(check));
  }
  ASSIGN_OR_RETURN(std::string on_fail, RequireString(spec, "onFail", path, 16));
  if (on_fail == "retry") {
    a.on_fail = OnFail::kRetry;
  } else if (on_fail == "fail") {
    a.on_fail = OnFail::kFail;
  } else if (on_fail == "hold") {
    a.on_fail = OnFail::kHold;
  } else {
    return Bad("spec.onFail", "must be retry, fail or hold");
  }
  return a;
}

Status ValidateSpec(std::string_view kind, std::string_view name, const json& spec) {
  RETURN_IF_ERROR(ValidateKindAndName(kind, name));
  if (!spec.is_object()) return Bad("spec", "must be an object");
  if (kind == "prompts") RETURN_IF_ERROR(ParsePrompt(name, spec));
  if (kind == "skills") RETURN_IF_ERROR(ParseSkill(name, spec));
  if (kind == "tools") RETURN_IF_ERROR(ParseTool(name, spec));
  if (kind == "routes") RETURN_IF_ERROR(ParseRoute(name, spec));
  if (kind == "arbiters") RETURN_IF_ERROR(ParseArbiter(name, spec));
  if (kind == "schedules") RETURN_IF_ERROR(ParseSchedule(name, spec));
  if (kind == "concurrency") RETURN_IF_ERROR(ParseConcurrency(name, spec));
  return Ok();
}

std::vector<std::string> References(std::string_view kind, const json& spec) {
  std::vector<std::string> out;
  if (!spec.is_object()) return out;
  auto names = [&](const char* key, const char* target) {
    if (spec.contains(key) && spec[key].is_array()) {
      for (const auto& n : spec[key]) {
        if (n.is_string()) out.push_back(std::string(target) + "/" + n.get<std::string>());
      }
    }
  };
  if (kind == "skills") {
    names("tools", "tools");
    if (spec.contains("route") && spec["route"].is_string()) {
      out.push_back("routes/" + spec["route"].get<std::string>());
    }
  } else if (kind == "routes") {
    names("fallbacks", "routes");
  } else if (kind == "arbiters" && spec.contains("checks") && spec["checks"].is_array()) {
    for (const auto& c : spec["checks"]) {
      if (c.is_object() && c.value("type", "") == "judge" && c.contains("route") &&
          c["route"].is_string()) {
        out.push_back("routes/" + c["route"].get<std::string>());
      }
    }
  }
  return out;
}

}  // namespace synaps::control
