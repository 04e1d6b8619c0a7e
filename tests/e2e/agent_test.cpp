// Agents and arbiters with real processes (API, worker, PostgreSQL, NATS): an agent calls an
// HTTP tool on a test server and the builtin k8s.pods tool (against a fake Kubernetes API
// server: no cluster runs here), a metadata-address target is refused, mistaken tool calls are
// answered to the model as errors, maxSteps ends a loop,
// and every arbiter check passes and fails, including retry with feedback, hold, approve and
// reject. The model is the `local` provider scripted through route params, so no network and no
// paid provider is involved.
#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "http/client.h"
#include "support/cluster.h"
#include "support/fake_kube.h"
#include "support/fake_openai.h"

namespace synaps {
namespace {

using nlohmann::json;
using testing::Cluster;

void Put(Cluster& c, const std::string& kind, const std::string& name, const json& spec) {
  auto r = c.Call("PUT", "/v1/control/" + kind + "/" + name,
                  json{{"spec", spec}, {"reason", "agent test"}}.dump());
  ASSERT_EQ(r.status / 100, 2) << r.body;
}

// A local route answering with `script` (see providers/local_provider.h).
json Scripted(const json& script) {
  return {
      {"provider", "local"}, {"model", "echo"}, {"weight", 0}, {"params", {{"script", script}}}};
}

std::vector<json> Events(const json& run, const std::string& type) {
  std::vector<json> out;
  for (const auto& e : run["events"]) {
    if (e["type"] == type) out.push_back(e["data"]);
  }
  return out;
}

json WaitStatus(Cluster& c, const std::string& run_id, const std::string& status) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  json run;
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = c.Call("GET", "/v1/runs/" + run_id);
    run = json::parse(r.body, nullptr, false);
    if (run.is_object() && run.value("status", "") == status) return run;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ADD_FAILURE() << "run " << run_id << " never reached " << status << ": " << run.dump();
  return run;
}

http::Response As(Cluster& c, const std::string& token, const std::string& method,
                  const std::string& path) {
  auto r = http::Send({.method = method,
                       .url = c.base_url() + path,
                       .headers = {"Authorization: Bearer " + token}});
  EXPECT_TRUE(r) << r.error().message;
  return r ? *r : http::Response{};
}

std::string HeldTask(const json& run) {
  for (const auto& e : run["events"]) {
    if (e["type"] == "task.awaiting_approval") return e["taskId"];
  }
  return "";
}

const json kCityParams = {{"type", "object"},
                          {"properties", {{"city", {{"type", "string"}}}}},
                          {"required", {"city"}},
                          {"additionalProperties", false}};

TEST(AgentTest, CallsAnHttpToolAndABuiltinToolAndRecordsEveryStep) {
  // The HTTP tool's server, on 127.0.0.1 (allow-listed by the tool).
  testing::FakeOpenAi weather([](const testing::FakeRequest& r, int) {
    json args = r.Json();
    testing::FakeReply reply;
    // Valid JSON with a NUL character, which PostgreSQL's jsonb refuses: the ledger must still
    // take the result.
    reply.body = json{{"city", args.value("city", "?")}, {"celsius", 21}}.dump();
    reply.body.insert(reply.body.size() - 1, R"(,"note":"a\u0000b")");
    return reply;
  });
  // Kubernetes: a fake API server with TLS and a service-account directory.
  auto identity = testing::MakeKubeTlsIdentity();
  testing::FakeServiceAccount account("sa-token", identity.ca_pem, "agents");
  testing::FakeKube kube(identity, [](const testing::KubeRequest& r) {
    if (r.path == "/api/v1/namespaces/agents/pods") {
      return testing::FakeKube::Json(
          {{"kind", "PodList"},
           {"items",
            {{{"metadata", {{"name", "web-7f9c"}, {"namespace", "agents"}}},
              {"status", {{"phase", "Running"}}}}}}});
    }
    return testing::FakeKube::Status(403, "Forbidden", "forbidden: " + r.path);
  });

  Cluster c;
  c.StartApi();
  size_t w = c.StartWorker({{"KUBERNETES_SERVICE_HOST", "127.0.0.1"},
                            {"KUBERNETES_SERVICE_PORT", std::to_string(kube.port())},
                            {"SYNAPS_K8S_SERVICE_ACCOUNT_DIR", account.dir()}});
  Put(c, "tools", "weather",
      {{"type", "http"},
       {"description", "Current weather of a city"},
       {"url", "http://127.0.0.1:" + std::to_string(weather.port()) + "/weather"},
       {"allowHosts", {"127.0.0.1"}},
       {"parameters", kCityParams}});
  Put(c, "tools", "k8s.pods",
      {{"type", "builtin"},
       {"description", "Pods of this namespace"},
       {"parameters", {{"type", "object"}, {"properties", {{"limit", {{"type", "integer"}}}}}}}});
  Put(c, "routes", "agent-model",
      Scripted({{{"toolCalls",
                  {{{"name", "weather"}, {"arguments", {{"city", "Oslo"}}}},
                   {{"name", "k8s_pods"}, {"arguments", {{"limit", 5}}}}}}},
                {{"text", "Oslo is 21 degrees; web-7f9c is running."}}}));

  json run = c.WaitFinished(c.Submit({{"kind", "agent"},
                                      {"input", {{"text", "Weather in Oslo, and my pods?"}}},
                                      {"route", "agent-model"},
                                      {"tools", {"weather", "k8s.pods"}}})["runId"]);
  ASSERT_EQ(run["status"], "succeeded") << run.dump(2) << c.WorkerLog(w);

  auto called = Events(run, "tool.called");
  auto results = Events(run, "tool.result");
  ASSERT_EQ(called.size(), 2u) << run.dump(2);
  ASSERT_EQ(results.size(), 2u) << run.dump(2);
  EXPECT_EQ(called[0]["tool"], "weather");
  EXPECT_EQ(called[0]["arguments"]["city"], "Oslo");
  EXPECT_EQ(called[0]["version"], 1);
  EXPECT_EQ(called[1]["tool"], "k8s.pods");
  for (const auto& r : results) EXPECT_TRUE(r["ok"].get<bool>()) << r.dump();
  json weather_result = results[0]["tool"] == "weather" ? results[0] : results[1];
  json pods_result = results[0]["tool"] == "weather" ? results[1] : results[0];
  EXPECT_EQ(weather_result["result"]["celsius"], 21) << weather_result.dump();
  EXPECT_EQ(weather_result["result"]["note"].get<std::string>().find('\0'), std::string::npos);
  EXPECT_NE(pods_result["result"].dump().find("web-7f9c"), std::string::npos) << pods_result.dump();

  // The tool server got the model's arguments; the API server got one read-only GET.
  ASSERT_EQ(weather.request_count(), 1);
  EXPECT_EQ(weather.requests()[0].Json()["city"], "Oslo");
  ASSERT_FALSE(kube.requests().empty());
  EXPECT_EQ(kube.requests()[0].method, "GET");

  auto completed = Events(run, "task.completed");
  ASSERT_EQ(completed.size(), 1u);
  EXPECT_EQ(completed[0]["steps"], 2);
  EXPECT_EQ(completed[0]["toolCalls"], 2);
  EXPECT_EQ(completed[0]["control"]["tools"].size(), 2u) << completed[0].dump();
  EXPECT_EQ(completed[0]["control"]["route"]["name"], "agent-model");
}

TEST(AgentTest, RefusesMetadataAddressesAndBoundsTheLoop) {
  Cluster c;
  c.StartApi();
  size_t w = c.StartWorker();
  // The registry refuses a literal metadata address when the tool is written...
  auto refused = c.Call("PUT", "/v1/control/tools/metadata",
                        json{{"spec",
                              {{"type", "http"},
                               {"description", "instance metadata"},
                               {"url", "http://169.254.169.254/latest/meta-data/"},
                               {"parameters", {{"type", "object"}}}}},
                             {"reason", "try"}}
                            .dump());
  EXPECT_EQ(refused.status, 400) << refused.body;
  EXPECT_EQ(json::parse(refused.body)["error"]["field"], "spec.url");
  // ...and in its numeric spellings too: 0xa9fea9fe is 169.254.169.254 to the resolver, so the
  // stored-spec check reads it as that address (net/url_policy.h), even when a careless operator
  // allow-lists it. The worker's own check when it connects is tested in tools_integration_test.
  auto numeric = c.Call("PUT", "/v1/control/tools/metadata",
                        json{{"spec",
                              {{"type", "http"},
                               {"description", "instance metadata"},
                               {"url", "http://0xa9fea9fe/latest/meta-data/"},
                               {"allowHosts", {"0xa9fea9fe"}},
                               {"parameters", {{"type", "object"}}}}},
                             {"reason", "try"}}
                            .dump());
  EXPECT_EQ(numeric.status, 400) << numeric.body;
  EXPECT_NE(numeric.body.find("169.254.169.254"), std::string::npos) << numeric.body;
  (void)w;

  // A model that never stops calling tools ends at maxSteps with a clear error.
  Put(c, "routes", "loop-model",
      Scripted({{{"toolCalls", {{{"name", "nothing"}, {"arguments", json::object()}}}}}}));
  json looped = c.WaitFinished(c.Submit({{"kind", "agent"},
                                         {"input", {{"text", "loop"}}},
                                         {"route", "loop-model"},
                                         {"maxSteps", 3},
                                         {"maxAttempts", 1}})["runId"]);
  ASSERT_EQ(looped["status"], "failed") << looped.dump(2);
  EXPECT_NE(looped["error"].dump().find("maxSteps"), std::string::npos) << looped["error"].dump();
  EXPECT_EQ(Events(looped, "tool.called").size(), 2u) << "two tool rounds, then the third call";

  // Bad agent submits are refused before anything is written.
  auto bad = c.Call("POST", "/v1/commands/submit",
                    json{{"kind", "prompt"}, {"input", {{"text", "x"}}}, {"maxSteps", 3}}.dump());
  EXPECT_EQ(bad.status, 400) << bad.body;
  EXPECT_EQ(json::parse(bad.body)["error"]["field"], "maxSteps");
}

// What the model gets wrong is answered to the model, which can correct itself: a tool that is
// not offered and arguments that do not match the tool's parameters come back as error results
// (never invoked), and the run goes on to the model's next answer.
TEST(AgentTest, AnswersTheModelsMistakenToolCallsWithErrors) {
  Cluster c;
  c.StartApi();
  size_t w = c.StartWorker();
  // Port 9 (discard): nothing must connect to it, the arguments are refused first.
  Put(c, "tools", "city",
      {{"type", "http"},
       {"description", "A city"},
       {"url", "http://127.0.0.1:9/city"},
       {"allowHosts", {"127.0.0.1"}},
       {"parameters", kCityParams}});
  Put(c, "routes", "mistaken-model",
      Scripted({{{"toolCalls",
                  {{{"name", "nothing"}, {"arguments", json::object()}},
                   {{"name", "city"}, {"arguments", {{"town", "Oslo"}}}}}}},
                {{"text", "Sorry, corrected."}}}));
  json run = c.WaitFinished(c.Submit({{"kind", "agent"},
                                      {"input", {{"text", "which city?"}}},
                                      {"route", "mistaken-model"},
                                      {"tools", {"city"}}})["runId"]);
  ASSERT_EQ(run["status"], "succeeded") << run.dump(2) << c.WorkerLog(w);
  auto results = Events(run, "tool.result");
  ASSERT_EQ(results.size(), 2u) << run.dump(2);
  EXPECT_FALSE(results[0]["ok"].get<bool>());
  EXPECT_EQ(results[0]["tool"], "nothing");
  EXPECT_EQ(results[0]["error"]["code"], "not_found");
  EXPECT_EQ(results[0]["error"]["message"], "no tool named 'nothing' is offered");
  EXPECT_FALSE(results[1]["ok"].get<bool>());
  EXPECT_EQ(results[1]["tool"], "city");
  EXPECT_EQ(results[1]["error"]["code"], "invalid_argument");
  EXPECT_EQ(results[1]["error"]["message"].get<std::string>().rfind(
                "the arguments do not match the tool's parameters", 0),
            0u)
      << results[1].dump();
  EXPECT_EQ(results[1]["error"]["field"].get<std::string>().rfind("arguments", 0), 0u);
  EXPECT_EQ(run["tasks"][0]["answer"], "Sorry, corrected.") << run.dump(2);
}

// One arbiter per tag; a submit with that tag is checked by it alone.
struct ArbiterCase {
  std::string name;
  json checks;
  json script;  // the model's answers
  bool passes;
};

TEST(ArbiterTest, EveryCheckPassesAndFails) {
  Cluster c;
  c.StartApi();
  size_t w = c.StartWorker();
  Put(c, "routes", "judge-likes", Scripted({{{"score", 0.9}, {"reason", "clear"}}}));
  Put(c, "routes", "judge-hates", Scripted({{{"score", 0.2}, {"reason", "vague"}}}));
  auto j = [](const char* text) { return json::parse(text); };
  const std::vector<ArbiterCase> cases = {
      {"budget-ok", j(R"([{"type": "budget", "maxTokens": 1000, "maxSteps": 2}])"),
       j(R"([{"text": "short answer"}])"), true},
      {"budget-over", j(R"([{"type": "budget", "maxTokens": 3}])"),
       j(R"([{"text": "a rather long answer that uses many tokens"}])"), false},
      {"regex-ok", j(R"([{"type": "regex", "deny": ["password"], "require": ["^Dear"]}])"),
       j(R"([{"text": "Dear customer, done."}])"), true},
      {"regex-denied", j(R"([{"type": "regex", "deny": ["pass(word)?\\s*[:=]"]}])"),
       j(R"([{"text": "your password: hunter2"}])"), false},
      {"schema-ok",
       j(R"([{"type": "jsonSchema", "schema": {"type": "object", "required": ["amount"],
                                             "properties": {"amount": {"type": "number"}}}}])"),
       j(R"([{"text": "{\"amount\": 12.5}"}])"), true},
      {"schema-bad",
       j(R"([{"type": "jsonSchema", "schema": {"type": "object", "required": ["amount"]}}])"),
       j(R"([{"text": "twelve"}])"), false},
      {"judge-ok",
       j(R"([{"type": "judge", "route": "judge-likes", "rubric": "Clear.", "minScore": 0.5}])"),
       j(R"([{"text": "A clear answer."}])"), true},
      {"judge-low",
       j(R"([{"type": "judge", "route": "judge-hates", "rubric": "Clear.", "minScore": 0.5}])"),
       j(R"([{"text": "Umm."}])"), false},
  };
  std::vector<std::pair<const ArbiterCase*, std::string>> runs;
  for (const auto& k : cases) {
    Put(c, "arbiters", k.name,
        {{"match", {{"tags", {k.name}}}}, {"checks", k.checks}, {"onFail", "fail"}});
    Put(c, "routes", "model-" + k.name, Scripted(k.script));
  }
  for (const auto& k : cases) {
    json created = c.Submit({{"kind", "prompt"},
                             {"input", {{"text", "answer please"}}},
                             {"route", "model-" + k.name},
                             {"tags", {k.name}}});
    runs.emplace_back(&k, created["runId"].get<std::string>());
  }
  for (const auto& [k, run_id] : runs) {
    json run = c.WaitFinished(run_id);
    auto verdicts = Events(run, "arbiter.verdict");
    ASSERT_EQ(verdicts.size(), 1u) << k->name << ": " << run.dump(2) << c.WorkerLog(w);
    EXPECT_EQ(verdicts[0]["arbiter"], k->name);
    EXPECT_EQ(verdicts[0]["passed"].get<bool>(), k->passes) << k->name << verdicts[0].dump();
    EXPECT_EQ(run["status"], k->passes ? "succeeded" : "failed") << k->name << run.dump(2);
    if (!k->passes) {
      EXPECT_NE(run["error"].dump().find(k->name), std::string::npos)
          << k->name << ": the error names the arbiter: " << run["error"].dump();
      EXPECT_TRUE(Events(run, "task.retry_scheduled").empty())
          << k->name << ": an arbiter's fail is final, not retried";
    }
  }
  // The judge's score is in the verdict.
  json judged = c.WaitFinished(runs[6].second);
  EXPECT_DOUBLE_EQ(Events(judged, "arbiter.verdict")[0]["checks"][0]["score"].get<double>(), 0.9);
}

