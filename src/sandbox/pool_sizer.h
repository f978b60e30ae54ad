// PoolSizer: how many generic children the zygote keeps forked ahead of
// demand (zygote_server.cc's pool).
//
// The pool holds `prefork` children. Spawns that found it empty (forked on
// demand) within one burst (requests less than kBurstGapNs apart) raise the
// target by as many, up to `prefork_max`: the next burst then starts on
// children that did their fork, namespaces and warm-up while the machine was
// idle (a cold start from the pool costs ~1 ms of CPU instead of ~6). After
// kPoolMemoryNs without a spawn request the target is `prefork` again, so an
// idle engine goes back to its small footprint (~2.6 MB per pooled child).
//
// Thread-safety: none needed (the zygote is single-threaded). Pure logic on
// the caller's clock, so tests drive it without forking anything.
#pragma once

#include <cstddef>
#include <cstdint>

namespace gust::sandbox {

class PoolSizer {
 public:
  static constexpr uint64_t kBurstGapNs = 1000000000ull;          // 1 s
  static constexpr uint64_t kPoolMemoryNs = 600ull * 1000000000;  // 10 min (default keep-alive)

  PoolSizer(int prefork, int prefork_max);

  // Children wanted in the pool now.
  size_t Target() const { return base_ + extra_; }
  // A spawn at now_ns had to fork on demand.
  void OnMiss(uint64_t now_ns);
  // Forgets the bursts when the last request is kPoolMemoryNs old; true if the
  // target dropped (the caller then lets the surplus children go).
  bool Forget(uint64_t now_ns, uint64_t last_request_ns);
  // When Forget would next change something (UINT64_MAX: never).
  uint64_t ForgetAt(uint64_t last_request_ns) const;

 private:
  size_t base_;
  size_t room_;  // prefork_max - prefork
  size_t extra_ = 0;
  size_t burst_misses_ = 0;
  uint64_t last_miss_ns_ = 0;
  bool missed_ = false;
};

}  // namespace gust::sandbox
