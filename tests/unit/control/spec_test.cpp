// The spec validators of every kind: valid specs parse into their typed views, and each kind of
// mistake is refused naming the JSON path of the bad field.
#include "control/spec.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace synaps::control {
namespace {

using nlohmann::json;

struct Invalid {
  std::string kind;
  std::string name;
  std::string spec;   // JSON
  std::string field;  // expected Error::field
  std::string words;  // expected in the message
};

void PrintTo(const Invalid& c, std::ostream* os) {
  *os << c.kind << "/" << c.name << " " << c.spec;
}

class InvalidSpecTest : public ::testing::TestWithParam<Invalid> {};

TEST_P(InvalidSpecTest, IsRefusedNamingTheField) {
  const Invalid& c = GetParam();
  auto r = ValidateSpec(c.kind, c.name, json::parse(c.spec));
  ASSERT_FALSE(r) << "accepted";
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(r.error().field, c.field) << r.error().message;
  EXPECT_NE(r.error().message.find(c.words), std::string::npos) << r.error().message;
  EXPECT_TRUE(r.error().message.starts_with(c.field)) << r.error().message;
}

const char* kToolParams = R"("parameters":{"type":"object","properties":{"q":{"type":"string"}}})";

std::string Tool(const std::string& rest) {
  return std::string(R"({"description":"d",)") + kToolParams + "," + rest + "}";
}

INSTANTIATE_TEST_SUITE_P(
    Envelope, InvalidSpecTest,
    ::testing::Values(Invalid{"widgets", "x", R"({})", "kind", "prompts, skills"},
                      Invalid{"prompts", "Upper", R"({"template":"t"})", "name", "[a-z0-9]"},
                      Invalid{"prompts", "-lead", R"({"template":"t"})", "name", "[a-z0-9]"},
                      Invalid{"prompts", std::string(65, 'a'), R"({"template":"t"})", "name",
                              "{0,63}"},
                      Invalid{"prompts", "x", R"([])", "spec", "must be an object"}));

INSTANTIATE_TEST_SUITE_P(
    Prompts, InvalidSpecTest,
    ::testing::Values(
        Invalid{"prompts", "p", R"({})", "spec.template", "required"},
        Invalid{"prompts", "p", R"({"template":""})", "spec.template", "must not be empty"},
        Invalid{"prompts", "p", R"({"template":7})", "spec.template", "must be a string"},
        Invalid{"prompts", "p", R"({"template":"Hi {{ 1name }}"})", "spec.template", "offset 3"},
        Invalid{"prompts", "p", R"({"template":"Hi {{name"})", "spec.template", "malformed"},
        Invalid{"prompts", "p", R"({"template":"Hi {{a.}}"})", "spec.template", "malformed"},
        Invalid{"prompts", "p", R"({"template":"t","description":3})", "spec.description",
                "must be a string"},
        Invalid{"prompts", "p", R"({"template":"t","extra":1})", "spec.extra", "unknown field"}));

INSTANTIATE_TEST_SUITE_P(
    Skills, InvalidSpecTest,
    ::testing::Values(
        Invalid{"skills", "s", R"({})", "spec.system", "required"},
        Invalid{"skills", "s", R"({"system":1})", "spec.system", "must be a string"},
        Invalid{"skills", "s", R"({"system":"x","tools":"k8s.pods"})", "spec.tools",
                "array of strings"},
        Invalid{"skills", "s", R"({"system":"x","tools":["Bad Name"]})", "spec.tools[0]",
                "item name"},
        Invalid{"skills", "s", R"({"system":"x","tools":["a","a"]})", "spec.tools[1]", "repeats"},
        Invalid{"skills", "s", R"({"system":"x","route":"No"})", "spec.route", "item name"},
        Invalid{"skills", "s", R"({"system":"x","model":"gpt"})", "spec.model", "unknown field"}));

INSTANTIATE_TEST_SUITE_P(
    Tools, InvalidSpecTest,
    ::testing::Values(
        Invalid{"tools", "t", R"({"description":"d","type":"http","url":"https://a.b"})",
                "spec.parameters", "required"},
        Invalid{
            "tools", "t",
            R"({"description":"d","parameters":{"type":"string"},"type":"http","url":"https://a.b"})",
            "spec.parameters.type", "\"object\""},
        Invalid{
            "tools", "t",
            R"({"description":"d","parameters":{"type":"object","properties":{"q":{"type":"text"}}},"type":"http","url":"https://a.b"})",
            "spec.parameters.properties.q.type", "must be one of"},
        Invalid{
            "tools", "t",
            R"({"description":"d","parameters":{"type":"object","properties":{"q":{"type":"string","pattern":"("}}},"type":"http","url":"https://a.b"})",
            "spec.parameters.properties.q.pattern", "does not compile"},
        Invalid{
            "tools", "t",
            R"({"description":"d","parameters":{"type":"object","required":"q"},"type":"http","url":"https://a.b"})",
            "spec.parameters.required", "property names"},
        Invalid{"tools", "t", Tool(R"("type":"ftp")"), "spec.type", "http or builtin"},
        Invalid{"tools", "t",
                std::string("{") + kToolParams + R"(,"type":"http","url":"https://a.b"})",
                "spec.description", "required"},
        Invalid{"tools", "t", Tool(R"("type":"http")"), "spec.url", "required"},
        Invalid{"tools", "t", Tool(R"("type":"http","url":"ftp://a.b/x")"), "spec.url",
                "http:// or https://"},
        Invalid{"tools", "t", Tool(R"("type":"http","url":"https://user:pw@a.b/x")"), "spec.url",
                "user info"},
        Invalid{"tools", "t", Tool(R"("type":"http","url":"http://169.254.169.254/latest")"),
                "spec.url", "metadata"},
        Invalid{"tools", "t", Tool(R"("type":"http","url":"http://metadata.google.internal/")"),
                "spec.url", "metadata"},
        Invalid{"tools", "t", Tool(R"("type":"http","url":"https://a.b:99999/")"), "spec.url",
                "port"},
        Invalid{"tools", "t", Tool(R"("type":"http","url":"https://a.b/x","method":"PUT")"),
                "spec.method", "GET or POST"},
        Invalid{"tools", "t", Tool(R"("type":"http","url":"https://a.b/x","allowHosts":["c.d"])"),
                "spec.url", "not in allowHosts"},
        Invalid{"tools", "t", Tool(R"("type":"http","url":"https://a.b/x","allowHosts":[])"),
                "spec.allowHosts", "must not be empty"},
        Invalid{"tools", "t", Tool(R"("type":"http","url":"https://a.b/x","allowHosts":["A.B"])"),
                "spec.allowHosts[0]", "lower-case host"},
        Invalid{"tools", "t",
                Tool(R"("type":"http","url":"https://a.b/x","allowHosts":["a.b","169.254.1.1"])"),
                "spec.allowHosts[1]", "link-local"},
        Invalid{"tools", "t", Tool(R"("type":"http","url":"https://a.b/x","timeoutMs":0)"),
                "spec.timeoutMs", "1..120000"},
        Invalid{"tools", "t", Tool(R"("type":"http","url":"https://a.b/x","timeoutMs":120001)"),
                "spec.timeoutMs", "1..120000"},
        Invalid{"tools", "t", Tool(R"("type":"http","url":"https://a.b/x","timeoutMs":1.5)"),
                "spec.timeoutMs", "integer"},
        Invalid{"tools", "t", Tool(R"("type":"http","url":"https://a.b/x","headers":{})"),
                "spec.headers", "unknown field"},
        Invalid{"tools", "k8s.pods", Tool(R"("type":"builtin","url":"https://a.b/x")"), "spec.url",
                "only http tools"},
        Invalid{"tools", "my.tool", Tool(R"("type":"builtin")"), "name", "k8s.events"}));

INSTANTIATE_TEST_SUITE_P(
    Routes, InvalidSpecTest,
    ::testing::Values(
        Invalid{"routes", "r", R"({"model":"m"})", "spec.provider", "required"},
        Invalid{"routes", "r", R"({"provider":"anthropic","model":"m"})", "spec.provider",
                "openai, kimi, openai-compatible, local"},
        Invalid{"routes", "r", R"({"provider":"openai"})", "spec.model", "required"},
        Invalid{"routes", "r", R"({"provider":"openai-compatible","model":"m"})", "spec.baseUrl",
                "required for provider openai-compatible"},
        Invalid{"routes", "r", R"({"provider":"openai","model":"m","baseUrl":"localhost:8000"})",
                "spec.baseUrl", "http:// or https://"},
        Invalid{"routes", "r", R"({"provider":"openai","model":"m","apiKeyEnv":"OPENAI_KEY"})",
                "spec.apiKeyEnv", "_API_KEY"},
        Invalid{"routes", "r", R"({"provider":"openai","model":"m","apiKeyEnv":"sk-live-123"})",
                "spec.apiKeyEnv", "never stored"},
        Invalid{"routes", "r", R"({"provider":"openai","model":"m","params":[1]})", "spec.params",
                "must be an object"},
        Invalid{"routes", "r", R"({"provider":"openai","model":"m","fallbacks":["r"]})",
                "spec.fallbacks[0]", "itself"},
        Invalid{"routes", "r", R"({"provider":"openai","model":"m","fallbacks":["a","a"]})",
                "spec.fallbacks[1]", "repeats"},
        Invalid{"routes", "r", R"({"provider":"openai","model":"m","weight":1001})", "spec.weight",
                "0..1000"},
        Invalid{"routes", "r", R"({"provider":"openai","model":"m","weight":-1})", "spec.weight",
                "0..1000"},
        Invalid{"routes", "r", R"({"provider":"openai","model":"m","order":"first"})", "spec.order",
                "integer"},
        Invalid{"routes", "r", R"({"provider":"openai","model":"m","match":{"skil":"x"}})",
                "spec.match.skil", "unknown field"},
        Invalid{"routes", "r", R"({"provider":"openai","model":"m","match":{"tags":"a"}})",
                "spec.match.tags", "array of strings"},
        Invalid{"routes", "r", R"({"provider":"openai","model":"m","match":{"kind":"Prompt"}})",
                "spec.match.kind", "command kind"},
        Invalid{"routes", "r", R"({"provider":"openai","model":"m","match":{"tenant":""}})",
                "spec.match.tenant", "must not be empty"},
        Invalid{"routes", "default", R"({"provider":"local","model":"echo","match":{}})",
                "spec.match", "takes no match"}));

INSTANTIATE_TEST_SUITE_P(
    Arbiters, InvalidSpecTest,
    ::testing::Values(
        Invalid{"arbiters", "a", R"({"onFail":"fail"})", "spec.checks", "required"},
        Invalid{"arbiters", "a", R"({"checks":[],"onFail":"fail"})", "spec.checks",
                "non-empty array"},
        Invalid{"arbiters", "a", R"({"checks":[{"type":"approval"}]})", "spec.onFail", "required"},
        Invalid{"arbiters", "a", R"({"checks":[{"type":"approval"}],"onFail":"ignore"})",
                "spec.onFail", "retry, fail or hold"},
        Invalid{"arbiters", "a", R"({"checks":[{}],"onFail":"fail"})", "spec.checks[0].type",
                "required"},
        Invalid{"arbiters", "a", R"({"checks":[{"type":"vibes"}],"onFail":"fail"})",
                "spec.checks[0].type", "budget, regex, jsonSchema, judge, approval"},
        Invalid{"arbiters", "a", R"({"checks":[{"type":"budget"}],"onFail":"fail"})",
                "spec.checks[0]", "maxTokens, maxSteps or maxCostUsd"},
        Invalid{"arbiters", "a", R"({"checks":[{"type":"budget","maxTokens":0}],"onFail":"fail"})",
                "spec.checks[0].maxTokens", "1..1000000000"},
        Invalid{"arbiters", "a",
                R"({"checks":[{"type":"budget","maxSteps":20000}],"onFail":"fail"})",
                "spec.checks[0].maxSteps", "1..10000"},
        Invalid{"arbiters", "a", R"({"checks":[{"type":"budget","maxCostUsd":0}],"onFail":"fail"})",
                "spec.checks[0].maxCostUsd", "above 0"},
        Invalid{"arbiters", "a",
                R"({"checks":[{"type":"budget","maxTokens":5,"maxTime":1}],"onFail":"fail"})",
                "spec.checks[0].maxTime", "unknown field"},
        Invalid{"arbiters", "a", R"({"checks":[{"type":"regex"}],"onFail":"fail"})",
                "spec.checks[0]", "deny or require"},
        Invalid{"arbiters", "a",
                R"({"checks":[{"type":"regex","deny":["ok","(unclosed"]}],"onFail":"fail"})",
                "spec.checks[0].deny[1]", "does not compile"},
        Invalid{"arbiters", "a", R"({"checks":[{"type":"regex","require":[""]}],"onFail":"fail"})",
                "spec.checks[0].require[0]", "must not be empty"},
        Invalid{"arbiters", "a", R"({"checks":[{"type":"jsonSchema"}],"onFail":"fail"})",
                "spec.checks[0].schema", "required"},
        Invalid{
            "arbiters", "a",
            R"({"checks":[{"type":"jsonSchema","schema":{"type":"object","properties":{"n":{"minimum":"1"}}}}],"onFail":"fail"})",
            "spec.checks[0].schema.properties.n.minimum", "must be a number"},
        Invalid{
            "arbiters", "a",
            R"({"checks":[{"type":"jsonSchema","schema":{"$ref":"#/$defs/none"}}],"onFail":"fail"})",
            "spec.checks[0].schema.$ref", "resolve"},
        Invalid{"arbiters", "a",
                R"({"checks":[{"type":"judge","rubric":"r","minScore":0.5}],"onFail":"retry"})",
                "spec.checks[0].route", "required"},
        Invalid{"arbiters", "a",
                R"({"checks":[{"type":"judge","route":"j","minScore":0.5}],"onFail":"retry"})",
                "spec.checks[0].rubric", "required"},
        Invalid{"arbiters", "a",
                R"({"checks":[{"type":"judge","route":"j","rubric":"r"}],"onFail":"retry"})",
                "spec.checks[0].minScore", "required"},
        Invalid{
            "arbiters", "a",
            R"({"checks":[{"type":"judge","route":"j","rubric":"r","minScore":7}],"onFail":"retry"})",
            "spec.checks[0].minScore", "within 0..1"},
        Invalid{"arbiters", "a", R"({"checks":[{"type":"approval","who":"me"}],"onFail":"hold"})",
                "spec.checks[0].who", "unknown field"},
        Invalid{"arbiters", "a",
                R"({"match":{"kind":7},"checks":[{"type":"approval"}],"onFail":"hold"})",
                "spec.match.kind", "must be a string"}));

TEST(SpecTest, KindsAndNames) {
  for (auto k : kKinds) EXPECT_TRUE(IsKind(k));
  EXPECT_FALSE(IsKind("prompt"));
  EXPECT_TRUE(IsValidName("a"));
  EXPECT_TRUE(IsValidName("k8s.pods"));
  EXPECT_TRUE(IsValidName("0-release_2.1"));
  EXPECT_TRUE(IsValidName(std::string(64, 'z')));
  EXPECT_FALSE(IsValidName(""));
  EXPECT_FALSE(IsValidName("_x"));
  EXPECT_FALSE(IsValidName("a b"));
  EXPECT_FALSE(IsValidName("a/b"));
  EXPECT_FALSE(IsValidName("Caps"));
}

TEST(SpecTest, PromptParsesWithItsVariables) {
  auto p = ParsePrompt("greet", json::parse(
                                    R"({"template":"Hello {{name}}, {{ user.city }} {{name}}",
                                        "description":"says hello"})"));
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p->name, "greet");
  EXPECT_EQ(p->description, "says hello");
  EXPECT_EQ(p->variables, (std::vector<std::string>{"name", "user.city"}));
}

TEST(SpecTest, SkillParses) {
  auto s = ParseSkill("ops", json::parse(
                                 R"({"system":"You run ops.","tools":["k8s.pods","k8s.events"],
                                     "route":"fast"})"));
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->tools, (std::vector<std::string>{"k8s.pods", "k8s.events"}));
  EXPECT_EQ(s->route, "fast");
  EXPECT_TRUE(ParseSkill("min", json::parse(R"({"system":""})")));
}

TEST(SpecTest, HttpToolParsesWithDefaults) {
  auto t = ParseTool(
      "weather", json::parse(Tool(R"("type":"http","url":"https://API.example.com:8443/w?q=1")")));
  ASSERT_TRUE(t) << t.error().message;
  EXPECT_EQ(t->type, ToolType::kHttp);
  EXPECT_EQ(t->method, "POST");
  EXPECT_EQ(t->timeout_ms, 30000);
  EXPECT_EQ(t->allow_hosts, (std::vector<std::string>{"api.example.com"}))
      << "without allowHosts, only the url's host";
  EXPECT_EQ(t->parameters["type"], "object");

  auto wild = ParseTool("w2", json::parse(Tool(R"("type":"http","url":"http://eu.api.example.com/x",
      "method":"GET","allowHosts":["*.example.com","127.0.0.1"],"timeoutMs":500)")));
  ASSERT_TRUE(wild) << wild.error().message;
  EXPECT_EQ(wild->method, "GET");
  EXPECT_EQ(wild->timeout_ms, 500);
  EXPECT_EQ(wild->allow_hosts.size(), 2u);

  auto local =
      ParseTool("echo", json::parse(Tool(R"("type":"http","url":"http://127.0.0.1:8080/echo")")));
  ASSERT_TRUE(local) << local.error().message;
  auto v6 = ParseTool("v6", json::parse(Tool(R"("type":"http","url":"http://[::1]:8080/echo")")));
  ASSERT_TRUE(v6) << v6.error().message;
  EXPECT_EQ(v6->allow_hosts, (std::vector<std::string>{"[::1]"}));
  // *.example.com covers subdomains, not the domain itself.
  EXPECT_FALSE(ParseTool("w3", json::parse(Tool(R"("type":"http","url":"http://example.com/",
      "allowHosts":["*.example.com"])"))));
}

TEST(SpecTest, BuiltinToolsNeedNoUrl) {
  for (const auto& name : BuiltinToolNames()) {
    auto t = ParseTool(name, json::parse(Tool(R"("type":"builtin","timeoutMs":2000)")));
    ASSERT_TRUE(t) << name << ": " << t.error().message;
    EXPECT_EQ(t->type, ToolType::kBuiltin);
    EXPECT_TRUE(t->url.empty());
  }
}

TEST(SpecTest, RouteParsesWithDefaults) {
  auto r = ParseRoute("fast", json::parse(R"({"provider":"kimi","model":"moonshot-v1-8k"})"));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->weight, 100);
  EXPECT_EQ(r->order, 0);
  EXPECT_TRUE(r->params.is_object());
  EXPECT_FALSE(r->match.kind);

  auto full = ParseRoute("vllm", json::parse(R"({
      "match": {"kind":"agent","skill":"ops","tags":["gpu","eu"],"tenant":"acme"},
      "provider":"openai-compatible","model":"llama-3","baseUrl":"http://vllm:8000/v1",
      "apiKeyEnv":"VLLM_API_KEY","params":{"temperature":0.2},"fallbacks":["fast","default"],
      "weight":0,"order":-5})"));
  ASSERT_TRUE(full) << full.error().message;
  EXPECT_EQ(full->match.kind, "agent");
  EXPECT_EQ(full->match.skill, "ops");
  EXPECT_EQ(full->match.tags, (std::vector<std::string>{"gpu", "eu"}));
  EXPECT_EQ(full->match.tenant, "acme");
  EXPECT_EQ(full->base_url, "http://vllm:8000/v1");
  EXPECT_EQ(full->api_key_env, "VLLM_API_KEY");
  EXPECT_EQ(full->params["temperature"], 0.2);
  EXPECT_EQ(full->fallbacks, (std::vector<std::string>{"fast", "default"}));
  EXPECT_EQ(full->weight, 0);
  EXPECT_EQ(full->order, -5);
  // 10.0 is an integer in JSON's number model.
  EXPECT_TRUE(ParseRoute("w", json::parse(R"({"provider":"local","model":"echo","weight":10.0})")));
}

TEST(SpecTest, ArbiterParsesEveryCheck) {
  auto a = ParseArbiter("quality", json::parse(R"({
      "match": {"kind":"prompt","tags":["customer"]},
      "checks": [
        {"type":"budget","maxTokens":4000,"maxSteps":8,"maxCostUsd":0.5},
        {"type":"regex","deny":["(?:password|secret)\\s*[:=]"],"require":["^\\S"]},
        {"type":"jsonSchema","schema":{"type":"object","required":["answer"],
                                       "properties":{"answer":{"type":"string"}}}},
        {"type":"judge","route":"judge","rubric":"Is it polite?","minScore":0.7},
        {"type":"approval"}],
      "onFail":"hold"})"));
  ASSERT_TRUE(a) << a.error().message;
  ASSERT_EQ(a->checks.size(), 5u);
  EXPECT_EQ(a->on_fail, OnFail::kHold);
  EXPECT_EQ(a->checks[0].type, CheckType::kBudget);
  EXPECT_EQ(a->checks[0].max_tokens, 4000);
  EXPECT_EQ(a->checks[0].max_steps, 8);
  EXPECT_EQ(a->checks[0].max_cost_usd, 0.5);
  EXPECT_EQ(a->checks[1].type, CheckType::kRegex);
  EXPECT_EQ(a->checks[1].deny.size(), 1u);
  EXPECT_EQ(a->checks[1].require.size(), 1u);
  EXPECT_EQ(a->checks[2].type, CheckType::kJsonSchema);
  EXPECT_EQ(a->checks[2].schema["required"][0], "answer");
  EXPECT_EQ(a->checks[3].type, CheckType::kJudge);
  EXPECT_EQ(a->checks[3].route, "judge");
  EXPECT_DOUBLE_EQ(a->checks[3].min_score, 0.7);
  EXPECT_EQ(a->checks[4].type, CheckType::kApproval);
  EXPECT_EQ(CheckTypeName(CheckType::kJsonSchema), "jsonSchema");
  EXPECT_EQ(OnFailName(OnFail::kRetry), "retry");
}

TEST(SpecTest, ReferencesNameOtherItems) {
  EXPECT_EQ(References("skills", json::parse(R"({"system":"","tools":["a","b"],"route":"r"})")),
            (std::vector<std::string>{"tools/a", "tools/b", "routes/r"}));
  EXPECT_EQ(References("routes", json::parse(R"({"fallbacks":["x"]})")),
            (std::vector<std::string>{"routes/x"}));
  EXPECT_EQ(
      References("arbiters",
                 json::parse(R"({"checks":[{"type":"judge","route":"j"},{"type":"approval"}]})")),
      (std::vector<std::string>{"routes/j"}));
  EXPECT_TRUE(References("prompts", json::parse(R"({"template":"x"})")).empty());
}

}  // namespace
}  // namespace synaps::control
