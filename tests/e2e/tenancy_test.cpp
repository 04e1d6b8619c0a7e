// Tenancy and the control registry (docs/security.md), with a real API, worker, PostgreSQL and
// NATS: the hijack of issue #19 (tenant B's operator writes a route matching tenant A that points
// at B's listener) is refused with a clear JSON error and A's prompt never reaches the listener;
// a tenant admin cannot grant more than it holds; the installation scope (keys and JWTs) is the
// one way to write the registry. Outbound requests: stored specs refuse numeric and IPv6-mapped
// metadata addresses for routes and tools, and a key goes only to the hosts it is bound to, so
// even an installation-scoped route cannot ship the worker's key to a listener of its choosing.
// Remote completions meet the same arbiters as the built-in worker's answers.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "auth/jwt.h"
#include "support/cluster.h"
#include "support/fake_openai.h"
#include "support/synaps_process.h"

namespace synaps {
namespace {

using nlohmann::json;
using testing::Cluster;
using testing::FakeOpenAi;

constexpr const char* kJwtSecret = "tenancy-test-secret-of-at-least-32-bytes";

http::Response As(Cluster& c, const std::string& token, const std::string& method,
                  const std::string& path, const json& body = nullptr) {
  return testing::ApiCall(method, c.base_url() + path, token, body.is_null() ? "" : body.dump());
}

json Body(const http::Response& r) { return json::parse(r.body, nullptr, false); }

json Error(const http::Response& r) {
  json j = Body(r);
  return j.is_object() && j.contains("error") ? j["error"] : json::object();
}

std::string Jwt(const std::string& tenant, const std::string& role, bool installation) {
  auto now = std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
  auto claims = auth::NewClaims(tenant, role, "tenancy-test", std::chrono::minutes(10), now);
  claims.installation = installation;
  auto token = auth::Mint(claims, kJwtSecret);
  EXPECT_TRUE(token) << token.error().message;
  return token ? *token : "";
}

class TenancyTest : public ::testing::Test {
 protected:
  TenancyTest()
      : attacker_([](const testing::FakeRequest&, int) {
          return FakeOpenAi::Completion("attacker's answer");
        }),
        c_({{"SYNAPS_JWT_SECRET", kJwtSecret}, {"SYNAPS_RATE_LIMIT_RPS", "0"}}) {}

  void SetUp() override { c_.StartApi(); }

  // A key minted by the bootstrap token.
  json Key(const std::string& tenant, const std::string& role, bool installation = false) {
    json body = {{"tenantId", tenant}, {"role", role}};
    if (installation) body["installation"] = true;
    auto r = As(c_, Cluster::kToken, "POST", "/v1/api-keys", body);
    EXPECT_EQ(r.status, 201) << r.body;
    return Body(r);
  }

  // The route of the issue: match tenant `ta`, first in order, to the attacker's listener.
  json HijackRoute() const {
    return {{"spec",
             {{"match", {{"tenant", "ta"}}},
              {"order", -1000},
              {"provider", "openai-compatible"},
              {"baseUrl", attacker_.base_url()},
              {"model", "x"},
              {"apiKeyEnv", "DEMO_API_KEY"}}},
            {"reason", "maintenance"}};
  }

  int64_t Changes() { return c_.Scalar("SELECT count(*) FROM synaps.control_change"); }

