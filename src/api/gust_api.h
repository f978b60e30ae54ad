// GustApi: gust's own /v1 API beside the Lambda one — health and isolation
// report, code download (GetFunction's Code.Location), function logs by offset
// (`gust logs --follow` polls it) and invocation records (status, cost).
//
// Logs in cluster mode (ctx.cluster_logs): every live node's lines of the function, merged by
// time, each line "<epoch ms>\t<node>\t<text>" ("node_labels": true), read from the
// `cursor` the previous answer gave; nodes that did not answer are named in "warnings".
// Embedded: this engine's lines, "<epoch ms>\t<text>", from byte `offset`.
//
// Thread-safety: handlers that read files or SQLite run on the worker pool;
// /v1/health reads the invoker's counters on the engine thread.
#pragma once

#include <boost/asio/thread_pool.hpp>

#include <string>

#include "api/api_context.h"
#include "api/cluster_logs.h"
#include "engine/invoker.h"
#include "http/router.h"
#include "store/blob_store.h"
#include "store/metadata_store.h"

namespace gust::api {

class GustApi {
 public:
  explicit GustApi(const ApiContext& ctx);
  void Register(http::Router& router);

 private:
  // Engine thread: the invoker's state.
  void Health(http::Request&& req, const http::RouteMatch& m, http::Responder r);
  void Sandboxes(http::Request&& req, const http::RouteMatch& m, http::Responder r);
  void Recycle(http::Request&& req, const http::RouteMatch& m, http::Responder r);
  void Warm(http::Request&& req, const http::RouteMatch& m, http::Responder r);
  // Worker pool: blobs, log files, invocation records.
  http::Response GetCode(const http::Request& req, const http::RouteMatch& m);
  http::Response Logs(const http::Request& req, const http::RouteMatch& m);
  http::Response Stats(const http::Request& req, const http::RouteMatch& m);
  http::Response Invocations(const http::Request& req, const http::RouteMatch& m);

  boost::asio::thread_pool& workers_;
  MetadataStore& store_;
  BlobStore& blobs_;
  engine::Invoker& invoker_;
  const std::string log_dir_;
  const EngineInfo& info_;
  ClusterLogs* cluster_logs_;
};

}  // namespace gust::api
