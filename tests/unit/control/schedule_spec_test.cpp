// Schedule specs, the registry's sixth kind: valid specs parse with their defaults, and every
// kind of mistake is refused naming the JSON path of the bad field.
#include "control/schedule_spec.h"

#include <gtest/gtest.h>

#include "control/snapshot.h"
#include "control/spec.h"

namespace synaps::control {
namespace {

using nlohmann::json;
using std::chrono::seconds;

const char* kCommand = R"("command":{"kind":"prompt","input":{"text":"report"}})";

json Spec(const std::string& rest) {
  return json::parse("{" + std::string(kCommand) + (rest.empty() ? "" : ",") + rest + "}");
}

TEST(ScheduleSpec, CronWithDefaults) {
  auto s = ParseSchedule("nightly", Spec(R"("cron":"0 2 * * *")"));
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->cron, "0 2 * * *");
  EXPECT_EQ(s->timezone, "UTC");
  EXPECT_EQ(s->overlap, Overlap::kSkip);
  EXPECT_EQ(s->catchup_window, seconds(60));
  EXPECT_EQ(s->jitter, seconds(0));
  EXPECT_FALSE(s->paused);
  EXPECT_FALSE(s->pause_on_failure);
  EXPECT_EQ(s->tenant, "default");
  EXPECT_EQ(s->command["kind"], "prompt");
  auto next = s->times.Next(*schedules::ParseTime("2026-01-01T00:00:00Z"));
  EXPECT_EQ(schedules::FormatTime(*next), "2026-01-01T02:00:00Z");
}

TEST(ScheduleSpec, EveryWithEveryOption) {
  auto s = ParseSchedule(
      "tick", Spec(R"("every":"5m","timezone":"Europe/Berlin","overlap":"bufferAll",
                     "catchupWindow":"10s","jitter":"2s","paused":true,"pauseOnFailure":true,
                     "tenant":"acme","description":"five-minutely")"));
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->every, seconds(300));
  EXPECT_EQ(s->timezone, "Europe/Berlin");
  EXPECT_EQ(s->overlap, Overlap::kBufferAll);
  EXPECT_EQ(s->catchup_window, seconds(10));
  EXPECT_EQ(s->jitter, seconds(2));
  EXPECT_TRUE(s->paused);
  EXPECT_TRUE(s->pause_on_failure);
  EXPECT_EQ(s->tenant, "acme");
  for (auto o : {Overlap::kSkip, Overlap::kBufferOne, Overlap::kBufferAll, Overlap::kCancelOther,
                 Overlap::kAllow}) {
    EXPECT_EQ(OverlapFromName(OverlapName(o)), o);
  }
}

TEST(ScheduleSpec, IsTheRegistrysSixthKind) {
  EXPECT_TRUE(IsKind("schedules"));
  EXPECT_TRUE(ValidateSpec("schedules", "nightly", Spec(R"("cron":"@daily")")));
  Snapshot snap = BuildSnapshot(
      3, {{"schedules", "nightly", 2, 3, Spec(R"("cron":"0 2 * * *")")},
          {"schedules", "broken", 1, 1, json::parse(R"({"cron":"nope"})")}});
  ASSERT_EQ(snap.schedules.size(), 1u);
  EXPECT_EQ(snap.schedules.at("nightly").version, 2);
  ASSERT_EQ(snap.invalid.size(), 1u);
  EXPECT_TRUE(snap.ToJson()["items"].contains("schedules"));
}

struct Invalid {
  std::string spec;   // JSON
  std::string field;  // expected Error::field
  std::string words;  // expected in the message
};

class InvalidScheduleTest : public ::testing::TestWithParam<Invalid> {};

TEST_P(InvalidScheduleTest, IsRefusedNamingTheField) {
  const Invalid& c = GetParam();
  auto r = ValidateSpec("schedules", "s", json::parse(c.spec));
  ASSERT_FALSE(r) << c.spec << " was accepted";
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(r.error().field, c.field) << r.error().message;
  EXPECT_NE(r.error().message.find(c.words), std::string::npos) << r.error().message;
  EXPECT_TRUE(r.error().message.starts_with(c.field + ": ")) << r.error().message;
}

std::string With(const std::string& rest) { return Spec(rest).dump(); }

INSTANTIATE_TEST_SUITE_P(
    Schedules, InvalidScheduleTest,
    ::testing::Values(
        Invalid{With(""), "spec.cron", "required: give cron"},
        Invalid{With(R"("cron":"* * * * *","every":"1m")"), "spec.every", "not both"},
        Invalid{With(R"("cron":"0 25 * * *")"), "spec.cron", "hour: 25 is out of range"},
        Invalid{With(R"("cron":"0 0 30 2 *")"), "spec.cron", "never fires"},
        Invalid{With(R"("cron":5)"), "spec.cron", "must be a string"},
        Invalid{With(R"("every":"0s")"), "spec.every", "must be within 1s"},
        Invalid{With(R"("every":"soon")"), "spec.every", "not a duration"},
        Invalid{With(R"("cron":"@daily","timezone":"Mars/Olympus_Mons")"), "spec.timezone",
                "unknown time zone"},
        Invalid{With(R"("cron":"@daily","timezone":"../../etc/passwd")"), "spec.timezone",
                "IANA time zone name"},
        Invalid{With(R"("cron":"@daily","overlap":"sometimes")"), "spec.overlap",
                "skip, bufferOne, bufferAll, cancelOther, allow"},
        Invalid{With(R"("cron":"@daily","catchupWindow":"1y")"), "spec.catchupWindow",
                "unknown unit"},
        Invalid{With(R"("cron":"@daily","catchupWindow":"31d")"), "spec.catchupWindow",
                "must be within"},
        Invalid{With(R"("cron":"@daily","jitter":"2d")"), "spec.jitter", "must be within"},
        Invalid{With(R"("cron":"@daily","paused":"yes")"), "spec.paused", "true or false"},
        Invalid{With(R"("cron":"@daily","pauseOnFailure":1)"), "spec.pauseOnFailure",
                "true or false"},
        Invalid{With(R"("cron":"@daily","tenant":"a b")"), "spec.tenant", "must match"},
        Invalid{With(R"("cron":"@daily","color":"red")"), "spec.color", "unknown field"},
        Invalid{R"({"cron":"@daily"})", "spec.command", "required"},
        Invalid{R"({"cron":"@daily","command":"run it"})", "spec.command", "must be an object"},
        Invalid{R"([1])", "spec", "must be an object"}));

}  // namespace
}  // namespace synaps::control
