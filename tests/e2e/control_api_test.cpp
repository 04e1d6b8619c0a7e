// The control registry through a real `synaps api` process and the real `synaps control` CLI:
// versions, history, snapshots, tombstones and rollback over HTTP; refusals (400 naming the
// field, 403 for viewers, 404, 409, 415) that write nothing; outbox rows published to NATS;
// `synaps control apply` with --dry-run and for real, get, history and rollback.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <condition_variable>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>

#include "bus/nats_bus.h"
#include "control/documents.h"
#include "core/process.h"
#include "support/cluster.h"
#include "support/test_stack.h"

namespace synaps {
namespace {

using nlohmann::json;
using testing::Cluster;

http::Response As(Cluster& c, const std::string& token, const std::string& method,
                  const std::string& path, const std::string& body = {},
                  const std::string& content_type = "application/json") {
  http::RequestOptions req{.method = method, .url = c.base_url() + path};
  if (!token.empty()) req.headers.push_back("Authorization: Bearer " + token);
  if (!body.empty()) req.headers.push_back("Content-Type: " + content_type);
  req.body = body;
  auto r = http::Send(req);
  EXPECT_TRUE(r) << r.error().message;
  return r ? *r : http::Response{};
}

json Body(const http::Response& r) { return json::parse(r.body, nullptr, false); }

std::string Field(const http::Response& r) {
  json j = Body(r);
  return j.is_object() && j.contains("error") ? j["error"].value("field", "") : "";
}

std::string Code(const http::Response& r) {
  json j = Body(r);
  return j.is_object() && j.contains("error") ? j["error"].value("code", "") : "";
}

std::string PutBody(const json& spec, const std::string& reason = "test") {
  return json{{"spec", spec}, {"reason", reason}}.dump();
}

class ControlApiTest : public ::testing::Test {
 protected:
  void SetUp() override { c_.StartApi(); }

  http::Response Call(const std::string& method, const std::string& path,
                      const std::string& body = {}) {
    return As(c_, Cluster::kToken, method, path, body);
  }
  int64_t Changes() { return c_.Scalar("SELECT count(*) FROM synaps.control_change"); }

  json Key(const std::string& role, bool installation = false) {
    auto r = Call("POST", "/v1/api-keys",
                  json{{"tenantId", "acme"}, {"role", role}, {"installation", installation}}.dump());
    EXPECT_EQ(r.status, 201) << r.body;
    return Body(r);
  }

