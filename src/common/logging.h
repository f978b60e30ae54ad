// Engine logging: spdlog to stderr. Call InitLogging once in main().
// Thread-safe (spdlog's _mt sinks).
#pragma once

#include <spdlog/spdlog.h>

#include <string>

namespace gust {

// level: "trace", "debug", "info", "warn", "error". Unknown -> info.
void InitLogging(const std::string& level);

}  // namespace gust