TEST(ArbiterTest, RetrySendsTheVerdictBackAsFeedback) {
  Cluster c;
  c.StartApi();
  c.StartWorker();
  Put(c, "arbiters", "signed",
      {{"match", {{"tags", {"signed"}}}},
       {"checks", {{{"type", "regex"}, {"require", {"-- Synaps$"}}}}},
       {"onFail", "retry"}});
  // The first answer lacks the signature; the second, after feedback, has it.
  Put(c, "routes", "learner", Scripted({{{"text", "Draft."}}, {{"text", "Final.\n-- Synaps"}}}));
  json run = c.WaitFinished(c.Submit({{"kind", "prompt"},
                                      {"input", {{"text", "write it"}}},
                                      {"route", "learner"},
                                      {"tags", {"signed"}}})["runId"]);
  ASSERT_EQ(run["status"], "succeeded") << run.dump(2);
  auto verdicts = Events(run, "arbiter.verdict");
  ASSERT_EQ(verdicts.size(), 2u) << run.dump(2);
  EXPECT_FALSE(verdicts[0]["passed"].get<bool>());
  EXPECT_TRUE(verdicts[1]["passed"].get<bool>());
  EXPECT_EQ(Events(run, "task.completed")[0]["feedbackRounds"], 1);

  // With no attempts left for feedback, a retry verdict fails the task.
  Put(c, "routes", "stubborn", Scripted({{{"text", "Draft."}}}));
  json failed = c.WaitFinished(c.Submit({{"kind", "prompt"},
                                         {"input", {{"text", "write it"}}},
                                         {"route", "stubborn"},
                                         {"tags", {"signed"}},
                                         {"maxAttempts", 2}})["runId"]);
  ASSERT_EQ(failed["status"], "failed") << failed.dump(2);
  EXPECT_EQ(Events(failed, "arbiter.verdict").size(), 2u) << "one feedback round: 2 - 1 attempts";
}