  Cluster c_;
};

TEST_F(ControlApiTest, VersionsHistorySnapshotsTombstonesAndRollback) {
  auto created =
      Call("PUT", "/v1/control/prompts/greet", PutBody({{"template", "Hello {{name}}"}}, "first"));
  ASSERT_EQ(created.status, 201) << created.body;
  json v1 = Body(created);
  EXPECT_EQ(v1["kind"], "prompts");
  EXPECT_EQ(v1["name"], "greet");
  EXPECT_EQ(v1["version"], 1);
  EXPECT_EQ(v1["changed"], true);
  int64_t snap1 = v1["snapshotVersion"];

  auto same = Call("PUT", "/v1/control/prompts/greet", PutBody({{"template", "Hello {{name}}"}}));
  ASSERT_EQ(same.status, 200) << same.body;
  EXPECT_EQ(Body(same)["changed"], false);
  EXPECT_EQ(Body(same)["version"], 1);
  EXPECT_EQ(Changes(), 1) << "an identical spec is no change";

  auto updated =
      Call("PUT", "/v1/control/prompts/greet", PutBody({{"template", "Hi {{name}}!"}}, "shorter"));
  ASSERT_EQ(updated.status, 200) << updated.body;
  EXPECT_EQ(Body(updated)["version"], 2);

  auto route = Call("PUT", "/v1/control/routes/default",
                    PutBody({{"provider", "local"}, {"model", "echo"}}));
  ASSERT_EQ(route.status, 201) << route.body;

  auto current = Body(Call("GET", "/v1/control/prompts/greet"));
  EXPECT_EQ(current["version"], 2);
  EXPECT_EQ(current["spec"]["template"], "Hi {{name}}!");
  EXPECT_EQ(current["actor"], "admin");
  EXPECT_EQ(current["reason"], "shorter");
  EXPECT_EQ(current["deleted"], false);
  auto old = Body(Call("GET", "/v1/control/prompts/greet?version=1"));
  EXPECT_EQ(old["spec"]["template"], "Hello {{name}}");
  EXPECT_EQ(old["changeId"], snap1);

  auto list = Body(Call("GET", "/v1/control/prompts"));
  ASSERT_EQ(list["items"].size(), 1u);
  EXPECT_EQ(list["items"][0]["name"], "greet");
  EXPECT_TRUE(Body(Call("GET", "/v1/control/arbiters"))["items"].empty());

  auto snapshot = Body(Call("GET", "/v1/control/snapshot"));
  EXPECT_EQ(snapshot["items"]["prompts"]["greet"]["version"], 2);
  EXPECT_EQ(snapshot["items"]["routes"]["default"]["spec"]["model"], "echo");
  auto at1 = Body(Call("GET", "/v1/control/snapshot?version=" + std::to_string(snap1)));
  EXPECT_EQ(at1["version"], snap1);
  EXPECT_EQ(at1["items"]["prompts"]["greet"]["spec"]["template"], "Hello {{name}}");
  EXPECT_TRUE(at1["items"]["routes"].empty());

  // Delete with the reason in the query string: a tombstone version.
  auto del = Call("DELETE", "/v1/control/prompts/greet?reason=no%20longer%20used");
  ASSERT_EQ(del.status, 200) << del.body;
  EXPECT_EQ(Body(del)["version"], 3);
  EXPECT_EQ(Body(del)["deleted"], true);
  auto gone = Call("GET", "/v1/control/prompts/greet");
  EXPECT_EQ(gone.status, 404);
  EXPECT_EQ(Body(Call("GET", "/v1/control/prompts/greet?version=3"))["reason"], "no longer used");
  EXPECT_FALSE(Body(Call("GET", "/v1/control/snapshot"))["items"]["prompts"].contains("greet"));

  // Rollback restores version 1's spec as version 4.
  auto rb = Call("POST", "/v1/control/prompts/greet/rollback",
                 json{{"toVersion", 1}, {"reason", "bring it back"}}.dump());
  ASSERT_EQ(rb.status, 200) << rb.body;
  EXPECT_EQ(Body(rb)["version"], 4);
  EXPECT_EQ(Body(rb)["rolledBackTo"], 1);
  EXPECT_EQ(Body(Call("GET", "/v1/control/prompts/greet"))["spec"]["template"], "Hello {{name}}");
  EXPECT_EQ(Body(Call("GET", "/v1/control/prompts/greet"))["action"], "rollback");

  // The audit log: newest first, filtered, paged.
  auto changes = Body(Call("GET", "/v1/control/changes?kind=prompts&name=greet"));
  ASSERT_EQ(changes["items"].size(), 4u);
  EXPECT_EQ(changes["items"][0]["action"], "rollback");
  EXPECT_EQ(changes["items"][1]["action"], "delete");
  EXPECT_EQ(changes["items"][3]["reason"], "first");
  auto page1 = Body(Call("GET", "/v1/control/changes?limit=2"));
  ASSERT_EQ(page1["items"].size(), 2u);
  ASSERT_TRUE(page1.contains("nextCursor"));
  auto page2 = Body(
      Call("GET", "/v1/control/changes?limit=2&cursor=" + page1["nextCursor"].get<std::string>()));
  ASSERT_EQ(page2["items"].size(), 2u);
  auto page3 = Body(
      Call("GET", "/v1/control/changes?limit=2&cursor=" + page2["nextCursor"].get<std::string>()));
  ASSERT_EQ(page3["items"].size(), 1u);
  EXPECT_FALSE(page3.contains("nextCursor"));
  EXPECT_EQ(Body(Call("GET", "/v1/control/changes?actor=admin"))["items"].size(), 5u);
  EXPECT_TRUE(Body(Call("GET", "/v1/control/changes?actor=nobody"))["items"].empty());

  // Every change reached NATS through the relay, which deletes a row once JetStream has it.
  c_.WaitForCount("SELECT count(*) FROM synaps.outbox WHERE subject LIKE 'synaps.ctrl.%'", 0);
}

TEST_F(ControlApiTest, RefusalsNameTheProblemAndWriteNothing) {
  struct Case {
    std::string method, path, body;
    int status;
    std::string field;
  };
  const json tool_params = {{"type", "object"}};
  std::vector<Case> cases = {
      {"PUT", "/v1/control/prompts/p", PutBody(json::object()), 400, "spec.template"},
      {"PUT", "/v1/control/prompts/p", PutBody({{"template", "Hi {{ na me }}"}}), 400,
       "spec.template"},
      {"PUT", "/v1/control/routes/r",
       PutBody({{"provider", "openai"}, {"model", "m"}, {"weight", 5000}}), 400, "spec.weight"},
      {"PUT", "/v1/control/tools/t",
       PutBody({{"type", "http"},
                {"description", "d"},
                {"parameters", tool_params},
                {"url", "http://169.254.169.254/latest/meta-data"}}),
       400, "spec.url"},
      {"PUT", "/v1/control/arbiters/a",
       PutBody({{"checks", {{{"type", "regex"}, {"deny", {"(unclosed"}}}}}, {"onFail", "fail"}}),
       400, "spec.checks[0].deny[0]"},
      {"PUT", "/v1/control/prompts/p", json{{"spec", {{"template", "x"}}}}.dump(), 400, "reason"},
      {"PUT", "/v1/control/prompts/p", json{{"spec", {{"template", "x"}}}, {"reason", ""}}.dump(),
       400, "reason"},
      {"PUT", "/v1/control/prompts/p", json{{"reason", "r"}}.dump(), 400, "spec"},
      {"PUT", "/v1/control/prompts/p",
       json{{"spec", {{"template", "x"}}}, {"reason", "r"}, {"author", "me"}}.dump(), 400,
       "author"},
      {"PUT", "/v1/control/prompts/Bad_Name", PutBody({{"template", "x"}}), 400, "name"},
      {"PUT", "/v1/control/prompts/p", "{not json", 400, "body"},
      {"PUT", "/v1/control/widgets/p", PutBody({{"template", "x"}}), 404, ""},
      {"GET", "/v1/control/widgets", "", 404, ""},
      {"GET", "/v1/control/prompts/missing", "", 404, ""},
      {"GET", "/v1/control/prompts/missing?version=abc", "", 400, "version"},
      {"GET", "/v1/control/prompts?color=red", "", 400, "color"},
      {"GET", "/v1/control/snapshot?version=99", "", 404, ""},
      {"GET", "/v1/control/snapshot?version=-1", "", 400, "version"},
      {"GET", "/v1/control/changes?kind=widgets", "", 400, "kind"},
      {"GET", "/v1/control/changes?limit=0", "", 400, "limit"},
      {"GET", "/v1/control/changes?cursor=x", "", 400, "cursor"},
      {"DELETE", "/v1/control/prompts/missing?reason=x", "", 404, ""},
      {"DELETE", "/v1/control/prompts/missing", "", 400, "reason"},
      {"POST", "/v1/control/prompts/missing/rollback",
       json{{"toVersion", 1}, {"reason", "r"}}.dump(), 404, "toVersion"},
      {"POST", "/v1/control/prompts/missing/rollback",
       json{{"toVersion", 0}, {"reason", "r"}}.dump(), 400, "toVersion"},
      {"POST", "/v1/control/prompts/missing/rollback", json{{"toVersion", 1}}.dump(), 400,
       "reason"},
  };
  for (const auto& c : cases) {
    auto r = Call(c.method, c.path, c.body);
    EXPECT_EQ(r.status, c.status) << c.method << " " << c.path << " " << c.body << "\n" << r.body;
    EXPECT_EQ(Field(r), c.field) << c.method << " " << c.path << "\n" << r.body;
  }
  auto wrong_type = As(c_, Cluster::kToken, "PUT", "/v1/control/prompts/p",
                       PutBody({{"template", "x"}}), "text/yaml");
  EXPECT_EQ(wrong_type.status, 415);
  EXPECT_EQ(Changes(), 0);

  // The error message says what is wrong with the field.
  auto bad = Call("PUT", "/v1/control/routes/r",
                  PutBody({{"provider", "openai"}, {"model", "m"}, {"apiKeyEnv", "sk-abc"}}));
  EXPECT_EQ(Body(bad)["error"]["message"],
            "spec.apiKeyEnv: must be an environment variable name ending in _API_KEY (the key "
            "itself is never stored in the registry)");

  // Rolling back to a tombstone is a conflict.
  ASSERT_EQ(Call("PUT", "/v1/control/prompts/p", PutBody({{"template", "x"}})).status, 201);
  ASSERT_EQ(Call("DELETE", "/v1/control/prompts/p", json{{"reason", "gone"}}.dump()).status, 200);
  auto tomb = Call("POST", "/v1/control/prompts/p/rollback",
                   json{{"toVersion", 2}, {"reason", "r"}}.dump());
  EXPECT_EQ(tomb.status, 409) << tomb.body;
  EXPECT_EQ(Call("DELETE", "/v1/control/prompts/p", json{{"reason", "again"}}.dump()).status, 404);
}

TEST_F(ControlApiTest, ViewersReadInstallationOperatorsWriteAsThemselves) {
  std::string viewer = Key("viewer")["token"];
  json operator_key = Key("operator", /*installation=*/true);
  std::string op = operator_key["token"];
  std::string worker = Key("worker")["token"];
  std::string tenant_operator = Key("operator")["token"];

  auto denied = As(c_, viewer, "PUT", "/v1/control/prompts/p", PutBody({{"template", "x"}}));
  EXPECT_EQ(denied.status, 403);
  EXPECT_EQ(Code(denied), "permission_denied");
  EXPECT_EQ(As(c_, worker, "PUT", "/v1/control/prompts/p", PutBody({{"template", "x"}})).status,
            403);
  EXPECT_EQ(As(c_, "", "GET", "/v1/control/snapshot").status, 401);
  // The registry steers every tenant: a tenant's operator may not write it (docs/security.md).
  auto tenant_only =
      As(c_, tenant_operator, "PUT", "/v1/control/prompts/p", PutBody({{"template", "x"}}));
  EXPECT_EQ(tenant_only.status, 403) << tenant_only.body;
  EXPECT_EQ(Code(tenant_only), "permission_denied");
  EXPECT_EQ(Changes(), 0);

  auto put = As(c_, op, "PUT", "/v1/control/prompts/p", PutBody({{"template", "x"}}, "operator"));
  ASSERT_EQ(put.status, 201) << put.body;
  EXPECT_EQ(As(c_, viewer, "DELETE", "/v1/control/prompts/p?reason=x").status, 403);
  EXPECT_EQ(As(c_, viewer, "POST", "/v1/control/prompts/p/rollback",
               json{{"toVersion", 1}, {"reason", "r"}}.dump())
                .status,
            403);

  // Reads are open to every authenticated role; the registry is installation-wide.
  for (const auto& token : {viewer, worker, op, tenant_operator}) {
    EXPECT_EQ(As(c_, token, "GET", "/v1/control/prompts/p").status, 200);
    EXPECT_EQ(As(c_, token, "GET", "/v1/control/snapshot").status, 200);
    EXPECT_EQ(As(c_, token, "GET", "/v1/control/changes").status, 200);
  }
  json change = Body(As(c_, viewer, "GET", "/v1/control/changes"))["items"][0];
  EXPECT_EQ(change["actor"], operator_key["id"]);
  EXPECT_EQ(change["actorTenant"], "acme");
  EXPECT_EQ(change["reason"], "operator");
}

TEST_F(ControlApiTest, EveryChangeIsAnnouncedOnNats) {
  bus::NatsBus bus({.url = testing::TestStack::Get().nats().Url(), .name = "control-e2e"});
  ASSERT_TRUE(testing::Eventually([&] { return bus.connected(); }));
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::pair<std::string, json>> got;  // guarded by mu
  auto sub =
      bus.Subscribe("synaps.ctrl.>", [&](const std::string& subject, const std::string& payload) {
        std::lock_guard lock(mu);
        got.emplace_back(subject, json::parse(payload, nullptr, false));
        cv.notify_all();
        return Ok();
      });
  ASSERT_TRUE(sub) << sub.error().message;

  auto put = Call("PUT", "/v1/control/routes/announced",
                  PutBody({{"provider", "local"}, {"model", "echo"}}));
  ASSERT_EQ(put.status, 201) << put.body;
  auto del = Call("DELETE", "/v1/control/routes/announced?reason=done");
  ASSERT_EQ(del.status, 200) << del.body;

  std::unique_lock lock(mu);
  // Delivery is at least once (docs/architecture.md): a notice may arrive twice; each version
  // must arrive, in order of first arrival.
  auto mine = [&] {
    std::vector<json> out;
    for (const auto& [subject, payload] : got) {
      if (subject == "synaps.ctrl.routes" && payload.value("name", "") == "announced" &&
          (out.empty() || out.back() != payload)) {
        out.push_back(payload);
      }
    }
    return out;
  };
  ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(30), [&] { return mine().size() >= 2; }));
  auto messages = mine();
  EXPECT_EQ(messages[0], (json{{"kind", "routes"},
                               {"name", "announced"},
                               {"version", 1},
                               {"snapshotVersion", Body(put)["snapshotVersion"]}}));
  EXPECT_EQ(messages[1]["version"], 2);
  EXPECT_EQ(messages[1]["snapshotVersion"], Body(del)["snapshotVersion"]);
}

