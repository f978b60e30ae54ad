// ScheduleExpression: EventBridge schedule expressions, parsed once and asked
// for fire times.
//
//   rate(N minute|minutes|hour|hours|day|days)   N >= 1; "1 minute", "5 minutes"
//   rate(N second|seconds)                        gust's extension (N >= 1)
//   cron(minutes hours day-of-month month day-of-week year)
//
// cron follows EventBridge: minutes 0-59, hours 0-23, day-of-month 1-31,
// month 1-12 or JAN-DEC, day-of-week 1-7 or SUN-SAT (1 = Sunday), year
// 1970-2199; `*` `,` `-` `/` everywhere; `?` in exactly one of day-of-month and
// day-of-week; `L` (last day of the month; `L-n` n days before it; in
// day-of-week alone: Saturday; `nL`: the last n-day of the month), `W` (`nW`:
// the weekday nearest day n inside the month; `LW`: the last weekday) and `#`
// (`n#k`: the k-th n-day of the month). Ranges in month and day-of-week may
// wrap (FRI-MON). Times are UTC, or a TimeZone's local wall-clock time (a
// local time skipped by a daylight-saving change never fires; one repeated by
// it fires once).
//
// A rate() schedule fires at anchor + k * period (the anchor is when the
// schedule was created, so restarts do not shift its phase); cron() at every
// matching minute.
//
// Parse errors name the 1-based character position in the expression and
// the reason: `position 9: hour 25 is out of range 0-23`.
//
// Thread-safety: an immutable value after Parse; safe to share.
#pragma once

#include <bitset>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace gust::schedule {

class TimeZone;

class ScheduleExpression {
 public:
  // InvalidArgument: "invalid schedule expression \"...\": position P: reason".
  static Result<ScheduleExpression> Parse(std::string_view text);

  // The first fire time strictly after after_ms (epoch ms, UTC); nullopt when
  // there is none (a cron whose years are over, or a date that never exists).
  // tz (cron only; null = UTC) is the zone whose wall clock the fields match.
  std::optional<int64_t> NextAfter(int64_t after_ms, int64_t anchor_ms,
                                   const TimeZone* tz = nullptr) const;
  // The last fire time at or before at_ms, if any after floor_ms (exclusive).
  // Used once at start-up to find the one catch-up tick after downtime.
  std::optional<int64_t> LastAtOrBefore(int64_t at_ms, int64_t floor_ms, int64_t anchor_ms,
                                        const TimeZone* tz = nullptr) const;

  bool is_rate() const { return period_ms_ > 0; }
  int64_t period_ms() const { return period_ms_; }
  const std::string& text() const { return text_; }

 private:
  bool DayMatches(int year, int month, int day) const;
  // The next matching minute after after_ms, reading epoch ms as wall-clock time.
  std::optional<int64_t> NextWallClock(int64_t after_ms) const;

  std::string text_;
  int64_t period_ms_ = 0;  // rate(); 0 for cron
  std::bitset<60> minutes_;
  std::bitset<24> hours_;
  std::bitset<13> months_;        // 1..12
  std::bitset<230> years_;        // 1970..2199
  bool dom_unspecified_ = false;  // '?'
  bool dow_unspecified_ = false;
  std::bitset<32> dom_days_;                  // 1..31
  std::vector<int> dom_last_offsets_;         // L (0), L-n (n)
  bool dom_last_weekday_ = false;             // LW
  std::vector<int> dom_nearest_weekday_;      // nW
  std::bitset<8> dow_days_;                   // 1..7, 1 = Sunday
  std::vector<int> dow_last_;                 // nL: the last n-day of the month
  std::vector<std::pair<int, int>> dow_nth_;  // n#k
};

// Civil-calendar helpers (proleptic Gregorian, UTC), exposed for tests.
int64_t DaysFromCivil(int year, int month, int day);
int DaysInMonth(int year, int month);
// 1 = Sunday ... 7 = Saturday (EventBridge's numbering).
int DayOfWeek(int year, int month, int day);
// "2026-11-25T10:15:00Z" (whole seconds, as EventBridge's event "time").
std::string FormatEventTime(int64_t epoch_ms);

}  // namespace gust::schedule
