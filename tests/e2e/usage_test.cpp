// Usage and cost (GET /v1/usage, docs/observability.md "Usage and cost") with a real API,
// worker, PostgreSQL and NATS. The built-in `local` provider counts words as tokens, so the
// token counts are known; a route's pricing gives the cost. Checked: the numbers match the
// ledger, before and after the rollup folds events into synaps.usage_daily (never twice), a
// hostile event cannot stop the rollup, one tenant never sees another's usage, bad queries get
// clear JSON errors, and the worker's Prometheus counters carry tokens and cost.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "auth/jwt.h"
#include "core/process.h"
#include "support/cluster.h"
#include "support/synaps_process.h"

namespace synaps {
namespace {

using nlohmann::json;
using testing::Cluster;

constexpr const char* kJwtSecret = "usage-test-secret-of-at-least-32-bytes!";

std::string Jwt(const std::string& tenant, const std::string& role, bool installation) {
  auto now = std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
  auto claims = auth::NewClaims(tenant, role, "usage-test", std::chrono::minutes(10), now);
  claims.installation = installation;
  auto token = auth::Mint(claims, kJwtSecret);
  EXPECT_TRUE(token) << token.error().message;
  return token ? *token : "";
}

http::Response As(Cluster& c, const std::string& token, const std::string& path) {
  return testing::ApiCall("GET", c.base_url() + path, token, "");
}

json Usage(Cluster& c, const std::string& query) {
  auto r = c.Call("GET", "/v1/usage" + query);
  EXPECT_EQ(r.status, 200) << r.body;
  return json::parse(r.body, nullptr, false);
}

// The row of `usage` whose dimensions equal `match`; null when none.
json Row(const json& usage, const json& match) {
  for (const auto& row : usage["rows"]) {
    bool all = true;
    for (const auto& [k, v] : match.items()) all = all && row.value(k, json()) == v;
    if (all) return row;
  }
  return json();
}

class UsageTest : public ::testing::Test {
 protected:
  // No background rollup: the tests run the rollup themselves, and a concurrent pass would
  // hold the cursor's lock (SKIP LOCKED) at the moment they call it.
  UsageTest()
      : c_({{"SYNAPS_JWT_SECRET", kJwtSecret},
            {"SYNAPS_RATE_LIMIT_RPS", "0"},
            {"SYNAPS_USAGE_ROLLUP_SECONDS", "0"}}) {}

  void SetUp() override {
    c_.StartApi();
    auto port = PickFreePort();
    ASSERT_TRUE(port);
    probes_ = *port;
    c_.StartWorker({{"SYNAPS_WORKER_LISTEN", "127.0.0.1:" + std::to_string(probes_)}});
    // $1 per prompt token and $2 per completion token: costs are whole numbers.
    auto put = c_.Call("PUT", "/v1/control/routes/priced",
                       json{{"spec",
                             {{"provider", "local"},
                              {"model", "echo"},
                              {"params",
                               {{"pricing",
                                 {{"promptPerMillion", 1000000},
                                  {"completionPerMillion", 2000000}}}}}}},
                            {"reason", "usage test"}}
                           .dump());
    ASSERT_EQ(put.status / 100, 2) << put.body;
  }

  json Run(const json& command) {
    json created = c_.Submit(command);
    return c_.WaitFinished(created["runId"]);
  }

  // Sums of the task.completed events' usage over `runs`, as the ledger has them.
  static json LedgerSums(const std::vector<json>& runs) {
    int64_t prompt = 0, completion = 0;
    for (const auto& run : runs) {
      for (const auto& e : run["events"]) {
        if (e["type"] != "task.completed") continue;
        prompt += e["data"]["usage"]["promptTokens"].get<int64_t>();
        completion += e["data"]["usage"]["completionTokens"].get<int64_t>();
      }
    }
    return {{"promptTokens", prompt}, {"completionTokens", completion}};
  }

