// One run at a time per thread (docs/flow-control.md), with real processes: `synaps api`, two
// `synaps worker`s, PostgreSQL and NATS. The model provider is a fake OpenAI-compatible server
// (tests/support/fake_openai.h): providers are paid outside services. What the fake receives is
// what each run saw of its thread.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "support/cluster.h"
#include "support/fake_openai.h"

namespace synaps {
namespace {

using nlohmann::json;
using testing::Cluster;
using testing::Eventually;
using testing::FakeOpenAi;
using testing::FakeReply;
using testing::FakeRequest;

std::string RouteTo(const FakeOpenAi& fake) {
  return json{
      {"provider", "openai-compatible"}, {"baseUrl", fake.base_url()}, {"model", "fake-model"}}
      .dump();
}

// "long ..." questions stream for ~6 s (a piece every 100 ms); others are answered after
// 300 ms with "answer to: <question>".
FakeReply Answer(const FakeRequest& req, int) {
  std::string text = req.Json()["messages"].back()["content"].get<std::string>();
  if (text.rfind("long", 0) == 0) {
    std::vector<std::string> pieces;
    for (int i = 0; i < 60; ++i) pieces.push_back("w" + std::to_string(i) + " ");
    FakeReply r = FakeOpenAi::Stream(pieces);
    r.event_interval = std::chrono::milliseconds(100);
    return r;
  }
  FakeReply r = FakeOpenAi::Completion("answer to: " + text);
  r.delay = std::chrono::milliseconds(300);
  return r;
}

// The messages the fake received for the question `text` (the last user message).
json MessagesFor(const FakeOpenAi& fake, const std::string& text) {
  for (const auto& r : fake.requests()) {
    json body = r.Json();
    if (body["messages"].back()["content"] == text) return body["messages"];
  }
  return json();
}

json Prompt(const std::string& text, const std::string& thread = {},
            const std::string& on_busy = {}) {
  json body = {{"kind", "prompt"}, {"input", {{"text", text}}}};
  if (!thread.empty()) body["threadId"] = thread;
  if (!on_busy.empty()) body["onThreadBusy"] = on_busy;
  return body;
}

std::vector<json> EventsOf(const json& run, const std::string& type) {
  std::vector<json> out;
  for (const auto& e : run["events"]) {
    if (e["type"] == type) out.push_back(e);
  }
  return out;
}

class ThreadsTest : public ::testing::Test {
 protected:
  ThreadsTest() : fake_(Answer) {
    c_.StartApi();
    c_.StartWorker({{"SYNAPS_DEFAULT_ROUTE", RouteTo(fake_)}});
    c_.StartWorker({{"SYNAPS_DEFAULT_ROUTE", RouteTo(fake_)}});
  }

  // Waits until the run's task has streamed some of its answer into the ledger.
  void WaitForProgress(const std::string& run_id) {
    ASSERT_TRUE(Eventually([&] {
      json run = json::parse(c_.Call("GET", "/v1/runs/" + run_id).body, nullptr, false);
      return run.is_object() && !EventsOf(run, "task.progress").empty();
    })) << "run "
        << run_id << " streamed nothing";
  }

