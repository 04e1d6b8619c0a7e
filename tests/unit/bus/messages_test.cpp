// The typed parsers of bus payloads and the rejection counter (bus/messages.h,
// bus/rejected_messages.h): junk of every kind is an error value naming what is wrong, never an
// exception; rejections are counted by subject family and logged at most once per interval.
#include "bus/messages.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <sstream>
#include <thread>

#include "bus/rejected_messages.h"

namespace synaps::bus {
namespace {

const std::string kBinary("\xff\xfe\x00\x01\x80\xc3\x28{", 8);

TEST(BusMessagesTest, ParsesWhatSynapsPublishes) {
  auto wakeup = ParseWakeupMessage(R"({"queue":"default","runId":"r1"})");
  ASSERT_TRUE(wakeup) << wakeup.error().message;
  EXPECT_EQ(wakeup->queue, "default");
  EXPECT_EQ(wakeup->run_id, "r1");
  auto run = ParseRunMessage(R"({"type":"run.cancelled","runId":"r1","taskId":"t","new":[1]})");
  ASSERT_TRUE(run) << run.error().message;
  EXPECT_EQ(run->type, "run.cancelled");
  EXPECT_EQ(run->run_id, "r1");
  auto ctrl =
      ParseControlMessage(R"({"kind":"prompts","name":"p","version":2,"snapshotVersion":17})");
  ASSERT_TRUE(ctrl) << ctrl.error().message;
  EXPECT_EQ(ctrl->snapshot_version, 17);
  EXPECT_EQ(ctrl->kind, "prompts");
}

TEST(BusMessagesTest, MistypedFieldsAreErrorsNamingTheField) {
  auto ctrl = ParseControlMessage(R"({"snapshotVersion":"x"})");
  ASSERT_FALSE(ctrl);
  EXPECT_EQ(ctrl.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(ctrl.error().field, "snapshotVersion");
  EXPECT_NE(ctrl.error().message.find("must be a positive integer"), std::string::npos)
      << ctrl.error().message;
  auto run = ParseRunMessage(R"({"type":5})");
  ASSERT_FALSE(run);
  EXPECT_EQ(run.error().field, "type");
  EXPECT_FALSE(ParseRunMessage(R"({"type":"run.cancelled","runId":7})"));
  EXPECT_FALSE(ParseWakeupMessage(R"({"queue":["default"]})"));
  for (const char* bad :
       {R"({"snapshotVersion":-1})", R"({"snapshotVersion":0})", R"({"snapshotVersion":1.5})",
        R"({"snapshotVersion":1e400})", R"({"snapshotVersion":18446744073709551615})",
        R"({"snapshotVersion":3,"kind":{}})", R"({})"}) {
    EXPECT_FALSE(ParseControlMessage(bad)) << bad;
  }
}

TEST(BusMessagesTest, MalformedBinaryAndOversizedPayloadsAreErrors) {
  for (const std::string& bad :
       {std::string(""), std::string("{"), std::string("{\"type\":"), std::string("null"),
        std::string("[1,2]"), std::string("\"run.cancelled\""), kBinary,
        std::string("{\"type\":\"\xff\",\"runId\":\"r\"}"), std::string(100000, '[')}) {
    auto r = ParseRunMessage(bad);
    ASSERT_FALSE(r) << bad.substr(0, 20);
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  }
  std::string big =
      R"({"type":"run.cancelled","runId":"r","pad":")" + std::string(kMaxPayloadBytes, 'x') + "\"}";
  auto r = ParseRunMessage(big);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("exceeds"), std::string::npos) << r.error().message;
}

TEST(BusMessagesTest, SubjectFamiliesAreTheFirstTwoTokens) {
  EXPECT_EQ(SubjectFamily("synaps.ctrl.prompts"), "synaps.ctrl.*");
  EXPECT_EQ(SubjectFamily("synaps.run.0192-abc"), "synaps.run.*");
  EXPECT_EQ(SubjectFamily("synaps.wakeup.default"), "synaps.wakeup.*");
  EXPECT_EQ(SubjectFamily("synaps.test"), "synaps.test");
  EXPECT_EQ(SubjectFamily("x"), "x");
}

class RejectedMessagesTest : public ::testing::Test {
 protected:
  RejectedMessagesTest() : sink_(std::make_shared<spdlog::sinks::ostream_sink_mt>(log_)) {
    previous_ = spdlog::default_logger();
    spdlog::set_default_logger(std::make_shared<spdlog::logger>("capture", sink_));
  }
  ~RejectedMessagesTest() override { spdlog::set_default_logger(previous_); }

  int LoggedLines() const {
    std::string text = log_.str();
    return static_cast<int>(std::count(text.begin(), text.end(), '\n'));
  }

  std::ostringstream log_;
  std::shared_ptr<spdlog::sinks::ostream_sink_mt> sink_;
  std::shared_ptr<spdlog::logger> previous_;
};

TEST_F(RejectedMessagesTest, CountsByFamilyAndLogsOncePerInterval) {
  RejectedMessages rejected(std::chrono::milliseconds(200));
  Error why{ErrorCode::kInvalidArgument, "\"type\" must be a string, not number", "type"};
  for (int i = 0; i < 50; ++i) rejected.Record("synaps.run.r" + std::to_string(i), why);
  rejected.Record("synaps.ctrl.prompts", why);
  auto counts = rejected.Counts();
  EXPECT_EQ(counts["synaps.run.*"], 50u);
  EXPECT_EQ(counts["synaps.ctrl.*"], 1u);
  EXPECT_EQ(counts.size(), 2u) << "one label per family, not per subject";
  EXPECT_EQ(LoggedLines(), 2) << log_.str();
  std::this_thread::sleep_for(std::chrono::milliseconds(250));  // the interval under test
  rejected.Record("synaps.run.again", why);
  EXPECT_EQ(LoggedLines(), 3);
  EXPECT_NE(log_.str().find("and 49 more on synaps.run.*"), std::string::npos) << log_.str();
}

TEST_F(RejectedMessagesTest, FamiliesAreCapped) {
  RejectedMessages rejected;
  Error why{ErrorCode::kInvalidArgument, "junk", {}};
  for (int i = 0; i < 100; ++i) rejected.Record("a" + std::to_string(i) + ".b.c", why);
  auto counts = rejected.Counts();
  EXPECT_EQ(counts.size(), RejectedMessages::kMaxFamilies + 1);
  EXPECT_EQ(counts["other"], 100u - RejectedMessages::kMaxFamilies);
}

}  // namespace
}  // namespace synaps::bus
