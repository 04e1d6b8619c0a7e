// Fire times: durations, zones, `every` intervals, and the daylight-saving rules of cron
// schedules in three zones (a skipped wall-clock time fires once at the first instant after the
// gap; a repeated one fires once, at its first occurrence), including Lord Howe's 30-minute
// shift.
#include "schedules/timing.h"

#include <gtest/gtest.h>

#include <vector>

namespace synaps::schedules {
namespace {

using std::chrono::seconds;

TimePoint At(const char* rfc3339) {
  auto t = ParseTime(rfc3339);
  EXPECT_TRUE(t) << rfc3339;
  return t.value_or(TimePoint{});
}

FireTimes CronIn(const char* cron, const char* zone) {
  auto c = CronExpression::Parse(cron);
  auto z = LoadZone(zone, "spec.timezone");
  EXPECT_TRUE(c && z);
  return FireTimes::Cron(*c, *z);
}

std::vector<std::string> Formatted(const std::vector<TimePoint>& times) {
  std::vector<std::string> out;
  for (auto t : times) out.push_back(FormatTime(t));
  return out;
}

TEST(Duration, ParsesUnitsAndRefusesMistakes) {
  EXPECT_EQ(*ParseDuration("30s", "f"), seconds(30));
  EXPECT_EQ(*ParseDuration("5m", "f"), seconds(300));
  EXPECT_EQ(*ParseDuration("1h", "f"), seconds(3600));
  EXPECT_EQ(*ParseDuration("1h30m", "f"), seconds(5400));
  EXPECT_EQ(*ParseDuration("2d", "f"), seconds(172800));
  EXPECT_EQ(*ParseDuration("0s", "f"), seconds(0));
  for (const char* bad : {"", "5", "m", "5x", "1m1h", "1m1m", "-5s", "5 s", "1.5h"}) {
    auto r = ParseDuration(bad, "spec.every");
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().field, "spec.every");
  }
  EXPECT_EQ(FormatDuration(seconds(90)), "1m30s");
  EXPECT_EQ(FormatDuration(seconds(0)), "0s");
  EXPECT_EQ(FormatDuration(seconds(86400 + 3600)), "1d1h");
}

TEST(Zone, LoadsIanaNamesAndRefusesOthers) {
  EXPECT_TRUE(LoadZone("UTC", "f"));
  EXPECT_TRUE(LoadZone("Europe/Berlin", "f"));
  EXPECT_TRUE(LoadZone("America/Argentina/Buenos_Aires", "f"));
  for (const char* bad : {"Mars/Olympus_Mons", "../../etc/passwd", "/etc/passwd", "localtime",
                          "", "Europe/../UTC"}) {
    auto r = LoadZone(bad, "spec.timezone");
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().field, "spec.timezone");
    EXPECT_TRUE(r.error().message.starts_with("spec.timezone: ")) << r.error().message;
  }
}

TEST(Time, ParsesAndFormatsRfc3339) {
  EXPECT_EQ(FormatTime(At("2026-03-08T07:00:00Z")), "2026-03-08T07:00:00Z");
  EXPECT_EQ(FormatTime(At("2026-03-08T09:00:00.750+02:00")), "2026-03-08T07:00:00Z");
  EXPECT_FALSE(ParseTime("2026-03-08 07:00"));
  EXPECT_FALSE(ParseTime("yesterday"));
}

TEST(Every, IsAnchoredAtTheEpoch) {
  FireTimes every = FireTimes::Every(seconds(300));
  EXPECT_EQ(FormatTime(*every.Next(At("2026-01-01T10:02:03Z"))), "2026-01-01T10:05:00Z");
  EXPECT_EQ(FormatTime(*every.Next(At("2026-01-01T10:05:00Z"))), "2026-01-01T10:10:00Z");
  // An hour of 5-minute fire times is 12 of them.
  EXPECT_EQ(every.Between(At("2026-01-01T09:59:59Z"), At("2026-01-01T10:59:59Z"), 100).size(),
            12u);
  EXPECT_EQ(every.Between(At("2026-01-01T10:00:00Z"), At("2026-01-01T11:00:00Z"), 5).size(), 5u);
}

TEST(CronInZone, AppliesTheZonesOffset) {
  FireTimes nine = CronIn("0 9 * * *", "Europe/Berlin");
  EXPECT_EQ(FormatTime(*nine.Next(At("2026-01-15T00:00:00Z"))), "2026-01-15T08:00:00Z");
  EXPECT_EQ(FormatTime(*nine.Next(At("2026-07-15T00:00:00Z"))), "2026-07-15T07:00:00Z");
}

