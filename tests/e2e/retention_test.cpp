// Retention through the API and the CLI (docs/history.md): who may read and change it, that a
// change is audited, the keep flag, and `synaps expire` against the same database.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <nlohmann/json.hpp>

#include "core/process.h"
#include "support/cluster.h"
#include "support/synaps_process.h"
#include "support/test_stack.h"

namespace synaps {
namespace {

using nlohmann::json;
using testing::Cluster;

http::Response As(Cluster& c, const std::string& token, const std::string& method,
                  const std::string& path, const json& body = nullptr) {
  return testing::ApiCall(method, c.base_url() + path, token, body.is_null() ? "" : body.dump());
}

json Body(const http::Response& r) { return json::parse(r.body, nullptr, false); }

TEST(RetentionApiTest, ReadChangeAuditKeepAndExpire) {
  Cluster c({{"SYNAPS_RATE_LIMIT_RPS", "0"}, {"SYNAPS_EXPIRY_SECONDS", "0"}});
  c.StartApi();
  auto key = [&](const std::string& role) {
    auto r = As(c, Cluster::kToken, "POST", "/v1/api-keys", {{"tenantId", "acme"}, {"role", role}});
    EXPECT_EQ(r.status, 201) << r.body;
    return Body(r)["token"].get<std::string>();
  };
  const std::string admin = key("admin"), viewer = key("viewer"), operator_ = key("operator");

  // The installation sets the default; a tenant reads it as its own until it sets its own.
  auto set = As(c, Cluster::kToken, "PUT", "/v1/retention?tenant=*",
                {{"retentionDays", 30}, {"reason", "policy"}});
  ASSERT_EQ(set.status, 200) << set.body;
  auto got = As(c, viewer, "GET", "/v1/retention");
  ASSERT_EQ(got.status, 200) << got.body;
  EXPECT_EQ(Body(got)["retentionDays"], 30);
  EXPECT_EQ(Body(got)["source"], "default");
  // A viewer may not change it, a tenant admin may not touch the default or another tenant.
  EXPECT_EQ(As(c, viewer, "PUT", "/v1/retention", {{"retentionDays", 7}}).status, 403);
  EXPECT_EQ(As(c, admin, "PUT", "/v1/retention?tenant=*", {{"retentionDays", 7}}).status, 403);
  EXPECT_EQ(As(c, admin, "GET", "/v1/retention?tenant=other").status, 403);
  EXPECT_EQ(As(c, admin, "PUT", "/v1/retention", {{"retentionDays", 0}}).status, 400);
  EXPECT_EQ(As(c, admin, "PUT", "/v1/retention", {{"days", 7}}).status, 400);
  auto own = As(c, admin, "PUT", "/v1/retention", {{"retentionDays", 7}, {"archive", false}});
  ASSERT_EQ(own.status, 200) << own.body;
  EXPECT_EQ(Body(own)["source"], "tenant");
  auto forever = As(c, admin, "PUT", "/v1/retention", {{"retentionDays", nullptr}});
  ASSERT_EQ(forever.status, 200) << forever.body;
  EXPECT_TRUE(Body(forever)["retentionDays"].is_null());
  auto cleared = As(c, admin, "DELETE", "/v1/retention");
  ASSERT_EQ(cleared.status, 200) << cleared.body;
  EXPECT_EQ(Body(cleared)["retentionDays"], 30);
  EXPECT_EQ(c.Scalar("SELECT count(*) FROM synaps.audit_log WHERE action LIKE 'retention.%'"), 4);

  // Keep: an operator of the tenant keeps a run and releases it; an unknown run is 404.
  auto run = As(c, operator_, "POST", "/v1/commands/submit",
                {{"kind", "prompt"}, {"input", {{"text", "x"}}}});
  ASSERT_EQ(run.status, 201) << run.body;
  const std::string run_id = Body(run)["runId"];
  auto kept = As(c, operator_, "POST", "/v1/runs/" + run_id + "/keep", json::object());
  ASSERT_EQ(kept.status, 200) << kept.body;
  EXPECT_EQ(c.Scalar("SELECT count(*) FROM synaps.runs WHERE keep"), 1);
  EXPECT_EQ(As(c, viewer, "POST", "/v1/runs/" + run_id + "/keep", json::object()).status, 403);
  EXPECT_EQ(As(c, operator_, "POST", "/v1/runs/" + run_id + "/keep", {{"keep", false}}).status,
            200);
  EXPECT_EQ(c.Scalar("SELECT count(*) FROM synaps.runs WHERE keep"), 0);
  EXPECT_EQ(
      As(c, operator_, "POST", "/v1/runs/00000000-0000-7000-8000-000000000000/keep", json::object())
          .status,
      404);

  // synaps expire against the database: the run is not finished, nothing goes.
  ProcessOptions opts;
  opts.argv = {SYNAPS_BINARY, "expire", "--json", "--database-url", c.database_url()};
  opts.log_path = testing::TestStack::Get().TempDir("expire") + "/out.log";
  auto child = ChildProcess::Spawn(opts);
  ASSERT_TRUE(child) << child.error().message;
  auto status = child->Wait(std::chrono::seconds(120));
  ASSERT_TRUE(status) << "synaps expire did not finish";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
  std::string output = testing::ReadFile(opts.log_path);
  std::string last = output.substr(0, output.find_last_not_of('\n') + 1);
  last = last.substr(last.rfind('\n') + 1);
  auto report = json::parse(last, nullptr, false);
  ASSERT_TRUE(report.is_object()) << output;
  EXPECT_EQ(report["total"]["runs"], 0) << output;
  EXPECT_EQ(report["busy"], false) << output;
}

}  // namespace
}  // namespace synaps
