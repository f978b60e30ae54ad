// Forwarder: a cluster node's side of "Sync invoke, not warm here" (docs/CLUSTER.md, "Step 3
// as built"). A synchronous invocation (Lambda's Invoke, or a web request to an app) that
// finds no idle sandbox of its function version on this node goes to a node that has one,
// else cold-starts where the load per core is lowest (engine/cluster_routes.h), reading only
// the in-memory copy of the heartbeats (engine::ClusterView).
//
// The request goes over HTTP to the chosen node's advertised URL, with the client's method,
// target, body and headers, re-signed (SigV4) with the cluster's credential and marked
// `x-gust-forwarded: <this node>`. The receiving node accepts that header only on a request
// signed with the cluster's credential (engine_server.cc) and runs a marked request itself:
// a request is forwarded at most once. Its answer (status, headers, body) is this node's.
//
// Failures: a node that could not be reached at all (nothing delivered: connection refused,
// a dead node the copy still shows) is skipped for the next candidate, then this node runs
// the call itself; a failure after the request was delivered is a 502 naming the node, never
// a second run of a function that may have run.
//
// A node that reads itself "draining" in the copy (`gust node drain`) forwards every call
// it can to an up node, warm sandbox here or not (engine::ChooseAway), and runs it itself
// only when no node is up or none could be reached: a drain never drops a call.
//
// Requests that are not function calls go through the same exchange (and credentials):
// ForwardAway sends a draining node's new map job to an up node, ForwardTo sends a map job's
// status and cancel to the node that owns the job (docs/CLUSTER.md, "Step 5b as built").
//
// Only in cluster mode: an embedded engine has no Forwarder and pays nothing.
//
// Thread-safety: Forward on the engine thread (it reads the Invoker), ForwardAway and
// ForwardTo from any thread; the HTTP exchange runs
// on a pool of its own (blocking clients, one connection per node and thread) and answers
// on the engine thread. Shutdown() once, from the engine's composition root.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <string>

#include "api/peer_link.h"
#include "engine/cluster_routes.h"
#include "engine/invoker.h"
#include "http/server.h"

namespace gust::api {

// Marks a forwarded request with the name of the node that forwarded it.
inline constexpr const char* kForwardedHeader = "x-gust-forwarded";

class Forwarder {
 public:
  // self: this node's name; link: how it calls other nodes (peer_link.h); timeout: a forwarded
  // call's limit (the longest function timeout and then some); peer_silence: how long the node
  // called may acknowledge nothing before the call fails as a 502 (a node cut off sends no
  // RST: http::Client::SetPeerSilenceLimit); threads: forwards in flight at once (more wait
  // for a thread).
  Forwarder(boost::asio::io_context& io, engine::Invoker& invoker, const engine::ClusterView& view,
            std::string self, PeerLink link, std::chrono::milliseconds timeout,
            std::chrono::milliseconds peer_silence, int threads = 16);
  ~Forwarder();  // Shutdown()
  Forwarder(const Forwarder&) = delete;
  Forwarder& operator=(const Forwarder&) = delete;

  // Called back on the engine thread with the request (marked forwarded by this node, so
  // that it is not forwarded again) when no node could be reached: run it here.
  using RunHere = std::function<void(http::Request&&)>;
  // Whether req, an invocation of function/qualifier, went to another node (req is then
  // moved from, and responder answers it). false (req untouched): run it here; the
  // request was already forwarded, a sandbox of it is idle here (unless this node is
  // draining), it does not resolve (the local run answers the error) or the choice is this
  // node.
  bool Forward(http::Request& req, const std::string& function, const std::string& qualifier,
               const http::Responder& responder, RunHere run_here);
  // Whether req, new work that is not a function call (a map job's submission), went to an
  // up node because this node reads itself draining (ChooseAway's order: the lowest load per
  // core). false (req untouched): run it here; this node is not draining, req was already
  // forwarded, or no node is up. Any thread.
  bool ForwardAway(http::Request& req, const http::Responder& responder, RunHere run_here);
  // Whether req went to node `name` (a map job's owner), which the copy reads up or draining.
  // false (req untouched): `name` is this node or not live in the copy, or req was already
  // forwarded. run_here is called when `name` could not be reached (nothing delivered).
  // Any thread.
  bool ForwardTo(http::Request& req, const std::string& name, const http::Responder& responder,
                 RunHere run_here);
  // Whether req carries the forwarded mark (checked against the cluster's key before
  // routing, engine_server.cc).
  static bool IsForwarded(const http::Request& req);
  // Waits for the forwards in flight; forwards not yet started are dropped (their clients
  // get the server's 500).
  void Shutdown();

 private:
  struct Node {
    std::string name;
    std::string url;
  };
  // Posts req to the pool for Exchange (moved from).
  void Send(http::Request& req, std::vector<Node> nodes, const http::Responder& responder,
            RunHere run_here);
  // The pool's: tries nodes in order, then answers (or runs here) on the engine thread.
  void Exchange(http::Request req, const std::vector<Node>& nodes, http::Responder responder,
                RunHere run_here);

  boost::asio::io_context& io_;
  engine::Invoker& invoker_;
  const engine::ClusterView& view_;
  const std::string self_;
  const PeerLink link_;
  const std::chrono::milliseconds timeout_;
  const std::chrono::milliseconds peer_silence_;
  boost::asio::thread_pool pool_;
  std::atomic<bool> shut_down_{false};
};

}  // namespace gust::api
