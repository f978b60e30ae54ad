#include "sandbox/fd_limits.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>

namespace gust::sandbox {

void ReserveDescriptors() {
  constexpr rlim_t kWanted = 65536;
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < kWanted &&
      limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = std::min<rlim_t>(kWanted, limit.rlim_max);
    (void)::setrlimit(RLIMIT_NOFILE, &limit);
  }
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  int high = static_cast<int>(std::min<rlim_t>(limit.rlim_cur, 8192)) - 1;
  if (high > 3 && ::dup2(0, high) == high) ::close(high);
}

}  // namespace gust::sandbox
