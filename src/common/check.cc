#include "common/check.h"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>

namespace gust {

void CheckFailed(const char* file, int line, const char* condition, const char* message) {
  // stderr first and unbuffered: the logger may be the thing that broke.
  std::fprintf(stderr, "gust: CHECK failed at %s:%d: %s: %s\n", file, line, condition, message);
  std::fflush(stderr);
  if (auto logger = spdlog::default_logger_raw()) {
    logger->critical("CHECK failed at {}:{}: {}: {}", file, line, condition, message);
    logger->flush();
  }
  std::abort();
}

}  // namespace gust