TEST(ArbiterTest, HoldWaitsForApproveOrReject) {
  Cluster c;
  c.StartApi();
  c.StartWorker();
  Put(c, "arbiters", "human",
      {{"match", {{"tags", {"review"}}}},
       {"checks", {{{"type", "approval"}}}},
       {"onFail", "fail"}});
  Put(c, "arbiters", "tone",
      {{"match", {{"tags", {"tone"}}}},
       {"checks", {{{"type", "regex"}, {"deny", {"!!!"}}}}},
       {"onFail", "hold"}});

  // An approval check holds the task whatever onFail says; approve completes it.
  json held = WaitStatus(
      c,
      c.Submit(
          {{"kind", "prompt"}, {"input", {{"text", "ship it"}}}, {"tags", {"review"}}})["runId"],
      "awaiting_approval");
  auto waiting = Events(held, "task.awaiting_approval");
  ASSERT_EQ(waiting.size(), 1u) << held.dump(2);
  EXPECT_EQ(waiting[0]["text"], "ship it") << "the approver reads the answer in the event";
  EXPECT_EQ(waiting[0]["verdicts"][0]["arbiter"], "human");
  std::string task_id = HeldTask(held);
  ASSERT_FALSE(task_id.empty()) << held.dump(2);
  EXPECT_TRUE(held["artifacts"].empty()) << "nothing is published before the approval";
  EXPECT_TRUE(Events(held, "task.progress").empty())
      << "an answer arbiters still judge is not streamed to the ledger";

  EXPECT_EQ(c.Call("POST", "/v1/tasks/not-a-uuid/approve", "").status, 400);
  // Deciding needs the operate permission, and only the task's tenant sees it.
  auto key = [&](const std::string& tenant, const std::string& role) {
    auto r = c.Call("POST", "/v1/api-keys", json{{"tenantId", tenant}, {"role", role}}.dump());
    EXPECT_EQ(r.status, 201) << r.body;
    return json::parse(r.body)["token"].get<std::string>();
  };
  EXPECT_EQ(As(c, key("default", "viewer"), "POST", "/v1/tasks/" + task_id + "/approve").status,
            403);
  EXPECT_EQ(As(c, key("other", "operator"), "POST", "/v1/tasks/" + task_id + "/approve").status,
            404);
  auto approved =
      c.Call("POST", "/v1/tasks/" + task_id + "/approve", json{{"reason", "looks right"}}.dump());
  ASSERT_EQ(approved.status, 200) << approved.body;
  json done = c.WaitFinished(held["id"]);
  EXPECT_EQ(done["status"], "succeeded") << done.dump(2);
  EXPECT_EQ(done["artifacts"].size(), 1u);
  ASSERT_EQ(Events(done, "task.approved").size(), 1u);
  EXPECT_EQ(Events(done, "task.approved")[0]["reason"], "looks right");
  // Deciding twice is a conflict.
  EXPECT_EQ(c.Call("POST", "/v1/tasks/" + task_id + "/approve", "").status, 409);

  // A failed check with onFail hold waits too; reject fails the run.
  json held2 = WaitStatus(
      c,
      c.Submit(
          {{"kind", "prompt"}, {"input", {{"text", "great!!!"}}}, {"tags", {"tone"}}})["runId"],
      "awaiting_approval");
  std::string task2 = HeldTask(held2);
  auto rejected =
      c.Call("POST", "/v1/tasks/" + task2 + "/reject", json{{"reason", "too loud"}}.dump());
  ASSERT_EQ(rejected.status, 200) << rejected.body;
  json failed = c.WaitFinished(held2["id"]);
  EXPECT_EQ(failed["status"], "failed");
  EXPECT_NE(failed["error"].dump().find("too loud"), std::string::npos) << failed["error"].dump();
  EXPECT_EQ(Events(failed, "task.rejected").size(), 1u);
  EXPECT_EQ(c.Call("POST", "/v1/tasks/00000000-0000-0000-0000-000000000000/approve", "").status,
            404);
}

