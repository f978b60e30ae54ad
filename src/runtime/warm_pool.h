// WarmPool: idle, initialised sandboxes waiting for their next invocation,
// grouped by pool key (function, version, revision). Reuse is LIFO — the most
// recently used sandbox is the warmest (its pages and caches are hot) and the
// oldest ones age out under the keep-alive, which is what lets a function
// scale back to zero.
//
// The pool only holds sandboxes; killing the ones it hands back for expiry or
// eviction is the caller's job.
//
// Thread-safety: single-threaded, on the engine's io_context.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "runtime/sandbox_session.h"

namespace gust::runtime {

// "name\nversion\nrevision": one pool per code+configuration revision.
std::string PoolKey(const std::string& function, const std::string& version,
                    const std::string& revision);

class WarmPool {
 public:
  using SessionPtr = std::shared_ptr<SandboxSession>;
  using KeepAlive = std::function<std::chrono::milliseconds(const std::string& key)>;

  // The most recently used idle sandbox for key, removed from the pool; null if none.
  SessionPtr TakeIdle(const std::string& key);
  void PutIdle(const std::string& key, SessionPtr session);
  // Removes a sandbox (e.g. it died while idle). No-op if absent.
  void Forget(const std::string& key, const std::string& sandbox_id);
  // Removes and returns sandboxes idle for longer than keep_alive(key).
  std::vector<SessionPtr> TakeExpired(MonoTime now, const KeepAlive& keep_alive);
  // Removes and returns the least recently used idle sandbox of any key; null if none.
  SessionPtr TakeLeastRecentlyUsed();
  // Removes and returns every idle sandbox of a function, optionally sparing one key.
  std::vector<SessionPtr> TakeFunction(const std::string& function, const std::string& spare_key);
  // Removes and returns every idle sandbox of one version (any revision) of a function.
  std::vector<SessionPtr> TakeVersion(const std::string& function, const std::string& version);
  size_t idle_count() const { return idle_count_; }
  size_t idle_count(const std::string& key) const;
  // Idle sandboxes per pool key (keys with none left out).
  std::map<std::string, size_t> IdleCounts() const;

 private:
  std::map<std::string, std::deque<SessionPtr>> idle_;  // back = most recently used
  size_t idle_count_ = 0;
};

}  // namespace gust::runtime
