// The cron parser: the syntax it accepts, the mistakes it refuses naming the field, and the
// civil times it matches (steps, ranges, names, seconds, day-of-month OR day-of-week).
#include "schedules/cron.h"

#include <gtest/gtest.h>

#include <array>
#include <vector>

namespace synaps::schedules {
namespace {

using cctz::civil_second;

CronExpression Must(const std::string& text) {
  auto c = CronExpression::Parse(text);
  EXPECT_TRUE(c) << text << ": " << (c ? "" : c.error().message);
  return c ? *c : *CronExpression::Parse("* * * * *");
}

std::vector<civil_second> Times(const std::vector<std::array<int, 6>>& times) {
  std::vector<civil_second> out;
  for (const auto& t : times) out.emplace_back(t[0], t[1], t[2], t[3], t[4], t[5]);
  return out;
}

// The first `n` matches after `from`.
std::vector<civil_second> Next(const std::string& text, civil_second from, int n) {
  CronExpression c = Must(text);
  std::vector<civil_second> out;
  for (int i = 0; i < n; ++i) {
    auto next = c.NextAfter(from);
    if (!next) break;
    out.push_back(*next);
    from = *next;
  }
  return out;
}

TEST(CronParse, RefusesMistakesNamingTheField) {
  struct Case {
    const char* text;
    const char* words;
  };
  for (const Case& c : std::vector<Case>{
           {"", "has 0 fields"},
           {"* * * *", "has 4 fields"},
           {"* * * * * * *", "has 7 fields"},
           {"60 * * * *", "minute: 60 is out of range 0-59"},
           {"* 24 * * *", "hour: 24 is out of range 0-23"},
           {"* * 0 * *", "day-of-month: 0 is out of range 1-31"},
           {"* * 32 * *", "day-of-month: 32"},
           {"* * * 13 *", "month: 13 is out of range 1-12"},
           {"* * * * 8", "day-of-week: 8 is out of range 0-7"},
           {"* * * FOO *", "month: unknown name FOO"},
           {"* * * * FUNDAY", "day-of-week: unknown name FUNDAY"},
           {"*/0 * * * *", "minute: step '0'"},
           {"*/61 * * * *", "minute: step '61'"},
           {"*/x * * * *", "minute: step 'x'"},
           {"30-10 * * * *", "minute: range 30-10 runs backwards"},
           {"1,,2 * * * *", "minute: empty list item"},
           {"a * * * *", "minute: 'a' is not a number"},
           {"? * * * *", "minute: ? is only allowed in the day fields"},
           {"61 * * * * *", "second: 61 is out of range 0-59"},
           {"@often", "unknown macro @often"},
       }) {
    auto r = CronExpression::Parse(c.text);
    ASSERT_FALSE(r) << c.text << " was accepted";
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(r.error().message.find(c.words), std::string::npos)
        << c.text << ": " << r.error().message;
  }
}

TEST(CronMatch, EveryMinuteAndSteps) {
  EXPECT_EQ(Next("* * * * *", civil_second(2026, 1, 1, 10, 0, 30), 2),
            Times({{2026, 1, 1, 10, 1, 0}, {2026, 1, 1, 10, 2, 0}}));
  EXPECT_EQ(Next("*/15 * * * *", civil_second(2026, 1, 1, 10, 0, 0), 4),
            Times({{2026, 1, 1, 10, 15, 0},
                                       {2026, 1, 1, 10, 30, 0},
                                       {2026, 1, 1, 10, 45, 0},
                                       {2026, 1, 1, 11, 0, 0}}));
  // a/n runs from a to the maximum; a-b/n within the range.
  EXPECT_EQ(Next("5/20 * * * *", civil_second(2026, 1, 1, 10, 0, 0), 4),
            Times({{2026, 1, 1, 10, 5, 0},
                                       {2026, 1, 1, 10, 25, 0},
                                       {2026, 1, 1, 10, 45, 0},
                                       {2026, 1, 1, 11, 5, 0}}));
  EXPECT_EQ(Next("0 8-17/4 * * *", civil_second(2026, 1, 1, 0, 0, 0), 4),
            Times({{2026, 1, 1, 8, 0, 0},
                                       {2026, 1, 1, 12, 0, 0},
                                       {2026, 1, 1, 16, 0, 0},
                                       {2026, 1, 2, 8, 0, 0}}));
  EXPECT_EQ(Next("0,30 9 * * *", civil_second(2026, 1, 1, 9, 0, 0), 3),
            Times({{2026, 1, 1, 9, 30, 0},
                                       {2026, 1, 2, 9, 0, 0},
                                       {2026, 1, 2, 9, 30, 0}}));
}

TEST(CronMatch, NamesAndWeekdays) {
  // 2026-01-02 is a Friday.
  EXPECT_EQ(Next("0 9 * * MON-FRI", civil_second(2026, 1, 2, 9, 0, 0), 2),
            Times({{2026, 1, 5, 9, 0, 0}, {2026, 1, 6, 9, 0, 0}}));
  EXPECT_EQ(Next("0 9 * * mon-fri", civil_second(2026, 1, 2, 9, 0, 0), 1),
            Times({{2026, 1, 5, 9, 0, 0}}));
  // 0 and 7 are both Sunday (2026-01-04).
  EXPECT_EQ(Next("0 0 * * 7", civil_second(2026, 1, 1, 0, 0, 0), 1),
            Times({{2026, 1, 4, 0, 0, 0}}));
  EXPECT_EQ(Next("0 0 * * 0", civil_second(2026, 1, 1, 0, 0, 0), 1),
            Times({{2026, 1, 4, 0, 0, 0}}));
  EXPECT_EQ(Next("0 0 1 JAN,JUL *", civil_second(2026, 1, 1, 0, 0, 0), 2),
            Times({{2026, 7, 1, 0, 0, 0}, {2027, 1, 1, 0, 0, 0}}));
}

TEST(CronMatch, DayOfMonthOrDayOfWeekWhenBothRestricted) {
  // Vixie cron: "the 13th, or any Friday". 2026-02-06 and 2026-02-13 are Fridays.
  EXPECT_EQ(Next("0 0 13 * FRI", civil_second(2026, 2, 1, 0, 0, 0), 3),
            Times({{2026, 2, 6, 0, 0, 0},
                                       {2026, 2, 13, 0, 0, 0},
                                       {2026, 2, 20, 0, 0, 0}}));
  // With one of them *, both must match (the * one always does).
  EXPECT_EQ(Next("0 0 13 * *", civil_second(2026, 2, 1, 0, 0, 0), 1),
            Times({{2026, 2, 13, 0, 0, 0}}));
  EXPECT_EQ(Next("0 0 ? * FRI", civil_second(2026, 2, 7, 0, 0, 0), 1),
            Times({{2026, 2, 13, 0, 0, 0}}));
}

TEST(CronMatch, SecondsFirstWithSixFields) {
  CronExpression c = Must("*/20 * * * * *");
  EXPECT_TRUE(c.has_seconds());
  EXPECT_EQ(Next("*/20 * * * * *", civil_second(2026, 1, 1, 0, 0, 0), 3),
            Times({{2026, 1, 1, 0, 0, 20},
                                       {2026, 1, 1, 0, 0, 40},
                                       {2026, 1, 1, 0, 1, 0}}));
  EXPECT_FALSE(Must("0 * * * *").has_seconds());
}

TEST(CronMatch, MacrosLeapDaysAndDaysThatNeverCome) {
  EXPECT_EQ(Next("@daily", civil_second(2026, 1, 1, 0, 0, 0), 1),
            Times({{2026, 1, 2, 0, 0, 0}}));
  EXPECT_EQ(Next("@hourly", civil_second(2026, 1, 1, 0, 0, 0), 1),
            Times({{2026, 1, 1, 1, 0, 0}}));
  EXPECT_EQ(Next("@yearly", civil_second(2026, 1, 1, 0, 0, 0), 1),
            Times({{2027, 1, 1, 0, 0, 0}}));
  EXPECT_EQ(Next("0 0 29 2 *", civil_second(2026, 1, 1, 0, 0, 0), 2),
            Times({{2028, 2, 29, 0, 0, 0}, {2032, 2, 29, 0, 0, 0}}));
  EXPECT_EQ(Next("0 0 31 * *", civil_second(2026, 1, 31, 0, 0, 0), 1),
            Times({{2026, 3, 31, 0, 0, 0}}));
  EXPECT_FALSE(Must("0 0 30 2 *").NextAfter(civil_second(2026, 1, 1, 0, 0, 0)));
}

TEST(CronMatch, MatchesAgreesWithNextAfter) {
  CronExpression c = Must("15 10 * * 1");
  EXPECT_TRUE(c.Matches(civil_second(2026, 1, 5, 10, 15, 0)));
  EXPECT_FALSE(c.Matches(civil_second(2026, 1, 5, 10, 15, 1)));
  EXPECT_FALSE(c.Matches(civil_second(2026, 1, 6, 10, 15, 0)));
}

}  // namespace
}  // namespace synaps::schedules
