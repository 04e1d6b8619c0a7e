// End to end through real processes: `synaps api` and two `synaps worker`s against the test
// stack's PostgreSQL and nats-server; and `synaps dev` as a newcomer runs it.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <nlohmann/json.hpp>
#include <filesystem>
#include <fstream>
#include <thread>

#include "core/process.h"
#include "support/synaps_process.h"
#include "support/test_stack.h"

namespace synaps {
namespace {

using nlohmann::json;
using testing::ApiCall;

constexpr const char* kToken = "e2e-admin-token";

class SkeletonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto& stack = testing::TestStack::Get();
    auto port = PickFreePort();
    ASSERT_TRUE(port);
    base_ = "http://127.0.0.1:" + std::to_string(*port);
    std::string dir = stack.TempDir("e2e");
    objects_dir_ = dir + "/objects";
    env_ = {{"SYNAPS_DATABASE_URL", stack.FreshDatabase()},
            {"SYNAPS_NATS_URL", stack.nats().Url()},
            {"SYNAPS_OBJECT_STORE", "file://" + dir + "/objects"},
            {"SYNAPS_LISTEN", "127.0.0.1:" + std::to_string(*port)},
            {"SYNAPS_ADMIN_TOKEN", kToken},
            {"SYNAPS_POLL_INTERVAL_MS", "200"}};
    api_ = testing::StartSynaps("api", env_, dir + "/api.log");
    for (int i = 0; i < 2; ++i) {
      workers_.push_back(
          testing::StartSynaps("worker", env_, dir + "/worker" + std::to_string(i) + ".log"));
    }
    testing::WaitUntilReady(base_);
  }

  json Submit(const std::string& text) {
    json body = {{"kind", "prompt"}, {"input", {{"text", text}}}};
    auto r = ApiCall("POST", base_ + "/v1/commands/submit", kToken, body.dump());
    EXPECT_EQ(r.status, 201) << r.body;
    return json::parse(r.body);
  }

