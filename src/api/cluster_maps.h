// ClusterMaps: a wide map uses every node of a cluster (docs/CLUSTER.md, "Step 5a as
// built"). Registered only on an engine started with `gust up --cluster`; an embedded engine
// has none and pays nothing.
//
// Two roles on every node:
//   - Owner (the node the client called, which keeps the job in its MapJobs): every half
//     second it offers the jobs whose tasks wait while all its own sessions run
//     (MapJobs::Offers) to the other live nodes (`POST /v1/cluster/jobs/ID/offer`) and
//     takes back the chunks of remote sessions whose node is dead or restarted
//     (MapJobs::ReleaseNodes; a draining node's sessions stand, since it finishes its
//     chunks). Both read the heartbeats' in-memory copy of the membership
//     (engine::ClusterView, refreshed every beat): no database read of its own. It serves its
//     remote sessions' round trips: `POST /v1/cluster/jobs/ID/chunks` carries a session's answers
//     and returns its next chunk (MapJobs::RemoteTurn), one round trip per chunk as a local yield
//     is.
//   - Helper (a node offered a job): runs a share of it in its own sandboxes, each a
//     streaming invocation of the job's map function (resolved from the shared stores by
//     name, its code by digest), whose chunks come from the owner. The share's width is
//     this node's own scaler's (map_scaler.h) from this node's own measurements: cores,
//     per-task time and CPU share of its sessions, cold starts, memory; it ends when the
//     owner has no chunk left for it, and starts again when offered again.
//
// Requests between nodes are signed with the cluster's credential (`gust cluster init`);
// the engine accepts /v1/cluster/... only with that key (engine_server.cc), and sandboxes
// never reach it (the sandbox channel serves only the job API).
//
// Wire (node to node): chunks request headers x-gust-node, x-gust-epoch, x-gust-session,
// x-gust-sandbox, x-gust-cold, x-gust-turn (yield | last | done) and, with done,
// x-gust-status (a Code number), x-gust-function-error; body: the worker's answer (or its
// invocation's payload / error message). Answer: 200 with the chunk in the body and
// x-gust-timeout-ms, x-gust-pending, x-gust-tasks; 204 (x-gust-pending): no more for this session;
// 404: no such job. Offer: a JSON body {owner, owner_url, function, task_timeout_s, concurrency,
// pending}; 202.
//
// Errors: an owner that cannot be reached ends the helper's sessions of that job (owner
// death and takeover are step 5b); a malformed request is a 400 naming the field.
//
// Fencing (docs/CLUSTER.md, "Step 6 as built"): while this node's own membership is not live
// (UseMembership; its heartbeats fail, e.g. it is cut off) its owners read it dead and take
// its chunks back, so a helper then kills the sandboxes of its remote sessions (reporting
// nothing: the owner has let them go) and starts none until it is live again.
//
// Thread-safety: routes, offers and sessions on the engine thread; HTTP exchanges run on a
// pool of this class's own and answer on the engine thread.
// Start() and Shutdown() from the engine's composition root, Shutdown() before MapJobs'
// and the Invoker's.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "api/peer_link.h"
#include "common/mutex.h"
#include "common/thread_annotations.h"
#include "engine/cluster_routes.h"
#include "engine/invoker.h"
#include "engine/map_jobs.h"
#include "http/client.h"
#include "http/router.h"

namespace gust::api {

class ClusterMaps {
 public:
  // self: this node's name and advertised URL; epoch: its membership epoch; link: how
  // it calls other nodes (peer_link.h); cores: what this node's scaler counts (0: MapJobs', this
  // process's CPUs).
  ClusterMaps(boost::asio::io_context& io, engine::Invoker& invoker, engine::MapJobs& jobs,
              const engine::ClusterView& view, std::string self, std::string self_url,
              int64_t epoch, PeerLink link, int cores = 0);
  ~ClusterMaps();  // Shutdown()
  ClusterMaps(const ClusterMaps&) = delete;
  ClusterMaps& operator=(const ClusterMaps&) = delete;

  void Register(http::Router& router);
  // Before Start: whether this node's membership is live (engine::ClusterNode::Live).
  void UseMembership(std::function<bool()> live);
  // This node rejoined the cluster as `epoch` (engine::ClusterNode::OnRejoin): its chunk
  // calls name it from now on. Any thread.
  void SetEpoch(int64_t epoch) { epoch_.store(epoch); }
  void Start();
  // Ends offers and helper sessions' round trips; waits for the exchanges in flight.
  void Shutdown();
  // This node drains (`gust node drain`): offers are refused (503), no helper session
  // starts, and each running one asks for no chunk after the one it holds ("last"). Its
  // own jobs are still offered to the up nodes. Engine thread.
  void Drain();
  // Helper sessions running here (of every share). Engine thread.
  size_t Sessions() const;

 private:
  struct Share;
  struct RemoteSession;
  using SharePtr = std::shared_ptr<Share>;
  using RemoteSessionPtr = std::shared_ptr<RemoteSession>;
  // What an exchange with an owner returned.
  struct Turn {
    Status status;      // the owner could not be reached or refused
    std::string input;  // the next chunk; empty: no more
    int64_t timeout_ms = 0;
    size_t pending = 0;
    size_t tasks = 0;  // in the chunk; 0 for "go on" with the current one
  };

  // Routes.
  void Chunks(http::Request&& req, const http::RouteMatch& m, http::Responder r);
  void Offered(http::Request&& req, const http::RouteMatch& m, http::Responder r);

  // Owner: offers and membership, every kOfferInterval. Helper: the fencing check.
  void Tick();
  // Helper: whether this node may run shares; on a lapse, abandons every remote session
  // and (owner) drops its recorded jobs (MapJobs::AbandonRecorded).
  bool CheckMembership();
  void SendOffers();

  // Helper: a share of an owner's job.
  void Scale(const SharePtr& share);
  void Launch(const SharePtr& share);
  void OnYield(const SharePtr& share, const RemoteSessionPtr& session, std::string answer,
               runtime::SandboxSession::ResumeFn resume);
  void OnDone(const SharePtr& share, const RemoteSessionPtr& session,
              const engine::InvokeResponse& response);
  // Sends one turn of a session to its owner on the pool; done runs on the engine thread.
  void Exchange(const SharePtr& share, const RemoteSessionPtr& session, const std::string& turn,
                std::string body, const engine::InvokeResponse* outcome,
                std::function<void(Turn)> done);
  // Blocking, on the pool: one signed request to `url` (a kept client per URL).
  Result<http::ClientResponse> Call(const std::string& url, const std::string& target,
                                    std::string body, std::map<std::string, std::string> headers);

  boost::asio::io_context& io_;
  engine::Invoker& invoker_;
  engine::MapJobs& jobs_;
  const engine::ClusterView& view_;
  const std::string self_;
  const std::string self_url_;
  std::atomic<int64_t> epoch_;  // SetEpoch
  const PeerLink link_;
  const int cores_;
  boost::asio::thread_pool pool_;
  boost::asio::steady_timer timer_;
  bool stopping_ = false;
  std::function<bool()> membership_live_;  // unset: always live
  bool lapsed_ = false;                    // the membership was not live at the last tick
  bool draining_ = false;
  int ticks_ = 0;
  std::map<std::string, SharePtr> shares_;  // by owner + "/" + job
  Mutex clients_mu_;
  std::multimap<std::string, std::unique_ptr<http::Client>> idle_clients_ GUARDED_BY(clients_mu_);
};

}  // namespace gust::api
