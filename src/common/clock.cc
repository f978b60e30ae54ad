#include "common/clock.h"

#include <cstdio>
#include <ctime>

namespace gust {

int64_t NowEpochMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
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