struct CliResult {
  int exit_code = -1;
  std::string output;
};

class ControlCliTest : public ControlApiTest {
 protected:
  CliResult Run(const std::vector<std::string>& args) {
    std::string log = dir_ + "/cli" + std::to_string(++runs_) + ".log";
    ProcessOptions options;
    options.argv = {SYNAPS_BINARY};
    options.argv.insert(options.argv.end(), args.begin(), args.end());
    options.env = {{"SYNAPS_API_URL", c_.base_url()},
                   {"SYNAPS_TOKEN", Cluster::kToken},
                   {"SYNAPS_STATE_DIR", dir_}};
    options.log_path = log;
    auto child = ChildProcess::Spawn(options);
    EXPECT_TRUE(child) << child.error().message;
    if (!child) return {};
    auto status = child->Wait(std::chrono::seconds(30));
    EXPECT_TRUE(status) << "synaps did not exit";
    CliResult r;
    if (status && WIFEXITED(*status)) r.exit_code = WEXITSTATUS(*status);
    r.output = testing::ReadFile(log);
    return r;
  }

  std::string Write(const std::string& name, const std::string& text) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }

  std::string dir_ = testing::TestStack::Get().TempDir("control-cli");
  int runs_ = 0;
};

const char* kFile = R"(# The registry as code.
kind: prompts
name: greet
spec:
  template: |
    Hello {{name}},
    welcome to {{place}}.
  description: greeting
