#include "runtime/warm_pool.h"

namespace gust::runtime {

std::string PoolKey(const std::string& function, const std::string& version,
                    const std::string& revision) {
  std::string key;
  key.reserve(function.size() + version.size() + revision.size() + 2);
  key += function;
  key += '\n';
  key += version;
  key += '\n';
  key += revision;
  return key;
}

WarmPool::SessionPtr WarmPool::TakeIdle(const std::string& key) {
  auto it = idle_.find(key);
  if (it == idle_.end() || it->second.empty()) return nullptr;
  SessionPtr session = std::move(it->second.back());
  it->second.pop_back();
  if (it->second.empty()) idle_.erase(it);
  --idle_count_;
  return session;
}

void WarmPool::PutIdle(const std::string& key, SessionPtr session) {
  idle_[key].push_back(std::move(session));
  ++idle_count_;
}

void WarmPool::Forget(const std::string& key, const std::string& sandbox_id) {
  auto it = idle_.find(key);
  if (it == idle_.end()) return;
  auto& list = it->second;
  for (auto s = list.begin(); s != list.end(); ++s) {
    if ((*s)->id() == sandbox_id) {
      list.erase(s);
      --idle_count_;
      break;
    }
  }
  if (list.empty()) idle_.erase(it);
}

std::vector<WarmPool::SessionPtr> WarmPool::TakeExpired(MonoTime now, const KeepAlive& keep_alive) {
  std::vector<SessionPtr> expired;
  for (auto it = idle_.begin(); it != idle_.end();) {
    auto limit = keep_alive(it->first);
    auto& list = it->second;
    // Front is least recently used: stop at the first one still within its keep-alive.
    while (!list.empty() && now - list.front()->last_used() >= limit) {
      expired.push_back(std::move(list.front()));
      list.pop_front();
      --idle_count_;
    }
    it = list.empty() ? idle_.erase(it) : std::next(it);
  }
  return expired;
}

WarmPool::SessionPtr WarmPool::TakeLeastRecentlyUsed() {
  auto oldest = idle_.end();
  for (auto it = idle_.begin(); it != idle_.end(); ++it) {
    if (oldest == idle_.end() ||
        it->second.front()->last_used() < oldest->second.front()->last_used()) {
      oldest = it;
    }
  }
  if (oldest == idle_.end()) return nullptr;
  SessionPtr session = std::move(oldest->second.front());
  oldest->second.pop_front();
  if (oldest->second.empty()) idle_.erase(oldest);
  --idle_count_;
  return session;
}

std::vector<WarmPool::SessionPtr> WarmPool::TakeFunction(const std::string& function,
                                                         const std::string& spare_key) {
  std::vector<SessionPtr> taken;
  std::string prefix = function + '\n';
  for (auto it = idle_.lower_bound(prefix);
       it != idle_.end() && it->first.compare(0, prefix.size(), prefix) == 0;) {
    if (it->first == spare_key) {
      ++it;
      continue;
    }
    for (auto& s : it->second) taken.push_back(std::move(s));
    idle_count_ -= it->second.size();
    it = idle_.erase(it);
  }
  return taken;
}

std::vector<WarmPool::SessionPtr> WarmPool::TakeVersion(const std::string& function,
                                                        const std::string& version) {
  std::vector<SessionPtr> taken;
  std::string prefix = function + '\n' + version + '\n';
  for (auto it = idle_.lower_bound(prefix);
       it != idle_.end() && it->first.compare(0, prefix.size(), prefix) == 0;) {
    for (auto& s : it->second) taken.push_back(std::move(s));
    idle_count_ -= it->second.size();
    it = idle_.erase(it);
  }
  return taken;
}

size_t WarmPool::idle_count(const std::string& key) const {
  auto it = idle_.find(key);
  return it == idle_.end() ? 0 : it->second.size();
}

std::map<std::string, size_t> WarmPool::IdleCounts() const {
  std::map<std::string, size_t> out;
  for (const auto& [key, sessions] : idle_) {
    if (!sessions.empty()) out.emplace(key, sessions.size());
  }
  return out;
}

}  // namespace gust::runtime