  FakeOpenAi attacker_;
  Cluster c_;
};

TEST_F(TenancyTest, AnotherTenantsOperatorCannotHijackItsTrafficThroughTheRegistry) {
  c_.StartWorker({{"DEMO_API_KEY", "the-workers-demo-key"}});
  std::string a_operator = Key("ta", "operator")["token"];
  std::string b_operator = Key("tb", "operator")["token"];
  std::string b_admin = Key("tb", "admin")["token"];

  for (const auto& token : {b_operator, b_admin, Jwt("tb", "operator", false),
                            Jwt("tb", "admin", false)}) {
    auto put = As(c_, token, "PUT", "/v1/control/routes/zz", HijackRoute());
    EXPECT_EQ(put.status, 403) << put.body;
    EXPECT_EQ(Error(put)["code"], "permission_denied") << put.body;
    EXPECT_NE(Error(put)["message"].get<std::string>().find("installation scope"),
              std::string::npos)
        << put.body;
    EXPECT_EQ(As(c_, token, "DELETE", "/v1/control/routes/default", {{"reason", "x"}}).status,
              403);
    EXPECT_EQ(As(c_, token, "POST", "/v1/control/routes/default/rollback",
                 {{"toVersion", 1}, {"reason", "x"}})
                  .status,
              403);
  }
  EXPECT_EQ(Changes(), 0) << "a refused write writes nothing";
  EXPECT_EQ(As(c_, b_operator, "GET", "/v1/control/routes/zz").status, 404);

  auto submit = As(c_, a_operator, "POST", "/v1/commands/submit",
                   {{"kind", "prompt"}, {"input", {{"text", "tenant A's secret prompt"}}}});
  ASSERT_EQ(submit.status, 201) << submit.body;
  std::string run_id = Body(submit)["runId"];
  ASSERT_TRUE(testing::Eventually([&] {
    auto run = Body(As(c_, a_operator, "GET", "/v1/runs/" + run_id));
    return run.value("status", "") == "succeeded";
  }, 60));
  json run = Body(As(c_, a_operator, "GET", "/v1/runs/" + run_id));
  std::string artifact = run["artifacts"][0]["id"];
  EXPECT_EQ(As(c_, a_operator, "GET", "/v1/artifacts/" + artifact + "/versions/1/content").body,
            "tenant A's secret prompt")
      << "the built-in route answered, not the attacker";
  EXPECT_EQ(attacker_.request_count(), 0) << "A's prompt never reached B's listener";
}

TEST_F(TenancyTest, TheInstallationScopeWritesTheRegistry) {
  json ops = Key("ops", "operator", /*installation=*/true);
  EXPECT_EQ(ops["installation"], true);
  json route = {{"spec", {{"provider", "local"}, {"model", "echo"}}}, {"reason", "by ops"}};
  auto put = As(c_, ops["token"], "PUT", "/v1/control/routes/default", route);
  ASSERT_EQ(put.status, 201) << put.body;
  auto jwt_put = As(c_, Jwt("ops", "operator", true), "PUT", "/v1/control/routes/second", route);
  ASSERT_EQ(jwt_put.status, 201) << jwt_put.body;
  // The scope does not lift the role: an installation viewer still only reads.
  std::string viewer = Key("ops", "viewer", true)["token"];
  EXPECT_EQ(As(c_, viewer, "PUT", "/v1/control/routes/third", route).status, 403);
  EXPECT_EQ(As(c_, viewer, "GET", "/v1/control/routes/default").status, 200);
  EXPECT_EQ(As(c_, Jwt("ops", "viewer", true), "PUT", "/v1/control/routes/third", route).status,
            403);
  EXPECT_EQ(Changes(), 2);
  EXPECT_EQ(c_.Scalar("SELECT count(*) FROM synaps.control_change WHERE actor = $1",
                      {ops["id"].get<std::string>()}),
            1);
}

TEST_F(TenancyTest, ATenantAdminCannotGrantMoreThanItHolds) {
  json b_admin = Key("tb", "admin");
  std::string token = b_admin["token"];

  auto installation = As(c_, token, "POST", "/v1/api-keys",
                         {{"role", "operator"}, {"installation", true}});
  EXPECT_EQ(installation.status, 403) << installation.body;
  EXPECT_EQ(Error(installation)["code"], "permission_denied");
  EXPECT_EQ(Error(installation)["field"], "installation");

  auto other = As(c_, token, "POST", "/v1/api-keys", {{"role", "operator"}, {"tenantId", "ta"}});
  EXPECT_EQ(other.status, 403) << other.body;
  EXPECT_NE(Error(other)["message"].get<std::string>().find("own tenant"), std::string::npos);

  auto jwt_other = As(c_, Jwt("tb", "admin", false), "POST", "/v1/api-keys",
                      {{"role", "admin"}, {"tenantId", "ta"}});
  EXPECT_EQ(jwt_other.status, 403) << jwt_other.body;
  auto jwt_installation = As(c_, Jwt("tb", "admin", false), "POST", "/v1/api-keys",
                             {{"role", "admin"}, {"installation", true}});
  EXPECT_EQ(jwt_installation.status, 403) << jwt_installation.body;
  EXPECT_EQ(c_.Scalar("SELECT count(*) FROM synaps.api_keys WHERE installation"), 0);

  // Inside its tenant it may mint, and the key it mints has no more than it has.
  auto own = As(c_, token, "POST", "/v1/api-keys", {{"role", "operator"}});
  ASSERT_EQ(own.status, 201) << own.body;
  EXPECT_EQ(Body(own)["tenantId"], "tb");
  EXPECT_EQ(Body(own)["installation"], false);
  EXPECT_EQ(As(c_, Body(own)["token"], "PUT", "/v1/control/routes/zz",
               {{"spec", {{"provider", "local"}, {"model", "echo"}}}, {"reason", "x"}})
                .status,
            403);

  // Nor may it revoke another tenant's keys or an installation key, even of its own tenant.
  json a_key = Key("ta", "viewer");
  json b_installation = Key("tb", "admin", true);
  EXPECT_EQ(As(c_, token, "DELETE", "/v1/api-keys/" + a_key["id"].get<std::string>()).status,
            404);
  EXPECT_EQ(
      As(c_, token, "DELETE", "/v1/api-keys/" + b_installation["id"].get<std::string>()).status,
      404);
  EXPECT_EQ(As(c_, a_key["token"], "GET", "/v1/runs").status, 200);
  EXPECT_EQ(As(c_, b_installation["token"], "GET", "/v1/runs").status, 200);

  // An installation admin may grant the scope, and revoke it.
  auto granted = As(c_, b_installation["token"], "POST", "/v1/api-keys",
                    {{"role", "operator"}, {"tenantId", "ops"}, {"installation", true}});
  ASSERT_EQ(granted.status, 201) << granted.body;
  EXPECT_EQ(Body(granted)["installation"], true);
  auto revoke = As(c_, Cluster::kToken, "DELETE",
                   "/v1/api-keys/" + b_installation["id"].get<std::string>());
  EXPECT_EQ(revoke.status, 200) << revoke.body;
  EXPECT_EQ(As(c_, b_installation["token"], "GET", "/v1/runs").status, 401);
}

TEST_F(TenancyTest, StoredSpecsRefuseMetadataInEverySpelling) {
  for (const char* url : {"http://2852039166/v1", "http://[::ffff:169.254.169.254]/v1",
                          "http://0xA9FEA9FE/v1", "http://[::ffff:a9fe:a9fe]/v1",
                          "http://169.254.169.254/v1", "http://metadata.google.internal/v1"}) {
    auto route = As(c_, Cluster::kToken, "PUT", "/v1/control/routes/r",
                    {{"spec", {{"provider", "openai-compatible"}, {"baseUrl", url}, {"model", "m"}}},
                     {"reason", "x"}});
    EXPECT_EQ(route.status, 400) << url << ": " << route.body;
    EXPECT_EQ(Error(route)["field"], "spec.baseUrl") << route.body;
    auto tool = As(c_, Cluster::kToken, "PUT", "/v1/control/tools/t",
                   {{"spec",
                     {{"type", "http"},
                      {"description", "d"},
                      {"parameters", {{"type", "object"}}},
                      {"url", url}}},
                    {"reason", "x"}});
    EXPECT_EQ(tool.status, 400) << url << ": " << tool.body;
    EXPECT_EQ(Error(tool)["field"], "spec.url") << tool.body;
  }
  auto hosts = As(c_, Cluster::kToken, "PUT", "/v1/control/tools/t",
                  {{"spec",
                    {{"type", "http"},
                     {"description", "d"},
                     {"parameters", {{"type", "object"}}},
                     {"url", "https://api.example.com/x"},
                     {"allowHosts", {"api.example.com", "[::ffff:169.254.169.254]"}}}},
                   {"reason", "x"}});
  EXPECT_EQ(hosts.status, 400) << hosts.body;
  EXPECT_EQ(Error(hosts)["field"], "spec.allowHosts[1]") << hosts.body;
  EXPECT_EQ(Changes(), 0);
}

TEST_F(TenancyTest, AKeyGoesOnlyToTheHostsItIsBoundTo) {
  // Even the installation cannot point the worker's key at a listener of its choosing: the
  // worker binds DEMO_API_KEY to no host, so the route fails before anything is sent.
  c_.StartWorker({{"DEMO_API_KEY", "the-workers-demo-key"},
                  {"SYNAPS_PROVIDER_MAX_ATTEMPTS", "1"}});
  auto put = As(c_, Cluster::kToken, "PUT", "/v1/control/routes/zz", HijackRoute());
  ASSERT_EQ(put.status, 201) << put.body;
  std::string a_operator = Key("ta", "operator")["token"];
  auto submit = As(c_, a_operator, "POST", "/v1/commands/submit",
                   {{"kind", "prompt"}, {"input", {{"text", "tenant A's secret prompt"}}}});
  ASSERT_EQ(submit.status, 201) << submit.body;
  std::string run_id = Body(submit)["runId"];
  json run;
  ASSERT_TRUE(testing::Eventually([&] {
    run = Body(As(c_, a_operator, "GET", "/v1/runs/" + run_id));
    return run.value("status", "") == "failed" || run.value("status", "") == "succeeded";
  }, 60));
  EXPECT_EQ(run["status"], "failed") << run.dump();
  EXPECT_NE(run["error"].dump().find("DEMO_API_KEY is bound to no host"), std::string::npos)
      << run["error"].dump();
  EXPECT_EQ(attacker_.request_count(), 0) << "the key never left the worker";
}

TEST_F(TenancyTest, ABoundKeyReachesItsHost) {
  c_.StartWorker({{"DEMO_API_KEY", "the-workers-demo-key"},
                  {"SYNAPS_PROVIDER_KEY_HOSTS",
                   "DEMO_API_KEY=127.0.0.1:" + std::to_string(attacker_.port())}});
  auto put = As(c_, Cluster::kToken, "PUT", "/v1/control/routes/zz", HijackRoute());
  ASSERT_EQ(put.status, 201) << put.body;
  std::string a_operator = Key("ta", "operator")["token"];
  auto submit = As(c_, a_operator, "POST", "/v1/commands/submit",
                   {{"kind", "prompt"}, {"input", {{"text", "hello"}}}});
  ASSERT_EQ(submit.status, 201) << submit.body;
  std::string run_id = Body(submit)["runId"];
  json run;
  ASSERT_TRUE(testing::Eventually([&] {
    run = Body(As(c_, a_operator, "GET", "/v1/runs/" + run_id));
    return run.value("status", "") == "succeeded" || run.value("status", "") == "failed";
  }, 60));
  ASSERT_EQ(run["status"], "succeeded") << run.dump();
  ASSERT_EQ(attacker_.request_count(), 1);
  EXPECT_EQ(attacker_.requests()[0].headers.at("authorization"), "Bearer the-workers-demo-key");
}

// A remote worker (no built-in worker runs) claims ta's task and completes it over HTTP.
class RemoteArbiterTest : public TenancyTest {
 protected:
  void SetUp() override {
    TenancyTest::SetUp();
    a_operator_ = Key("ta", "operator")["token"];
    a_worker_ = Key("ta", "worker")["token"];
  }

