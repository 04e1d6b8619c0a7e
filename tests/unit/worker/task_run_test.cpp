// Plan resolution against a control snapshot: prompts, skills, routes and fallbacks.
#include "worker/task_run.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <stdexcept>

#include "k8s/builtin_tools.h"

namespace synaps::worker {
namespace {

using nlohmann::json;

control::Snapshot MakeSnapshot() {
  std::vector<control::SnapshotEntry> e = {
      {"prompts", "greet", 2, 5, {{"template", "Hi {{name}}"}}},
      {"skills", "support", 1, 6, {{"system", "Be kind."}, {"route", "fast"}}},
      {"routes", "fast", 3, 7,
       {{"provider", "openai-compatible"}, {"baseUrl", "http://x/v1"}, {"model", "m1"},
        {"fallbacks", {"slow"}}, {"weight", 0}}},
      {"routes", "slow", 1, 8, {{"provider", "local"}, {"model", "echo"}, {"weight", 0}}},
      {"routes", "default", 1, 9, {{"provider", "local"}, {"model", "echo"}}},
  };
  return control::BuildSnapshot(9, std::move(e));
}

store::ClaimedItem Item(json spec) {
  store::ClaimedItem it;
  it.task_id = "t";
  it.run_id = "r";
  it.task_kind = "prompt";
  it.spec = std::move(spec);
  it.upstream = json::object();
  it.history = json::array();
  return it;
}

const json kDefault = {{"provider", "local"}, {"model", "echo"}};

TEST(TaskRunResolveTest, RendersPromptAndRecordsVersions) {
  auto snap = MakeSnapshot();
  auto plan = TaskRun::Resolve(Item({{"prompt", "greet"}, {"variables", {{"name", "Ada"}}}}),
                               &snap, kDefault);
  ASSERT_TRUE(plan) << plan.error().message;
  EXPECT_EQ(plan->messages.back().content, "Hi Ada");
  EXPECT_EQ(plan->versions["prompt"]["version"], 2);
  EXPECT_EQ(plan->versions["snapshotVersion"], 9);
  EXPECT_EQ(plan->routes[0]["name"], "default") << "no route named: the registry's default";
}

TEST(TaskRunResolveTest, MissingPromptOrVariableIsAClearError) {
  auto snap = MakeSnapshot();
  auto missing = TaskRun::Resolve(Item({{"prompt", "nope"}}), &snap, kDefault);
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("nope"), std::string::npos);
  auto var = TaskRun::Resolve(Item({{"prompt", "greet"}}), &snap, kDefault);
  ASSERT_FALSE(var);
  EXPECT_NE(var.error().message.find("name"), std::string::npos) << var.error().message;
}

TEST(TaskRunResolveTest, SkillGivesSystemTextAndItsRouteWithFallbacks) {
  auto snap = MakeSnapshot();
  auto plan = TaskRun::Resolve(Item({{"skill", "support"}, {"input", {{"text", "help"}}}}), &snap,
                               kDefault);
  ASSERT_TRUE(plan) << plan.error().message;
  EXPECT_EQ(plan->messages.front().role, "system");
  EXPECT_EQ(plan->messages.front().content, "Be kind.");
  ASSERT_EQ(plan->routes.size(), 2u);
  EXPECT_EQ(plan->routes[0]["name"], "fast");
  EXPECT_EQ(plan->routes[0]["baseUrl"], "http://x/v1");
  EXPECT_EQ(plan->routes[1]["name"], "slow");
  EXPECT_EQ(plan->versions["skill"]["version"], 1);
  EXPECT_EQ(plan->versions["route"]["version"], 3);
}

TEST(TaskRunResolveTest, WithoutASnapshotTheWorkerDefaultApplies) {
  auto plan = TaskRun::Resolve(Item({{"input", {{"text", "x"}}}}), nullptr, kDefault);
  ASSERT_TRUE(plan);
  EXPECT_EQ(plan->routes[0], kDefault);
  EXPECT_FALSE(TaskRun::Resolve(Item({{"route", "fast"}, {"input", {{"text", "x"}}}}), nullptr,
                                kDefault));
}

TEST(TaskRunResolveTest, HistoryAndDependencyOutputsComeBeforeTheInput) {
  auto item = Item({{"input", {{"text", "now"}}}});
  item.history = json::array({{{"input", "before"}, {"output", "answer"}}});
  item.upstream = {{"a", {{"text", "from a"}}}};
  auto plan = TaskRun::Resolve(item, nullptr, kDefault);
  ASSERT_TRUE(plan);
  ASSERT_EQ(plan->messages.size(), 4u);
  EXPECT_EQ(plan->messages[0].content, "before");
  EXPECT_EQ(plan->messages[1].role, "assistant");
  EXPECT_NE(plan->messages[2].content.find("from a"), std::string::npos);
  EXPECT_EQ(plan->messages[3].content, "now");
}

TEST(TaskRunResolveTest, AgentsGetTheirSkillsAndSubmittedToolsAndTheArbitersThatMatch) {
  json params = {{"type", "object"}};
  std::vector<control::SnapshotEntry> e = {
      {"skills", "ops", 1, 1, {{"system", "Ops."}, {"tools", {"k8s.pods", "runbook"}}}},
      {"tools", "k8s.pods", 1, 2,
       {{"type", "builtin"}, {"description", "pods"}, {"parameters", params}}},
      {"tools", "runbook", 2, 3,
       {{"type", "http"}, {"description", "search"}, {"url", "https://rb.example.com/s"},
        {"parameters", params}}},
      {"tools", "k8s_pods", 1, 4,
       {{"type", "http"}, {"description", "clash"}, {"url", "https://x.example.com/"},
        {"parameters", params}}},
      {"arbiters", "careful", 1, 5,
       {{"match", {{"kind", "agent"}}}, {"checks", {{{"type", "approval"}}}}, {"onFail", "hold"}}},
  };
  auto snap = control::BuildSnapshot(5, std::move(e));
  auto item = Item({{"skill", "ops"}, {"input", {{"text", "why is web down?"}}},
                    {"tools", {"runbook"}}, {"maxSteps", 4}, {"maxAttempts", 3}});
  item.task_kind = "agent";
  item.attempt = 1;
  auto plan = TaskRun::Resolve(item, &snap, kDefault);
  ASSERT_TRUE(plan) << plan.error().message;
  EXPECT_TRUE(plan->agent);
  EXPECT_EQ(plan->max_steps, 4);
  ASSERT_EQ(plan->tools.size(), 2u) << "runbook is offered once";
  EXPECT_EQ(plan->versions["tools"][1]["version"], 2);
  ASSERT_EQ(plan->arbiters.size(), 1u);
  EXPECT_EQ(plan->versions["arbiters"][0]["name"], "careful");
  EXPECT_EQ(plan->feedback_rounds, 2);
  EXPECT_EQ(k8s::BuiltinTools::WireName("k8s.pods"), "k8s_pods");

  // A tool that does not exist, or two that look the same to a model, fail clearly.
  auto missing = Item({{"input", {{"text", "x"}}}, {"tools", {"nope"}}});
  missing.task_kind = "agent";
  auto r = TaskRun::Resolve(missing, &snap, kDefault);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("nope"), std::string::npos);
  auto clash = Item({{"input", {{"text", "x"}}}, {"tools", {"k8s.pods", "k8s_pods"}}});
  clash.task_kind = "agent";
  r = TaskRun::Resolve(clash, &snap, kDefault);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("same name"), std::string::npos) << r.error().message;

  // A prompt task gets no tools and no loop.
  auto prompt = Item({{"skill", "ops"}, {"input", {{"text", "x"}}}});
  auto p = TaskRun::Resolve(prompt, &snap, kDefault);
  ASSERT_TRUE(p);
  EXPECT_FALSE(p->agent);
  EXPECT_TRUE(p->tools.empty());
}

}  // namespace
}  // namespace synaps::worker

