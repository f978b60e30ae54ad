// ClusterNode: this engine's side of cluster membership (docs/CLUSTER.md, "Membership and
// fencing"), in cluster mode only. A thread of its own renews the node's lease in the
// `nodes` table every interval (2 s against a 10 s lease: four heartbeats may be lost before
// the node is dead to the others) with its cores, memory and load, and extends the event
// queue's leases of this node's unfinished events with the same beat (EventQueue::
// RenewLeases), so an event that waits or runs longer than one lease is not leased again.
// Stop() ends the thread and marks the row stopped (NodeStore::Leave).
//
// Live() says whether this node's membership (and so its event leases, its map jobs' rows
// and the chunks it runs for other nodes) is still valid by its own clock: true until
// `lease` less a margin (LapseMargin) after the start of the last heartbeat that renewed
// them. A node that cannot renew (PostgreSQL unreachable, or the node cut off) reads false
// from then on, before any other node may read it dead, and stops the work it may lose:
// its dispatcher abandons its events (AsyncInvoker::UseClusterLeases), ClusterMaps its map
// jobs and remote sessions. A lapse is final for this start's epoch: once Live() has read
// false, the next heartbeat that reaches the database is a NodeStore::Rejoin, which makes
// the node live again at the next epoch (the event queue's and the OnRejoin callback's
// users switch to it first), so what it gave up stays fenced and is taken over (a job row
// naming the old epoch reads as a dead start's), never resumed by it.
//
// For routing (cluster step 3, cluster_routes.h) each beat also publishes this node's idle
// sandboxes per function version and free slots (MeasureSandboxes, taken on the engine
// thread), then reads every node's row into a ClusterView: the copy that forwarding reads,
// so a routing decision never waits for the database.
//
// Drain (`gust node drain NAME`, docs/CLUSTER.md "Step 6 as built"): another node records
// it in this node's row; the first beat that reads the row as "draining" calls the OnDrain
// callback, once. Heartbeats go on (the row stays "draining") until Stop().
//
// ReadPeers fills the membership copy once, before the node serves: a node just started
// forwards (calls, a job's status and cancel) like any other, not only after its first beat.
//
// Database I/O never runs on the engine thread: a slow or unreachable PostgreSQL delays
// heartbeats, never requests. A failed heartbeat is logged (once per outage, and when it
// recovers); the node keeps serving.
//
// Thread-safety: Start and Stop from one thread (the engine's composition root); the beat
// runs on its own thread; Live() from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <thread>

#include "common/clock.h"
#include "common/mutex.h"
#include "common/thread_annotations.h"
#include "engine/cluster_routes.h"
#include "engine/invoker.h"
#include "engine/outage_log.h"
#include "store/event_queue.h"
#include "store/node_store.h"

namespace gust::engine {

// What this machine publishes: cores this process may use, memory (MemTotal and
// MemAvailable) and the 1-minute load average. name, advertise_url and version are the
// caller's.
void MeasureNode(NodeInfo& info);
// What the invoker has: info.warm (idle sandboxes per function version, as JSON) and
// info.free_slots. Engine thread only (the Invoker's rule).
void MeasureSandboxes(const Invoker& invoker, NodeInfo& info);

class ClusterNode {
 public:
  // Constructed right after NodeStore::Join: live for `lease` from now.
  ClusterNode(NodeStore& nodes, EventQueue& queue, NodeInfo self,
              std::chrono::milliseconds interval = std::chrono::seconds(2),
              std::chrono::milliseconds lease = std::chrono::seconds(10));
  ~ClusterNode();  // Stop()
  ClusterNode(const ClusterNode&) = delete;
  ClusterNode& operator=(const ClusterNode&) = delete;

  // Before Start: each beat also fills what measure_sandboxes measures (it may wait for the
  // engine thread) and leaves its read of every node's row in view.
  void Publish(std::function<void(NodeInfo&)> measure_sandboxes, ClusterView* view);
  // Before Start: called once, on the beat thread, when this node's row reads "draining"
  // (needs Publish's view: the beat reads the rows for it).
  void OnDrain(std::function<void()> drain);
  // Before Start: called on the beat thread with the new epoch when the node rejoins after
  // a lapse, before Live() reads true again.
  void OnRejoin(std::function<void(int64_t)> rejoined);
  // Before Start, on the caller's thread: reads every node's row into Publish's view.
  Status ReadPeers();
  void Start();
  // Ends the heartbeats and leaves the cluster (the row reads "stopped"). Idempotent.
  void Stop();
  // From any thread; once false, false until a Rejoin (see above).
  bool Live() const;
  // How long before its lease ends a node counts itself lapsed: a tenth of the lease (1 s of
  // the default 10 s), at least kMinLapseMargin: the others read it dead at the database's
  // deadline, which is after the start of the beat that set it, and its own checks run every
  // 100-500 ms (ClusterMaps, AsyncInvoker), so the work is stopped before it can be taken.
  static std::chrono::milliseconds LapseMargin(std::chrono::milliseconds lease);
  static constexpr std::chrono::milliseconds kMinLapseMargin{200};

 private:
  void Loop();
  void Beat();

  NodeStore& nodes_;
  EventQueue& queue_;
  NodeInfo self_;  // the beat thread's own, after Start
  std::function<void(NodeInfo&)> measure_sandboxes_;
  ClusterView* view_ = nullptr;
  std::function<void()> on_drain_;
  std::function<void(int64_t)> on_rejoin_;
  bool drain_noticed_ = false;  // the beat thread's
  const std::chrono::milliseconds interval_;
  Mutex mu_;
  CondVar wake_;
  bool stopping_ GUARDED_BY(mu_) = false;
  const std::chrono::milliseconds lease_;
  OutageLog beats_;  // the beat thread's
  const std::chrono::milliseconds margin_;
  std::atomic<int64_t> live_until_ns_;  // MonoClock: the membership's deadline as seen here
  // Set by the first Live() (or beat) that finds the deadline less the margin passed; cleared
  // only by a Rejoin. mutable: Live() is a const check that records what it saw.
  mutable std::atomic<bool> lapsed_{false};
  // The beat thread's: this lapse's Rejoin succeeded but the node has not been live since
  // (the event queue's first statement after an outage fails on its broken connection, or
  // the beat took longer than the lease): the next beat is a heartbeat of the new epoch,
  // not another rejoin.
  bool rejoined_ = false;
  std::thread thread_;
};

}  // namespace gust::engine