---
kind: routes
name: default
spec:
  provider: local
  model: echo
  params: {temperature: 0}
---
kind: skills
name: ops
reason: the ops bundle
spec:
  system: You operate the cluster.
  tools: [k8s.pods]
  route: default
)";

TEST_F(ControlCliTest, ApplyDryRunThenForRealThenDiff) {
  std::string file = Write("registry.yaml", kFile);
  auto dry = Run({"control", "apply", "-f", file, "--dry-run"});
  ASSERT_EQ(dry.exit_code, 0) << dry.output;
  EXPECT_NE(dry.output.find("would create prompts/greet"), std::string::npos) << dry.output;
  EXPECT_NE(dry.output.find("    +   Hello {{name}},"), std::string::npos) << dry.output;
  EXPECT_NE(dry.output.find("would create skills/ops"), std::string::npos) << dry.output;
  EXPECT_NE(dry.output.find("warning: skills/ops refers to tools/k8s.pods, which does not exist"),
            std::string::npos)
      << dry.output;
  EXPECT_EQ(Changes(), 0) << "--dry-run changes nothing";

  auto applied = Run({"control", "apply", "-f", file, "--reason", "initial import"});
  ASSERT_EQ(applied.exit_code, 0) << applied.output;
  EXPECT_NE(applied.output.find("created prompts/greet (version 1"), std::string::npos)
      << applied.output;
  EXPECT_NE(applied.output.find("created routes/default (version 1"), std::string::npos);
  EXPECT_EQ(Changes(), 3);
  EXPECT_EQ(c_.Scalar("SELECT count(*) FROM synaps.control_change WHERE reason = 'initial import'"),
            2);
  EXPECT_EQ(c_.Scalar("SELECT count(*) FROM synaps.control_change WHERE reason = 'the ops bundle'"),
            1);
  auto greet = Body(Call("GET", "/v1/control/prompts/greet"));
  EXPECT_EQ(greet["spec"]["template"], "Hello {{name}},\nwelcome to {{place}}.\n");
  EXPECT_EQ(Body(Call("GET", "/v1/control/routes/default"))["spec"]["params"]["temperature"], 0);

  // Change one document: the dry run shows a diff for it and "unchanged" for the others.
  std::string changed = kFile;
  changed.replace(changed.find("model: echo"), 11, "model: reverse");
  std::string file2 = Write("registry2.yaml", changed);
  auto diff = Run({"control", "apply", "-f", file2, "--dry-run"});
  ASSERT_EQ(diff.exit_code, 0) << diff.output;
  EXPECT_NE(diff.output.find("unchanged prompts/greet (version 1)"), std::string::npos)
      << diff.output;
  EXPECT_NE(diff.output.find("would update routes/default (version 1)"), std::string::npos)
      << diff.output;
  EXPECT_NE(diff.output.find("- model: echo"), std::string::npos) << diff.output;
  EXPECT_NE(diff.output.find("+ model: reverse"), std::string::npos) << diff.output;
  EXPECT_EQ(Changes(), 3);

  auto json_dry = Run({"control", "apply", "-f", file2, "--dry-run", "--json"});
  ASSERT_EQ(json_dry.exit_code, 0) << json_dry.output;
  json plan = json::parse(json_dry.output);
  EXPECT_EQ(plan["dryRun"], true);
  EXPECT_EQ(plan["items"][0]["action"], "unchanged");
  EXPECT_EQ(plan["items"][1]["action"], "update");

  auto second = Run({"control", "apply", "-f", file2});
  ASSERT_EQ(second.exit_code, 0) << second.output;
  EXPECT_NE(second.output.find("updated routes/default (version 2"), std::string::npos)
      << second.output;
  EXPECT_NE(second.output.find("unchanged skills/ops (version 1)"), std::string::npos)
      << second.output;
  EXPECT_EQ(Changes(), 4);
}

