#include "k8s/summary.h"

#include <gtest/gtest.h>

namespace synaps::k8s {
namespace {

using nlohmann::json;
using std::chrono::system_clock;

system_clock::time_point At(const char* text) { return *ParseTimestamp(text); }

const char* kNow = "2024-05-01T12:00:00Z";

json RunningPod() {
  return json::parse(R"({
    "metadata": {"name": "web-1", "namespace": "agents", "creationTimestamp": "2024-04-28T10:00:00Z",
                 "labels": {"app": "web"}, "managedFields": [{"manager": "kubelet"}]},
    "spec": {"nodeName": "node-a", "containers": [{"name": "app", "image": "nginx:1.25"},
                                                  {"name": "sidecar", "image": "envoy:1.30"}]},
    "status": {"phase": "Running", "podIP": "10.0.0.5",
      "containerStatuses": [
        {"name": "app", "ready": true, "restartCount": 0, "image": "docker.io/library/nginx:1.25",
         "state": {"running": {"startedAt": "2024-04-28T10:00:05Z"}}},
        {"name": "sidecar", "ready": true, "restartCount": 2, "image": "envoy:1.30",
         "state": {"running": {"startedAt": "2024-04-30T10:00:05Z"}},
         "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137}}}]}})");
}

json CrashingPod() {
  return json::parse(R"({
    "metadata": {"name": "worker-7", "creationTimestamp": "2024-05-01T11:55:00Z"},
    "spec": {"nodeName": "node-b", "containers": [{"name": "worker", "image": "synaps:0.1.0"}]},
    "status": {"phase": "Running",
      "conditions": [{"type": "Ready", "status": "False", "reason": "ContainersNotReady",
                      "message": "containers with unready status: [worker]"}],
      "containerStatuses": [
        {"name": "worker", "ready": false, "restartCount": 5,
         "state": {"waiting": {"reason": "CrashLoopBackOff",
                               "message": "back-off 2m40s restarting failed container=worker"}},
         "lastState": {"terminated": {"reason": "Error", "exitCode": 1}}}]}})");
}

json PendingPod() {
  return json::parse(R"({
    "metadata": {"name": "big-1", "creationTimestamp": "2024-05-01T11:59:30Z"},
    "spec": {"containers": [{"name": "main", "image": "trainer:2"}]},
    "status": {"phase": "Pending",
      "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                      "message": "0/3 nodes are available: 3 Insufficient cpu."}]}})");
}

TEST(SummarizePodsTest, GivesWhatAnAgentNeeds) {
  json list = {{"kind", "PodList"}, {"items", {RunningPod(), CrashingPod(), PendingPod()}}};
  json s = SummarizePods(list, "agents", At(kNow));
  EXPECT_EQ(s["namespace"], "agents");
  EXPECT_EQ(s["count"], 3);
  EXPECT_FALSE(s.contains("more"));
  ASSERT_EQ(s["pods"].size(), 3u);

  const json& web = s["pods"][0];
  EXPECT_EQ(web["name"], "web-1");
  EXPECT_EQ(web["status"], "Running");
  EXPECT_EQ(web["phase"], "Running");
  EXPECT_EQ(web["ready"], "2/2");
  EXPECT_EQ(web["restarts"], 2);
  EXPECT_EQ(web["node"], "node-a");
  EXPECT_EQ(web["age"], "3d2h");
  EXPECT_FALSE(web.contains("message"));
  EXPECT_FALSE(web.contains("initContainers"));
  ASSERT_EQ(web["containers"].size(), 2u);
  EXPECT_EQ(web["containers"][0],
            json::parse(R"({"name":"app","image":"nginx:1.25","ready":true,"restarts":0,
                            "state":"running"})"));
  EXPECT_EQ(web["containers"][1]["lastState"], "terminated: OOMKilled (exit code 137)");
  // Noise an agent does not need stays out.
  EXPECT_EQ(s.dump().find("managedFields"), std::string::npos);
  EXPECT_EQ(s.dump().find("10.0.0.5"), std::string::npos);

  const json& crash = s["pods"][1];
  EXPECT_EQ(crash["status"], "CrashLoopBackOff");
  EXPECT_EQ(crash["ready"], "0/1");
  EXPECT_EQ(crash["restarts"], 5);
  EXPECT_EQ(crash["age"], "5m");
  EXPECT_EQ(crash["containers"][0]["state"],
            "waiting: CrashLoopBackOff (back-off 2m40s restarting failed container=worker)");
  EXPECT_EQ(crash["containers"][0]["lastState"], "terminated: Error (exit code 1)");
  EXPECT_EQ(crash["message"], "Ready: containers with unready status: [worker]");

  const json& pending = s["pods"][2];
  EXPECT_EQ(pending["status"], "Pending");
  EXPECT_EQ(pending["node"], "(not scheduled)");
  EXPECT_EQ(pending["ready"], "0/1");
  EXPECT_EQ(pending["age"], "30s");
  EXPECT_EQ(pending["message"], "PodScheduled: 0/3 nodes are available: 3 Insufficient cpu.");
  EXPECT_EQ(pending["containers"][0]["state"], "not started");
}

TEST(SummarizePodsTest, StatusColumnLikeKubectl) {
  json init = json::parse(R"({
    "metadata": {"name": "init-1"},
    "spec": {"initContainers": [{"name": "migrate", "image": "m"}, {"name": "seed", "image": "s"}],
             "containers": [{"name": "app", "image": "a"}]},
    "status": {"phase": "Pending",
      "initContainerStatuses": [
        {"name": "migrate", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
        {"name": "seed", "state": {"running": {}}}],
      "containerStatuses": [{"name": "app", "state": {"waiting": {"reason": "PodInitializing"}}}]}})");
  json failed_init = init;
  failed_init["status"]["initContainerStatuses"][1]["state"] =
      json::parse(R"({"terminated": {"exitCode": 3, "reason": "Error"}})");
  json terminating = RunningPod();
  terminating["metadata"]["deletionTimestamp"] = "2024-05-01T11:59:00Z";
  json completed = json::parse(R"({
    "metadata": {"name": "job-1"}, "spec": {"containers": [{"name": "c", "image": "i"}]},
    "status": {"phase": "Succeeded", "containerStatuses": [{"name": "c",
      "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}})");
  json evicted = json::parse(R"({
    "metadata": {"name": "ev-1"}, "spec": {"containers": []},
    "status": {"phase": "Failed", "reason": "Evicted",
               "message": "The node was low on resource: memory."}})");

  json s = SummarizePods({{"items", {init, failed_init, terminating, completed, evicted}}},
                         "agents", At(kNow));
  EXPECT_EQ(s["pods"][0]["status"], "Init:1/2");
  ASSERT_TRUE(s["pods"][0].contains("initContainers"));
  EXPECT_EQ(s["pods"][0]["initContainers"][1]["state"], "running");
  EXPECT_EQ(s["pods"][1]["status"], "Init:Error");
  EXPECT_EQ(s["pods"][1]["initContainers"][1]["state"], "terminated: Error (exit code 3)");
  EXPECT_EQ(s["pods"][2]["status"], "Terminating");
  EXPECT_EQ(s["pods"][3]["status"], "Completed");
  EXPECT_EQ(s["pods"][4]["status"], "Evicted");
  EXPECT_EQ(s["pods"][4]["message"], "The node was low on resource: memory.");
}

TEST(SummarizePodsTest, ToleratesMissingAndMistypedFields) {
  json s = SummarizePods(
      {{"items", {json::object(), {{"metadata", 5}, {"status", "x"}}, json::array()}}}, "a",
      At(kNow));
  ASSERT_EQ(s["pods"].size(), 3u);
  EXPECT_EQ(s["pods"][0]["status"], "Unknown");
  EXPECT_EQ(s["pods"][0]["ready"], "0/0");
  EXPECT_EQ(SummarizePods(json::object(), "a", At(kNow))["count"], 0);
  EXPECT_EQ(SummarizePods(json("not a list"), "a", At(kNow))["count"], 0);
}

TEST(SummarizePodsTest, SaysWhenTheServerHasMore) {
  json list = {{"items", {RunningPod()}}, {"metadata", {{"continue", "eyJ2IjoibWV0YS"}}}};
  json s = SummarizePods(list, "agents", At(kNow));
  EXPECT_EQ(s["more"], true);
  EXPECT_FALSE(s.contains("omitted"));
}

TEST(SummarizePodsTest, StaysUnderTheSizeCap) {
  json items = json::array();
  for (int i = 0; i < 200; ++i) {
    json pod = CrashingPod();
    pod["metadata"]["name"] = "worker-" + std::to_string(i);
    items.push_back(pod);
  }
  SummaryLimits limits;
  limits.max_bytes = 4096;
  json s = SummarizePods({{"items", items}}, "agents", At(kNow), limits);
  EXPECT_LE(s.dump().size(), 4096u);
  EXPECT_GT(s["count"].get<int>(), 0);
  EXPECT_EQ(s["count"].get<int>() + s["omitted"].get<int>(), 200);
  EXPECT_EQ(s["more"], true);
  EXPECT_EQ(s["pods"].size(), s["count"].get<size_t>());
}

TEST(SummarizePodsTest, CutsLongMessagesOnACharacterBoundary) {
  json pod = PendingPod();
  std::string message;
  for (int i = 0; i < 400; ++i) message += "é";  // two bytes each
  pod["status"]["message"] = message;
  SummaryLimits limits;
  limits.max_text_chars = 301;
  json s = SummarizePods({{"items", {pod}}}, "agents", At(kNow), limits);
  std::string cut = s["pods"][0]["message"];
  EXPECT_EQ(cut.size(), 300u + 3u);
  EXPECT_TRUE(cut.ends_with("é..."));
  EXPECT_NO_THROW(s.dump());  // valid UTF-8
}

json Event(const std::string& name, const std::string& type, const std::string& reason,
           const std::string& last, int count = 1) {
  return {{"metadata", {{"name", name}}},
          {"type", type},
          {"reason", reason},
          {"involvedObject", {{"kind", "Pod"}, {"name", name}}},
          {"message", reason + " on " + name},
          {"count", count},
          {"lastTimestamp", last}};
}

TEST(SummarizeEventsTest, NewestFirstAndLimited) {
  json newer_series = {
      {"metadata", {{"name", "c"}}},
      {"type", "Warning"},
      {"reason", "FailedScheduling"},
      {"involvedObject", {{"kind", "Pod"}, {"name", "big-1"}}},
      {"message", "0/3 nodes are available"},
      {"lastTimestamp", nullptr},
      {"eventTime", "2024-05-01T11:59:58.123456Z"},
      {"series", {{"count", 7}, {"lastObservedTime", "2024-05-01T11:59:59.000000Z"}}}};
  json list = {{"items",
                {Event("a", "Normal", "Pulled", "2024-05-01T10:00:00Z"),
                 Event("b", "Warning", "BackOff", "2024-05-01T11:58:00Z", 12), newer_series,
                 Event("d", "Normal", "Scheduled", "2024-04-30T12:00:00Z")}}};
  json s = SummarizeEvents(list, "agents", 3, At(kNow));
  EXPECT_EQ(s["count"], 3);
  EXPECT_EQ(s["more"], true);
  ASSERT_EQ(s["events"].size(), 3u);
  EXPECT_EQ(s["events"][0],
            json::parse(R"({"type":"Warning","reason":"FailedScheduling","object":"Pod/big-1",
                            "message":"0/3 nodes are available","count":7,
                            "last":"2024-05-01T11:59:59.000000Z","age":"1s"})"));
  EXPECT_EQ(s["events"][1]["reason"], "BackOff");
  EXPECT_EQ(s["events"][1]["count"], 12);
  EXPECT_EQ(s["events"][1]["age"], "2m");
  EXPECT_EQ(s["events"][2]["reason"], "Pulled");
  EXPECT_EQ(s["events"][2]["age"], "120m");

  json all = SummarizeEvents(list, "agents", 10, At(kNow));
  EXPECT_EQ(all["count"], 4);
  EXPECT_FALSE(all.contains("more"));
  EXPECT_EQ(all["events"][3]["age"], "24h");
}

TEST(SummarizeEventsTest, StaysUnderTheSizeCap) {
  json items = json::array();
  for (int i = 0; i < 100; ++i) {
    json e = Event("pod-" + std::to_string(i), "Warning", "BackOff", "2024-05-01T11:00:00Z");
    e["message"] = std::string(1000, 'x');
    items.push_back(e);
  }
  json s = SummarizeEvents({{"items", items}}, "agents", 100, At(kNow));
  EXPECT_LE(s.dump().size(), SummaryLimits{}.max_bytes);
  EXPECT_LE(s["events"][0]["message"].get<std::string>().size(), 303u);
  EXPECT_EQ(s["count"].get<int>() + s["omitted"].get<int>(), 100);
}

TEST(FormatAgeTest, LikeKubectl) {
  using std::chrono::seconds;
  EXPECT_EQ(FormatAge(seconds(0)), "0s");
  EXPECT_EQ(FormatAge(seconds(119)), "119s");
  EXPECT_EQ(FormatAge(seconds(120)), "2m");
  EXPECT_EQ(FormatAge(seconds(5 * 60 + 30)), "5m30s");
  EXPECT_EQ(FormatAge(seconds(10 * 60 + 30)), "10m");
  EXPECT_EQ(FormatAge(seconds(179 * 60)), "179m");
  EXPECT_EQ(FormatAge(seconds(3 * 3600 + 5 * 60)), "3h5m");
  EXPECT_EQ(FormatAge(seconds(5 * 3600)), "5h");
  EXPECT_EQ(FormatAge(seconds(30 * 3600)), "30h");
  EXPECT_EQ(FormatAge(seconds(3 * 86400 + 4 * 3600)), "3d4h");
  EXPECT_EQ(FormatAge(seconds(120 * 86400)), "120d");
  EXPECT_EQ(FormatAge(seconds(800 * 86400)), "2y70d");
  EXPECT_EQ(FormatAge(seconds(730 * 86400)), "2y");
  EXPECT_EQ(FormatAge(seconds(9 * 365 * 86400)), "9y");
  EXPECT_EQ(FormatAge(seconds(-5)), "0s");
}

TEST(ParseTimestampTest, Rfc3339AsTheApiServerWritesIt) {
  auto base = ParseTimestamp("2024-05-01T12:00:00Z");
  ASSERT_TRUE(base);
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::seconds>(base->time_since_epoch()).count(),
            1714564800);
  auto micro = ParseTimestamp("2024-05-01T12:00:00.250000Z");
  ASSERT_TRUE(micro);
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::milliseconds>(*micro - *base).count(), 250);
  auto offset = ParseTimestamp("2024-05-01T14:00:00+02:00");
  ASSERT_TRUE(offset);
  EXPECT_EQ(*offset, *base);
  for (const char* bad :
       {"", "2024-05-01", "2024-05-01 12:00:00Z", "2024-13-01T12:00:00Z", "2024-05-01T12:00:00",
        "2024-05-01T12:00:00.Z", "2024-02-30T00:00:00Z", "2024-05-01T12:00:00Zjunk"}) {
    EXPECT_FALSE(ParseTimestamp(bad)) << bad;
  }
}

}  // namespace
}  // namespace synaps::k8s