  Cluster c_;
  uint16_t probes_ = 0;
};

TEST_F(UsageTest, MatchesTheLedgerBeforeAndAfterTheRollup) {
  std::vector<json> priced;
  for (int i = 0; i < 3; ++i) {
    priced.push_back(Run({{"kind", "prompt"},
                          {"input", {{"text", "alpha beta gamma"}}},
                          {"route", "priced"}}));
    ASSERT_EQ(priced.back()["status"], "succeeded") << priced.back().dump();
  }
  auto free = c_.Call("PUT", "/v1/control/routes/free",
                      json{{"spec", {{"provider", "local"}, {"model", "echo"}}}, {"reason", "t"}}
                          .dump());
  ASSERT_EQ(free.status / 100, 2) << free.body;
  json unpriced = Run({{"kind", "prompt"}, {"input", {{"text", "one two"}}}, {"route", "free"}});
  ASSERT_EQ(unpriced["status"], "succeeded") << unpriced.dump();
  // A prompt with a variable missing fails: an error, with no tokens.
  auto put = c_.Call("PUT", "/v1/control/prompts/greet",
                     json{{"spec", {{"template", "Hello {{name}}!"}}}, {"reason", "t"}}.dump());
  ASSERT_EQ(put.status / 100, 2) << put.body;
  json failed = Run({{"kind", "prompt"}, {"prompt", "greet"}, {"route", "priced"}});
  ASSERT_EQ(failed["status"], "failed") << failed.dump();

  json sums = LedgerSums(priced);
  json usage = Usage(c_, "?groupBy=route,model");
  json row = Row(usage, {{"route", "priced"}, {"model", "echo"}});
  ASSERT_FALSE(row.is_null()) << usage.dump(2);
  EXPECT_EQ(row["succeeded"], 3);
  EXPECT_EQ(row["completionTokens"], 9) << "echo answers three words, three times";
  EXPECT_EQ(row["promptTokens"], sums["promptTokens"]);
  EXPECT_EQ(row["completionTokens"], sums["completionTokens"]);
  EXPECT_DOUBLE_EQ(row["costUsd"].get<double>(),
                   sums["promptTokens"].get<double>() + 2 * sums["completionTokens"].get<double>());
  EXPECT_EQ(row["unpricedTasks"], 0);
  EXPECT_GE(row["providerCalls"].get<int64_t>(), 3);
  EXPECT_GE(usage["totals"]["errors"].get<int64_t>(), 1) << usage.dump(2);
  EXPECT_EQ(usage["totals"]["succeeded"], 4);
  EXPECT_EQ(usage["totals"]["unpricedTasks"], 1) << "route free names no pricing";
  EXPECT_EQ(Row(usage, {{"route", "free"}})["unpricedTasks"], 1);
  EXPECT_EQ(usage["groupBy"], json({"route", "model"}));

  // Folding every event into usage_daily changes nothing a client reads.
  EXPECT_GT(c_.Scalar("SELECT synaps.roll_up_usage(interval '0 seconds')"), 0);
  EXPECT_GT(c_.Scalar("SELECT count(*) FROM synaps.usage_daily"), 0);
  json after = Usage(c_, "?groupBy=route,model");
  EXPECT_EQ(after["rows"], usage["rows"]) << after.dump(2);
  EXPECT_EQ(after["totals"], usage["totals"]);

  // Events past the cursor add to the rolled-up days.
  priced.push_back(Run({{"kind", "prompt"}, {"input", {{"text", "delta"}}}, {"route", "priced"}}));
  json more = Usage(c_, "?groupBy=route");
  EXPECT_EQ(Row(more, {{"route", "priced"}})["succeeded"], 4) << more.dump(2);
  EXPECT_EQ(Row(more, {{"route", "priced"}})["completionTokens"], 10);

  // Everything grouped: one row per tenant, day, route, model and skill; today's date.
  json all = Usage(c_, "");
  EXPECT_EQ(all["groupBy"], json({"tenant", "day", "route", "model", "skill"}));
  ASSERT_FALSE(all["rows"].empty());
  EXPECT_EQ(all["rows"][0]["tenant"], "default");
  EXPECT_EQ(all["rows"][0]["day"], all["to"]);
  json totals_only = Usage(c_, "?groupBy=");
  ASSERT_EQ(totals_only["rows"].size(), 1u);
  EXPECT_EQ(totals_only["rows"][0]["tasks"], all["totals"]["tasks"]);
}

TEST_F(UsageTest, AHostileEventCountsAsZeroAndDoesNotStopTheRollup) {
  json run = Run({{"kind", "prompt"}, {"input", {{"text", "a b"}}}, {"route", "priced"}});
  ASSERT_EQ(run["status"], "succeeded");
  // As a remote worker could report it: every field mistyped.
  ASSERT_TRUE(c_.db().Exec(
      "INSERT INTO synaps.ledger_events (run_id, seq, type, data) VALUES ($1::uuid, 100000,"
      " 'task.completed', '{\"usage\": {\"promptTokens\": \"lots\", \"completionTokens\": [1]},"
      " \"costUsd\": \"free\", \"model\": 123, \"providerAttempts\": {}, \"control\": 7}')",
      {run["id"].get<std::string>()}));
  EXPECT_GT(c_.Scalar("SELECT synaps.roll_up_usage(interval '0 seconds')"), 0);
  json usage = Usage(c_, "?groupBy=route,model");
  json hostile = Row(usage, {{"route", ""}, {"model", ""}});
  ASSERT_FALSE(hostile.is_null()) << usage.dump(2);
  EXPECT_EQ(hostile["promptTokens"], 0);
  EXPECT_EQ(hostile["costUsd"], 0.0);
  EXPECT_EQ(hostile["unpricedTasks"], 1);
  EXPECT_EQ(Row(usage, {{"route", "priced"}})["completionTokens"], 2);
}

TEST_F(UsageTest, ATenantSeesOnlyItsOwnUsage) {
  ASSERT_EQ(Run({{"kind", "prompt"}, {"input", {{"text", "x y z"}}}, {"route", "priced"}})["status"],
            "succeeded");
  const std::string other = Jwt("tenant-b", "viewer", false);
  auto own = As(c_, other, "/v1/usage");
  ASSERT_EQ(own.status, 200) << own.body;
  EXPECT_EQ(json::parse(own.body)["totals"]["tasks"], 0) << own.body;
  EXPECT_TRUE(json::parse(own.body)["rows"].empty());

  auto theirs = As(c_, other, "/v1/usage?tenant=default");
  EXPECT_EQ(theirs.status, 403) << theirs.body;
  EXPECT_EQ(json::parse(theirs.body)["error"]["field"], "tenant");

  const std::string installation = Jwt("tenant-b", "viewer", true);
  auto every = As(c_, installation, "/v1/usage?groupBy=tenant");
  ASSERT_EQ(every.status, 200) << every.body;
  EXPECT_EQ(Row(json::parse(every.body), {{"tenant", "default"}})["succeeded"], 1) << every.body;
  auto one = As(c_, installation, "/v1/usage?tenant=tenant-b");
  EXPECT_EQ(json::parse(one.body)["totals"]["tasks"], 0) << one.body;
}

TEST_F(UsageTest, BadQueriesGetClearErrors) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"?from=2026-02-30", "from"},
      {"?to=26-01-01", "to"},
      {"?from=2026-01-05&to=2026-01-01", "from"},
      {"?from=2024-01-01&to=2026-01-01", "from"},
      {"?groupBy=tenant,tenant", "groupBy"},
      {"?groupBy=cost", "groupBy"},
      {"?groupBy=model;DROP%20TABLE%20synaps.runs", "groupBy"},
      {"?tenant=a%20b", "tenant"},
      {"?tenant=%ZZ", "tenant"},
      {"?limit=5", "limit"},
  };
  for (const auto& [query, field] : bad) {
    auto r = c_.Call("GET", "/v1/usage" + query);
    EXPECT_EQ(r.status, 400) << query << ": " << r.body;
    json body = json::parse(r.body, nullptr, false);
    ASSERT_TRUE(body.is_object()) << query << ": " << r.body;
    EXPECT_EQ(body["error"]["code"], "invalid_argument") << query;
    EXPECT_EQ(body["error"]["field"], field) << query << ": " << r.body;
  }
  EXPECT_EQ(c_.Scalar("SELECT count(*) FROM synaps.runs WHERE true"), 0) << "nothing ran";
}

