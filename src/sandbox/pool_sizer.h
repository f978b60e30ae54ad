// PoolSizer: how many generic children the zygote keeps forked ahead of
// demand (zygote_server.cc's pool), and when it may fork them.
//
// The pool holds `prefork` children. Spawns that found it empty (forked on
// demand) within one burst (requests less than kBurstGapNs apart) raise the
// target by as many, up to `prefork_max`: the next burst then starts on
// children that did their fork, namespaces and warm-up while the machine was
// idle (a cold start from the pool costs ~2.5 ms of CPU, engine and zygote
// included, instead of ~7.5 for a fork on demand; bench/RESULTS.md). After
// kPoolMemoryNs without a spawn request the target is `prefork` again, so an
// idle engine goes back to its small footprint (~2.6 MB per pooled child;
// MaxForMemory bounds what a burst may leave behind).
//
// Refilling waits for a quiet spell after the last request: kRefillQuietNs
// after one the pool served, kBurstRefillQuietNs after one it could not. A
// pool child costs the same CPU as a child forked on demand (more: it also
// runs the generic warm-up), so forking it in the gaps of a burst that is
// already short of CPU only delays the burst's own sandboxes; between
// sequential cold starts a short pause is enough.
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
  static constexpr uint64_t kRefillQuietNs = 20000000ull;         // 20 ms
  static constexpr uint64_t kBurstRefillQuietNs = 300000000ull;   // 300 ms
  // What one pooled child costs the host (MemAvailable drops by ~1.9 MB per
  // child on Debian's python3.11; its own pages are ~2.6 MB), rounded up.
  static constexpr uint64_t kChildBytes = 3ull << 20;

  PoolSizer(int prefork, int prefork_max);

  // prefork_max lowered so a full pool takes at most an eighth of
  // `available_bytes` (the host's MemAvailable), and never below prefork.
  static int MaxForMemory(int prefork, int prefork_max, uint64_t available_bytes);

  // Children wanted in the pool now.
  size_t Target() const { return base_ + extra_; }
  // A spawn took a pooled child.
  void OnHit() { last_missed_ = false; }
  // A spawn at now_ns had to fork on demand.
  void OnMiss(uint64_t now_ns);
  // The earliest time the pool may fork another child, given the last request.
  uint64_t RefillAt(uint64_t last_request_ns) const {
    return last_request_ns + (last_missed_ ? kBurstRefillQuietNs : kRefillQuietNs);
  }
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
  bool missed_ = false;       // any miss since the last Forget
  bool last_missed_ = false;  // the latest request was a miss
};

}  // namespace gust::sandbox
