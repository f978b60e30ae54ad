// Timer: the engine's asio timer, on MonoClock (common/clock.h) instead of
// steady_clock, so a test's ManualClock drives it: it fires once the fake time
// passes its expiry. Otherwise it is a plain steady-clock timer.
//
// How a manual clock reaches asio's reactor: the reactor sleeps until the
// earliest expiry computed through MonoWaitTraits, which (only while a
// ManualClock is active) caps each sleep at kManualClockPoll of real time, so
// the reactor re-reads the fake time that often and fires what came due.
//
// Thread-safety: as boost::asio::basic_waitable_timer (use from its io_context).
#pragma once

#include <boost/asio/basic_waitable_timer.hpp>

#include <algorithm>
#include <chrono>

#include "common/clock.h"

namespace gust {

inline constexpr std::chrono::milliseconds kManualClockPoll{1};

struct MonoWaitTraits {
  static MonoClock::duration to_wait_duration(const MonoClock::duration& d) {
    if (clock_internal::manual_active.load(std::memory_order_relaxed)) [[unlikely]] {
      return std::min<MonoClock::duration>(d, kManualClockPoll);
    }
    return d;
  }
  static MonoClock::duration to_wait_duration(const MonoClock::time_point& t) {
    // As asio's default traits: saturate instead of overflowing.
    MonoClock::time_point now = MonoClock::now();
    if (now + (MonoClock::duration::max)() < t)
      return to_wait_duration((MonoClock::duration::max)());
    if (now + (MonoClock::duration::min)() > t) return (MonoClock::duration::min)();
    return to_wait_duration(t - now);
  }
};

using Timer = boost::asio::basic_waitable_timer<MonoClock, MonoWaitTraits>;

}  // namespace gust
