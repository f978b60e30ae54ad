// ClusterApi: the cluster's own routes (docs/CLUSTER.md), registered only on an engine
// started with `gust up --cluster`: GET /v1/nodes, the membership as this node reads
// it from the database (`gust cluster status`): {"node": this node's name, "epoch": its
// epoch, "nodes": [{name, advertise, state, epoch, version, cores, memory_mb,
// memory_free_mb, load1, started_ms, heartbeat_ms, heartbeat_age_ms, deadline_in_ms,
// warm: {function: {version: idle sandboxes}}, free_slots}]}.
// `activity` is what still runs on the node as its last heartbeat published it
// ({invocations, async_events, map_jobs, map_shares}).
//
// POST /v1/nodes/{name}/drain (`gust node drain NAME`): records in the database that node
// `name` drains; it notices at its next heartbeat (docs/CLUSTER.md, "Step 6 as built").
// Answers 200 with the node's row as above; 404 naming a node the cluster does not have;
// 409 naming the state of a node that is stopped or dead. On an embedded engine
// (RegisterEmbedded) the same route is a 409 saying there is no cluster.
//
// A database that cannot be reached is a 503 naming its host and port.
//
// Thread-safety: handlers run on the worker pool (they read PostgreSQL).
#pragma once

#include <boost/asio/thread_pool.hpp>

#include <string>

#include "http/router.h"
#include "store/node_store.h"

namespace gust::api {

class ClusterApi {
 public:
  ClusterApi(boost::asio::thread_pool& workers, NodeStore& nodes, std::string node_name);
  void Register(http::Router& router);
  // An engine without --cluster: the drain route answers that there is no cluster.
  static void RegisterEmbedded(http::Router& router);

 private:
  http::Response Nodes(const http::Request& req, const http::RouteMatch& m);
  http::Response Drain(const http::Request& req, const http::RouteMatch& m);

  boost::asio::thread_pool& workers_;
  NodeStore& nodes_;
  const std::string node_name_;
};

}  // namespace gust::api
