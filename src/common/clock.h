// Time helpers. Wall-clock time (epoch ms, ISO-8601 strings as Lambda prints
// them) and a monotonic clock for durations. Thread-safe, stateless.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace gust {

using MonoClock = std::chrono::steady_clock;
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

}  // namespace gust
