// Route selection (first match, the default route, weighted splits stable per run), fallback
// chains, arbiter matching, and snapshots built from stored entries.
#include "control/routing.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>

namespace synaps::control {
namespace {

using nlohmann::json;

SnapshotEntry Entry(const std::string& kind, const std::string& name, const std::string& spec,
                    int version = 1) {
  return {kind, name, version, version, json::parse(spec)};
}

Snapshot Build(std::vector<SnapshotEntry> entries) {
  Snapshot s = BuildSnapshot(42, std::move(entries));
  EXPECT_TRUE(s.invalid.empty()) << s.invalid.front().message;
  return s;
}

std::string Select(const Snapshot& s, const RouteQuery& q, const std::string& run = "run-1") {
  auto r = SelectRoute(s.routes, q, run);
  return r ? (*r)->name : "error: " + r.error().message;
}

TEST(RoutingTest, FirstMatchWinsByOrderThenName) {
  Snapshot s = Build({
      Entry("routes", "default", R"({"provider":"local","model":"echo"})"),
      Entry("routes", "agents",
            R"({"match":{"kind":"agent"},"provider":"openai","model":"gpt-4o","order":10})"),
      Entry("routes", "ops-agents",
            R"({"match":{"kind":"agent","skill":"ops"},"provider":"kimi","model":"k2","order":5})"),
      Entry(
          "routes", "gpu",
          R"({"match":{"tags":["gpu","eu"]},"provider":"openai-compatible","model":"llama","baseUrl":"http://vllm:8000/v1","order":1})"),
      Entry("routes", "acme",
            R"({"match":{"tenant":"acme"},"provider":"openai","model":"gpt-4o-mini","order":20})"),
      Entry("routes", "disabled", R"({"provider":"openai","model":"x","weight":0,"order":-100})"),
  });
  ASSERT_EQ(s.routes.size(), 6u);
  EXPECT_EQ(s.routes.front().name, "disabled") << "sorted by order";

  EXPECT_EQ(Select(s, {"agent", "ops", {}, "t"}), "ops-agents") << "order 5 before order 10";
  EXPECT_EQ(Select(s, {"agent", "writer", {}, "t"}), "agents");
  EXPECT_EQ(Select(s, {"agent", "ops", {"eu", "gpu", "x"}, "t"}), "gpu") << "all tags present";
  EXPECT_EQ(Select(s, {"prompt", "", {"gpu"}, "t"}), "default") << "one tag missing";
  EXPECT_EQ(Select(s, {"prompt", "", {}, "acme"}), "acme");
  EXPECT_EQ(Select(s, {"prompt", "", {}, "other"}), "default")
      << "nothing matches (weight 0 never does): the default route";
}

TEST(RoutingTest, WithoutADefaultNothingMatchingIsNotFound) {
  Snapshot s = Build({Entry("routes", "agents",
                            R"({"match":{"kind":"agent"},"provider":"local","model":"echo"})")});
  auto r = SelectRoute(s.routes, {"prompt", "", {"a"}, "acme"}, "run");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
  EXPECT_NE(r.error().message.find("no route matches (kind prompt, tenant acme, tags a)"),
            std::string::npos)
      << r.error().message;
  EXPECT_FALSE(SelectRoute({}, {"prompt", "", {}, ""}, "run"));
}

TEST(RoutingTest, TheDefaultRouteNeverCompetesInMatching) {
  Snapshot s = Build({
      Entry("routes", "default", R"({"provider":"local","model":"echo","order":-10})"),
      Entry("routes", "all", R"({"provider":"openai","model":"gpt","order":0})"),
  });
  EXPECT_EQ(Select(s, {"prompt", "", {}, ""}), "all");
}

TEST(RoutingTest, WeightsSplitRunsStablyAmongEqualOrders) {
  Snapshot s = Build({
      Entry("routes", "a",
            R"({"match":{"kind":"prompt"},"provider":"openai","model":"a","weight":100})"),
      Entry("routes", "b",
            R"({"match":{"kind":"prompt"},"provider":"openai","model":"b","weight":300})"),
      Entry("routes", "later",
            R"({"match":{"kind":"prompt"},"provider":"openai","model":"c","order":1})"),
  });
  std::map<std::string, int> counts;
  for (int i = 0; i < 4000; ++i) {
    std::string run = "00000000-0000-4000-8000-" + std::to_string(100000000000 + i);
    std::string first = Select(s, {"prompt", "", {}, ""}, run);
    ++counts[first];
    // The same run always gets the same route.
    ASSERT_EQ(Select(s, {"prompt", "", {}, ""}, run), first);
  }
  EXPECT_EQ(counts.count("later"), 0u) << "a higher order never shares the split";
  EXPECT_NEAR(counts["a"] / 4000.0, 0.25, 0.04);
  EXPECT_NEAR(counts["b"] / 4000.0, 0.75, 0.04);
}

TEST(RoutingTest, TheSplitDoesNotDependOnInputOrder) {
  std::vector<SnapshotEntry> entries = {
      Entry("routes", "x", R"({"provider":"local","model":"x","weight":1})"),
      Entry("routes", "y", R"({"provider":"local","model":"y","weight":1})"),
      Entry("routes", "z", R"({"provider":"local","model":"z","weight":1})")};
  Snapshot forward = Build(entries);
  std::reverse(entries.begin(), entries.end());
  Snapshot backward = Build(entries);
  std::vector<Route> shuffled = {forward.routes[2], forward.routes[0], forward.routes[1]};
  for (int i = 0; i < 200; ++i) {
    std::string run = "run-" + std::to_string(i);
    RouteQuery q{"prompt", "", {}, ""};
    std::string a = Select(forward, q, run);
    EXPECT_EQ(a, Select(backward, q, run));
    EXPECT_EQ(a, (*SelectRoute(shuffled, q, run))->name);
  }
}

TEST(RoutingTest, StableHashIsFixed) {
  // Changing the hash would move running A/B splits; these values pin it.
  EXPECT_EQ(StableHash("a"), 0x02c0bdbf481420f8ull);
  EXPECT_EQ(StableHash("run-1"), 0x9ccf6179fa6aacd7ull);
  EXPECT_NE(StableHash("run-1"), StableHash("run-2"));
}

TEST(RoutingTest, FallbackChainIsDepthFirstWithoutRepeats) {
  Snapshot s = Build({
      Entry("routes", "primary",
            R"({"provider":"openai","model":"a","fallbacks":["second","third"]})"),
      Entry("routes", "second",
            R"({"provider":"kimi","model":"b","fallbacks":["local","primary"]})"),
      Entry("routes", "third", R"({"provider":"openai","model":"c","fallbacks":["local"]})"),
      Entry("routes", "local", R"({"provider":"local","model":"echo"})"),
  });
  auto chain = FallbackChain(s.routes, *s.FindRoute("primary"));
  ASSERT_TRUE(chain) << chain.error().message;
  std::vector<std::string> names;
  for (const Route* r : *chain) names.push_back(r->name);
  EXPECT_EQ(names, (std::vector<std::string>{"primary", "second", "local", "third"}));

  auto alone = FallbackChain(s.routes, *s.FindRoute("local"));
  ASSERT_TRUE(alone);
  EXPECT_EQ(alone->size(), 1u);
}

TEST(RoutingTest, AMissingFallbackIsNamed) {
  Snapshot s = Build(
      {Entry("routes", "primary", R"({"provider":"openai","model":"a","fallbacks":["gone"]})")});
  auto chain = FallbackChain(s.routes, *s.FindRoute("primary"));
  ASSERT_FALSE(chain);
  EXPECT_EQ(chain.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(chain.error().message, "route primary falls back to route gone, which does not exist");
}

TEST(RoutingTest, EveryMatchingArbiterApplies) {
  Snapshot s = Build({
      Entry("arbiters", "all", R"({"checks":[{"type":"budget","maxTokens":100}],"onFail":"fail"})"),
      Entry("arbiters", "agents",
            R"({"match":{"kind":"agent"},"checks":[{"type":"approval"}],"onFail":"hold"})"),
      Entry(
          "arbiters", "pii",
          R"({"match":{"tags":["pii"]},"checks":[{"type":"regex","deny":["\\d{3}-\\d{2}-\\d{4}"]}],"onFail":"retry"})"),
  });
  auto names = [&](const RouteQuery& q) {
    std::vector<std::string> out;
    for (const Arbiter* a : MatchingArbiters(s, q)) out.push_back(a->name);
    return out;
  };
  EXPECT_EQ(names({"agent", "", {"pii"}, ""}), (std::vector<std::string>{"agents", "all", "pii"}));
  EXPECT_EQ(names({"prompt", "", {}, ""}), (std::vector<std::string>{"all"}));
}

TEST(SnapshotTest, TypedViewsCarryVersionsAndJsonHasEveryKind) {
  Snapshot s = Build({
      Entry("prompts", "greet", R"({"template":"Hi {{name}}"})", 3),
      Entry("skills", "ops", R"({"system":"ops","tools":["k8s.pods"]})", 2),
      Entry("tools", "k8s.pods",
            R"({"description":"pods","type":"builtin","parameters":{"type":"object"}})"),
  });
  EXPECT_EQ(s.version, 42);
  ASSERT_NE(s.FindPrompt("greet"), nullptr);
  EXPECT_EQ(s.FindPrompt("greet")->version, 3);
  EXPECT_EQ(s.FindSkill("ops")->version, 2);
  EXPECT_EQ(s.FindTool("k8s.pods")->type, ToolType::kBuiltin);
  EXPECT_EQ(s.FindPrompt("nope"), nullptr);
  EXPECT_EQ(s.FindRoute("nope"), nullptr);
  ASSERT_NE(s.FindEntry("prompts", "greet"), nullptr);
  EXPECT_EQ(s.FindEntry("prompts", "greet")->change_id, 3);
  json j = s.ToJson();
  EXPECT_EQ(j["version"], 42);
  EXPECT_EQ(j["items"]["prompts"]["greet"]["version"], 3);
  EXPECT_EQ(j["items"]["prompts"]["greet"]["spec"]["template"], "Hi {{name}}");
  for (auto kind : kKinds) EXPECT_TRUE(j["items"].contains(std::string(kind))) << kind;
  EXPECT_TRUE(j["items"]["arbiters"].empty());
}

TEST(SnapshotTest, ItemsThatNoLongerValidateAreSetAside) {
  Snapshot s = BuildSnapshot(7, {Entry("prompts", "old", R"({"template":"{{ bad-name }}"})"),
                                 Entry("prompts", "ok", R"({"template":"fine"})")});
  EXPECT_EQ(s.FindPrompt("old"), nullptr);
  EXPECT_NE(s.FindEntry("prompts", "old"), nullptr) << "kept as stored";
  ASSERT_EQ(s.invalid.size(), 1u);
  EXPECT_EQ(s.invalid[0].field, "prompts/old: spec.template");
  EXPECT_NE(s.FindPrompt("ok"), nullptr);
}

}  // namespace
}  // namespace synaps::control
