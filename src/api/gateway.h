// Gateway: HTTP requests to deployed apps, in front of the Invoker.
//
//   http://HOST:PORT/web/<app>/<path>   the app at /web/<app> (SCRIPT_NAME set,
//                                       so url_for builds /web/<app>/... links)
//   http://<app>.localhost:PORT/<path>  the app at the root (Host routing)
//
// <app> is a function name (a stage function is "<project>-<stage>"). Each
// request invokes `<app>:live` when the alias exists (`gust deploy STAGE`
// points it at the newest version, so an update switches traffic atomically),
// else $LATEST. Stage functions running a WSGI app get the compact WSGI
// encoding; every other function gets an API Gateway payload v2.0 event
// (http_event.h).
//
// Scale-out: each app has a soft limit of requests in flight, starting at the
// machine's core count. Requests beyond it wait in a FIFO for a running one
// to finish. When the oldest has waited scale_out_after_ms and no request of
// the app finished during that interval (the running ones are slow or stuck),
// or it has waited four intervals (the queue drains too slowly), the limit
// grows by one: one more sandbox, at most one step per interval, so a burst
// against a slow-starting app does not fork a sandbox per request. The limit
// shrinks back to the peak in-flight count of each quieter second. Why: on a small machine 32
// sandboxes serving 32 connections of CPU-bound requests cost ~80% more CPU per request than 2
// (context switches, caches) and starve the engine thread; a request queued
// behind a fast one waits less than a new sandbox takes to start. A slow or
// stuck request holds one slot; the others keep flowing through the rest,
// and a new slot opens after scale_out_after_ms.
//
// Authorization: apps are public, like API Gateway's default, unless the
// function's environment has GUST_WEB_AUTHORIZATION=sigv4 (a stage's
// "authorization": "sigv4" sets it); then each request goes through
// options.authorize first, and its refusal is the answer.
//
// Errors are HTTP answers with a JSON body {"message", "errorType",
// "requestId"}: unknown app 404 (naming it), body over max_body_bytes 413,
// the app raised / crashed / answered garbage 502 (the traceback goes to the
// function's log, not to the client), the app's timeout 504, the function at
// its concurrency 429. Every request appends one access-log line starting
// with "[HTTP] " to the function's log (`gust tail --http` filters on it).
//
// Thread-safety: single-threaded, on the engine's io_context (like the Invoker).
#pragma once

#include <boost/asio/io_context.hpp>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "api/http_event.h"
#include "common/clock.h"
#include "common/timer.h"
#include "engine/invoker.h"
#include "engine/log_sink.h"
#include "http/server.h"

namespace gust::api {

// The stage adapter's handler (runtimes/python/gust_runtime/stage.py) and the
// variable naming the WSGI app it serves.
inline constexpr const char* kStageHandler = "gust_runtime.stage.handler";
inline constexpr const char* kAppFunctionEnv = "GUST_APP_FUNCTION";
inline constexpr const char* kLiveAlias = "live";
// The function environment variable naming a web app's authorization ("sigv4").
inline constexpr const char* kWebAuthorizationEnv = "GUST_WEB_AUTHORIZATION";

struct GatewayOptions {
  // Request bodies above this are refused with 413 (Lambda's 6 MB payload).
  size_t max_body_bytes = engine::kMaxSyncPayloadBytes;
  // A request to an app at its concurrency waits this long for a slot
  // before the answer is 429.
  int64_t max_queue_ms = 10000;
  // Requests in flight per app before queueing (0: the machine's core count, at least 2).
  int base_in_flight = 0;
  // The oldest queued request waited this long: allow one more in flight.
  int64_t scale_out_after_ms = 50;
  // For apps that require signed requests: the refusal to answer with, or
  // nullopt to serve. Unset: such apps refuse every request (fail closed).
  std::function<std::optional<http::Response>(const http::Request&)> authorize;
};

class Gateway {
 public:
  Gateway(boost::asio::io_context& io, engine::Invoker& invoker, engine::LogSink& logs,
          GatewayOptions options = {});
  // Whether the request is addressed to an app (cheap: looks at the target
  // prefix and the Host header only).
  bool Accepts(const http::Request& req) const;
  // Precondition: Accepts(req). Answers through responder, never inline-blocking.
  void Handle(http::Request&& req, http::Responder responder);

 private:
  // What an app name resolves to, valid while the function's generation holds.
  struct Route {
    uint64_t generation = 0;
    bool exists = false;
    std::string qualifier;  // "live" or "$LATEST"
    bool wsgi = false;      // the WSGI encoding, else an API Gateway v2.0 event
    bool sigv4 = false;     // requests must be signed (kWebAuthorizationEnv)
  };
  // Requests of one app: in flight, the soft limit, and those waiting.
  struct Pending {
    engine::InvokeRequest request;
    engine::Invoker::Done done;
    MonoClock::time_point since;
  };
  struct AppLoad {
    int in_flight = 0;
    int limit = 0;
    int peak = 0;  // most in flight since window_start
    MonoClock::time_point window_start;
    MonoClock::time_point last_scale_out;
    MonoClock::time_point last_finish;
    std::deque<Pending> queue;
    std::unique_ptr<Timer> timer;  // armed while queue is non-empty
    bool timer_armed = false;
  };

  const Route& Resolve(const std::string& app);
  // Invokes now if the app is under its limit, else queues.
  void Dispatch(const std::string& app, engine::InvokeRequest request, engine::Invoker::Done done);
  void Start(const std::string& app, AppLoad& load, engine::InvokeRequest request,
             engine::Invoker::Done done);
  void Finished(const std::string& app);
  void ArmScaleOut(const std::string& app, AppLoad& load);

  boost::asio::io_context& io_;
  engine::Invoker& invoker_;
  engine::LogSink& logs_;
  GatewayOptions options_;
  std::unordered_map<std::string, Route> routes_;
  std::unordered_map<std::string, AppLoad> load_;
};

}  // namespace gust::api
