// Batch submit (docs/api.md, "Batch submit") through a real `synaps api` and worker: per-item
// errors with the valid items written in the caller's tenant, replays without duplicates,
// the size bounds, tenancy, roles, the worker draining a batch, and the body size limits.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "support/cluster.h"

namespace synaps {
namespace {

using nlohmann::json;
using testing::Cluster;

http::Response As(Cluster& c, const std::string& token, const std::string& body,
                  std::vector<std::string> headers = {}) {
  http::RequestOptions req{.method = "POST", .url = c.base_url() + "/v1/commands/submit"};
  req.headers.push_back("Authorization: Bearer " + token);
  req.headers.push_back("Content-Type: application/json");
  for (auto& h : headers) req.headers.push_back(h);
  req.body = body;
  auto r = http::Send(req);
  EXPECT_TRUE(r) << r.error().message;
  return r ? *r : http::Response{};
}

std::string KeyFor(Cluster& c, const std::string& tenant, const std::string& role) {
  auto r = c.Call("POST", "/v1/api-keys", json{{"tenantId", tenant}, {"role", role}}.dump());
  EXPECT_EQ(r.status, 201) << r.body;
  return json::parse(r.body)["token"];
}

json Prompt(const std::string& text) { return {{"kind", "prompt"}, {"input", {{"text", text}}}}; }

json With(json item, const std::string& field, const json& value) {
  item[field] = value;
  return item;
}

class BatchSubmitTest : public ::testing::Test {
 protected:
  BatchSubmitTest() : c_(std::map<std::string, std::string>{{"SYNAPS_RATE_LIMIT_RPS", "0"}}) {}
  Cluster c_;
};

TEST_F(BatchSubmitTest, InvalidItemsFailAloneValidOnesAreWrittenInTheTenantAndReplayed) {
  c_.StartApi();
  std::string alice = KeyFor(c_, "alice", "operator");
  json items = json::array();
  items.push_back(With(Prompt("one"), "idempotencyKey", "k-one"));
  items.push_back({{"kind", "prompt"}});                    // 1: no input
  items.push_back(With(Prompt("two"), "tenantId", "bob"));  // 2: tenant
  items.push_back(Prompt("three"));                         // 3: no key
  items.push_back(With(Prompt("four"), "threadId", "00000000-0000-4000-8000-000000000000"));
  items.push_back(json(7));                                     // 5: not an object
  items.push_back(With(Prompt("five"), "idempotencyKey", ""));  // 6: empty key
  auto r = As(c_, alice, json{{"commands", items}}.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  json out = json::parse(r.body);
  EXPECT_EQ(out["created"], 2) << out.dump();
  EXPECT_EQ(out["existing"], 0);
  EXPECT_EQ(out["failed"], 5);
  ASSERT_EQ(out["results"].size(), 7u);
  for (size_t i = 0; i < 7; ++i) EXPECT_EQ(out["results"][i]["index"], i);
  EXPECT_EQ(out["results"][0]["status"], "created");
  EXPECT_EQ(out["results"][3]["status"], "created");
  EXPECT_EQ(out["results"][1]["error"]["code"], "invalid_argument");
  EXPECT_EQ(out["results"][1]["error"]["field"], "input");
  EXPECT_EQ(out["results"][2]["error"]["field"], "tenantId") << "as the single submit refuses it";
  EXPECT_EQ(out["results"][4]["error"]["code"], "not_found");
  EXPECT_EQ(out["results"][5]["error"]["code"], "invalid_argument");
  EXPECT_EQ(out["results"][6]["error"]["field"], "idempotencyKey");
  // Only the two valid items were written, both in alice's tenant.
  EXPECT_EQ(c_.Scalar("SELECT count(*) FROM synaps.runs"), 2);
  EXPECT_EQ(c_.Scalar("SELECT count(*) FROM synaps.runs WHERE tenant_id = 'alice'"), 2);
  EXPECT_EQ(c_.Scalar("SELECT count(*) FROM synaps.commands WHERE idempotency_key = 'k-one'"), 1);

  // The same batch again: the keyed item answers its run, no duplicate; the unkeyed is new.
  auto again = As(c_, alice, json{{"commands", items}}.dump());
  ASSERT_EQ(again.status, 200) << again.body;
  json second = json::parse(again.body);
  EXPECT_EQ(second["results"][0]["status"], "existing");
  EXPECT_EQ(second["results"][0]["runId"], out["results"][0]["runId"]);
  EXPECT_EQ(c_.Scalar("SELECT count(*) FROM synaps.commands WHERE idempotency_key = 'k-one'"), 1);
  // The same key with another body is that item's conflict, the others are still written.
  json clash = {{"commands", {With(Prompt("other"), "idempotencyKey", "k-one"), Prompt("x")}}};
  auto conflict = As(c_, alice, clash.dump());
  ASSERT_EQ(conflict.status, 200) << conflict.body;
  json third = json::parse(conflict.body);
  EXPECT_EQ(third["results"][0]["error"]["code"], "conflict");
  EXPECT_EQ(third["results"][1]["status"], "created");
}

TEST_F(BatchSubmitTest, TheIdempotencyKeyHeaderKeysEveryItemSoAReplayCreatesNothing) {
  c_.StartApi();
  json batch = {{"commands", json::array()}};
  for (int i = 0; i < 50; ++i) batch["commands"].push_back(Prompt("item " + std::to_string(i)));
  auto first = As(c_, Cluster::kToken, batch.dump(), {"Idempotency-Key: import-7"});
  ASSERT_EQ(first.status, 200) << first.body;
  auto replay = As(c_, Cluster::kToken, batch.dump(), {"Idempotency-Key: import-7"});
  ASSERT_EQ(replay.status, 200) << replay.body;
  json a = json::parse(first.body), b = json::parse(replay.body);
  EXPECT_EQ(a["created"], 50);
  EXPECT_EQ(b["existing"], 50);
  EXPECT_EQ(b["created"], 0);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(a["results"][i]["runId"], b["results"][i]["runId"]);
  EXPECT_EQ(c_.Scalar("SELECT count(*) FROM synaps.runs"), 50);
  EXPECT_EQ(c_.Scalar("SELECT count(*) FROM synaps.commands WHERE idempotency_key = 'import-7/49'"),
            1);
}

// Two clients retrying the same import at the same moment, in different orders: both batches
// are answered (no deadlock aborts either), each key is written once, and both answers agree.
TEST_F(BatchSubmitTest, BatchesSharingKeysInOppositeOrdersBothSucceed) {
  c_.StartApi();
  constexpr int kItems = 1000;
  for (int round = 0; round < 5; ++round) {
    json up = {{"commands", json::array()}}, down = {{"commands", json::array()}};
    for (int i = 0; i < kItems; ++i) {
      std::string key = "r" + std::to_string(round) + "-" + std::to_string(i);
      up["commands"].push_back(With(Prompt(key), "idempotencyKey", key));
    }
    for (int i = kItems - 1; i >= 0; --i) down["commands"].push_back(up["commands"][i]);
    http::Response a, b;
    std::thread other([&] { b = As(c_, Cluster::kToken, down.dump()); });
    a = As(c_, Cluster::kToken, up.dump());
    other.join();
    ASSERT_EQ(a.status, 200) << a.body;
    ASSERT_EQ(b.status, 200) << b.body;
    json ja = json::parse(a.body), jb = json::parse(b.body);
    EXPECT_EQ(ja["failed"], 0);
    EXPECT_EQ(jb["failed"], 0);
    EXPECT_EQ(ja["created"].get<int>() + jb["created"].get<int>(), kItems);
    for (int i = 0; i < kItems; ++i)
      EXPECT_EQ(ja["results"][i]["runId"], jb["results"][kItems - 1 - i]["runId"]);
  }
  EXPECT_EQ(c_.Scalar("SELECT count(*) FROM synaps.commands"), 5 * kItems);
}

TEST_F(BatchSubmitTest, SizeBoundsRolesAndTenantsAreEnforced) {
  c_.StartApi();
  json big = {{"commands", json::array()}};
  for (int i = 0; i < 1001; ++i) big["commands"].push_back(Prompt("x"));
  auto too_many = As(c_, Cluster::kToken, big.dump());
  EXPECT_EQ(too_many.status, 400) << too_many.body;
  EXPECT_EQ(json::parse(too_many.body)["error"]["field"], "commands");
  auto empty = As(c_, Cluster::kToken, R"({"commands":[]})");
  EXPECT_EQ(empty.status, 400);
  auto not_array = As(c_, Cluster::kToken, R"({"commands":{}})");
  EXPECT_EQ(not_array.status, 400);
  auto extra = As(c_, Cluster::kToken, R"({"commands":[{"kind":"prompt"}],"kind":"prompt"})");
  EXPECT_EQ(extra.status, 400);
  EXPECT_EQ(c_.Scalar("SELECT count(*) FROM synaps.commands"), 0);

  std::string viewer = KeyFor(c_, "acme", "viewer");
  auto denied = As(c_, viewer, json{{"commands", {Prompt("no")}}}.dump());
  EXPECT_EQ(denied.status, 403) << denied.body;

  std::string alice = KeyFor(c_, "alice", "operator");
  std::string bob = KeyFor(c_, "bob", "operator");
  auto r = As(c_, alice, json{{"commands", {Prompt("a1"), Prompt("a2")}}}.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  for (const auto& item : json::parse(r.body)["results"]) {
    std::string run = item["runId"];
    http::RequestOptions get{.method = "GET", .url = c_.base_url() + "/v1/runs/" + run};
    get.headers.push_back("Authorization: Bearer " + bob);
    EXPECT_EQ(http::Send(get)->status, 404) << "bob must not see alice's run";
    // Nor continue alice's thread from a batch of his own.
    json steal = Prompt("steal");
    steal["threadId"] = item["threadId"];
    auto s = As(c_, bob, json{{"commands", {steal}}}.dump());
    EXPECT_EQ(json::parse(s.body)["results"][0]["error"]["code"], "not_found") << s.body;
  }
  EXPECT_EQ(c_.Scalar("SELECT count(*) FROM synaps.runs WHERE tenant_id = 'bob'"), 0);
}

TEST_F(BatchSubmitTest, AThousandItemBatchOverTheOrdinaryBodyLimitIsDrainedByTheWorker) {
  // The ordinary limit is small here; a batch may still grow to the batch limit.
  c_.StartApi({{"SYNAPS_BODY_LIMIT_BYTES", "65536"}});
  c_.StartWorker();
  json batch = {{"commands", json::array()}};
  for (int i = 0; i < 1000; ++i) {
    batch["commands"].push_back(Prompt("drain me " + std::to_string(i) + std::string(60, '.')));
  }
  ASSERT_GT(batch.dump().size(), 65536u);
  auto r = As(c_, Cluster::kToken, batch.dump(),
              {"traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"});
  ASSERT_EQ(r.status, 200) << r.body.substr(0, 500);
  json out = json::parse(r.body);
  ASSERT_EQ(out["created"], 1000);
  std::set<std::string> runs;
  for (const auto& item : out["results"]) runs.insert(item["runId"].get<std::string>());
  EXPECT_EQ(runs.size(), 1000u);
  // Every task carries the request's trace, as a single submit's do.
  EXPECT_EQ(c_.Scalar("SELECT count(*) FROM synaps.tasks WHERE spec #>> '{trace,traceparent}'"
                      " LIKE '00-0af7651916cd43dd8448eb211c80319c-%'"),
            1000);
  c_.WaitForCount("SELECT count(*) FROM synaps.runs WHERE status = 'succeeded'", 1000, 120);
  // A single submit keeps the ordinary limit.
  json single = Prompt(std::string(70000, 'x'));
  auto too_big = As(c_, Cluster::kToken, single.dump());
  EXPECT_EQ(too_big.status, 413) << too_big.body.substr(0, 300);
  // And a batch cannot carry a command a single submit could not: that item alone is refused.
  auto smuggled = As(c_, Cluster::kToken,
                     json{{"commands", {single, Prompt("small")}}}.dump());
  ASSERT_EQ(smuggled.status, 200) << smuggled.body.substr(0, 300);
  json results = json::parse(smuggled.body)["results"];
  EXPECT_EQ(results[0]["error"]["code"], "resource_exhausted") << smuggled.body.substr(0, 300);
  EXPECT_TRUE(results[1].contains("runId")) << smuggled.body.substr(0, 300);
}

}  // namespace
}  // namespace synaps
