// Fuzz target: raw bytes from a client, as http::Server reads them. Beast's
// request parser runs with the server's limits (ServerOptions defaults:
// 64 KB of headers, 80 MB of body, eager body) and is fed in pieces, as a
// socket delivers them; a complete request is routed through a Router holding
// the engine's route patterns (the API's Register() needs a live engine), and
// every route handler does what the real ones do first with a path: parse the
// {name} as a function reference and shape the answer, error included.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "api/lambda_shapes.h"
#include "fuzz_http.h"
#include "http/router.h"
#include "http/server.h"

namespace {

using gust::http::Request;
using gust::http::RouteMatch;
using verb = gust::http::beast_http::verb;

// Answers like the API handlers: a function reference from the path, Lambda's
// error shape when it is bad.
void Handle(Request&& req, const RouteMatch& m, gust::http::Responder r) {
  for (const auto& [key, value] : m.params) {
    // {name} and friends match one non-empty segment ({name+} one or more).
    if (value.empty()) std::abort();
  }
  if (auto it = m.params.find("name"); it != m.params.end()) {
    auto ref = gust::api::ParseFunctionRef(it->second);
    if (!ref.ok()) return r.Send(gust::api::ErrorResponse(gust::api::FromStatus(ref.status())));
    if (auto e = gust::api::CheckFunctionName(ref->name); e.status) {
      return r.Send(gust::api::ErrorResponse(e));
    }
  }
  if (auto it = m.params.find("alias"); it != m.params.end()) {
    if (auto e = gust::api::CheckAliasName(it->second); e.status) {
      return r.Send(gust::api::ErrorResponse(e));
    }
  }
  if (auto q = m.query.find("Qualifier"); q != m.query.end()) {
    if (auto e = gust::api::CheckAliasName(q->second); e.status) {
      return r.Send(gust::api::ErrorResponse(e));
    }
  }
  r.Send(gust::api::JsonResponse(200, {{"method", std::string(req.method_string())},
                                       {"params", m.params.size()},
                                       {"query", m.query_all.size()}}));
}

const gust::http::Router& EngineRouter() {
  static const gust::http::Router* router = [] {
    auto* r = new gust::http::Router();
    const std::string fn = "/2015-03-31/functions";
    struct Route {
      verb method;
      std::string pattern;
    };
    const Route routes[] = {
        {verb::post, fn},
        {verb::get, fn},
        {verb::get, fn + "/{name}"},
        {verb::delete_, fn + "/{name}"},
        {verb::get, fn + "/{name}/configuration"},
        {verb::put, fn + "/{name}/configuration"},
        {verb::put, fn + "/{name}/code"},
        {verb::post, fn + "/{name}/versions"},
        {verb::get, fn + "/{name}/versions"},
        {verb::post, fn + "/{name}/aliases"},
        {verb::get, fn + "/{name}/aliases/{alias}"},
        {verb::put, fn + "/{name}/aliases/{alias}"},
        {verb::delete_, fn + "/{name}/aliases/{alias}"},
        {verb::put, "/2017-10-31/functions/{name}/concurrency"},
        {verb::get, "/2019-09-30/functions/{name}/concurrency"},
        {verb::post, fn + "/{name}/invocations"},
        {verb::put, "/2019-09-25/functions/{name}/event-invoke-config"},
        {verb::get, "/2019-09-25/functions/{name}/event-invoke-config/list"},
        {verb::get, "/v1/health"},
        {verb::get, "/v1/functions/{name}/logs"},
        {verb::post, "/v1/functions/{name}/warm"},
        {verb::post, "/v1/functions/{name}/dead-letters/redrive"},
        {verb::get, "/v1/async-invocations/{id}"},
        {verb::head, "/v1/blobs/{digest}"},
        {verb::put, "/v1/blobs/{digest}"},
        {verb::post, "/v1/jobs"},
        {verb::get, "/v1/jobs/{id}/results"},
        {verb::post, "/v1/jobs/{id}/cancel"},
        {verb::delete_, "/v1/jobs/{id}"},
        {verb::put, "/v1/schedules/{name}"},
        {verb::delete_, "/v1/schedules"},
        {verb::put, "/v1/schedule-groups/{group}"},
        {verb::get, "/v1/code/{file+}"},
    };
    for (const Route& route : routes) r->Add(route.method, route.pattern, Handle);
    return r;
  }();
  return *router;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The "socket" delivers the bytes in pieces of 1-64 bytes (varied with the size).
  const size_t piece = 1 + size * 7 % 64;
  std::string_view input(reinterpret_cast<const char*>(data), size);

  auto parsed = gust::fuzz::ParseRequest(input, piece);
  if (!parsed) return 0;

  bool answered = false;
  Request request = std::move(*parsed);
  EngineRouter().Route(std::move(request), gust::http::Responder([&](gust::http::Response&& r) {
                         answered = true;
                         r.prepare_payload();
                       }));
  if (!answered) std::abort();  // every request gets an answer
  return 0;
}