TEST(DaylightSaving, NewYorkSkippedHourFiresOnceAtTheNextValidInstant) {
  // 2026-03-08 02:00 EST becomes 03:00 EDT (07:00Z): 02:30 does not exist that day.
  FireTimes t = CronIn("30 2 * * *", "America/New_York");
  EXPECT_EQ(Formatted(t.Between(At("2026-03-07T00:00:00Z"), At("2026-03-10T00:00:00Z"), 10)),
            (std::vector<std::string>{"2026-03-07T07:30:00Z", "2026-03-08T07:00:00Z",
                                      "2026-03-09T06:30:00Z"}));
  // Four skipped times (02:00, 02:15, 02:30, 02:45) fire once, at 03:00 EDT.
  FireTimes quarter = CronIn("*/15 2 * * *", "America/New_York");
  EXPECT_EQ(
      Formatted(quarter.Between(At("2026-03-08T05:00:00Z"), At("2026-03-09T06:20:00Z"), 10)),
      (std::vector<std::string>{"2026-03-08T07:00:00Z", "2026-03-09T06:00:00Z",
                                "2026-03-09T06:15:00Z"}));
}

TEST(DaylightSaving, NewYorkRepeatedHourFiresOnceTheFirstTime) {
  // 2026-11-01 02:00 EDT becomes 01:00 EST (06:00Z): 01:30 happens at 05:30Z and 06:30Z.
  FireTimes t = CronIn("30 1 * * *", "America/New_York");
  EXPECT_EQ(Formatted(t.Between(At("2026-10-31T12:00:00Z"), At("2026-11-02T12:00:00Z"), 10)),
            (std::vector<std::string>{"2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"}));
  FireTimes half = CronIn("*/30 * * * *", "America/New_York");
  EXPECT_EQ(Formatted(half.Between(At("2026-11-01T04:59:00Z"), At("2026-11-01T07:31:00Z"), 10)),
            (std::vector<std::string>{"2026-11-01T05:00:00Z", "2026-11-01T05:30:00Z",
                                      "2026-11-01T07:00:00Z", "2026-11-01T07:30:00Z"}));
  // Asked from inside the second pass, the repeated times are already past.
  EXPECT_EQ(FormatTime(*half.Next(At("2026-11-01T06:10:00Z"))), "2026-11-01T07:00:00Z");
}

TEST(DaylightSaving, BerlinBothTransitions) {
  FireTimes t = CronIn("30 2 * * *", "Europe/Berlin");
  // 2026-03-29 02:00 CET becomes 03:00 CEST (01:00Z).
  EXPECT_EQ(Formatted(t.Between(At("2026-03-28T00:00:00Z"), At("2026-03-30T12:00:00Z"), 10)),
            (std::vector<std::string>{"2026-03-28T01:30:00Z", "2026-03-29T01:00:00Z",
                                      "2026-03-30T00:30:00Z"}));
  // 2026-10-25 03:00 CEST becomes 02:00 CET (01:00Z): 02:30 at 00:30Z and 01:30Z.
  EXPECT_EQ(Formatted(t.Between(At("2026-10-24T12:00:00Z"), At("2026-10-26T12:00:00Z"), 10)),
            (std::vector<std::string>{"2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"}));
}

TEST(DaylightSaving, LordHoweShiftsByHalfAnHour) {
  // 2026-10-04 02:00 +10:30 becomes 02:30 +11: 02:15 does not exist; fires at 02:30 (15:30Z).
  FireTimes skipped = CronIn("15 2 * * *", "Australia/Lord_Howe");
  EXPECT_EQ(FormatTime(*skipped.Next(At("2026-10-03T12:00:00Z"))), "2026-10-03T15:30:00Z");
  // 2026-04-05 02:00 +11 becomes 01:30 +10:30: 01:45 happens at 14:45Z and 15:15Z (April 4th);
  // the next day's 01:45 is at +10:30.
  FireTimes repeated = CronIn("45 1 * * *", "Australia/Lord_Howe");
  EXPECT_EQ(
      Formatted(repeated.Between(At("2026-04-04T12:00:00Z"), At("2026-04-05T16:00:00Z"), 10)),
      (std::vector<std::string>{"2026-04-04T14:45:00Z", "2026-04-05T15:15:00Z"}));
}

TEST(Jitter, IsStableAndWithinItsBound) {
  TimePoint t = At("2026-01-01T10:00:00Z");
  auto a = JitterFor("nightly", t, seconds(30));
  EXPECT_EQ(a, JitterFor("nightly", t, seconds(30)));
  EXPECT_GE(a.count(), 0);
  EXPECT_LT(a.count(), 30000);
  EXPECT_EQ(JitterFor("nightly", t, seconds(0)).count(), 0);
}

}  // namespace
}  // namespace synaps::schedules
