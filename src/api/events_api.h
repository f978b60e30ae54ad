// EventsApi: asynchronous invocations' settings and outcomes.
//
// Lambda's REST shapes (botocore's lambda/2015-03-31 model):
//   PUT|POST|GET|DELETE /2019-09-25/functions/{name}/event-invoke-config[?Qualifier=]
//   GET /2019-09-25/functions/{name}/event-invoke-config/list
// gust's /v1:
//   GET  /v1/async-invocations/{id}          status, attempts, result or error
//   GET  /v1/functions/{name}/dead-letters   the dead-letter store of a function
//   POST /v1/functions/{name}/dead-letters/redrive   {"request_ids": [...]} or {} for all
//   GET  /v1/async                           counters and the queue's counts
// (The async Invoke itself is LambdaApi::Invoke with X-Amz-Invocation-Type: Event.)
//
// Thread-safety: handlers that touch SQLite run on the worker pool and post
// changes to the engine thread (AsyncInvoker::ConfigChanged).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include "api/api_context.h"
#include "api/lambda_shapes.h"
#include "engine/async_invoker.h"
#include "http/router.h"
#include "store/event_queue.h"
#include "store/metadata_store.h"

namespace gust::api {

class EventsApi {
 public:
  explicit EventsApi(const ApiContext& ctx);
  void Register(http::Router& router);

 private:
  // Worker pool: the event invoke configs (Put replaces, Update merges onto
  // what exists) and the dead letters, in SQLite.
  http::Response PutConfig(const http::Request& req, const http::RouteMatch& m);
  http::Response UpdateConfig(const http::Request& req, const http::RouteMatch& m);
  http::Response SaveConfig(const http::Request& req, const http::RouteMatch& m, bool replace);
  http::Response GetConfig(const http::Request& req, const http::RouteMatch& m);
  http::Response DeleteConfig(const http::Request& req, const http::RouteMatch& m);
  http::Response ListConfigs(const http::Request& req, const http::RouteMatch& m);
  http::Response DeadLetters(const http::Request& req, const http::RouteMatch& m);
  // Engine thread (the AsyncInvoker's state), then the worker pool for what is stored.
  void GetInvocation(http::Request&& req, const http::RouteMatch& m, http::Responder responder);
  void Redrive(http::Request&& req, const http::RouteMatch& m, http::Responder r);
  void Stats(http::Request&& req, const http::RouteMatch& m, http::Responder r);

  boost::asio::io_context& io_;
  boost::asio::thread_pool& workers_;
  MetadataStore& store_;
  EventQueue& queue_;
  engine::AsyncInvoker& async_;
};

}  // namespace gust::api
