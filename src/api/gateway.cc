#include "api/gateway.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <thread>

#include "common/clock.h"
#include "common/ids.h"
#include "common/json_read.h"

namespace gust::api {

namespace beast_http = http::beast_http;
using Json = nlohmann::json;

namespace {

constexpr size_t kMaxCachedRoutes = 4096;

// "127.0.0.1:5123" -> "127.0.0.1"; "[::1]:5123" -> "::1".
std::string IpOf(const std::string& endpoint) {
  size_t colon = endpoint.rfind(':');
  std::string ip = colon == std::string::npos ? endpoint : endpoint.substr(0, colon);
  if (ip.size() >= 2 && ip.front() == '[' && ip.back() == ']') ip = ip.substr(1, ip.size() - 2);
  return ip;
}

http::Response ErrorAnswer(int status, const std::string& message, const std::string& error_type,
                           const std::string& request_id) {
  Json body = {{"message", message}};
  if (!error_type.empty()) body["errorType"] = error_type;
  if (!request_id.empty()) body["requestId"] = request_id;
  http::Response response =
      http::MakeResponse(static_cast<beast_http::status>(status), JsonDump(body));
  return response;
}

// The errorType/errorMessage of a Lambda error document ("" if it is not one).
std::pair<std::string, std::string> ErrorFields(const std::string& document) {
  Json doc = JsonParse(document);
  return {JsonStringOr(doc, "errorType", ""), JsonStringOr(doc, "errorMessage", "")};
}

}  // namespace

Gateway::Gateway(boost::asio::io_context& /*io*/, engine::Invoker& invoker, engine::LogSink& logs,
                 GatewayOptions options)
    : invoker_(invoker), logs_(logs), options_(std::move(options)) {
  if (options_.base_in_flight <= 0) {
    options_.base_in_flight = std::max(2, static_cast<int>(std::thread::hardware_concurrency()));
  }
}

bool Gateway::Accepts(const http::Request& req) const { return IsWebRequest(req); }

const Gateway::Route& Gateway::Resolve(const std::string& app) {
  uint64_t generation = invoker_.Generation(app);
  auto it = routes_.find(app);
  if (it != routes_.end() && it->second.generation == generation) return it->second;
  if (routes_.size() >= kMaxCachedRoutes) {
    routes_.clear();  // bounded: unknown names (scans) must not grow it forever
    it = routes_.end();
  }
  Route route;
  route.generation = generation;
  auto config = invoker_.Describe(app, kLiveAlias);
  route.qualifier = kLiveAlias;
  if (!config.ok()) {
    config = invoker_.Describe(app, kLatest);
    route.qualifier = kLatest;
  }
  if (config.ok()) {
    route.exists = true;
    const FunctionConfig& c = **config;
    route.wsgi = c.handler == kStageHandler && c.env.count(kAppFunctionEnv) > 0;
    auto auth = c.env.find(kWebAuthorizationEnv);
    route.sigv4 = auth != c.env.end() && auth->second != "none";
  }
  if (it != routes_.end()) {
    it->second = std::move(route);
    return it->second;
  }
  return routes_.emplace(app, std::move(route)).first->second;
}

void Gateway::Handle(http::Request&& req, http::Responder responder) {
  auto start = MonoClock::now();
  AppTarget target = ParseTarget(req);
  std::string remote_ip = IpOf(responder.RemoteAddress());
  // Kept for the access log: the request itself moves into the event.
  std::string request_line = std::string(req.method_string()) + " " + std::string(req.target()) +
                             (req.version() == 10 ? " HTTP/1.0" : " HTTP/1.1");
  // Answers and writes the access line to the app's log (not for unknown
  // apps: a scan of made-up names must not create log files).
  auto answer = [this, responder, start, app = target.app, remote_ip, request_line](
                    http::Response response, const std::string& request_id, bool known_app = true) {
    if (!request_id.empty()) response.set("X-Gust-Request-Id", request_id);
    if (!known_app) {
      responder.Send(std::move(response));
      return;
    }
    double ms = MsBetween(start, MonoClock::now());
    char line[96];
    std::snprintf(line, sizeof line, " %d %zu %.3f ms", response.result_int(),
                  response.body().size(), ms);
    logs_.Append(app,
                 "[HTTP] " + remote_ip + " \"" + request_line + "\"" + line +
                     (request_id.empty() ? "" : " RequestId: " + request_id),
                 NowEpochMs());
    responder.Send(std::move(response));
  };

  if (target.app.empty()) {
    answer(ErrorAnswer(404,
                       "no app named in the URL: use /web/<app>/... (an app is a function, "
                       "e.g. <project>-<stage> after `gust deploy STAGE`)",
                       "", ""),
           "", false);
    return;
  }
  const Route& route = Resolve(target.app);
  if (!route.exists) {
    answer(ErrorAnswer(404,
                       "no app named '" + target.app +
                           "' is deployed on this engine (deploy one with `gust deploy STAGE`; "
                           "`gust ls` lists functions)",
                       "", ""),
           "", false);
    return;
  }
  const bool forwarded = options_.forwarder != nullptr && Forwarder::IsForwarded(req);
  if (route.sigv4 && !forwarded) {
    std::optional<http::Response> refusal =
        options_.authorize ? options_.authorize(req)
                           : ErrorAnswer(403, "this app requires signed requests", "", "");
    if (refusal) {
      answer(std::move(*refusal), "");
      return;
    }
  }
  if (req.body().size() > options_.max_body_bytes) {
    answer(ErrorAnswer(413,
                       "request body of " + std::to_string(req.body().size()) +
                           " bytes is over the limit of " +
                           std::to_string(options_.max_body_bytes) + " bytes",
                       "", ""),
           "");
    return;
  }

  // Host-routed requests (<app>.localhost) stay here: a forward's Host is the other node's.
  if (options_.forwarder != nullptr && !target.script_name.empty() &&
      options_.forwarder->Forward(
          req, target.app, route.qualifier, responder,
          [this, responder](http::Request&& here) { Handle(std::move(here), responder); })) {
    return;
  }
  RequestInfo info;
  info.remote_ip = remote_ip;
  info.now_ms = NowEpochMs();
  engine::InvokeRequest request;
  request.function = target.app;
  request.qualifier = route.qualifier;
  request.max_queue_ms = options_.max_queue_ms;
  request.adaptive_limit =
      engine::AdaptiveLimit{options_.base_in_flight, options_.scale_out_after_ms};
  bool wsgi = route.wsgi;
  if (wsgi) {
    request.raw_payload = true;
    request.payload = EncodeWsgiRequest(req, target, info);
  } else {
    info.request_id = NewRequestId();
    request.payload = EncodeEventV2(req, target, info);
    if (request.payload.size() > engine::kMaxSyncPayloadBytes) {
      answer(ErrorAnswer(413,
                         "request of " + std::to_string(req.body().size()) +
                             " body bytes encodes to an event of " +
                             std::to_string(request.payload.size()) +
                             " bytes, over the function payload limit of " +
                             std::to_string(engine::kMaxSyncPayloadBytes) + " bytes",
                         "", ""),
             "");
      return;
    }
  }
  invoker_.Invoke(std::move(request), [answer, wsgi, app = target.app](engine::InvokeResponse r) {
    if (!r.status.ok()) {
      switch (r.status.code()) {
        case Code::kNotFound:
          answer(ErrorAnswer(404, "no app named '" + app + "' is deployed on this engine", "",
                             r.request_id),
                 r.request_id, false);
          return;
        case Code::kTooManyRequests: {
          auto response =
              ErrorAnswer(429, "app '" + app + "' is at its concurrency limit; retry shortly",
                          "TooManyRequestsException", r.request_id);
          response.set(beast_http::field::retry_after, "1");
          answer(std::move(response), r.request_id);
          return;
        }
        default:
          answer(ErrorAnswer(503, r.status.message(), "ServiceUnavailable", r.request_id),
                 r.request_id);
          return;
      }
    }
    if (r.function_error) {
      auto [type, message] = ErrorFields(r.payload);
      if (type.empty()) type = r.error_type;
      if (r.error_type == "Sandbox.Timedout") {
        answer(ErrorAnswer(504, "app '" + app + "' did not answer in time: " + message, type,
                           r.request_id),
               r.request_id);
        return;
      }
      answer(ErrorAnswer(502,
                         "app '" + app + "' failed: " + type + ": " + message +
                             " (the traceback is in its log: gust tail)",
                         type, r.request_id),
             r.request_id);
      return;
    }
    auto response =
        wsgi ? DecodeWsgiResponse(std::move(r.payload)) : DecodeEventV2Response(r.payload);
    if (!response.ok()) {
      answer(ErrorAnswer(502, "app '" + app + "': " + response.status().message(),
                         "Gateway.MalformedResponse", r.request_id),
             r.request_id);
      return;
    }
    answer(std::move(response).value(), r.request_id);
  });
}

}  // namespace gust::api
