#include "common/clock.h"

#include <cstdio>
#include <cstdlib>
#include <ctime>

namespace gust {

namespace {
int64_t RealEpochMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}
}  // namespace

namespace clock_internal {

std::atomic<bool> manual_active{false};
// The manual clock's readings: monotonic nanoseconds (steady_clock's epoch)
// and the wall-clock epoch milliseconds they started from.
std::atomic<int64_t> manual_mono_ns{0};
int64_t manual_mono_start_ns = 0;
int64_t manual_epoch_start_ms = 0;

std::chrono::steady_clock::time_point ManualNow() {
  return std::chrono::steady_clock::time_point(
      std::chrono::nanoseconds(manual_mono_ns.load(std::memory_order_relaxed)));
}

}  // namespace clock_internal

int64_t NowEpochMs() {
  if (clock_internal::manual_active.load(std::memory_order_relaxed)) [[unlikely]] {
    int64_t elapsed_ns = clock_internal::manual_mono_ns.load(std::memory_order_relaxed) -
                         clock_internal::manual_mono_start_ns;
    return clock_internal::manual_epoch_start_ms + elapsed_ns / 1'000'000;
  }
  return RealEpochMs();
}

double MsBetween(MonoTime start, MonoTime end) {
  return std::chrono::duration<double, std::milli>(end - start).count();
}

namespace {
std::string Format(int64_t epoch_ms, const char* suffix) {
  time_t secs = static_cast<time_t>(epoch_ms / 1000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03d%s", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(epoch_ms % 1000), suffix);
  return buf;
}
}  // namespace

std::string FormatLambdaTimestamp(int64_t epoch_ms) { return Format(epoch_ms, "+0000"); }
std::string FormatIso8601(int64_t epoch_ms) { return Format(epoch_ms, "Z"); }

namespace testing {

ManualClock::ManualClock() : ManualClock(RealEpochMs()) {}

ManualClock::ManualClock(int64_t start_epoch_ms) {
  // Two manual clocks at once would fight over the one process-wide time.
  if (clock_internal::manual_active.load()) {
    std::fprintf(stderr, "ManualClock: one is already active\n");
    std::abort();
  }
  int64_t mono_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                        std::chrono::steady_clock::now().time_since_epoch())
                        .count();
  clock_internal::manual_mono_start_ns = mono_ns;
  clock_internal::manual_epoch_start_ms = start_epoch_ms;
  clock_internal::manual_mono_ns.store(mono_ns);
  clock_internal::manual_active.store(true);
}

ManualClock::~ManualClock() { clock_internal::manual_active.store(false); }

void ManualClock::Advance(std::chrono::nanoseconds by) {
  clock_internal::manual_mono_ns.fetch_add(by.count());
}

}  // namespace testing

int64_t ParseDurationMs(const std::string& text) {
  if (text.empty()) return -1;
  size_t i = 0;
  int64_t value = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    value = value * 10 + (text[i] - '0');
    if (value > (int64_t{1} << 40)) return -1;
    ++i;
  }
  if (i == 0) return -1;
  std::string unit = text.substr(i);
  if (unit == "ms") return value;
  if (unit == "s" || unit.empty()) return value * 1000;
  if (unit == "m") return value * 60'000;
  if (unit == "h") return value * 3'600'000;
  if (unit == "d") return value * 86'400'000;
  return -1;
}

}  // namespace gust
