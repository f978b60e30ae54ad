#include "common/run_guarded.h"

#include <spdlog/spdlog.h>

namespace gust {

void LogEscapedException(const char* what) noexcept {
  spdlog::error("BUG: an exception escaped a worker-pool task (docs/STYLE.md): {}", what);
}

}  // namespace gust