TEST_F(ControlCliTest, AnInvalidFileAppliesNothing) {
  std::string file = Write("bad.yaml", std::string(kFile) +
                                           "---\nkind: arbiters\nname: strict\nspec:\n"
                                           "  checks: [{type: judge, route: default, rubric: r, "
                                           "minScore: 8}]\n  onFail: retry\n");
  auto r = Run({"control", "apply", "-f", file});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(
      r.output.find("document 4 (arbiters/strict): spec.checks[0].minScore: must be within 0..1"),
      std::string::npos)
      << r.output;
  EXPECT_EQ(Changes(), 0);
}

TEST_F(ControlCliTest, GetHistoryRollbackAndDelete) {
  ASSERT_EQ(Run({"control", "apply", "-f", Write("a.yaml", kFile)}).exit_code, 0);
  std::string v2 = kFile;
  v2.replace(v2.find("welcome to"), 10, "greetings from");
  ASSERT_EQ(Run({"control", "apply", "-f", Write("b.yaml", v2), "--reason", "reword"}).exit_code,
            0);

  // `get` prints a document that apply takes back unchanged.
  auto got = Run({"control", "get", "prompts", "greet"});
  ASSERT_EQ(got.exit_code, 0) << got.output;
  EXPECT_NE(got.output.find("# prompts/greet version 2"), std::string::npos) << got.output;
  EXPECT_NE(got.output.find("# reason: reword"), std::string::npos) << got.output;
  auto docs = control::ParseDocuments(got.output);
  ASSERT_TRUE(docs) << docs.error().message << "\n" << got.output;
  ASSERT_EQ(docs->size(), 1u);
  EXPECT_EQ((*docs)[0].spec, Body(Call("GET", "/v1/control/prompts/greet"))["spec"]);
  auto again = Run({"control", "apply", "-f", Write("c.yaml", got.output)});
  EXPECT_NE(again.output.find("unchanged prompts/greet (version 2)"), std::string::npos)
      << again.output;

  auto list = Run({"control", "get", "prompts"});
  ASSERT_EQ(list.exit_code, 0);
  EXPECT_NE(list.output.find("greet"), std::string::npos);
  auto old = Run({"control", "get", "prompts", "greet", "--version", "1", "--json"});
  ASSERT_EQ(old.exit_code, 0) << old.output;
  EXPECT_EQ(json::parse(old.output)["spec"]["template"],
            "Hello {{name}},\nwelcome to {{place}}.\n");

  auto history = Run({"control", "history", "--kind", "prompts"});
  ASSERT_EQ(history.exit_code, 0) << history.output;
  EXPECT_NE(history.output.find("prompts/greet"), std::string::npos) << history.output;
  EXPECT_NE(history.output.find("reword"), std::string::npos) << history.output;
  auto history_json = Run({"control", "history", "--name", "greet", "--json"});
  ASSERT_EQ(history_json.exit_code, 0) << history_json.output;
  EXPECT_EQ(json::parse(history_json.output)["items"].size(), 2u);

  auto rb =
      Run({"control", "rollback", "prompts", "greet", "--to", "1", "--reason", "revert wording"});
  ASSERT_EQ(rb.exit_code, 0) << rb.output;
  EXPECT_NE(rb.output.find("rolled back prompts/greet to version 1: now version 3"),
            std::string::npos)
      << rb.output;
  EXPECT_EQ(Body(Call("GET", "/v1/control/prompts/greet"))["spec"]["template"],
            "Hello {{name}},\nwelcome to {{place}}.\n");
  auto missing_reason = Run({"control", "rollback", "prompts", "greet", "--to", "1"});
  EXPECT_NE(missing_reason.exit_code, 0);

  auto del = Run({"control", "delete", "skills", "ops", "--reason", "unused"});
  ASSERT_EQ(del.exit_code, 0) << del.output;
  auto gone = Run({"control", "get", "skills", "ops"});
  EXPECT_EQ(gone.exit_code, 1);
  EXPECT_NE(gone.output.find("was deleted in version 2"), std::string::npos) << gone.output;

  auto snap = Run({"control", "snapshot"});
  ASSERT_EQ(snap.exit_code, 0) << snap.output;
  EXPECT_NE(snap.output.find("greet"), std::string::npos) << snap.output;
}

}  // namespace
}  // namespace synaps
