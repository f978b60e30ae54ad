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

#include "api/lambda_shapes.h"
#include "engine/async_invoker.h"
#include "http/router.h"
#include "store/event_queue.h"
#include "store/metadata_store.h"

namespace gust::api {

class EventsApi {
 public:
  EventsApi(boost::asio::io_context& io, boost::asio::thread_pool& workers, MetadataStore& store,
            EventQueue& queue, engine::AsyncInvoker& async);
  void Register(http::Router& router);

 private:
  // Put (replace: true) or Update (merge onto what exists).
  http::Response PutConfig(const http::Request& req, const http::RouteMatch& m, bool replace);
  http::Response GetConfig(const http::RouteMatch& m);
  http::Response DeleteConfig(const http::RouteMatch& m);
  http::Response ListConfigs(const http::RouteMatch& m);
  void GetInvocation(const std::string& id, http::Responder responder);

  boost::asio::io_context& io_;
  boost::asio::thread_pool& workers_;
  MetadataStore& store_;
  EventQueue& queue_;
  engine::AsyncInvoker& async_;
};

}  // namespace gust::api