  json WaitFinished(const std::string& run_id) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (true) {
      auto r = ApiCall("GET", base_ + "/v1/runs/" + run_id, kToken);
      json run = json::parse(r.body);
      std::string s = run.value("status", "");
      if (s == "succeeded" || s == "failed" || s == "cancelled") return run;
      if (std::chrono::steady_clock::now() > deadline) {
        ADD_FAILURE() << "run " << run_id << " still " << s;
        return run;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  void ExpectError(const http::Response& r, int status, const std::string& code) {
    EXPECT_EQ(r.status, status) << r.body;
    json body = json::parse(r.body, nullptr, false);
    ASSERT_TRUE(body.is_object()) << r.body;
    EXPECT_EQ(body["error"]["code"], code) << r.body;
    EXPECT_TRUE(body["error"]["message"].is_string());
    EXPECT_TRUE(body["error"]["requestId"].is_string());
  }

  std::string base_;
  std::string objects_dir_;
  std::map<std::string, std::string> env_;
  ChildProcess api_;
  std::vector<ChildProcess> workers_;
};

TEST_F(SkeletonTest, FiftyCommandsTwoWorkersEachCompletedOnce) {
  std::vector<std::pair<std::string, std::string>> runs;  // run id, text
  // The workers run at the default SYNAPS_ANSWER_ARTIFACT_MIN_BYTES (16384): every fifth
  // answer (the local provider echoes the input) is long enough to be an answer.md artifact as
  // well; the others are the task's answer alone.
  for (int i = 0; i < 50; ++i) {
    std::string text = "command number " + std::to_string(i) + " — ünïcödé";
    if (i % 5 == 0) text += " " + std::string(16384, 'x');
    json created = Submit(text);
    ASSERT_TRUE(created["runId"].is_string());
    EXPECT_EQ(created["status"], "queued");
    EXPECT_TRUE(created["commandId"].is_string());
    EXPECT_TRUE(created["threadId"].is_string());
    runs.emplace_back(created["runId"].get<std::string>(), text);
  }
  int long_answers = 0;
  for (const auto& [run_id, text] : runs) {
    json run = WaitFinished(run_id);
    ASSERT_EQ(run["status"], "succeeded") << run.dump();
    EXPECT_TRUE(run["startedAt"].is_string());
    EXPECT_TRUE(run["finishedAt"].is_string());
    ASSERT_EQ(run["tasks"].size(), 1u);
    EXPECT_EQ(run["tasks"][0]["status"], "succeeded");
    EXPECT_EQ(run["tasks"][0]["attempt"], 1);
    int completed = 0;
    std::vector<std::string> types;
    int64_t expected_seq = 1;
    for (const auto& e : run["events"]) {
      types.push_back(e["type"]);
      EXPECT_EQ(e["seq"], expected_seq++);
      if (e["type"] == "task.completed") ++completed;
    }
    EXPECT_EQ(completed, 1) << run.dump();
    EXPECT_EQ(types.front(), "run.created");
    EXPECT_EQ(types.back(), "run.succeeded");
    EXPECT_EQ(run["tasks"][0]["answer"], text);
    if (text.size() < 16384) {
      EXPECT_EQ(run["artifacts"].size(), 0u) << run["artifacts"].dump();
      continue;
    }
    ++long_answers;
    ASSERT_EQ(run["artifacts"].size(), 1u);
    const json& art = run["artifacts"][0];
    EXPECT_EQ(art["name"], "answer.md");
    EXPECT_EQ(art["contentType"], "text/markdown");
    ASSERT_EQ(art["versions"].size(), 1u);
    EXPECT_EQ(art["versions"][0]["size"], text.size());
    auto content = ApiCall("GET",
                           base_ + "/v1/artifacts/" + art["id"].get<std::string>() +
                               "/versions/1/content",
                           kToken);
    EXPECT_EQ(content.status, 200);
    EXPECT_EQ(content.body, text);
    EXPECT_EQ(content.headers["content-type"], "text/markdown");
  }
  EXPECT_EQ(long_answers, 10);
  // Only the long answers were written to the object store.
  size_t files = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(objects_dir_)) {
    if (entry.is_regular_file()) ++files;
  }
  EXPECT_EQ(files, 10u);
}

TEST_F(SkeletonTest, ReadinessReportsBothDependencies) {
  auto r = ApiCall("GET", base_ + "/readyz", "");
  EXPECT_EQ(r.status, 200);
  json body = json::parse(r.body);
  EXPECT_EQ(body["postgres"], "ok");
  EXPECT_EQ(body["nats"], "ok");
  EXPECT_EQ(ApiCall("GET", base_ + "/healthz", "").status, 200);
}

TEST_F(SkeletonTest, RefusalsAreJsonErrors) {
  std::string submit = base_ + "/v1/commands/submit";
  std::string good = R"({"kind":"prompt","input":{"text":"hi"}})";

  auto noauth = ApiCall("POST", submit, "", good);
  ExpectError(noauth, 401, "unauthenticated");
  EXPECT_NE(noauth.headers["www-authenticate"].find("Bearer"), std::string::npos);
  ExpectError(ApiCall("POST", submit, "wrong-token", good), 401, "unauthenticated");

  ExpectError(ApiCall("POST", submit, kToken, R"({"kind":)"), 400, "invalid_argument");
  auto unknown = ApiCall("POST", submit, kToken, R"({"kind":"prompt","input":{"text":"x"},"y":1})");
  ExpectError(unknown, 400, "invalid_argument");
  EXPECT_EQ(json::parse(unknown.body)["error"]["field"], "y");
  ExpectError(ApiCall("POST", submit, kToken, good, {"Content-Type: text/plain"}), 415,
              "unsupported_media_type");
  ExpectError(ApiCall("POST", submit, kToken, std::string(2 << 20, 'x')), 413,
              "payload_too_large");
  ExpectError(ApiCall("GET", base_ + "/v1/nothing", kToken), 404, "not_found");
  ExpectError(ApiCall("GET", submit, kToken), 405, "method_not_allowed");
  ExpectError(ApiCall("GET", base_ + "/v1/runs/not-a-uuid", kToken), 400, "invalid_argument");
  ExpectError(ApiCall("GET", base_ + "/v1/runs/00000000-0000-4000-8000-000000000000", kToken), 404,
              "not_found");
  ExpectError(ApiCall("POST", submit, kToken,
                      R"({"kind":"prompt","input":{"text":"x"},"threadId":"00000000-0000-4000-8000-000000000000"})"),
              404, "not_found");

  // None of the refusals wrote anything.
  auto ok = ApiCall("POST", submit, kToken, good);
  ASSERT_EQ(ok.status, 201);
  json run = WaitFinished(json::parse(ok.body)["runId"]);
  EXPECT_EQ(run["status"], "succeeded");
}

TEST_F(SkeletonTest, IdempotencyKeyReplaysAndRefusesOtherBodies) {
  std::string submit = base_ + "/v1/commands/submit";
  std::string body = R"({"kind":"prompt","input":{"text":"once"}})";
  auto first = ApiCall("POST", submit, kToken, body, {"Idempotency-Key: key-1"});
  ASSERT_EQ(first.status, 201) << first.body;
  auto again = ApiCall("POST", submit, kToken, body, {"Idempotency-Key: key-1"});
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(json::parse(again.body), json::parse(first.body));
  auto other = ApiCall("POST", submit, kToken, R"({"kind":"prompt","input":{"text":"twice"}})",
                       {"Idempotency-Key: key-1"});
  ExpectError(other, 409, "conflict");
}

// What `make demo` runs: the embedded stack from nothing, one command, a succeeded run.
TEST(DevStackTest, DemoRunSucceedsAndExits) {
  std::string dir = testing::TestStack::Get().TempDir("dev");
  ProcessOptions opts;
  opts.argv = {SYNAPS_BINARY, "dev", "--state-dir", dir + "/state", "--listen", "127.0.0.1:0",
               "--demo", "hello from the dev test", "--exit-after-demo"};
  opts.log_path = dir + "/dev.log";
  auto p = ChildProcess::Spawn(opts);
  ASSERT_TRUE(p);
  auto status = p->Wait(std::chrono::seconds(120));
  ASSERT_TRUE(status) << "synaps dev did not exit";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
  std::ifstream log(dir + "/dev.log");
  std::string out((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  EXPECT_NE(out.find("succeeded"), std::string::npos) << out;
  EXPECT_NE(out.find("hello from the dev test"), std::string::npos) << out;
}

}  // namespace
}  // namespace synaps
