#include "common/clock.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

#include "common/timer.h"

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

TEST(ManualClockTest, StandsStillUntilAdvanced) {
  MonoTime real_before = MonoClock::now();
  {
    testing::ManualClock clock(1'000'000);
    EXPECT_EQ(NowEpochMs(), 1'000'000);
    MonoTime t0 = MonoClock::now();
    EXPECT_GE(t0, real_before);
    EXPECT_EQ(MonoClock::now(), t0);
    clock.Advance(std::chrono::milliseconds(1500));
    EXPECT_EQ(NowEpochMs(), 1'001'500);
    EXPECT_EQ(MsBetween(t0, MonoClock::now()), 1500.0);
  }
  // Gone: the real clocks again.
  EXPECT_GT(NowEpochMs(), 1'700'000'000'000);
  EXPECT_GE(MonoClock::now(), real_before);
}

TEST(ManualClockTest, TimersFireInFakeTime) {
  testing::ManualClock clock;
  boost::asio::io_context io;
  Timer timer(io);
  bool fired = false;
  timer.expires_after(std::chrono::hours(1));
  timer.async_wait([&](const boost::system::error_code& ec) { fired = !ec; });
  io.run_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(fired);
  clock.Advance(std::chrono::minutes(59));
  io.run_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(fired);
  clock.Advance(std::chrono::minutes(1));
  // The reactor re-reads the fake time every kManualClockPoll of real time.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!fired && std::chrono::steady_clock::now() < deadline) {
    io.run_for(std::chrono::milliseconds(5));
  }
  EXPECT_TRUE(fired);
}

}  // namespace
}  // namespace gust
