// ClusterLogs: `gust logs` and `gust tail` across a cluster's nodes (docs/CLUSTER.md, "Step 6
// as built"). A function's log lines stay on the node that ran it (engine::LogSink, one file
// per function on each node); the node that serves GET /v1/functions/{name}/logs reads its
// own file and asks every other live node (up or draining, from the heartbeats' in-memory
// copy, engine::ClusterView, or the database before the first beat) for its lines over `GET
// /v1/cluster/logs/{name}?since=&offset=`, signed with the cluster's credential (the /v1/cluster/
// routes take that key and no other, engine_server.cc), all at once, and merges them by time.
//
// Wire: the node route answers {"text": entries "<epoch ms>\t<text>\n", "next_offset": n},
// LogSink::Read's chunk of its own file. The merged answer's entries carry the node that
// produced them, "<epoch ms>\t<node>\t<text>\n", in time order (stable: a tie keeps node
// order); its cursor is one byte offset per node, "n1=123,n2=456", that the next read passes
// back (`?cursor=`) to get only newer lines (`gust logs --follow` polls it). Order is by time
// within one read; each node's part of a read is at most ~1 MB, so a log larger than that is
// read in several reads, each in order.
//
// Errors: a node that does not answer (refused, timed out, an error status) or that the
// membership reads dead is named in a warning, never a failure: its lines are left out and
// its offset kept, so a later read picks them up. A cursor that does not parse is
// InvalidArgument naming it. Stopped nodes (left in order) are not asked.
//
// Thread-safety: Read blocks (its node calls run on threads of their own, at most
// kLogCallTimeout each) and is called on the worker pool; the route runs there too.
#pragma once

#include <boost/asio/thread_pool.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "api/peer_link.h"
#include "common/status.h"
#include "engine/cluster_routes.h"
#include "http/router.h"
#include "store/node_store.h"

namespace gust::api {

class ClusterLogs {
 public:
  // nodes: read when view has no copy yet (the first 2 s after the start, before a beat).
  ClusterLogs(boost::asio::thread_pool& workers, const engine::ClusterView& view, NodeStore& nodes,
              std::string self, PeerLink link, std::string log_dir);
  // GET /v1/cluster/logs/{name}: this node's own lines, for another node's Read.
  void Register(http::Router& router);

  struct Merged {
    std::string text;    // "<epoch ms>\t<node>\t<text>\n" entries, by time
    std::string cursor;  // "node=offset,..." for the next read
    uint64_t own_next_offset = 0;
    std::vector<std::string> warnings;  // nodes whose lines are not included, and why
  };
  // The lines of function at or after since_ms, past cursor ("" from the start), of every
  // live node.
  Result<Merged> Read(const std::string& function, int64_t since_ms, const std::string& cursor);

  // "n1=12,n2=0" <-> offsets by node; exposed for tests.
  static Result<std::map<std::string, uint64_t>> ParseCursor(const std::string& cursor);
  static std::string FormatCursor(const std::map<std::string, uint64_t>& offsets);
  // Entries "<ms>\t<text>\n" of each node, merged by time as "<ms>\t<node>\t<text>\n".
  static std::string MergeByTime(const std::vector<std::pair<std::string, std::string>>& parts);

 private:
  http::Response NodeLines(const http::Request& req, const http::RouteMatch& m);

  boost::asio::thread_pool& workers_;
  const engine::ClusterView& view_;
  NodeStore& nodes_;
  const std::string self_;
  const PeerLink link_;
  const std::string log_dir_;
};

}  // namespace gust::api
