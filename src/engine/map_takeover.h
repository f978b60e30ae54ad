// MapTakeover: a cluster node's side of map jobs that outlive their owner (docs/CLUSTER.md,
// "Step 5b as built"), in cluster mode only.
//
//   - Sweep: every 2 s it reads the jobs not done from PostgreSQL (MapJobStore::Running) and,
//     for each whose owner is dead in the heartbeats' membership copy (ClusterView: its
//     start's lease ran out, it stopped, or it restarted at a later epoch), tries to take it over:
//     a compare-and-set of (owner, epoch), so exactly one of the nodes that noticed wins. The
//     winner reads the job's inputs and stored results back and continues it in its MapJobs
//     (Adopt): results stored are not run again, tasks that were in flight on the dead owner run
//     again. It also deletes done jobs whose ttl ran out (MapJobStore::DeleteExpired), once a
//     minute.
//   - Reads: a results request for a job that does not run on this node is answered from
//     PostgreSQL (the stored results after the reader's seq, long-polled every 250 ms until
//     the reader's wait ends); if the owner is dead the reader's node takes the job over at
//     once rather than at its next sweep.
//
// Nothing here runs on the engine thread but the hand-over to MapJobs: PostgreSQL is read on
// a thread of this class's own, with a connection of its own (the journal's appends do not
// queue behind long polls).
//
// Errors: a results read of a job PostgreSQL does not know is NotFound ("no map job ID"); a
// PostgreSQL outage is Unavailable (the client tries again or another node). A takeover that
// won but could not load the job is logged and retried at the next sweep.
// Thread-safety: Start, Results and Shutdown on the engine thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include <atomic>
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

namespace gust::engine {

class MapTakeover {
 public:
  // store: a MapJobStore of this class's own; self, epoch: this node's name and membership
  // epoch (what it takes jobs over as).
  MapTakeover(boost::asio::io_context& io, MapJobs& jobs, MapJobStore& store,
              const ClusterView& view, std::string self, int64_t epoch);
  ~MapTakeover();  // Shutdown()
  MapTakeover(const MapTakeover&) = delete;
  MapTakeover& operator=(const MapTakeover&) = delete;

  void Start();
  void Shutdown();
  // MapJobs::Results for a job that does not run here (see the header comment).
  void Results(const std::string& id, uint64_t after, int64_t wait_ms, int64_t linger_ms,
               MapJobs::ResultsCallback done);
  // GET /v1/jobs/ID of a job that does not run here, from its row: {"JobId", "Function",
  // "Tasks", "State", "Owner", "CreatedMs", "FinishedMs"} (the running counts are the
  // owner's). done runs on the engine thread.
  void Describe(const std::string& id, std::function<void(Result<nlohmann::json>)> done);

 private:
  void ScheduleSweep();
  void Sweep();  // the pool
  // The pool: whether the row's owner is dead in the membership copy (false before the
  // first heartbeat's read: nothing is known yet).
  bool OwnerDead(const MapJobRow& row) const;
  // The pool: takes the job over if its owner is dead and loads it into MapJobs; true when
  // this node now runs it (or will, once the engine thread adopts it).
  bool TryTakeOver(const MapJobRow& row);
  bool Load(const MapJobRow& row);
  void Poll(const std::string& id, uint64_t after, MonoTime deadline, int64_t linger_ms,
            MapJobs::ResultsCallback done);

  boost::asio::io_context& io_;
  MapJobs& jobs_;
  MapJobStore& store_;
  const ClusterView& view_;
  const std::string self_;
  const int64_t epoch_;
  boost::asio::thread_pool pool_{1};
  boost::asio::steady_timer timer_;
  std::atomic<bool> stopping_{false};
  int sweeps_ = 0;  // the pool's
  Mutex mu_;
  // Jobs this node won but could not load (PostgreSQL failed between the two): the sweep
  // loads them again.
  std::set<std::string> unloaded_ GUARDED_BY(mu_);
};

}  // namespace gust::engine