namespace synaps::worker {
namespace {

// TaskRun's barrier (docs/reliability.md, "Bus and thread barriers"): a step that throws on the
// event loop fails its task with an internal error naming the task and the step, once.
class ThrowingToolRunner final : public ToolRunner {
 public:
  void Invoke(const control::Tool&, const nlohmann::json&, Done) override {
    throw std::runtime_error("tool runner bug");
  }
};

TEST(TaskRunBarrierTest, AStepThatThrowsFailsTheTaskOnceWithAClearError) {
  json params = {{"type", "object"}};
  std::vector<control::SnapshotEntry> e = {
      {"tools",
       "lookup",
       1,
       1,
       {{"type", "http"},
        {"description", "d"},
        {"url", "https://rb.example.com/s"},
        {"parameters", params}}},
  };
  auto snap = std::make_shared<const control::Snapshot>(control::BuildSnapshot(1, std::move(e)));
  auto item = Item({{"input", {{"text", "/tool lookup {}"}}}, {"tools", {"lookup"}}});
  item.task_kind = "agent";
  item.task_id = "t-throws";
  boost::asio::io_context io;
  providers::ProviderRegistry providers(io.get_executor());
  ThrowingToolRunner tools;
  std::vector<Result<TaskOutcome>> outcomes;
  TaskRun run(
      item, snap,
      TaskRunEnv{.executor = io.get_executor(),
                 .providers = &providers,
                 .tools = &tools,
                 .default_route = kDefault},
      [](const providers::ChatDelta&) {}, [](std::string, json) {},
      [&](Result<TaskOutcome> r) { outcomes.push_back(std::move(r)); });
  boost::asio::post(io, [&] { run.Start(); });
  io.run_for(std::chrono::seconds(5));
  ASSERT_EQ(outcomes.size(), 1u);
  ASSERT_FALSE(outcomes[0]);
  EXPECT_EQ(outcomes[0].error().code, ErrorCode::kInternal);
  EXPECT_EQ(outcomes[0].error().message, "task t-throws: model answer failed: tool runner bug");
}

}  // namespace
}  // namespace synaps::worker