TEST_F(UsageTest, TheWorkerCountsTokensAndCostForPrometheus) {
  ASSERT_EQ(Run({{"kind", "prompt"}, {"input", {{"text", "one two three four"}}},
                 {"route", "priced"}})["status"],
            "succeeded");
  std::string metrics;
  ASSERT_TRUE(testing::Eventually([&] {
    auto r = http::Send({.url = "http://127.0.0.1:" + std::to_string(probes_) + "/metrics",
                         .timeout = std::chrono::seconds(5)});
    metrics = r && r->status == 200 ? r->body : "";
    return metrics.find("synaps_model_cost_usd_total{") != std::string::npos;
  })) << metrics;
  EXPECT_NE(
      metrics.find(
          R"(synaps_model_tokens_total{model="echo",tenant="default",type="output"} 4)"),
      std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find(R"(synaps_model_tokens_total{model="echo",tenant="default",type="input"})"),
            std::string::npos);
  EXPECT_NE(metrics.find(R"(synaps_model_cost_usd_total{model="echo",tenant="default"})"),
            std::string::npos);
}

TEST(UsageRollupTest, TheApiFoldsOldEventsInTheBackground) {
  Cluster c(std::map<std::string, std::string>{{"SYNAPS_USAGE_ROLLUP_SECONDS", "1"}});
  c.StartApi();
  c.StartWorker();
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(c.WaitFinished(c.SubmitText("fold me " + std::to_string(i))["runId"])["status"],
              "succeeded");
  }
  json before = Usage(c, "?groupBy=");
  // Events written within the horizon (10 minutes) stay live: the cursor does not pass them.
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  EXPECT_EQ(c.Scalar("SELECT last_event_id FROM synaps.usage_rollup"), 0);
  // Age them as if written an hour ago (the ledger's append-only trigger is bypassed here, as
  // only a test may): the background pass folds them in within a period or two.
  ASSERT_TRUE(c.db().Exec("SET session_replication_role = replica"));
  ASSERT_TRUE(c.db().Exec(
      "UPDATE synaps.ledger_events SET created_at = created_at - interval '1 hour'"));
  ASSERT_TRUE(c.db().Exec("SET session_replication_role = DEFAULT"));
  c.WaitForCount(
      "SELECT (last_event_id = (SELECT max(id) FROM synaps.ledger_events))::int"
      " FROM synaps.usage_rollup",
      1);
  EXPECT_GT(c.Scalar("SELECT sum(tasks) FROM synaps.usage_daily"), 0);
  json after = Usage(c, "?groupBy=");
  EXPECT_EQ(after["totals"], before["totals"]) << "folded or live, the numbers are the same";
}

}  // namespace
}  // namespace synaps
