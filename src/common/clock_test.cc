#include "common/clock.h"

#include <gtest/gtest.h>

namespace gust {
namespace {

TEST(ClockTest, FormatsLambdaTimestamps) {
  EXPECT_EQ(FormatLambdaTimestamp(1764065730123), "2025-11-25T10:15:30.123+0000");
  EXPECT_EQ(FormatIso8601(0), "1970-01-01T00:00:00.000Z");
}

TEST(ClockTest, ParsesDurations) {
  EXPECT_EQ(ParseDurationMs("10m"), 600000);
  EXPECT_EQ(ParseDurationMs("90s"), 90000);
  EXPECT_EQ(ParseDurationMs("2h"), 7200000);
  EXPECT_EQ(ParseDurationMs("500ms"), 500);
  EXPECT_EQ(ParseDurationMs("15"), 15000);
  EXPECT_EQ(ParseDurationMs("ten"), -1);
  EXPECT_EQ(ParseDurationMs("5y"), -1);
  EXPECT_EQ(ParseDurationMs(""), -1);
}

}  // namespace
}  // namespace gust
