#include "engine/cluster_routes.h"

#include <nlohmann/json.hpp>

#include <algorithm>

namespace gust::engine {

namespace {

double LoadPerCore(const Peer& p) { return p.load1 / std::max(1, p.cores); }

}  // namespace

std::string WarmKey(const std::string& function, const std::string& version) {
  return function + '\n' + version;
}

std::vector<Peer> PeersFromRows(const std::vector<NodeRow>& rows, MonoTime read_at) {
  std::vector<Peer> out;
  out.reserve(rows.size());
  for (const NodeRow& row : rows) {
    Peer p;
    p.name = row.info.name;
    p.url = row.info.advertise_url;
    p.up = row.state == "up";
    p.draining = row.state == "draining";
    p.dead = row.state == "dead";
    p.epoch = row.epoch;
    p.lapses_at = read_at + std::chrono::milliseconds(row.deadline_in_ms);
    p.cores = row.info.cores;
    p.load1 = row.info.load1;
    p.free_slots = row.info.free_slots;
    // Another node's row is outside input: a warm column that is not the expected shape
    // counts as no warm sandboxes.
    auto warm = nlohmann::json::parse(row.info.warm, nullptr, false);
    if (warm.is_object()) {
      for (const auto& [function, versions] : warm.items()) {
        if (!versions.is_object()) continue;
        for (const auto& [version, count] : versions.items()) {
          if (count.is_number_integer() && count.get<int64_t>() > 0) {
            p.warm[WarmKey(function, version)] = count.get<int64_t>();
          }
        }
      }
    }
    out.push_back(std::move(p));
  }
  return out;
}

bool IsDraining(const std::vector<Peer>& peers, const std::string& self) {
  for (const Peer& p : peers) {
    if (p.name == self) return p.draining;
  }
  return false;
}

std::vector<const Peer*> ChooseAway(const std::vector<Peer>& peers, const std::string& self,
                                    const std::string& function, const std::string& version,
                                    size_t max_nodes) {
  const std::string key = WarmKey(function, version);
  auto warm = [&key](const Peer& p) -> bool {
    auto it = p.warm.find(key);
    return it != p.warm.end() && it->second > 0 && p.free_slots > 0;
  };
  std::vector<const Peer*> chosen;
  for (const Peer& p : peers) {
    if (p.name != self && p.up) chosen.push_back(&p);
  }
  std::stable_sort(chosen.begin(), chosen.end(), [&](const Peer* a, const Peer* b) {
    if (warm(*a) != warm(*b)) return warm(*a);
    return LoadPerCore(*a) < LoadPerCore(*b);
  });
  if (chosen.size() > max_nodes) chosen.resize(max_nodes);
  return chosen;
}

std::vector<const Peer*> ChooseNodes(const std::vector<Peer>& peers, const std::string& self,
                                     const std::string& function, const std::string& version,
                                     size_t max_nodes) {
  const std::string key = WarmKey(function, version);
  auto idle = [&key](const Peer& p) -> int64_t {
    auto it = p.warm.find(key);
    return it == p.warm.end() ? 0 : it->second;
  };
  std::vector<const Peer*> warm;
  std::vector<const Peer*> others;
  double own_load = -1;
  for (const Peer& p : peers) {
    if (p.name == self) {
      own_load = LoadPerCore(p);
      continue;
    }
    if (!p.up) continue;
    if (idle(p) > 0 && p.free_slots > 0) {
      warm.push_back(&p);
    } else {
      others.push_back(&p);
    }
  }
  auto by_load = [](const Peer* a, const Peer* b) { return LoadPerCore(*a) < LoadPerCore(*b); };
  std::vector<const Peer*> chosen;
  if (!warm.empty()) {
    std::stable_sort(warm.begin(), warm.end(), [&](const Peer* a, const Peer* b) {
      if (idle(*a) != idle(*b)) return idle(*a) > idle(*b);
      return by_load(a, b);
    });
    chosen = std::move(warm);
  } else if (own_load >= 0) {
    // A cold start: only somewhere strictly less loaded than here (a tie stays here, and a
    // node that does not see itself in the copy yet stays here too).
    for (const Peer* p : others) {
      if (LoadPerCore(*p) < own_load) chosen.push_back(p);
    }
    std::stable_sort(chosen.begin(), chosen.end(), by_load);
  }
  if (chosen.size() > max_nodes) chosen.resize(max_nodes);
  return chosen;
}

}  // namespace gust::engine
