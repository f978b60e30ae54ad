// PostGuarded for requests, and the binding of an API's named methods to
// routes.
//
// PostGuarded(workers, responder, fn): common/run_guarded.h's backstop for a
// request's work on the worker pool: an exception escaping fn is logged as a
// bug and the request gets a 500 ServiceException naming it (a Responder
// already answered ignores it), while everything else carries on.
//
// OnWorkers(this, &Api::Method): the route handler that runs Method on the
// worker pool under that backstop, for handlers that touch SQLite, files or
// hash and unzip code. Handlers of the engine thread are bound with
// std::bind_front(&Api::Method, this). Each API's Register() is a table of
// these.
//
// Thread-safety: stateless; fn runs on one of the pool's threads.
#pragma once

#include <boost/asio/thread_pool.hpp>

#include <memory>
#include <utility>

#include "common/run_guarded.h"
#include "http/router.h"
#include "http/server.h"

namespace gust::api {

// Logs "BUG: ..." and answers `responder` with a 500 (a Responder already
// answered ignores it).
void ReportEscapedException(const char* what, const http::Responder& responder);

// Posts fn to the pool under the backstop. `responder` is the request fn answers.
template <typename Fn>
void PostGuarded(boost::asio::thread_pool& workers, http::Responder responder, Fn fn) {
  gust::PostGuarded(workers, [responder = std::move(responder), fn = std::move(fn)]() mutable {
    RunGuarded(fn, [&responder](const char* what) { ReportEscapedException(what, responder); });
  });
}

// A worker-pool handler that answers with what it returns.
template <typename Api>
using WorkerMethod = http::Response (Api::*)(const http::Request&, const http::RouteMatch&);
// A worker-pool handler that answers through the responder (later, from the engine thread).
template <typename Api>
using AnsweringWorkerMethod = void (Api::*)(const http::Request&, const http::RouteMatch&,
                                            http::Responder);

// The request moves to the pool with the handler (a body may be ~100 MB).
template <typename Api>
http::RouteHandler OnWorkers(boost::asio::thread_pool& workers, Api* api,
                             AnsweringWorkerMethod<Api> method) {
  return
      [&workers, api, method](http::Request&& req, const http::RouteMatch& m, http::Responder r) {
        auto shared = std::make_shared<http::Request>(std::move(req));
        PostGuarded(workers, r, [api, method, shared, m, r] { (api->*method)(*shared, m, r); });
      };
}

template <typename Api>
http::RouteHandler OnWorkers(boost::asio::thread_pool& workers, Api* api,
                             WorkerMethod<Api> method) {
  return [&workers, api, method](http::Request&& req, const http::RouteMatch& m,
                                 http::Responder r) {
    auto shared = std::make_shared<http::Request>(std::move(req));
    PostGuarded(workers, r, [api, method, shared, m, r] { r.Send((api->*method)(*shared, m)); });
  };
}

}  // namespace gust::api
