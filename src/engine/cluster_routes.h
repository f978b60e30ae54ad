// Where a cluster node sends a synchronous invocation that finds no idle sandbox of its
// function version here (docs/CLUSTER.md, "Sync invoke, not warm here" and "Step 3 as
// built"). Pure logic over the in-memory copy of the other nodes' heartbeats: PostgreSQL is
// never read on this path (principle 2).
//
//   - A live node ("up") other than this one with an idle sandbox of the version and a free
//     slot: the most idle sandboxes first, then the lowest load per core.
//   - Else a cold start where the load per core is lowest: the live nodes below this node's
//     own figure, lowest first; none (this node is lowest, or tied): run here.
//   - A draining node (`gust node drain`) runs nothing new that another node could: every
//     call goes to an up node (ChooseAway), and runs here only when none is up.
// An empty choice means "run here". The caller tries the nodes in order, moving on only when
// a node could not be reached at all (nothing was delivered).
//
// ClusterView holds the copy: replaced whole by the heartbeat thread (ClusterNode), read by
// the engine thread. Errors: none (a node whose published warm counts do not parse is seen
// with none). Thread-safety: ChooseNodes and PeersFromRows are pure; ClusterView is safe
// from any thread.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/clock.h"
#include "common/mutex.h"
#include "common/thread_annotations.h"
#include "store/node_store.h"

namespace gust::engine {

// A node as routing sees it, parsed once per heartbeat from its NodeRow.
struct Peer {
  std::string name;
  std::string url;        // its advertised API
  bool up = false;        // state "up": not draining, stopped or dead
  bool draining = false;  // state "draining": finishing its work, taking none (not dead)
  bool dead = false;      // state "dead": up or draining, its heartbeats stopped
  int64_t epoch = 0;      // its membership epoch (a restart is the next one)
  // When its lease runs out unless it renews, on this machine's MonoClock: the read's end
  // plus the deadline's distance from the database's now(), so never before the database's
  // deadline (MapTakeover reads the rows afresh at this time rather than a beat later).
  MonoTime lapses_at{};
  int cores = 0;
  double load1 = 0;
  int free_slots = 0;
  std::unordered_map<std::string, int64_t> warm;  // WarmKey(function, version) -> idle
};

std::string WarmKey(const std::string& function, const std::string& version);
// read_at: when the read of rows ended (Peer::lapses_at counts from it).
std::vector<Peer> PeersFromRows(const std::vector<NodeRow>& rows,
                                MonoTime read_at = MonoClock::now());

// The nodes to try, in order, for function/version with no idle sandbox on node `self`;
// empty: run here. At most max_nodes, pointing into peers.
std::vector<const Peer*> ChooseNodes(const std::vector<Peer>& peers, const std::string& self,
                                     const std::string& function, const std::string& version,
                                     size_t max_nodes = 2);
// Whether node `self` reads "draining" in peers: it then sends every sync call away
// (ChooseAway), whatever it has warm.
bool IsDraining(const std::vector<Peer>& peers, const std::string& self);
// For a draining node: the up nodes other than self, those with an idle sandbox of
// function/version and a free slot first, then by load per core; empty (no node up): run
// here, since a drain never drops work.
std::vector<const Peer*> ChooseAway(const std::vector<Peer>& peers, const std::string& self,
                                    const std::string& function, const std::string& version,
                                    size_t max_nodes = 2);

class ClusterView {
 public:
  using Snapshot = std::shared_ptr<const std::vector<Peer>>;
  void Set(std::vector<Peer> peers) {
    auto next = std::make_shared<const std::vector<Peer>>(std::move(peers));
    MutexLock lock(&mu_);
    peers_ = std::move(next);
  }
  // Null before the first heartbeat's read.
  Snapshot Get() const {
    MutexLock lock(&mu_);
    return peers_;
  }

 private:
  mutable Mutex mu_;
  Snapshot peers_ GUARDED_BY(mu_);
};

}  // namespace gust::engine