  void PutArbiter(const std::string& name, const json& spec) {
    auto r = As(c_, Cluster::kToken, "PUT", "/v1/control/arbiters/" + name,
                {{"spec", spec}, {"reason", "review remote answers"}});
    ASSERT_EQ(r.status, 201) << r.body;
  }

  // Submits as ta, claims as ta's remote worker and completes with `text`; returns the
  // completion's response and the claimed item.
  std::pair<http::Response, json> SubmitClaimComplete(const std::string& text) {
    auto submit = As(c_, a_operator_, "POST", "/v1/commands/submit",
                     {{"kind", "prompt"}, {"input", {{"text", "q"}}}, {"maxAttempts", 1}});
    EXPECT_EQ(submit.status, 201) << submit.body;
    run_id_ = Body(submit)["runId"];
    json items;
    EXPECT_TRUE(testing::Eventually([&] {
      items = Body(As(c_, a_worker_, "POST", "/v1/queue/claim",
                      {{"worker", "remote-1"}, {"leaseSeconds", 60}}))["items"];
      return items.is_array() && items.size() == 1;
    }, 30));
    json item = items.is_array() && !items.empty() ? items[0] : json::object();
    auto done = As(c_, a_worker_, "POST",
                   "/v1/queue/items/" + std::to_string(item.value("itemId", 0)) + "/complete",
                   {{"leaseEpoch", item.value("leaseEpoch", 0)}, {"output", {{"text", text}}}});
    return {done, item};
  }

