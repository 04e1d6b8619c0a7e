// Remote workers end to end: the JavaScript example (examples/remote-worker/worker.mjs, plain
// HTTP) processes a run against a real `synaps api` with no built-in worker; and the queue's
// fencing, cancellation and tenancy over HTTP, as any remote worker sees them.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/ids.h"
#include "core/process.h"
#include "support/cluster.h"
#include "support/synaps_process.h"
#include "support/test_stack.h"

namespace synaps {
namespace {

using nlohmann::json;
using testing::ApiCall;
using testing::Cluster;

json Parse(const http::Response& r) { return json::parse(r.body, nullptr, false); }

// A new API key of `role` (in `tenant`, default the admin's), created with the admin token.
json CreateKey(Cluster& c, const std::string& role, const std::string& tenant = {}) {
  json body = {{"role", role}, {"name", "remote-worker-test"}};
  if (!tenant.empty()) body["tenantId"] = tenant;
  auto r = c.Call("POST", "/v1/api-keys", body.dump());
  EXPECT_EQ(r.status, 201) << r.body;
  return Parse(r);
}

// A worker's view of the API: one token, the queue calls.
struct RemoteWorker {
  std::string base;
  std::string token;

  http::Response Post(const std::string& path, const json& body) const {
    return ApiCall("POST", base + path, token, body.dump());
  }
  json Claim(int lease_seconds) const {
    auto r = Post("/v1/queue/claim", {{"worker", "fencing-test"}, {"leaseSeconds", lease_seconds}});
    EXPECT_EQ(r.status, 200) << r.body;
    return Parse(r)["items"];
  }
  http::Response Renew(int64_t item, int64_t epoch, int lease_seconds = 30) const {
    return Post("/v1/queue/items/" + std::to_string(item) + "/renew",
                {{"leaseEpoch", epoch}, {"leaseSeconds", lease_seconds}});
  }
  http::Response Complete(int64_t item, int64_t epoch, const std::string& text) const {
    return Post("/v1/queue/items/" + std::to_string(item) + "/complete",
                {{"leaseEpoch", epoch},
                 {"output", {{"text", text}}},
                 {"artifacts",
                  {{{"name", "answer.md"}, {"contentType", "text/markdown"}, {"content", text}}}}});
  }
  http::Response FailItem(int64_t item, int64_t epoch) const {
    return Post("/v1/queue/items/" + std::to_string(item) + "/fail",
                {{"leaseEpoch", epoch}, {"error", {{"message", "stale worker gives up"}}}});
  }
};

void ExpectError(const http::Response& r, int status, const std::string& code) {
  EXPECT_EQ(r.status, status) << r.body;
  EXPECT_EQ(Parse(r)["error"]["code"], code) << r.body;
}

int64_t CountEvents(const json& run, const std::string& type) {
  int64_t n = 0;
  for (const auto& e : run["events"]) n += e["type"] == type;
  return n;
}

TEST(RemoteWorkerTest, JavaScriptExampleCompletesARunOverHttp) {
  Cluster c;
  c.StartApi();
  json key = CreateKey(c, "worker");
  ASSERT_TRUE(key["token"].is_string());
  const std::string prompt = "What does a remote worker need? Only HTTP.";
  json submitted = c.SubmitText(prompt);
  const std::string run_id = submitted["runId"];

  std::string log = testing::TestStack::Get().TempDir("node-worker") + "/worker.log";
  ProcessOptions opts;
  opts.argv = {"node",   std::string(SYNAPS_SOURCE_DIR) + "/examples/remote-worker/worker.mjs",
               "--once", "--wait-seconds",
               "60",     "--poll-ms",
               "100",    "--work-ms",
               "50",     "--lease-seconds",
               "10"};
  opts.env = {{"SYNAPS_API_URL", c.base_url()}, {"SYNAPS_TOKEN", key["token"]}};
  opts.log_path = log;
  auto node = ChildProcess::Spawn(opts);
  ASSERT_TRUE(node) << node.error().message;
  auto status = node->Wait(std::chrono::seconds(90));
  ASSERT_TRUE(status) << "worker.mjs did not exit:\n" << testing::ReadFile(log);
  ASSERT_TRUE(WIFEXITED(*status)) << testing::ReadFile(log);
  ASSERT_EQ(WEXITSTATUS(*status), 0) << testing::ReadFile(log);

  json run = c.WaitFinished(run_id);
  EXPECT_EQ(run["status"], "succeeded") << run.dump(2);
  EXPECT_EQ(CountEvents(run, "task.completed"), 1) << run.dump(2);
  EXPECT_EQ(CountEvents(run, "run.succeeded"), 1) << run.dump(2);
  for (const auto& e : run["events"]) {
    if (e["type"] == "task.claimed") {
      // The lease owner is the worker's label plus the key that claimed.
      EXPECT_TRUE(
          e["data"]["worker"].get<std::string>().ends_with("@" + key["id"].get<std::string>()))
          << e.dump();
    }
    if (e["type"] == "task.completed") {
      EXPECT_EQ(e["data"]["provider"], "node-example") << e.dump();
      EXPECT_FALSE(e["data"].contains("text")) << "the ledger leaves the text out";
    }
  }

  ASSERT_EQ(run["artifacts"].size(), 1u) << run.dump(2);
  const json& artifact = run["artifacts"][0];
  EXPECT_EQ(artifact["name"], "answer.md");
  EXPECT_EQ(artifact["contentType"], "text/markdown");
  ASSERT_EQ(artifact["versions"].size(), 1u);
  const json& version = artifact["versions"][0];
  auto bytes =
      c.Call("GET", "/v1/artifacts/" + artifact["id"].get<std::string>() + "/versions/1/content");
  ASSERT_EQ(bytes.status, 200) << bytes.body;
  // The example's deterministic "model" (see answer() in worker.mjs).
  EXPECT_EQ(bytes.body, "# main\n\n> " + prompt + "\n\n8 words, " + std::to_string(prompt.size()) +
                            " characters, attempt 1.\n");
  EXPECT_EQ(version["size"], bytes.body.size());
  EXPECT_EQ(version["sha256"], Sha256Hex(bytes.body));
  EXPECT_EQ(bytes.headers["etag"], "\"" + Sha256Hex(bytes.body) + "\"");
}

TEST(RemoteWorkerTest, StaleLeaseEpochIsRefusedAndWritesNothing) {
  Cluster c;
  c.StartApi();
  RemoteWorker worker{c.base_url(), CreateKey(c, "worker")["token"]};
  const std::string run_id = c.SubmitText("fencing over HTTP")["runId"];

  json first = worker.Claim(/*lease_seconds=*/1);
  ASSERT_EQ(first.size(), 1u);
  const int64_t item = first[0]["itemId"];
  const int64_t stale = first[0]["leaseEpoch"];
  EXPECT_EQ(first[0]["runId"], run_id);
  EXPECT_EQ(first[0]["name"], "main");
  EXPECT_EQ(first[0]["spec"]["input"]["text"], "fencing over HTTP");
  EXPECT_EQ(worker.Renew(item, stale, /*lease_seconds=*/1).status, 200);

  // Let the 1 s lease lapse: claim until the same item comes back under a newer epoch.
  json second;
  ASSERT_TRUE(testing::Eventually(
      [&] {
        second = worker.Claim(/*lease_seconds=*/30);
        return second.size() == 1;
      },
      45))
      << "the expired lease was not handed out again";
  ASSERT_EQ(second[0]["itemId"], item);
  const int64_t current = second[0]["leaseEpoch"];
  EXPECT_GT(current, stale);
  EXPECT_EQ(second[0]["attempt"], 2);

  // The old holder is refused everywhere, and nothing it sends is recorded.
  ExpectError(worker.Renew(item, stale), 409, "lease_lost");
  ExpectError(worker.Complete(item, stale, "stale answer"), 409, "lease_lost");
  // Refused before its bytes were uploaded (issue #19): the object store never saw them.
  const std::string stale_sha = Sha256Hex("stale answer");
  EXPECT_FALSE(std::filesystem::exists(c.objects_dir() + "/objects/sha256/" +
                                       stale_sha.substr(0, 2) + "/" + stale_sha))
      << "a stale completion wrote its artifact";
  ExpectError(worker.FailItem(item, stale), 409, "lease_lost");
  json run = Parse(c.Call("GET", "/v1/runs/" + run_id));
  EXPECT_EQ(run["status"], "running");
  EXPECT_EQ(CountEvents(run, "task.completed"), 0);
  EXPECT_TRUE(run["artifacts"].empty()) << run.dump(2);

  // The current holder completes, once.
  EXPECT_EQ(worker.Renew(item, current).status, 200);
  auto done = worker.Complete(item, current, "current answer");
  ASSERT_EQ(done.status, 200) << done.body;
  EXPECT_EQ(Parse(done)["state"], "completed");
  run = c.WaitFinished(run_id);
  EXPECT_EQ(run["status"], "succeeded");
  EXPECT_EQ(CountEvents(run, "task.completed"), 1);
  ASSERT_EQ(run["artifacts"].size(), 1u);
  auto bytes = c.Call("GET", "/v1/artifacts/" + run["artifacts"][0]["id"].get<std::string>() +
                                 "/versions/1/content");
  EXPECT_EQ(bytes.body, "current answer");
  const std::string current_sha = Sha256Hex("current answer");
  EXPECT_TRUE(std::filesystem::exists(c.objects_dir() + "/objects/sha256/" +
                                      current_sha.substr(0, 2) + "/" + current_sha));
  // The item is gone once completed: a late complete, even with the current epoch, finds nothing.
  ExpectError(worker.Complete(item, current, "again"), 404, "not_found");
  ExpectError(worker.Complete(item, stale, "stale again"), 404, "not_found");
}

TEST(RemoteWorkerTest, CancelledRunTellsTheHolderToStop) {
  Cluster c;
  c.StartApi();
  RemoteWorker worker{c.base_url(), CreateKey(c, "worker")["token"]};
  const std::string run_id = c.SubmitText("to be cancelled")["runId"];
  json items = worker.Claim(30);
  ASSERT_EQ(items.size(), 1u);
  const int64_t item = items[0]["itemId"];
  const int64_t epoch = items[0]["leaseEpoch"];

  // A worker key may not cancel; the admin may.
  ExpectError(ApiCall("POST", c.base_url() + "/v1/runs/" + run_id + "/cancel", worker.token), 403,
              "permission_denied");
  auto cancelled = c.Call("POST", "/v1/runs/" + run_id + "/cancel");
  ASSERT_EQ(cancelled.status, 200) << cancelled.body;

  ExpectError(worker.Renew(item, epoch), 409, "cancelled");
  json run = c.WaitFinished(run_id);
  EXPECT_EQ(run["status"], "cancelled");
  EXPECT_EQ(CountEvents(run, "task.completed"), 0);
}

TEST(RemoteWorkerTest, AnotherTenantsWorkerSeesNothing) {
  Cluster c;
  c.StartApi();
  RemoteWorker own{c.base_url(), CreateKey(c, "worker")["token"]};
  RemoteWorker other{c.base_url(), CreateKey(c, "worker", "other-tenant")["token"]};
  c.SubmitText("tenant default's work");

  EXPECT_TRUE(other.Claim(30).empty());
  json items = own.Claim(30);
  ASSERT_EQ(items.size(), 1u);
  const int64_t item = items[0]["itemId"];
  const int64_t epoch = items[0]["leaseEpoch"];
  ExpectError(other.Renew(item, epoch), 404, "not_found");
  ExpectError(other.Complete(item, epoch, "not mine"), 404, "not_found");
  ExpectError(other.FailItem(item, epoch), 404, "not_found");
  EXPECT_EQ(own.Renew(item, epoch).status, 200);
}

// A task whose stored spec does not read back (jsonb keeps 1e400, which no double holds) is not
// handed out half-read: the claim fails it, saying why, and hands out the others
// (docs/reliability.md, "Bus and thread barriers").
TEST(RemoteWorkerTest, AClaimFailsATaskWhoseRowDoesNotReadAndHandsOutTheOthers) {
  Cluster c;
  c.StartApi();
  RemoteWorker worker{c.base_url(), CreateKey(c, "worker")["token"]};
  const std::string good = c.SubmitText("fine")["runId"];
  const std::string corrupt = c.SubmitText("to be corrupted")["runId"];
  ASSERT_TRUE(
      c.db().Exec("UPDATE synaps.tasks SET spec = '{\"input\": {\"text\": \"x\"}, "
                  "\"n\": 1e400}' WHERE run_id = $1::uuid",
                  {corrupt}));
  auto claimed =
      worker.Post("/v1/queue/claim", {{"worker", "w"}, {"limit", 10}, {"leaseSeconds", 30}});
  ASSERT_EQ(claimed.status, 200) << claimed.body;
  json items = Parse(claimed)["items"];
  ASSERT_EQ(items.size(), 1u) << items.dump();
  EXPECT_EQ(items[0]["runId"], good);
  json run = c.WaitFinished(corrupt);
  EXPECT_EQ(run["status"], "failed") << run.dump();
  EXPECT_NE(run.dump().find("does not read as JSON"), std::string::npos) << run.dump();
}

}  // namespace
}  // namespace synaps
