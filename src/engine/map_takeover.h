// MapTakeover: a cluster node's side of map jobs that outlive their owner (docs/CLUSTER.md,
// "Step 5b as built"), in cluster mode only.
//
//   - Sweep: it reads the jobs not done from PostgreSQL (MapJobStore::Running) and, for each
//     whose owner is dead (its start's lease ran out, it stopped, or it restarted at a later
//     epoch), tries to take it over: a compare-and-set of (owner, epoch), so exactly one of
//     the nodes that noticed wins. The winner reads the job's inputs and stored results back
//     and continues it in its MapJobs (Adopt): results stored are not run again, tasks that
//     were in flight on the dead owner run again. It also deletes done jobs whose ttl ran out
//     (MapJobStore::DeleteExpired), once a minute.
//   - When: every 2 s, and also right when the lease of a running job's owner runs out as the
//     heartbeats' membership copy (ClusterView) last read it (Peer::lapses_at). The copy is up
//     to a beat old, so it cannot say whether the owner renewed since: at that time the sweep
//     reads the nodes' rows afresh (NodeStore::List) and a job is taken over only if they say
//     its owner is dead. So a dead owner's jobs move about a lease after its last heartbeat,
//     not a lease plus a beat plus a sweep.
//   - Reads: a results request for a job that does not run on this node is answered from
//     PostgreSQL (the stored results after the reader's seq, long-polled every 250 ms until
//     the reader's wait ends); if the owner is dead the reader's node takes the job over at
//     once rather than at its next sweep.
//
// Nothing here runs on the engine thread but the hand-over to MapJobs: PostgreSQL is read on
// a thread of this class's own, with a connection of its own (the journal's appends do not
// queue behind long polls); the fresh reads of the nodes' rows share the membership's
// connection (one short statement, only when an owner's lease has run out by the copy).
//
// Errors: a results read of a job PostgreSQL does not know is NotFound ("no map job ID"); a
// PostgreSQL outage is Unavailable (the client tries again or another node). A takeover that
// won but could not load the job is logged and retried at the next sweep; a fresh read of the
// rows that fails takes nothing over (the next sweep tries again).
// Thread-safety: Start, Results and Shutdown on the engine thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "common/mutex.h"
#include "common/thread_annotations.h"
#include "engine/cluster_routes.h"
#include "engine/map_jobs.h"
#include "store/map_job_store.h"
#include "store/node_store.h"

namespace gust::engine {

class MapTakeover {
 public:
  // store: a MapJobStore of this class's own; nodes: the membership's store (its rows are
  // read afresh when an owner's lease has run out by the copy); self, epoch: this node's name
  // and membership epoch (what it takes jobs over as).
  MapTakeover(boost::asio::io_context& io, MapJobs& jobs, MapJobStore& store, NodeStore& nodes,
              const ClusterView& view, std::string self, int64_t epoch);
  ~MapTakeover();  // Shutdown()
  MapTakeover(const MapTakeover&) = delete;
  MapTakeover& operator=(const MapTakeover&) = delete;

  void Start();
  void Shutdown();
  // This node rejoined the cluster as `epoch` (ClusterNode::OnRejoin): it takes jobs over as
  // that epoch, and its jobs of the old one read as a dead start's (taken over by any node,
  // this one included). Any thread.
  void SetEpoch(int64_t epoch) { epoch_.store(epoch); }
  // MapJobs::Results for a job that does not run here (see the header comment).
  void Results(const std::string& id, uint64_t after, int64_t wait_ms, int64_t linger_ms,
               MapJobs::ResultsCallback done);
  // GET /v1/jobs/ID of a job that does not run here, from its row: {"JobId", "Function",
  // "Tasks", "State", "Owner", "CreatedMs", "FinishedMs"} (the running counts are the
  // owner's). done runs on the engine thread.
  void Describe(const std::string& id, std::function<void(Result<nlohmann::json>)> done);

 private:
  void ScheduleSweep(std::chrono::milliseconds after);
  // The pool: one sweep; returns when the next is due (2 s, or sooner when the lease of a
  // running job's owner runs out before that).
  std::chrono::milliseconds Sweep();
  // The pool: whether the row's owner is dead: by the membership copy, or, once the copy's
  // lapses_at has passed, by a fresh read of the rows (false before the first heartbeat's
  // read: nothing is known yet). *lapses_at: when it is next worth asking again.
  bool OwnerDead(const MapJobRow& row, MonoTime* lapses_at = nullptr);
  // The pool: takes the job over if its owner is dead and loads it into MapJobs; true when
  // this node now runs it (or will, once the engine thread adopts it). *lapses_at: as
  // OwnerDead's.
  bool TryTakeOver(const MapJobRow& row, MonoTime* lapses_at = nullptr);
  bool Load(const MapJobRow& row);
  void Poll(const std::string& id, uint64_t after, MonoTime deadline, int64_t linger_ms,
            MapJobs::ResultsCallback done);

  boost::asio::io_context& io_;
  MapJobs& jobs_;
  MapJobStore& store_;
  NodeStore& nodes_;
  const ClusterView& view_;
  const std::string self_;
  std::atomic<int64_t> epoch_;
  boost::asio::thread_pool pool_{1};
  boost::asio::steady_timer timer_;
  std::atomic<bool> stopping_{false};
  int sweeps_ = 0;  // the pool's
  // The pool's: the last fresh read of the nodes' rows, reused for kFreshFor (a sweep's jobs
  // and the readers' polls ask about the same owners).
  ClusterView::Snapshot fresh_;
  MonoTime fresh_at_{};
  Mutex mu_;
  // Jobs this node won but could not load (PostgreSQL failed between the two): the sweep
  // loads them again.
  std::set<std::string> unloaded_ GUARDED_BY(mu_);
};

}  // namespace gust::engine
