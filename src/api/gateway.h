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
// Admission: each request goes to the Invoker with the gateway's
// AdaptiveLimit (engine/invoker.h): the app's requests in flight keep under a
// soft limit starting at the machine's core count, the rest wait in the
// function's queue (up to max_queue_ms, then 429) and the limit grows by one
// sandbox when they stall. One queue, the Invoker's, holds every waiting
// request of a function (docs/ARCHITECTURE.md, "A web app's requests queue").
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
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>

#include "api/forwarder.h"
#include "api/http_event.h"
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
  // A request to an app at its limit (adaptive or concurrency) waits this
  // long for a slot before the answer is 429.
  int64_t max_queue_ms = 10000;
  // engine::AdaptiveLimit's: requests in flight per app before queueing (0:
  // the machine's core count, at least 2), and the stall after which one more
  // may run.
  int base_in_flight = 0;
  int64_t scale_out_after_ms = 50;
  // For apps that require signed requests: the refusal to answer with, or
  // nullopt to serve. Unset: such apps refuse every request (fail closed).
  std::function<std::optional<http::Response>(const http::Request&)> authorize;
  // Cluster mode only (forwarder.h): a path-routed request (/web/<app>/...) of an app with
  // no idle sandbox here may run on another node. A request another node forwarded was
  // authorized there (and its mark checked against the cluster's key before routing).
  Forwarder* forwarder = nullptr;
};

class Gateway {
 public:
  // `io` is the engine thread's, which the Invoker runs on.
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
  const Route& Resolve(const std::string& app);

  engine::Invoker& invoker_;
  engine::LogSink& logs_;
  GatewayOptions options_;
  std::unordered_map<std::string, Route> routes_;
};

}  // namespace gust::api
