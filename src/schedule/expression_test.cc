#include "schedule/expression.h"

#include <gtest/gtest.h>

namespace gust::schedule {
namespace {

int64_t At(int y, int mo, int d, int h = 0, int mi = 0, int s = 0) {
  return (DaysFromCivil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s) * 1000;
}

ScheduleExpression Must(const char* text) {
  auto e = ScheduleExpression::Parse(text);
  EXPECT_TRUE(e.ok()) << text << ": " << e.status().ToString();
  return std::move(e).value();
}

std::string ErrorOf(const char* text) {
  auto e = ScheduleExpression::Parse(text);
  EXPECT_FALSE(e.ok()) << text << " parsed";
  return e.ok() ? "" : e.status().message();
}

std::string Next(const char* text, int64_t after, int64_t anchor = 0) {
  auto next = Must(text).NextAfter(after, anchor);
  return next ? FormatEventTime(*next) : "never";
}

TEST(Calendar, WeekdaysAndMonths) {
  EXPECT_EQ(DayOfWeek(2026, 11, 25), 4);  // Wednesday
  EXPECT_EQ(DayOfWeek(1970, 1, 1), 5);    // Thursday
  EXPECT_EQ(DaysInMonth(2028, 2), 29);
  EXPECT_EQ(DaysInMonth(2100, 2), 28);
  EXPECT_EQ(DaysInMonth(2000, 2), 29);
  EXPECT_EQ(FormatEventTime(At(2026, 11, 25, 10, 15, 30) + 999), "2026-11-25T10:15:30Z");
}

TEST(Rate, FiresAtAnchorPlusMultiplesOfThePeriod) {
  int64_t anchor = At(2026, 11, 25, 10, 0, 7);
  auto e = Must("rate(5 minutes)");
  EXPECT_TRUE(e.is_rate());
  EXPECT_EQ(e.period_ms(), 300'000);
  EXPECT_EQ(*e.NextAfter(anchor - 1, anchor), anchor);
  EXPECT_EQ(*e.NextAfter(anchor, anchor), anchor + 300'000);
  EXPECT_EQ(*e.NextAfter(anchor + 299'999, anchor), anchor + 300'000);
  EXPECT_EQ(*e.NextAfter(anchor + 300'000, anchor), anchor + 600'000);
  EXPECT_EQ(Must("rate(1 minute)").period_ms(), 60'000);
  EXPECT_EQ(Must("rate(1 hour)").period_ms(), 3'600'000);
  EXPECT_EQ(Must("rate(2 days)").period_ms(), 2 * 86'400'000);
  EXPECT_EQ(Must("rate(1 second)").period_ms(), 1000);
  EXPECT_EQ(Must("rate(30 seconds)").period_ms(), 30'000);
}

TEST(Rate, LastTickBeforeIsTheOneCatchUp) {
  int64_t anchor = At(2026, 11, 25);
  auto e = Must("rate(1 hour)");
  // Down from 01:30 to 05:10: the ticks at 02, 03, 04 and 05 were missed; the catch-up is 05:00.
  EXPECT_EQ(*e.LastAtOrBefore(At(2026, 11, 25, 5, 10), At(2026, 11, 25, 1, 0), anchor),
            At(2026, 11, 25, 5, 0));
  // Nothing missed.
  EXPECT_FALSE(e.LastAtOrBefore(At(2026, 11, 25, 1, 30), At(2026, 11, 25, 1, 0), anchor));
}

TEST(Rate, Errors) {
  EXPECT_EQ(ErrorOf("rate(1 minutes)"),
            "invalid schedule expression \"rate(1 minutes)\": position 8: a value of 1 takes the "
            "singular unit: rate(1 minute)");
  EXPECT_NE(ErrorOf("rate(5 minute)").find("position 8: a value above 1 takes the plural unit"),
            std::string::npos);
  EXPECT_NE(ErrorOf("rate(0 minutes)").find("position 6: the value must be at least 1"),
            std::string::npos);
  EXPECT_NE(ErrorOf("rate(5 fortnights)").find("position 8: unknown unit 'fortnights'"),
            std::string::npos);
  EXPECT_NE(ErrorOf("rate(five minutes)").find("position 6: expected a positive whole number"),
            std::string::npos);
  EXPECT_NE(ErrorOf("rate(5minutes)").find("position 7: expected a space and a unit"),
            std::string::npos);
  EXPECT_NE(ErrorOf("rate(5 minutes").find("position 14: expected ')'"), std::string::npos);
  EXPECT_NE(ErrorOf("every 5 minutes").find("position 1: expected rate(...) or cron(...)"),
            std::string::npos);
  EXPECT_NE(ErrorOf("").find("empty"), std::string::npos);
  EXPECT_NE(ErrorOf("rate(-5 minutes)").find("position 6"), std::string::npos);
}

// The examples of EventBridge's documentation.
TEST(Cron, DocumentedExamples) {
  int64_t wed = At(2026, 11, 25, 10, 7);  // Wednesday 10:07
  EXPECT_EQ(Next("cron(0 10 * * ? *)", wed), "2026-11-26T10:00:00Z");
  EXPECT_EQ(Next("cron(15 12 * * ? *)", wed), "2026-11-25T12:15:00Z");
  EXPECT_EQ(Next("cron(0 18 ? * MON-FRI *)", At(2026, 11, 27, 19)), "2026-11-30T18:00:00Z");
  EXPECT_EQ(Next("cron(0 8 1 * ? *)", wed), "2026-12-01T08:00:00Z");
  EXPECT_EQ(Next("cron(0/15 * * * ? *)", wed), "2026-11-25T10:15:00Z");
  EXPECT_EQ(Next("cron(0/10 * ? * MON-FRI *)", At(2026, 11, 28, 3)), "2026-11-30T00:00:00Z");
  EXPECT_EQ(Next("cron(0/5 8-17 ? * MON-FRI *)", At(2026, 11, 25, 17, 56)), "2026-11-26T08:00:00Z");
  EXPECT_EQ(Next("cron(0 9 ? * 2#1 *)", wed), "2026-12-07T09:00:00Z");  // first Monday
}

TEST(Cron, ListsRangesStepsAndNames) {
  int64_t t = At(2026, 11, 25, 10, 7);
  EXPECT_EQ(Next("cron(5/20 * * * ? *)", t), "2026-11-25T10:25:00Z");
  EXPECT_EQ(Next("cron(1,2,58 * * * ? *)", At(2026, 11, 25, 10, 2)), "2026-11-25T10:58:00Z");
  EXPECT_EQ(Next("cron(0 0 ? * FRI-MON *)", t), "2026-11-27T00:00:00Z");  // wraps
  EXPECT_EQ(Next("cron(0 0 ? * sun *)", t), "2026-11-29T00:00:00Z");      // any case
  EXPECT_EQ(Next("cron(0 0 1 JAN,jul ? *)", t), "2027-01-01T00:00:00Z");
  EXPECT_EQ(Next("cron(0 0 1 NOV-FEB ? *)", t), "2026-12-01T00:00:00Z");
  EXPECT_EQ(Next("cron(0 0 1 1 ? 2030-2032)", t), "2030-01-01T00:00:00Z");
  EXPECT_EQ(Next("cron(0 0 1 1 ? 2020/4)", t), "2028-01-01T00:00:00Z");
  EXPECT_EQ(Next("cron(* * * * ? *)", At(2026, 11, 25, 23, 59, 30)), "2026-11-26T00:00:00Z");
}

TEST(Cron, LastWeekdayAndNth) {
  EXPECT_EQ(Next("cron(0 0 L * ? *)", At(2026, 2, 1)), "2026-02-28T00:00:00Z");
  EXPECT_EQ(Next("cron(0 0 L * ? *)", At(2028, 2, 1)), "2028-02-29T00:00:00Z");
  EXPECT_EQ(Next("cron(0 0 L-2 * ? *)", At(2028, 2, 1)), "2028-02-27T00:00:00Z");
  // 1 Aug 2026 is a Saturday: the nearest weekday inside the month is Monday the 3rd.
  EXPECT_EQ(Next("cron(0 0 1W * ? *)", At(2026, 7, 31)), "2026-08-03T00:00:00Z");
  // 31 May 2026 is a Sunday: Friday the 29th (W never leaves the month).
  EXPECT_EQ(Next("cron(0 0 31W * ? *)", At(2026, 5, 1)), "2026-05-29T00:00:00Z");
  // 15 Nov 2026 is a Sunday: Monday the 16th.
  EXPECT_EQ(Next("cron(0 0 15W * ? *)", At(2026, 11, 1)), "2026-11-16T00:00:00Z");
  // Last weekday of Feb 2026 (the 28th is a Saturday): the 27th.
  EXPECT_EQ(Next("cron(0 0 LW * ? *)", At(2026, 2, 1)), "2026-02-27T00:00:00Z");
  EXPECT_EQ(Next("cron(0 0 ? * 6L *)", At(2026, 11, 1)), "2026-11-27T00:00:00Z");    // last Friday
  EXPECT_EQ(Next("cron(0 0 ? * L *)", At(2026, 11, 25)), "2026-11-28T00:00:00Z");    // Saturday
  EXPECT_EQ(Next("cron(0 0 ? * 3#2 *)", At(2026, 11, 25)), "2026-12-08T00:00:00Z");  // 2nd Tue
  EXPECT_EQ(Next("cron(0 0 ? * 1#5 *)", At(2026, 11, 1)), "2026-11-29T00:00:00Z");   // 5th Sun
  EXPECT_EQ(Next("cron(0 0 29 2 ? *)", At(2026, 1, 1)), "2028-02-29T00:00:00Z");
  EXPECT_EQ(Next("cron(0 0 30 2 ? *)", At(2026, 1, 1)), "never");
  EXPECT_EQ(Next("cron(0 0 1 1 ? 2026)", At(2026, 6, 1)), "never");
}

TEST(Cron, LastAtOrBeforeFindsTheNewestMissedTick) {
  auto e = Must("cron(0/15 * * * ? *)");
  EXPECT_EQ(*e.LastAtOrBefore(At(2026, 11, 25, 10, 40), At(2026, 11, 25, 9, 0), 0),
            At(2026, 11, 25, 10, 30));
  EXPECT_FALSE(e.LastAtOrBefore(At(2026, 11, 25, 10, 14), At(2026, 11, 25, 10, 0), 0));
  // A year of every-minute ticks is still answered (bounded walk).
  auto every = Must("cron(* * * * ? *)");
  EXPECT_EQ(*every.LastAtOrBefore(At(2027, 11, 25, 10, 40, 5), At(2026, 11, 25), 0),
            At(2027, 11, 25, 10, 40));
}

TEST(Cron, ErrorsNamePositionAndReason) {
  EXPECT_EQ(ErrorOf("cron(0 25 * * ? *)"),
            "invalid schedule expression \"cron(0 25 * * ? *)\": position 8: hour 25 is out of "
            "range 0-23");
  EXPECT_NE(ErrorOf("cron(0 12 * * * *)")
                .find("position 15: one of day-of-month and day-of-week "
                      "must be '?'"),
            std::string::npos);
  EXPECT_NE(ErrorOf("cron(0 12 ? * ? *)")
                .find("position 11: day-of-month and day-of-week cannot "
                      "both be '?'"),
            std::string::npos);
  EXPECT_NE(ErrorOf("cron(0 12 * *)").find("cron takes 6 fields"), std::string::npos);
  EXPECT_NE(ErrorOf("cron(0 12 ? * 2#6 *)").find("position 17: the week after '#' must be 1-5"),
            std::string::npos);
  EXPECT_NE(ErrorOf("cron(0 12 ? JANX * *)").find("position 16: unexpected 'X' in the month"),
            std::string::npos);
  EXPECT_NE(ErrorOf("cron(0 12 ? FOO * *)").find("position 13: expected a month value"),
            std::string::npos);
  EXPECT_NE(ErrorOf("cron(60 * * * ? *)").find("position 6: minute 60 is out of range 0-59"),
            std::string::npos);
  EXPECT_NE(ErrorOf("cron(0 10-5 * * ? *)")
                .find("position 8: range 10-5 in the hour field runs "
                      "backwards"),
            std::string::npos);
  EXPECT_NE(ErrorOf("cron(0/0 * * * ? *)").find("position 8: step 0"), std::string::npos);
  EXPECT_NE(ErrorOf("cron(0 0 32W * ? *)").find("W takes one day"), std::string::npos);
  EXPECT_NE(ErrorOf("cron(0 0 ? * 2W *)").find("'W' is not allowed"), std::string::npos);
  EXPECT_NE(ErrorOf("cron(0 0 1 1 ? 1969)").find("year 1969 is out of range 1970-2199"),
            std::string::npos);
  EXPECT_NE(ErrorOf("cron(0 0 1,,2 * ? *)").find("empty item"), std::string::npos);
}

}  // namespace
}  // namespace gust::schedule