  json Run() { return Body(As(c_, a_operator_, "GET", "/v1/runs/" + run_id_)); }

  std::string a_operator_, a_worker_, run_id_;
};

TEST_F(RemoteArbiterTest, AnApprovalArbiterHoldsARemoteCompletionUntilAPersonApproves) {
  PutArbiter("review", {{"checks", {{{"type", "approval"}}}}, {"onFail", "hold"}});
  auto [done, item] = SubmitClaimComplete("the remote answer");
  ASSERT_EQ(done.status, 200) << done.body;
  EXPECT_EQ(Body(done)["state"], "held") << done.body;
  EXPECT_EQ(Body(done)["arbiters"][0]["arbiter"], "review");
  json run;
  ASSERT_TRUE(testing::Eventually([&] {
    run = Run();
    return run.value("status", "") == "awaiting_approval";
  }, 30)) << run.dump();
  EXPECT_TRUE(run["artifacts"].empty()) << "nothing is published before approval";

  auto approve = As(c_, a_operator_, "POST",
                    "/v1/tasks/" + item["taskId"].get<std::string>() + "/approve", json::object());
  ASSERT_EQ(approve.status, 200) << approve.body;
  ASSERT_TRUE(testing::Eventually([&] {
    run = Run();
    return run.value("status", "") == "succeeded";
  }, 30)) << run.dump();
}

TEST_F(RemoteArbiterTest, ChecksThatNeedNoModelRunInTheApi) {
  PutArbiter("no-secrets", {{"checks", {{{"type", "regex"}, {"deny", {"(?i)password"}}}}},
                            {"onFail", "fail"}});
  auto [refused, item] = SubmitClaimComplete("the admin password is hunter2");
  ASSERT_EQ(refused.status, 200) << refused.body;
  EXPECT_EQ(Body(refused)["state"], "dead_lettered") << refused.body;
  EXPECT_EQ(Body(refused)["refused"], true);
  EXPECT_NE(Body(refused)["message"].get<std::string>().find("denied pattern"),
            std::string::npos)
      << refused.body;
  json run;
  ASSERT_TRUE(testing::Eventually([&] {
    run = Run();
    return run.value("status", "") == "failed";
  }, 30)) << run.dump();
  EXPECT_TRUE(run["artifacts"].empty());

  auto [passed, second] = SubmitClaimComplete("nothing to hide");
  ASSERT_EQ(passed.status, 200) << passed.body;
  EXPECT_EQ(Body(passed)["state"], "completed") << passed.body;
  EXPECT_EQ(Body(passed)["arbiters"][0]["passed"], true);
}

TEST_F(RemoteArbiterTest, AJudgeCheckHoldsForAPerson) {
  PutArbiter("judged", {{"checks",
                         {{{"type", "judge"},
                           {"route", "judge-model"},
                           {"rubric", "is it polite?"},
                           {"minScore", 0.5}}}},
                        {"onFail", "fail"}});
  auto [done, item] = SubmitClaimComplete("fine, whatever");
  ASSERT_EQ(done.status, 200) << done.body;
  EXPECT_EQ(Body(done)["state"], "held") << done.body;
  json run;
  ASSERT_TRUE(testing::Eventually([&] {
    run = Run();
    return run.value("status", "") == "awaiting_approval";
  }, 30)) << run.dump();
  auto reject = As(c_, a_operator_, "POST",
                   "/v1/tasks/" + item["taskId"].get<std::string>() + "/reject", json::object());
  ASSERT_EQ(reject.status, 200) << reject.body;
  ASSERT_TRUE(testing::Eventually([&] {
    run = Run();
    return run.value("status", "") == "failed";
  }, 30)) << run.dump();
}

}  // namespace
}  // namespace synaps
