#include "schedule/timezone.h"

#include <gtest/gtest.h>

#include "schedule/expression.h"

namespace gust::schedule {
namespace {

int64_t At(int y, int mo, int d, int h = 0, int mi = 0) {
  return DaysFromCivil(y, mo, d) * 86400 + h * 3600 + mi * 60;
}

TimeZone Zone(const char* name) {
  auto tz = TimeZone::Load(name);
  EXPECT_TRUE(tz.ok()) << tz.status().ToString();
  return std::move(tz).value();
}

TEST(TimeZone, OffsetsFromTheTableAndFromTheFooterRule) {
  TimeZone ny = Zone("America/New_York");
  EXPECT_EQ(ny.OffsetAt(At(2026, 1, 15)), -5 * 3600);
  EXPECT_EQ(ny.OffsetAt(At(2026, 7, 15)), -4 * 3600);
  // Past the transition table: the POSIX rule (EST5EDT,M3.2.0,M11.1.0).
  EXPECT_EQ(ny.OffsetAt(At(2040, 1, 1)), -5 * 3600);
  EXPECT_EQ(ny.OffsetAt(At(2040, 7, 1)), -4 * 3600);
  TimeZone sydney = Zone("Australia/Sydney");  // southern hemisphere: DST spans new year
  EXPECT_EQ(sydney.OffsetAt(At(2040, 1, 1)), 11 * 3600);
  EXPECT_EQ(sydney.OffsetAt(At(2040, 7, 1)), 10 * 3600);
  TimeZone berlin = Zone("Europe/Berlin");  // CET-1CEST,M3.5.0,M10.5.0/3: 01:00 UTC switch
  EXPECT_EQ(berlin.OffsetAt(At(2045, 3, 26, 0, 30)), 3600);
  EXPECT_EQ(berlin.OffsetAt(At(2045, 3, 26, 1, 30)), 7200);
  EXPECT_EQ(Zone("Asia/Kolkata").OffsetAt(At(2026, 6, 1)), 19800);
  EXPECT_EQ(Zone("UTC").OffsetAt(At(2026, 6, 1)), 0);
}

TEST(TimeZone, UnknownOrUnsafeNamesAreRefused) {
  for (const char* name : {"Mars/Olympus_Mons", "../../etc/passwd", "/etc/passwd", ""}) {
    auto tz = TimeZone::Load(name);
    ASSERT_FALSE(tz.ok()) << name;
    EXPECT_NE(tz.status().message().find("unknown time zone"), std::string::npos);
  }
  EXPECT_FALSE(TimeZone::Parse("x", "not a tzif file at all, but long enough to read").ok());
}

std::string Next(const char* expr, int64_t after_s, const TimeZone& tz) {
  auto e = ScheduleExpression::Parse(expr);
  EXPECT_TRUE(e.ok());
  auto next = e->NextAfter(after_s * 1000, 0, &tz);
  return next ? FormatEventTime(*next) : "never";
}

TEST(TimeZone, CronMatchesLocalWallClock) {
  TimeZone berlin = Zone("Europe/Berlin");
  EXPECT_EQ(Next("cron(0 9 * * ? *)", At(2026, 11, 25, 12), berlin), "2026-11-26T08:00:00Z");
  EXPECT_EQ(Next("cron(0 9 * * ? *)", At(2026, 7, 1, 12), berlin), "2026-07-02T07:00:00Z");
  TimeZone ny = Zone("America/New_York");
  // 8 Mar 2026: 02:30 does not exist in New York; the next one is on the 9th (EDT).
  EXPECT_EQ(Next("cron(30 2 * * ? *)", At(2026, 3, 7, 12), ny), "2026-03-09T06:30:00Z");
  // 1 Nov 2026: 01:30 happens twice; it fires once, the first time (EDT).
  EXPECT_EQ(Next("cron(30 1 * * ? *)", At(2026, 10, 31, 12), ny), "2026-11-01T05:30:00Z");
  EXPECT_EQ(Next("cron(30 1 * * ? *)", At(2026, 11, 1, 5, 30), ny), "2026-11-02T06:30:00Z");
  // Weekdays are local too: Monday 00:30 in Kolkata is Sunday 19:00 UTC.
  EXPECT_EQ(Next("cron(30 0 ? * MON *)", At(2026, 11, 25), Zone("Asia/Kolkata")),
            "2026-11-29T19:00:00Z");
}

}  // namespace
}  // namespace gust::schedule
