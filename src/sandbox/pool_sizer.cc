#include "sandbox/pool_sizer.h"

#include <algorithm>

namespace gust::sandbox {

PoolSizer::PoolSizer(int prefork, int prefork_max)
    : base_(static_cast<size_t>(std::max(prefork, 0))),
      room_(static_cast<size_t>(std::max(prefork_max - std::max(prefork, 0), 0))) {}

int PoolSizer::MaxForMemory(int prefork, int prefork_max, uint64_t available_bytes) {
  uint64_t fits = available_bytes / 8 / kChildBytes;
  return std::max(prefork, static_cast<int>(std::min<uint64_t>(
                               fits, static_cast<uint64_t>(std::max(prefork_max, 0)))));
}

void PoolSizer::OnMiss(uint64_t now_ns) {
  if (!missed_ || now_ns - last_miss_ns_ > kBurstGapNs) burst_misses_ = 0;
  missed_ = true;
  last_missed_ = true;
  last_miss_ns_ = now_ns;
  ++burst_misses_;
  extra_ = std::min(room_, std::max(extra_, burst_misses_));
}

bool PoolSizer::Forget(uint64_t now_ns, uint64_t last_request_ns) {
  if (extra_ == 0 || now_ns - last_request_ns < kPoolMemoryNs) return false;
  extra_ = 0;
  burst_misses_ = 0;
  missed_ = false;
  return true;
}

uint64_t PoolSizer::ForgetAt(uint64_t last_request_ns) const {
  return extra_ == 0 ? UINT64_MAX : last_request_ns + kPoolMemoryNs;
}

}  // namespace gust::sandbox
