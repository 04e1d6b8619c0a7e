// Nothing from outside a process can end it (docs/reliability.md, "Bus and thread barriers"):
// junk published on every subject a worker and an API listen on — malformed JSON, mistyped
// fields, binary, oversized — is counted in synaps_bus_messages_rejected_total, logged, and
// dropped; the processes stay up, and the valid messages that follow still work (a wakeup starts
// a task although polling is off, a control change reaches the worker).
#include <gtest/gtest.h>
#include <nats/nats.h>

#include <sstream>

#include "bus/messages.h"
#include "support/cluster.h"
#include "support/test_stack.h"

namespace synaps {
namespace {

using nlohmann::json;
using testing::Cluster;
using testing::Eventually;

std::string Get(uint16_t port, const std::string& path) {
  auto r = http::Send({.url = "http://127.0.0.1:" + std::to_string(port) + path,
                       .timeout = std::chrono::seconds(5)});
  return r && r->status == 200 ? r->body : std::string();
}

// The value of the sample `name{labels}` in Prometheus text (-1 when absent).
double Sample(const std::string& text, const std::string& series) {
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  }
  return -1;
}

// Publishes core NATS messages, as any client with access to the bus can.
void PublishRaw(const std::vector<std::pair<std::string, std::string>>& messages) {
  natsConnection* conn = nullptr;
  ASSERT_EQ(natsConnection_ConnectTo(&conn, testing::TestStack::Get().nats().Url().c_str()),
            NATS_OK);
  for (const auto& [subject, payload] : messages) {
    EXPECT_EQ(natsConnection_Publish(conn, subject.c_str(), payload.data(),
                                     static_cast<int>(payload.size())),
              NATS_OK);
  }
  EXPECT_EQ(natsConnection_FlushTimeout(conn, 5000), NATS_OK);
  natsConnection_Destroy(conn);
}

std::vector<std::string> Junk(const std::string& mistyped) {
  return {"{\"snapshotVersion\":", mistyped, std::string("\xff\xfe\x00\x01\x80\xc3\x28", 7),
          "{\"pad\":\"" + std::string(bus::kMaxPayloadBytes + 100, 'x') + "\"}"};
}

TEST(BusJunkTest, JunkOnEverySubjectIsCountedAndDroppedAndValidMessagesStillWork) {
  // Polling is off in effect: only a wakeup on the bus makes the worker claim soon.
  Cluster c(std::map<std::string, std::string>{{"SYNAPS_POLL_INTERVAL_MS", "600000"}});
  c.StartApi();
  auto port = PickFreePort();
  ASSERT_TRUE(port);
  size_t w = c.StartWorker({{"SYNAPS_WORKER_LISTEN", "127.0.0.1:" + std::to_string(*port)}});
  ASSERT_TRUE(Eventually([&] { return !Get(*port, "/readyz").empty(); }));
  std::string metrics = Get(*port, "/metrics");
  const double version_before = Sample(metrics, "synaps_worker_control_snapshot_version");

  const std::map<std::string, std::string> subjects = {
      {"synaps.ctrl.prompts", R"({"snapshotVersion":"x"})"},
      {"synaps.run.x", R"({"type":5})"},
      {"synaps.wakeup.default", R"({"queue":5,"runId":"r"})"},
  };
  std::vector<std::pair<std::string, std::string>> messages;
  for (const auto& [subject, mistyped] : subjects) {
    for (const auto& payload : Junk(mistyped)) messages.emplace_back(subject, payload);
  }
  for (int round = 0; round < 25; ++round) PublishRaw(messages);  // 300 messages

  for (const char* family : {"synaps.ctrl.*", "synaps.run.*", "synaps.wakeup.*"}) {
    std::string series =
        std::string("synaps_bus_messages_rejected_total{subject=\"") + family + "\"}";
    EXPECT_TRUE(Eventually([&] { return Sample(Get(*port, "/metrics"), series) == 100; }, 20))
        << series << "\n"
        << Get(*port, "/metrics");
  }
  EXPECT_TRUE(c.worker(w).running());
  EXPECT_TRUE(c.api().running());
  EXPECT_EQ(c.Call("GET", "/healthz").status, 200);

  // A valid wakeup after the junk still starts work (the poll interval is ten minutes).
  json run = c.WaitFinished(c.SubmitText("after the junk")["runId"].get<std::string>(), 30);
  EXPECT_EQ(run["status"], "succeeded") << run.dump();
  // A valid control change still reaches the worker, without a task to claim.
  auto put = c.Call("PUT", "/v1/control/prompts/greet",
                    json{{"spec", {{"template", "Hello {{name}}!"}}}, {"reason", "test"}}.dump());
  ASSERT_EQ(put.status / 100, 2) << put.body;
  EXPECT_TRUE(Eventually(
      [&] {
        return Sample(Get(*port, "/metrics"), "synaps_worker_control_snapshot_version") >
               version_before;
      },
      20));
  // Logged, but not once per message.
  std::string log = testing::ReadFile(c.WorkerLog(w));
  size_t lines = 0;
  for (size_t at = log.find("bus: dropped a message"); at != std::string::npos;
       at = log.find("bus: dropped a message", at + 1)) {
    ++lines;
  }
  EXPECT_GE(lines, 3u);
  EXPECT_LE(lines, 12u) << "rejections are logged at most once per interval per family";
}

}  // namespace
}  // namespace synaps
