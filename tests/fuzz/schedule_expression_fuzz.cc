// Fuzz target: EventBridge rate()/cron() expressions (src/schedule/expression.h),
// parsed as the schedules API and `gust deploy` parse them, then asked for fire
// times as the Scheduler asks (next after now, the catch-up tick after a
// downtime), in UTC and in a zone with daylight-saving changes.
// Invariants: NextAfter is strictly after its argument; LastAtOrBefore is in
// (floor, at].
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "schedule/expression.h"
#include "schedule/timezone.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto expr = gust::schedule::ScheduleExpression::Parse(text);
  if (!expr.ok()) return 0;
  static const auto berlin = gust::schedule::TimeZone::Load("Europe/Berlin");
  const gust::schedule::TimeZone* zones[] = {nullptr, berlin.ok() ? &*berlin : nullptr};
  const int64_t anchor = 1764000000000;  // 2025-11-24
  for (const auto* tz : zones) {
    for (int64_t now : {anchor, anchor + int64_t{86'400'000} * 120 + 3'600'000 + 17}) {
      auto next = expr->NextAfter(now, anchor, tz);
      if (next && *next <= now) std::abort();
      auto last = expr->LastAtOrBefore(now, now - int64_t{86'400'000} * 3, anchor, tz);
      if (last && (*last > now || *last <= now - int64_t{86'400'000} * 3)) std::abort();
    }
  }
  return 0;
}
