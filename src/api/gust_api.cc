#include "api/gust_api.h"

#include <algorithm>
#include <functional>

#include <nlohmann/json.hpp>

#include "api/body_parsers.h"
#include "api/jobs_api.h"
#include "api/lambda_shapes.h"
#include "api/run_guarded.h"
#include "common/clock.h"
#include "common/json_read.h"
#include "engine/log_sink.h"

namespace gust::api {

using beast_verb = http::beast_http::verb;
using Json = nlohmann::json;

namespace {

bool IsHexDigest(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

int64_t QueryInt(const http::RouteMatch& m, const char* key, int64_t fallback) {
  auto it = m.query.find(key);
  if (it == m.query.end() || it->second.empty()) return fallback;
  char* end = nullptr;
  long long v = std::strtoll(it->second.c_str(), &end, 10);
  return *end == '\0' ? v : fallback;
}

// The {name} of a /v1/functions/{name}/... route; a bad name or qualifier is a 400.
ApiError RouteFunctionRef(const http::RouteMatch& m, FunctionRef* out) {
  auto ref = ParseFunctionRef(m.params.at("name"));
  if (!ref.ok()) return {400, "ValidationException", ref.status().message()};
  *out = std::move(ref).value();
  return {0, "", ""};
}

}  // namespace

GustApi::GustApi(const ApiContext& ctx)
    : workers_(ctx.workers),
      store_(ctx.store),
      blobs_(ctx.blobs),
      invoker_(ctx.invoker),
      log_dir_(ctx.logs.dir()),
      info_(ctx.info),
      cluster_logs_(ctx.cluster_logs) {}

void GustApi::Register(http::Router& router) {
  router.Add(beast_verb::get, "/v1/health", std::bind_front(&GustApi::Health, this));
  router.Add(beast_verb::get, "/v1/sandboxes", std::bind_front(&GustApi::Sandboxes, this));
  router.Add(beast_verb::post, "/v1/functions/{name}/recycle",
             std::bind_front(&GustApi::Recycle, this));
  router.Add(beast_verb::post, "/v1/functions/{name}/warm", std::bind_front(&GustApi::Warm, this));
  router.Add(beast_verb::get, "/v1/code/{file}", OnWorkers(workers_, this, &GustApi::GetCode));
  router.Add(beast_verb::get, "/v1/functions/{name}/logs",
             OnWorkers(workers_, this, &GustApi::Logs));
  router.Add(beast_verb::get, "/v1/functions/{name}/stats",
             OnWorkers(workers_, this, &GustApi::Stats));
  router.Add(beast_verb::get, "/v1/invocations", OnWorkers(workers_, this, &GustApi::Invocations));
}

void GustApi::Health(http::Request&&, const http::RouteMatch&, http::Responder responder) {
  auto s = invoker_.stats();
  Json doc = {{"status", "ok"},
              {"version", info_.version},
              {"url", info_.url},
              {"state_dir", info_.state_dir},
              {"isolation", info_.isolation},
              {"python", RuntimePythonVersion()},
              {"map_protocol", kMapProtocol},
              {"pid", info_.pid},
              {"uptime_s", (NowEpochMs() - info_.started_ms) / 1000},
              {"sandboxes",
               {{"live", s.live_sandboxes}, {"idle", s.idle_sandboxes}, {"starting", s.spawning}}},
              {"invocations", s.invocations},
              {"cold_starts", s.cold_starts},
              {"throttles", s.throttles}};
  responder.Send(JsonResponse(200, doc));
}

void GustApi::Sandboxes(http::Request&&, const http::RouteMatch&, http::Responder r) {
  Json list = Json::array();
  for (const auto& s : invoker_.Sandboxes()) {
    list.push_back({{"id", s.id},
                    {"pid", s.pid},
                    {"function", s.function},
                    {"state", s.state},
                    {"idle_s", s.idle_s}});
  }
  r.Send(JsonResponse(200, {{"sandboxes", list}}));
}

void GustApi::Recycle(http::Request&&, const http::RouteMatch& m, http::Responder r) {
  FunctionRef ref;
  if (ApiError e = RouteFunctionRef(m, &ref); e.status) return r.Send(ErrorResponse(e));
  size_t n = invoker_.Recycle(ref.name);
  r.Send(JsonResponse(200, {{"recycled", n}}));
}

// Keep-warm and deploy checks: one initialised sandbox without calling the
// handler. 200 {"Spawned", "SandboxId", "InitDurationMs"}; a failed init is
// still 200, with "FunctionError": "Unhandled", "Error" (Lambda's error
// document) and "InitLog" (what the init printed).
void GustApi::Warm(http::Request&&, const http::RouteMatch& m, http::Responder r) {
  FunctionRef ref;
  if (ApiError e = RouteFunctionRef(m, &ref); e.status) return r.Send(ErrorResponse(e));
  std::string qualifier = ref.qualifier;
  if (auto q = m.query.find("Qualifier"); q != m.query.end()) qualifier = q->second;
  invoker_.Warm(ref.name, qualifier, [r](engine::WarmResponse w) {
    if (!w.status.ok()) {
      r.Send(ErrorResponse(FromStatus(w.status)));
      return;
    }
    Json doc = {{"Spawned", w.spawned}, {"SandboxId", w.sandbox_id}, {"InitDurationMs", w.init_ms}};
    if (w.init_failed) {
      doc["FunctionError"] = "Unhandled";
      Json error = JsonParse(w.error_body);
      doc["Error"] = error.is_object()
                         ? error
                         : Json{{"errorType", w.error_type}, {"errorMessage", w.error_body}};
      doc["InitLog"] = w.init_log;
    }
    r.Send(JsonResponse(200, doc));
  });
}

http::Response GustApi::GetCode(const http::Request&, const http::RouteMatch& m) {
  const std::string& file = m.params.at("file");
  std::string digest =
      file.size() > 4 && file.ends_with(".zip") ? file.substr(0, file.size() - 4) : file;
  if (!IsHexDigest(digest)) {
    return ErrorResponse({404, "ResourceNotFoundException", "No code bundle named '" + file + "'"});
  }
  auto bytes = blobs_.Get(digest);
  if (!bytes.ok()) return ErrorResponse(FromStatus(bytes.status()));
  return http::MakeResponse(http::beast_http::status::ok, std::move(bytes).value(),
                            "application/zip");
}

http::Response GustApi::Logs(const http::Request&, const http::RouteMatch& m) {
  FunctionRef ref;
  if (ApiError e = RouteFunctionRef(m, &ref); e.status) return ErrorResponse(e);
  int64_t since = QueryInt(m, "since", 0);
  int64_t offset = std::max<int64_t>(0, QueryInt(m, "offset", 0));
  const std::string& name = ref.name;
  bool exists = store_.GetFunction(name, kLatest).ok();
  if (cluster_logs_ != nullptr) {
    auto cursor = m.query.find("cursor");
    auto merged = cluster_logs_->Read(name, since, cursor == m.query.end() ? "" : cursor->second);
    if (!merged.ok()) return ErrorResponse(FromStatus(merged.status()));
    if (!exists && merged->text.empty() && (cursor == m.query.end() || cursor->second.empty())) {
      return ErrorResponse({404, "ResourceNotFoundException", "Function not found: " + name});
    }
    return JsonResponse(200, {{"text", merged->text},
                              {"next_offset", merged->own_next_offset},
                              {"cursor", merged->cursor},
                              {"node_labels", true},
                              {"warnings", merged->warnings},
                              {"function_exists", exists}});
  }
  auto chunk = engine::LogSink::Read(log_dir_, name, since, static_cast<uint64_t>(offset), 1 << 20);
  if (!chunk.ok()) return ErrorResponse(FromStatus(chunk.status()));
  if (!exists && chunk->text.empty() && offset == 0) {
    return ErrorResponse({404, "ResourceNotFoundException", "Function not found: " + name});
  }
  return JsonResponse(
      200,
      {{"text", chunk->text}, {"next_offset", chunk->next_offset}, {"function_exists", exists}});
}

// `gust status`: counts and latency percentiles over the records since ?since= (epoch ms).
http::Response GustApi::Stats(const http::Request&, const http::RouteMatch& m) {
  FunctionRef ref;
  if (ApiError e = RouteFunctionRef(m, &ref); e.status) return ErrorResponse(e);
  int64_t since = QueryInt(m, "since", 0);
  const std::string& name = ref.name;
  invoker_.FlushRecords();
  auto s = store_.SummarizeInvocations(name, since);
  if (!s.ok()) return ErrorResponse(FromStatus(s.status()));
  return JsonResponse(200, {{"function", name},
                            {"since_ms", since},
                            {"invocations", s->invocations},
                            {"errors", s->errors},
                            {"cold_starts", s->cold_starts},
                            {"p50_ms", s->p50_ms},
                            {"p99_ms", s->p99_ms},
                            {"last_start_ms", s->last_start_ms}});
}

http::Response GustApi::Invocations(const http::Request&, const http::RouteMatch& m) {
  std::string function = m.query.count("function") ? m.query.at("function") : "";
  int64_t since = QueryInt(m, "since", 0);
  int limit = static_cast<int>(std::clamp<int64_t>(QueryInt(m, "limit", 1000), 1, 100000));
  invoker_.FlushRecords();
  auto records = store_.QueryInvocations(function, since, limit);
  if (!records.ok()) return ErrorResponse(FromStatus(records.status()));
  Json list = Json::array();
  for (const auto& rec : *records) {
    list.push_back({{"request_id", rec.request_id},
                    {"function", rec.function},
                    {"version", rec.version},
                    {"start_ms", rec.start_ms},
                    {"duration_ms", rec.duration_ms},
                    {"billed_ms", rec.billed_ms},
                    {"memory_mb", rec.memory_mb},
                    {"max_memory_used_mb", rec.max_memory_used_mb},
                    {"init_ms", rec.init_ms},
                    {"cold", rec.cold},
                    {"outcome", rec.outcome},
                    {"error_type", rec.error_type},
                    {"sandbox_id", rec.sandbox_id}});
  }
  return JsonResponse(200, {{"invocations", list}});
}

}  // namespace gust::api