  FakeOpenAi fake_;
  Cluster c_{{{"SYNAPS_POLL_INTERVAL_MS", "200"}, {"SYNAPS_LEASE_SECONDS", "3"}}};
};

TEST_F(ThreadsTest, AThreadsRunsNeverOverlapAndEachSeesTheAnswersBeforeIt) {
  // Five questions on one thread, submitted at once, two workers free: they run one at a time,
  // in submit order, and each request carries every earlier question and answer.
  json first = c_.Submit(Prompt("q0"));
  const std::string thread = first["threadId"];
  std::vector<std::string> runs = {first["runId"]};
  for (int i = 1; i < 5; ++i) {
    json r = c_.Submit(Prompt("q" + std::to_string(i), thread));
    ASSERT_EQ(r["waiting"]["reason"], "thread") << r.dump();
    runs.push_back(r["runId"]);
  }
  // A waiting run says why, and behind which run.
  // (It waits behind four runs of 300 ms each: still queued when read right after its submit.)
  json waiting = json::parse(c_.Call("GET", "/v1/runs/" + runs[4]).body);
  ASSERT_EQ(waiting["status"], "queued") << waiting.dump();
  EXPECT_EQ(waiting["waiting"]["reason"], "thread") << waiting.dump();
  EXPECT_EQ(waiting["tasks"][0]["waiting"]["reason"], "thread") << waiting.dump();
  for (const auto& id : runs) ASSERT_EQ(c_.WaitFinished(id)["status"], "succeeded");

  EXPECT_EQ(c_.Scalar("SELECT count(*) FROM synaps.runs a JOIN synaps.runs b"
                      " ON b.thread_id = a.thread_id AND b.thread_seq > a.thread_seq"
                      " WHERE a.thread_id = $1::uuid AND b.started_at < a.finished_at",
                      {thread}),
            0)
      << "a later run started before an earlier one finished";
  for (int i = 0; i < 5; ++i) {
    json messages = MessagesFor(fake_, "q" + std::to_string(i));
    ASSERT_EQ(messages.size(), static_cast<size_t>(2 * i + 1)) << messages.dump();
    for (int k = 0; k < i; ++k) {
      EXPECT_EQ(messages[2 * k]["content"], "q" + std::to_string(k));
      EXPECT_EQ(messages[2 * k + 1]["content"], "answer to: q" + std::to_string(k));
    }
  }
  json last = c_.WaitFinished(runs[4]);
  ASSERT_FALSE(EventsOf(last, "task.waiting").empty()) << last.dump();
  EXPECT_EQ(EventsOf(last, "task.waiting")[0]["data"]["runId"], runs[0]);
  ASSERT_EQ(EventsOf(last, "task.ready").size(), 1u);
  EXPECT_EQ(EventsOf(last, "task.ready")[0]["data"]["after"], runs[3]);
}

TEST_F(ThreadsTest, RejectNamesTheRunningRunAndWritesNothing) {
  json first = c_.Submit(Prompt("long story"));
  const std::string thread = first["threadId"];
  WaitForProgress(first["runId"]);
  auto r = c_.Call("POST", "/v1/commands/submit", Prompt("q", thread, "reject").dump());
  ASSERT_EQ(r.status, 409) << r.body;
  json err = json::parse(r.body)["error"];
  EXPECT_EQ(err["code"], "thread_busy");
  EXPECT_EQ(err["runId"], first["runId"]);
  EXPECT_EQ(err["threadId"], thread);
  EXPECT_EQ(err["queuedBehind"], 0);
  EXPECT_NE(err["message"].get<std::string>().find(first["runId"].get<std::string>()),
            std::string::npos);
  EXPECT_EQ(c_.Scalar("SELECT count(*) FROM synaps.runs WHERE thread_id = $1::uuid", {thread}), 1);
  EXPECT_EQ(c_.Scalar("SELECT last_run_seq FROM synaps.threads WHERE id = $1::uuid", {thread}), 1)
      << "a refusal takes no place in the thread";
  // Invalid strategies are refused before anything is written.
  auto bad = c_.Call("POST", "/v1/commands/submit", Prompt("q", thread, "later").dump());
  EXPECT_EQ(bad.status, 400) << bad.body;
  EXPECT_EQ(json::parse(bad.body)["error"]["field"], "onThreadBusy");
  // On a free thread, reject just runs.
  ASSERT_EQ(c_.WaitFinished(first["runId"])["status"], "succeeded");
  json next = c_.Submit(Prompt("after", thread, "reject"));
  EXPECT_EQ(c_.WaitFinished(next["runId"])["status"], "succeeded");
}

TEST_F(ThreadsTest, InterruptKeepsThePartialAnswerAndRollbackDropsTheTurn) {
  json first = c_.Submit(Prompt("long one"));
  const std::string thread = first["threadId"];
  const std::string run1 = first["runId"];
  WaitForProgress(run1);
  json second = c_.Submit(Prompt("q2", thread, "interrupt"));
  ASSERT_EQ(second["cancelledRuns"], json::array({run1})) << second.dump();
  EXPECT_FALSE(second.contains("waiting")) << "the interrupting run starts at once";
  json cancelled = c_.WaitFinished(run1);
  EXPECT_EQ(cancelled["status"], "cancelled");
  EXPECT_EQ(cancelled["threadTurn"], "interrupted");
  ASSERT_EQ(c_.WaitFinished(second["runId"])["status"], "succeeded");
  json messages = MessagesFor(fake_, "q2");
  ASSERT_EQ(messages.size(), 3u) << messages.dump();
  EXPECT_EQ(messages[0]["content"], "long one");
  std::string partial = messages[1]["content"];
  EXPECT_EQ(partial.rfind("w0 ", 0), 0u) << "the partial answer is kept: " << partial;
  EXPECT_LT(partial.size(), 60u * 3) << "only what was streamed before the interrupt";

  // Rollback: the cancelled run's turn is dropped; earlier turns stay.
  json third = c_.Submit(Prompt("long three", thread));
  WaitForProgress(third["runId"]);
  json fourth = c_.Submit(Prompt("q4", thread, "rollback"));
  ASSERT_EQ(fourth["cancelledRuns"], json::array({third["runId"]})) << fourth.dump();
  EXPECT_EQ(c_.WaitFinished(third["runId"])["threadTurn"], "rolledBack");
  ASSERT_EQ(c_.WaitFinished(fourth["runId"])["status"], "succeeded");
  messages = MessagesFor(fake_, "q4");
  ASSERT_EQ(messages.size(), 5u) << messages.dump();
  EXPECT_EQ(messages[0]["content"], "long one");
  EXPECT_EQ(messages[1]["content"], partial);
  EXPECT_EQ(messages[2]["content"], "q2");
  EXPECT_EQ(messages[3]["content"], "answer to: q2");
  EXPECT_EQ(messages[4]["content"], "q4");
}

TEST_F(ThreadsTest, AWaitingRunSurvivesTheDeathOfTheWorkerRunningTheThread) {
  // The thread's state is in PostgreSQL: with the worker running the first run killed, the run
  // is claimed again once its lease expires, and the waiting run follows it.
  c_.worker(1).Stop();
  json first = c_.Submit(Prompt("long story"));
  const std::string thread = first["threadId"];
  WaitForProgress(first["runId"]);
  json second = c_.Submit(Prompt("after the story", thread));
  ASSERT_EQ(second["waiting"]["runId"], first["runId"]);
  c_.worker(0).Signal(SIGKILL);
  c_.worker(0).Wait(std::chrono::seconds(5));
  c_.StartWorker({{"SYNAPS_DEFAULT_ROUTE", RouteTo(fake_)}});
  ASSERT_EQ(c_.WaitFinished(first["runId"], 90)["status"], "succeeded");
  ASSERT_EQ(c_.WaitFinished(second["runId"], 60)["status"], "succeeded");
  EXPECT_EQ(MessagesFor(fake_, "after the story").size(), 3u);
}

}  // namespace
}  // namespace synaps
