#include "common/logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>

namespace gust {

void InitLogging(const std::string& level) {
  auto logger = spdlog::stderr_color_mt("gust");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  spdlog::level::level_enum lvl = spdlog::level::from_str(level);
  if (lvl == spdlog::level::off && level != "off") lvl = spdlog::level::info;
  spdlog::set_level(lvl);
}

}  // namespace gust