TEST(ArbiterTest, ARunWithSeveralHeldTasksWaitsUntilEveryOneIsDecided) {
  Cluster c;
  c.StartApi();
  c.StartWorker();
  Put(c, "arbiters", "human",
      {{"match", {{"tags", {"review"}}}},
       {"checks", {{{"type", "approval"}}}},
       {"onFail", "hold"}});
  json created = c.Submit({{"kind", "prompt"},
                           {"tags", {"review"}},
                           {"tasks",
                            {{{"name", "a"}, {"input", {{"text", "first"}}}},
                             {{"name", "b"}, {"input", {{"text", "second"}}}}}}});
  std::string run_id = created["runId"];
  json run;
  ASSERT_TRUE(testing::FakeOpenAi::WaitFor(
      [&] {
        run = json::parse(c.Call("GET", "/v1/runs/" + run_id).body);
        return Events(run, "task.awaiting_approval").size() == 2;
      },
      std::chrono::seconds(30)))
      << run.dump(2);
  EXPECT_EQ(run["status"], "awaiting_approval");
  std::vector<std::string> held;
  for (const auto& t : run["tasks"]) held.push_back(t["id"]);
  ASSERT_EQ(c.Call("POST", "/v1/tasks/" + held[0] + "/approve", "").status, 200);
  run = json::parse(c.Call("GET", "/v1/runs/" + run_id).body);
  EXPECT_EQ(run["status"], "awaiting_approval") << "task b still waits for a person";
  ASSERT_EQ(c.Call("POST", "/v1/tasks/" + held[1] + "/approve", "").status, 200);
  json done = c.WaitFinished(run_id);
  EXPECT_EQ(done["status"], "succeeded") << done.dump(2);
  EXPECT_EQ(done["artifacts"].size(), 1u)
      << "both tasks wrote answer.md: one artifact, two versions";
}

}  // namespace
}  // namespace synaps
