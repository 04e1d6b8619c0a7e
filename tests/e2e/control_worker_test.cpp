// The control plane as a running worker sees it: a prompt changed while the worker runs is used
// by the next task (same process), the ledger names the versions used, rollback restores the
// earlier behaviour, and a failing route falls back to the next one.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "support/cluster.h"
#include "support/fake_openai.h"

namespace synaps {
namespace {

using nlohmann::json;
using testing::Cluster;

void Put(Cluster& c, const std::string& kind, const std::string& name, const json& spec) {
  auto r = c.Call("PUT", "/v1/control/" + kind + "/" + name,
                  json{{"spec", spec}, {"reason", "test"}}.dump());
  ASSERT_EQ(r.status / 100, 2) << r.body;
}

json RunPrompt(Cluster& c, const json& variables) {
  json created = c.Submit({{"kind", "prompt"}, {"prompt", "greet"}, {"variables", variables}});
  return c.WaitFinished(created["runId"]);
}

std::string Answer(Cluster& c, const json& run) {
  return c.Call("GET", "/v1/artifacts/" + run["artifacts"][0]["id"].get<std::string>() +
                           "/versions/" +
                           std::to_string(run["artifacts"][0]["versions"][0]["version"].get<int>()) +
                           "/content")
      .body;
}

json Completed(const json& run) {
  for (const auto& e : run["events"]) {
    if (e["type"] == "task.completed") return e["data"];
  }
  return json();
}

TEST(ControlWorkerTest, PromptChangesReachARunningWorkerAndRollbackRestores) {
  Cluster c;
  c.StartApi();
  size_t w = c.StartWorker();
  pid_t pid = c.worker(w).pid();
  Put(c, "prompts", "greet", {{"template", "Hello {{name}}!"}});
  json first = RunPrompt(c, {{"name", "Ada"}});
  ASSERT_EQ(first["status"], "succeeded") << first.dump();
  EXPECT_EQ(Answer(c, first), "Hello Ada!");
  EXPECT_EQ(Completed(first)["control"]["prompt"]["version"], 1);

  Put(c, "prompts", "greet", {{"template", "Good evening, {{name}}."}});
  json second = RunPrompt(c, {{"name", "Ada"}});
  ASSERT_EQ(second["status"], "succeeded");
  EXPECT_EQ(Answer(c, second), "Good evening, Ada.");
  json used = Completed(second)["control"];
  EXPECT_EQ(used["prompt"]["name"], "greet");
  EXPECT_EQ(used["prompt"]["version"], 2);
  EXPECT_GE(used["snapshotVersion"].get<int64_t>(), 2);
  EXPECT_EQ(c.worker(w).pid(), pid);
  EXPECT_TRUE(c.worker(w).running()) << "no restart";

  auto rb = c.Call("POST", "/v1/control/prompts/greet/rollback",
                   json{{"toVersion", 1}, {"reason", "back"}}.dump());
  ASSERT_EQ(rb.status / 100, 2) << rb.body;
  json third = RunPrompt(c, {{"name", "Ada"}});
  EXPECT_EQ(Answer(c, third), "Hello Ada!");
  EXPECT_EQ(Completed(third)["control"]["prompt"]["version"], 3);

  // A missing variable fails the task with a clear error, never a silent blank.
  json missing = RunPrompt(c, json::object());
  EXPECT_EQ(missing["status"], "failed");
  EXPECT_NE(missing["error"].dump().find("name"), std::string::npos) << missing["error"].dump();
}

TEST(ControlWorkerTest, FailingRouteFallsBackToTheNextOne) {
  testing::FakeOpenAi down([](const testing::FakeRequest&, int) {
    return testing::FakeOpenAi::Error(503, "primary is down");
  });
  Cluster c;
  c.StartApi();
  c.StartWorker({{"SYNAPS_PROVIDER_MAX_ATTEMPTS", "2"}, {"SYNAPS_PROVIDER_RETRY_BASE_MS", "10"}});
  Put(c, "routes", "backup", {{"provider", "local"}, {"model", "echo"}, {"weight", 0}});
  Put(c, "routes", "default",
      {{"provider", "openai-compatible"}, {"baseUrl", down.base_url()}, {"model", "m"},
       {"fallbacks", {"backup"}}});
  json run = c.WaitFinished(c.SubmitText("survive the outage")["runId"]);
  ASSERT_EQ(run["status"], "succeeded") << run.dump();
  json data = Completed(run);
  EXPECT_EQ(data["control"]["route"]["name"], "default");
  EXPECT_EQ(data["control"]["routeUsed"]["name"], "backup");
  EXPECT_EQ(data["fallbacks"][0]["route"], "default");
  EXPECT_GE(down.request_count(), 2) << "the primary's own retries came first";
  EXPECT_EQ(Answer(c, run), "survive the outage");
}

}  // namespace
}  // namespace synaps
