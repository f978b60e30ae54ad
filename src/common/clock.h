// Time helpers. Wall-clock time (epoch ms, ISO-8601 strings as Lambda prints
// them) and a monotonic clock for durations and timers.
//
// MonoClock is std::chrono::steady_clock, except while a test holds a
// testing::ManualClock: then MonoClock::now() and NowEpochMs() stand still
// until the test advances them, so timeouts, back-offs, keep-alives and
// schedules run in fake time (engine tests, docs/ARCHITECTURE.md "Testing the
// engine in process"). MonoTime is steady_clock's time_point, so code that
// still reads steady_clock mixes with it. The production cost is one relaxed
// load of a flag per reading; timers on MonoClock are in common/timer.h.
//
// Thread-safety: all functions are thread-safe. ManualClock: at most one per
// process at a time; Advance() may race with readers on other threads (they
// see the old or the new time).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

namespace gust {

namespace clock_internal {
extern std::atomic<bool> manual_active;
std::chrono::steady_clock::time_point ManualNow();
}  // namespace clock_internal

struct MonoClock {
  using duration = std::chrono::steady_clock::duration;
  using rep = duration::rep;
  using period = duration::period;
  using time_point = std::chrono::steady_clock::time_point;
  static constexpr bool is_steady = true;

  static time_point now() noexcept {
    if (clock_internal::manual_active.load(std::memory_order_relaxed)) [[unlikely]] {
      return clock_internal::ManualNow();
    }
    return std::chrono::steady_clock::now();
  }
};
using MonoTime = MonoClock::time_point;

int64_t NowEpochMs();
// Milliseconds (fractional) between two monotonic points.
double MsBetween(MonoTime start, MonoTime end);
// "2026-11-25T10:15:30.123+0000", the LastModified format of Lambda.
std::string FormatLambdaTimestamp(int64_t epoch_ms);
// "2026-11-25T10:15:30.123Z"
std::string FormatIso8601(int64_t epoch_ms);
// Parses durations like "10m", "90s", "2h", "1d", "500ms" into milliseconds.
// Returns -1 when the text is not a duration.
int64_t ParseDurationMs(const std::string& text);

namespace testing {

// Test-only: while it lives, MonoClock::now() and NowEpochMs() return its
// time, which starts at the real current time (or the given epoch) and moves
// only by Advance(). Timers on MonoClock (common/timer.h) then fire once the
// fake time passes their expiry.
class ManualClock {
 public:
  ManualClock();
  explicit ManualClock(int64_t start_epoch_ms);
  ~ManualClock();
  ManualClock(const ManualClock&) = delete;
  ManualClock& operator=(const ManualClock&) = delete;

  void Advance(std::chrono::nanoseconds by);
  MonoTime Now() const { return clock_internal::ManualNow(); }
  int64_t EpochMs() const { return NowEpochMs(); }
};

}  // namespace testing
}  // namespace gust
