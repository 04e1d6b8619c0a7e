// The worker as a real process against model providers (a fake OpenAI-compatible server: model
// providers are paid outside services), the object store, and the worker registry: streamed
// progress, usage, provider errors, thread history, artifact versions, drain on SIGTERM.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <nlohmann/json.hpp>

#include "core/process.h"
#include "http/client.h"
#include "support/cluster.h"
#include "support/fake_openai.h"

namespace synaps {
namespace {

using nlohmann::json;
using testing::Cluster;
using testing::FakeOpenAi;
using testing::FakeReply;

std::string RouteTo(const FakeOpenAi& fake) {
  return json{{"provider", "openai-compatible"}, {"baseUrl", fake.base_url()},
              {"model", "fake-model"}}
      .dump();
}

std::vector<json> EventsOf(const json& run, const std::string& type) {
  std::vector<json> out;
  for (const auto& e : run["events"]) {
    if (e["type"] == type) out.push_back(e);
  }
  return out;
}

TEST(WorkerTest, StreamsProgressAndRecordsUsageFromAProvider) {
  FakeOpenAi fake([](const testing::FakeRequest&, int) {
    std::vector<std::string> pieces;
    for (int i = 0; i < 40; ++i) pieces.push_back("piece" + std::to_string(i) + " ");
    FakeReply r = FakeOpenAi::Stream(pieces, 11, 40);
    r.event_interval = std::chrono::milliseconds(30);  // ~1.2 s of streaming
    return r;
  });
  Cluster c;
  c.StartApi();
  c.StartWorker({{"SYNAPS_DEFAULT_ROUTE", RouteTo(fake)}});
  json run = c.WaitFinished(c.SubmitText("stream to me")["runId"]);
  ASSERT_EQ(run["status"], "succeeded") << run.dump();
  auto progress = EventsOf(run, "task.progress");
  // Batched: far fewer events than the 40 deltas, but more than one over ~1.2 s.
  EXPECT_GE(progress.size(), 2u);
  EXPECT_LE(progress.size(), 20u);
  std::string streamed;
  for (const auto& p : progress) streamed += p["data"]["text"].get<std::string>();
  std::string expected;
  for (int i = 0; i < 40; ++i) expected += "piece" + std::to_string(i) + " ";
  EXPECT_EQ(streamed, expected);
  auto completed = EventsOf(run, "task.completed");
  ASSERT_EQ(completed.size(), 1u);
  const json& data = completed[0]["data"];
  EXPECT_EQ(data["usage"]["promptTokens"], 11);
  EXPECT_EQ(data["usage"]["completionTokens"], 40);
  EXPECT_EQ(data["provider"], "openai-compatible");
  EXPECT_GT(data["latencyMs"].get<int64_t>(), 500);
  EXPECT_FALSE(data.contains("text")) << "the answer lives in the artifact, not the ledger";
  auto body = c.Call("GET", "/v1/artifacts/" + run["artifacts"][0]["id"].get<std::string>() +
                                "/versions/1/content");
  EXPECT_EQ(body.body, expected);
}

TEST(WorkerTest, AnAnswerWithNulCharactersIsStoredNotStuck) {
  // "\u0000" is valid JSON, but PostgreSQL's text and jsonb refuse NUL: the progress and the
  // output must still be written (with U+FFFD), and the artifact keeps the exact bytes. The
  // pieces come 400 ms apart, past the progress interval, so the first is written as progress
  // before the answer is complete (an answer that arrives whole writes none).
  FakeOpenAi fake([](const testing::FakeRequest&, int) {
    FakeReply r = FakeOpenAi::Stream({std::string("nul\0here ", 9), "and done"}, 3, 2);
    r.event_interval = std::chrono::milliseconds(400);
    return r;
  });
  Cluster c;
  c.StartApi();
  c.StartWorker({{"SYNAPS_DEFAULT_ROUTE", RouteTo(fake)}});
  json run = c.WaitFinished(c.SubmitText("say something odd")["runId"], 30);
  ASSERT_EQ(run["status"], "succeeded") << run.dump();
  std::string streamed;
  for (const auto& p : EventsOf(run, "task.progress")) streamed += p["data"]["text"].get<std::string>();
  EXPECT_EQ(streamed, "nul\xEF\xBF\xBDhere and done");
  auto body = c.Call("GET", "/v1/artifacts/" + run["artifacts"][0]["id"].get<std::string>() +
                                "/versions/1/content");
  EXPECT_EQ(body.body, std::string("nul\0here and done", 17));
}

TEST(WorkerTest, AnAnswerThatArrivesWholeWritesNoProgress) {
  // The local provider answers at once: the answer's text is in the completion (the task's
  // output and its artifact), so the ledger gets no task.progress repeating it.
  Cluster c;
  c.StartApi();
  c.StartWorker();
  json run = c.WaitFinished(c.SubmitText("all at once")["runId"], 30);
  ASSERT_EQ(run["status"], "succeeded") << run.dump();
  EXPECT_TRUE(EventsOf(run, "task.progress").empty()) << run["events"].dump(2);
  std::string types;
  for (const auto& e : run["events"]) types += e["type"].get<std::string>() + ",";
  EXPECT_EQ(types, "run.created,task.queued,task.claimed,task.completed,run.succeeded,");
  // The completion names the artifact it wrote: the run's whole story is in its ledger.
  const json completed = EventsOf(run, "task.completed").at(0);
  ASSERT_EQ(completed["data"]["artifacts"].size(), 1u) << completed.dump();
  EXPECT_EQ(completed["data"]["artifacts"][0]["artifactId"], run["artifacts"][0]["id"]);
  EXPECT_EQ(completed["data"]["artifacts"][0]["name"], "answer.md");
  EXPECT_EQ(completed["data"]["artifacts"][0]["version"], 1);
  auto body = c.Call("GET", "/v1/artifacts/" + run["artifacts"][0]["id"].get<std::string>() +
                                "/versions/1/content");
  EXPECT_EQ(body.body, "all at once");
}

TEST(WorkerTest, ProviderRefusalFailsAtOnceAndOutagesAreRetried) {
  FakeOpenAi fake([](const testing::FakeRequest& req, int) {
    std::string text = req.Json()["messages"].back()["content"];
    if (text == "bad request") return FakeOpenAi::Error(400, "model does not exist");
    return FakeOpenAi::Error(503, "overloaded");
  });
  Cluster c;
  c.StartApi();
  c.StartWorker({{"SYNAPS_DEFAULT_ROUTE", RouteTo(fake)},
                 {"SYNAPS_PROVIDER_MAX_ATTEMPTS", "2"},
                 {"SYNAPS_PROVIDER_RETRY_BASE_MS", "10"},
                 {"SYNAPS_RETRY_BASE_MS", "50"},
                 {"SYNAPS_RETRY_CAP_MS", "100"}});
  json bad = c.WaitFinished(c.SubmitText("bad request")["runId"]);
  EXPECT_EQ(bad["status"], "failed");
  EXPECT_EQ(bad["tasks"][0]["attempt"], 1) << "a 400 is not retried";
  EXPECT_NE(bad["error"].dump().find("model does not exist"), std::string::npos) << bad.dump();

  json down = c.WaitFinished(c.SubmitText("down")["runId"]);
  EXPECT_EQ(down["status"], "failed");
  EXPECT_EQ(down["tasks"][0]["attempt"], 3) << "retried up to maxAttempts";
  EXPECT_EQ(EventsOf(down, "task.retry_scheduled").size(), 2u);
}

TEST(WorkerTest, ThreadHistoryReachesTheModelAndArtifactsGetVersions) {
  FakeOpenAi fake([](const testing::FakeRequest& req, int) {
    return FakeOpenAi::Completion("answer to: " +
                                  req.Json()["messages"].back()["content"].get<std::string>());
  });
  Cluster c;
  c.StartApi();
  c.StartWorker({{"SYNAPS_DEFAULT_ROUTE", RouteTo(fake)}});
  json first = c.WaitFinished(c.SubmitText("first question")["runId"]);
  ASSERT_EQ(first["status"], "succeeded");
  json second = c.WaitFinished(
      c.Submit({{"kind", "prompt"}, {"input", {{"text", "second question"}}},
                {"threadId", first["threadId"]}})["runId"]);
  ASSERT_EQ(second["status"], "succeeded");
  auto requests = fake.requests();
  ASSERT_EQ(requests.size(), 2u);
  json messages = requests[1].Json()["messages"];
  ASSERT_EQ(messages.size(), 3u) << messages.dump();
  EXPECT_EQ(messages[0]["role"], "user");
  EXPECT_EQ(messages[0]["content"], "first question");
  EXPECT_EQ(messages[1]["role"], "assistant");
  EXPECT_EQ(messages[1]["content"], "answer to: first question");
  EXPECT_EQ(messages[2]["content"], "second question");
  // Same thread, same name: version 2 of answer.md.
  ASSERT_EQ(second["artifacts"].size(), 1u);
  EXPECT_EQ(second["artifacts"][0]["id"], first["artifacts"][0]["id"]);
  EXPECT_EQ(second["artifacts"][0]["versions"][0]["version"], 2);
  auto v2 = c.Call("GET", "/v1/artifacts/" + second["artifacts"][0]["id"].get<std::string>() +
                              "/versions/2/content");
  EXPECT_EQ(v2.body, "answer to: second question");
}

// A completion PostgreSQL refuses with a unique violation (SQLSTATE 23505; here: the thread's
// artifact numbering set back, as a bad restore once could, so the next version exists) is set
// aside like a refused value: its task fails visibly and is retried until its attempts run out,
// and the worker's write lane goes on with everyone else's completions.
TEST(WorkerTest, ACompletionRefusedAsADuplicateFailsItsTaskNotTheLane) {
  Cluster c;
  c.StartApi();
  c.StartWorker({{"SYNAPS_RETRY_BASE_MS", "50"}, {"SYNAPS_RETRY_CAP_MS", "100"}});
  json first = c.WaitFinished(c.SubmitText("first answer")["runId"]);
  ASSERT_EQ(first["status"], "succeeded");
  ASSERT_TRUE(c.db().Exec("UPDATE synaps.artifacts SET latest_version = 0 WHERE thread_id = $1",
                          {first["threadId"].get<std::string>()}));
  json stuck = c.WaitFinished(c.Submit({{"kind", "prompt"},
                                        {"input", {{"text", "collides"}}},
                                        {"threadId", first["threadId"]}})["runId"]);
  EXPECT_EQ(stuck["status"], "failed") << stuck.dump();
  EXPECT_EQ(stuck["tasks"][0]["attempt"], 3) << "retried up to maxAttempts";
  EXPECT_EQ(EventsOf(stuck, "task.retry_scheduled").size(), 2u);
  EXPECT_NE(stuck["error"].dump().find("already_exists"), std::string::npos) << stuck.dump();
  EXPECT_NE(stuck["error"].dump().find("could not be stored"), std::string::npos) << stuck.dump();
  // The lane is not wedged: the next completion goes through.
  json other = c.WaitFinished(c.SubmitText("someone else")["runId"]);
  EXPECT_EQ(other["status"], "succeeded") << other.dump();
}

TEST(WorkerTest, SigtermDrainsFinishesWhatItCanAndReleasesTheRest) {
  Cluster c;
  c.StartApi();
  size_t quick = c.StartWorker({{"SYNAPS_LOCAL_LATENCY_MS", "700"}, {"SYNAPS_DRAIN_SECONDS", "10"}});
  std::string run = c.SubmitText("finish me while draining")["runId"];
  c.WaitForCount("SELECT count(*) FROM synaps.tasks WHERE status = 'running'", 1);
  c.worker(quick).Signal(SIGTERM);
  auto status = c.worker(quick).Wait(std::chrono::seconds(20));
  ASSERT_TRUE(status);
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
  EXPECT_EQ(c.WaitFinished(run)["status"], "succeeded") << "in-flight work finished during drain";

  size_t slow = c.StartWorker({{"SYNAPS_LOCAL_LATENCY_MS", "600000"}, {"SYNAPS_DRAIN_SECONDS", "1"},
                               {"SYNAPS_LEASE_SECONDS", "600"}});
  std::string stuck = c.SubmitText("too slow to finish")["runId"];
  c.WaitForCount("SELECT count(*) FROM synaps.tasks WHERE status = 'running'", 1);
  c.worker(slow).Signal(SIGTERM);
  ASSERT_TRUE(c.worker(slow).Wait(std::chrono::seconds(20)));
  // Released at once (no 600 s lease to wait out): a fresh worker finishes it right away.
  EXPECT_EQ(c.Scalar("SELECT count(*) FROM synaps.ledger_events WHERE type = 'task.released'"), 1);
  c.StartWorker();
  json done = c.WaitFinished(stuck, 20);
  EXPECT_EQ(done["status"], "succeeded");
  EXPECT_EQ(done["tasks"][0]["attempt"], 1) << "a released attempt does not count";
}

TEST(WorkerTest, WorkersRegisterWithPodAndHeartbeat) {
  Cluster c;
  c.StartApi();
  size_t w = c.StartWorker({{"POD_NAME", "synaps-demo-worker-abc"},
                            {"POD_NAMESPACE", "synaps-runtime"},
                            {"SYNAPS_QUEUES", "default,gpu"}});
  json items;
  ASSERT_TRUE(testing::Eventually([&] {
    items = json::parse(c.Call("GET", "/v1/workers").body)["items"];
    return items.size() == 1;
  }));
  EXPECT_EQ(items[0]["pod"], "synaps-demo-worker-abc");
  EXPECT_EQ(items[0]["namespace"], "synaps-runtime");
  EXPECT_EQ(items[0]["queues"], json::array({"default", "gpu"}));
  EXPECT_EQ(items[0]["alive"], true);
  c.worker(w).Signal(SIGTERM);
  ASSERT_TRUE(c.worker(w).Wait(std::chrono::seconds(20)));
  items = json::parse(c.Call("GET", "/v1/workers").body)["items"];
  EXPECT_EQ(items[0]["alive"], false);
  EXPECT_TRUE(items[0]["stoppedAt"].is_string());
}

TEST(WorkerTest, ProbesAndMetricsFollowTheWorker) {
  Cluster c;
  c.StartApi();
  auto port = PickFreePort();
  ASSERT_TRUE(port);
  const std::string base = "http://127.0.0.1:" + std::to_string(*port);
  size_t w = c.StartWorker({{"SYNAPS_WORKER_LISTEN", "127.0.0.1:" + std::to_string(*port)},
                            {"SYNAPS_WORKER_CONCURRENCY", "7"}});
  auto get = [&](const std::string& path) {
    auto r = http::Send({.url = base + path, .timeout = std::chrono::seconds(5)});
    return r ? *r : http::Response{};
  };
  ASSERT_TRUE(testing::Eventually([&] { return get("/readyz").status == 200; }))
      << c.WorkerLog(w);
  auto live = get("/healthz");
  EXPECT_EQ(live.status, 200) << live.body;
  EXPECT_EQ(json::parse(live.body)["status"], "ok");

  EXPECT_EQ(c.WaitFinished(c.SubmitText("count me")["runId"])["status"], "succeeded");
  std::string metrics;
  ASSERT_TRUE(testing::Eventually([&] {
    metrics = get("/metrics").body;
    return metrics.find("synaps_worker_tasks_total{outcome=\"completed\"} 1") != std::string::npos;
  })) << metrics;
  EXPECT_NE(metrics.find("synaps_worker_concurrency 7"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("synaps_worker_in_flight 0"), std::string::npos) << metrics;
  EXPECT_EQ(get("/nope").status, 404);

  // A stopped process answers nothing, which fails the liveness probe by its timeout; one that
  // lost PostgreSQL stays live but reports not ready (tested at the queue level in fault tests).
  c.worker(w).Signal(SIGTERM);
  ASSERT_TRUE(c.worker(w).Wait(std::chrono::seconds(20)));
  EXPECT_EQ(get("/healthz").status, 0) << "the port is closed once the worker exited";
}

}  // namespace
}  // namespace synaps
