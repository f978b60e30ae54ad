#include "api/jobs_api.h"

#include <unistd.h>

#include <boost/asio/post.hpp>

#include <algorithm>

#include "api/lambda_shapes.h"
#include "api/run_guarded.h"
#include "common/clock.h"
#include "common/ids.h"
#include "common/json_read.h"
#include "engine/map_framing.h"

#ifndef GUST_RUNTIME_PYTHON
#error "GUST_RUNTIME_PYTHON (major.minor of the runtime's Python) must be defined by CMake"
#endif

namespace gust::api {
namespace {

using nlohmann::json;
using beast_verb = http::beast_http::verb;

// Error types (x-amzn-ErrorType) a client acts on: upload the code again, or
// refuse to run on a runtime whose pickles it cannot read.
constexpr char kCodeNotUploadedType[] = "CodeNotUploadedException";
constexpr char kPythonMismatchType[] = "PythonVersionMismatchException";
constexpr int kMaxMapConcurrency = 1000;

bool IsDigest(const std::string& s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

ApiError BadField(const std::string& message) {
  return {400, "InvalidParameterValueException", message};
}

// "3.11.2 (main, ...)" or "3.11" -> "3.11".
std::string MajorMinor(const std::string& version) {
  size_t first = version.find('.');
  if (first == std::string::npos) return version;
  size_t second = version.find_first_not_of("0123456789", first + 1);
  return version.substr(0, second);
}

// Reads an optional integer header field within [lo, hi]; error names it.
ApiError IntField(const json& h, const char* key, int lo, int hi, int* out) {
  int64_t v = 0;
  JsonGot got = JsonGetInt(h, key, &v);
  if (got == JsonGot::kAbsent) return ApiError{0, "", ""};
  if (got == JsonGot::kWrongType || v < lo || v > hi) {
    return BadField(std::string("job header field ") + key + " must be an integer from " +
                    std::to_string(lo) + " to " + std::to_string(hi) + ", not " +
                    JsonDump(*JsonFind(h, key)));
  }
  *out = static_cast<int>(v);
  return ApiError{0, "", ""};
}

}  // namespace

const char* RuntimePythonVersion() { return GUST_RUNTIME_PYTHON; }

JobsApi::JobsApi(boost::asio::io_context& io, boost::asio::thread_pool& workers,
                 const EngineConfig& config, BlobStore& blobs, engine::MapJobs& jobs,
                 MapFunctions& functions)
    : io_(io),
      workers_(workers),
      config_(config),
      blobs_(blobs),
      jobs_(jobs),
      functions_(functions) {}

void JobsApi::Register(http::Router& router) {
  router.Add(
      beast_verb::head, "/v1/blobs/{digest}",
      [this](http::Request&&, const http::RouteMatch& m, http::Responder r) {
        std::string digest = m.params.at("digest");
        PostGuarded(workers_, r, [this, r, digest] {
          bool present = IsDigest(digest) && blobs_.Contains(digest);
          r.Send(http::MakeResponse(
              present ? http::beast_http::status::ok : http::beast_http::status::not_found, ""));
        });
      });
  router.Add(beast_verb::put, "/v1/blobs/{digest}",
             [this](http::Request&& req, const http::RouteMatch& m, http::Responder r) {
               auto shared = std::make_shared<http::Request>(std::move(req));
               std::string digest = m.params.at("digest");
               PostGuarded(workers_, r,
                           [this, r, shared, digest] { r.Send(PutBlob(*shared, digest)); });
             });
  router.Add(beast_verb::post, "/v1/jobs",
             [this](http::Request&& req, const http::RouteMatch&, http::Responder r) {
               auto shared = std::make_shared<http::Request>(std::move(req));
               PostGuarded(workers_, r, [this, r, shared] { Submit(*shared, r); });
             });
  router.Add(beast_verb::get, "/v1/jobs/{id}",
             [this](http::Request&&, const http::RouteMatch& m, http::Responder r) {
               auto doc = jobs_.Describe(m.params.at("id"));
               r.Send(doc.ok() ? JsonResponse(200, *doc) : ErrorResponse(FromStatus(doc.status())));
             });
  router.Add(beast_verb::get, "/v1/jobs/{id}/results",
             [this](http::Request&&, const http::RouteMatch& m, http::Responder r) {
               Results(m, m.params.at("id"), r);
             });
  router.Add(beast_verb::post, "/v1/jobs/{id}/cancel",
             [this](http::Request&& req, const http::RouteMatch& m, http::Responder r) {
               std::vector<uint32_t> tasks;
               if (!req.body().empty()) {
                 json body = JsonParse(req.body());
                 auto list = body.is_object() ? body.find("tasks") : body.end();
                 bool ok = body.is_object() && (list == body.end() || list->is_array());
                 if (ok && list != body.end()) {
                   for (const json& i : *list) {
                     if (!i.is_number_unsigned() || i.get<uint64_t>() > UINT32_MAX) ok = false;
                     if (ok) tasks.push_back(i.get<uint32_t>());
                   }
                 }
                 if (!ok) {
                   r.Send(ErrorResponse(BadField(
                       "cancel body must be {\"tasks\": [task indexes]} or empty for all")));
                   return;
                 }
               }
               Status s = jobs_.Cancel(m.params.at("id"), tasks);
               r.Send(s.ok() ? JsonResponse(200, json{{"Cancelled", true}})
                             : ErrorResponse(FromStatus(s)));
             });
  router.Add(beast_verb::delete_, "/v1/jobs/{id}",
             [this](http::Request&&, const http::RouteMatch& m, http::Responder r) {
               Status s = jobs_.Delete(m.params.at("id"));
               r.Send(s.ok() ? http::MakeResponse(http::beast_http::status::no_content, "")
                             : ErrorResponse(FromStatus(s)));
             });
}

http::Response JobsApi::PutBlob(const http::Request& req, const std::string& digest) {
  if (!IsDigest(digest)) {
    return ErrorResponse(
        BadField("blob name must be the 64 lower-case hex digits of the "
                 "body's sha256, not '" +
                 digest + "'"));
  }
  std::string actual = Sha256Hex(req.body());
  if (actual != digest) {
    return ErrorResponse(BadField("the body's sha256 is " + actual + ", not " + digest));
  }
  auto zip = ValidateZip(req.body());
  if (!zip.ok()) return ErrorResponse(FromStatus(zip.status()));
  bool existed = blobs_.Contains(digest);
  auto put = blobs_.Put(req.body());
  if (!put.ok()) return ErrorResponse(FromStatus(put.status()));
  return JsonResponse(existed ? 200 : 201, json{{"Digest", digest}});
}

void JobsApi::Submit(const http::Request& req, http::Responder responder) {
  auto fail = [&responder](const ApiError& e) { responder.Send(ErrorResponse(e)); };
  auto body = engine::ParseJobBody(req.body(), engine::kMaxSyncPayloadBytes);
  if (!body.ok()) return fail(FromStatus(body.status()));
  const json& h = body->header;
  if (body->tasks.empty()) return fail(BadField("a job needs at least one task"));
  std::string code;
  if (JsonGetString(h, "code", &code) != JsonGot::kOk || !IsDigest(code)) {
    return fail(
        BadField("job header field code must be the sha256 (64 hex digits) of an "
                 "uploaded code zip"));
  }
  std::string client_python;
  if (JsonGetString(h, "python", &client_python) != JsonGot::kOk) {
    return fail(BadField("job header field python (the client's \"major.minor\") is required"));
  }
  client_python = MajorMinor(client_python);
  if (client_python != RuntimePythonVersion()) {
    return fail(
        {400, kPythonMismatchType,
         "client Python " + client_python + " cannot exchange pickles with the runtime's Python " +
             RuntimePythonVersion() + ": use Python " + RuntimePythonVersion() + " on the client"});
  }
  int memory = 256, timeout = 300, retries = 2, chunksize = 0, ttl = config_.job_ttl_s;
  // Up to 1000 sandboxes; memory bounds it while the job runs (the scheduler
  // adds none while the host is below its memory reserve: map_scaler.h), not
  // memory size x concurrency, which would cap a map of sleeping tasks at
  // RAM / 256 MB although each sandbox uses a few MB.
  int concurrency = std::min(kMaxMapConcurrency, config_.max_sandboxes);
  for (const ApiError& e :
       {IntField(h, "memory", 128, 10240, &memory), IntField(h, "timeout", 1, 900, &timeout),
        IntField(h, "retries", 0, 10, &retries), IntField(h, "chunksize", 1, 1000, &chunksize),
        IntField(h, "concurrency", 1, kMaxMapConcurrency, &concurrency),
        IntField(h, "ttl_s", 1, 7 * 24 * 3600, &ttl)}) {
    if (e.status) return fail(e);
  }
  double straggler = 0;
  if (JsonGot got = JsonGetNumber(h, "straggler_factor", &straggler);
      got == JsonGot::kWrongType || (got == JsonGot::kOk && !(straggler >= 1.0))) {
    return fail(
        BadField("job header field straggler_factor must be a number >= 1 (a task "
                 "slower than k x the median gets a backup copy), not " +
                 JsonDump(*JsonFind(h, "straggler_factor"))));
  }
  bool network = false;
  if (JsonGetBool(h, "network", &network) == JsonGot::kWrongType) {
    return fail(BadField("job header field network must be a boolean"));
  }
  if (!blobs_.Contains(code)) {
    return fail({400, kCodeNotUploadedType,
                 "code " + code + " was not uploaded: PUT /v1/blobs/" + code + " first"});
  }
  auto function = functions_.Ensure({code, memory, timeout, network}, concurrency);
  if (!function.ok()) return fail(FromStatus(function.status()));

  engine::MapJobSpec spec;
  spec.function = *function;
  spec.task_timeout_s = timeout;
  spec.retries = retries;
  spec.chunksize = chunksize;
  spec.concurrency = concurrency;
  spec.straggler_factor = straggler;
  spec.ttl_s = ttl;
  auto tasks = std::make_shared<std::vector<std::string>>(std::move(body->tasks));
  boost::asio::post(io_, [this, responder, spec, tasks]() mutable {
    size_t n = tasks->size();
    std::string id = jobs_.Create(spec, std::move(*tasks));
    responder.Send(JsonResponse(
        201, json{{"JobId", id},
                  {"Tasks", n},
                  {"Function", spec.function},
                  {"Concurrency", spec.concurrency},
                  {"ChunkSize", spec.chunksize > 0 ? json(spec.chunksize) : json(nullptr)}}));
  });
}

void JobsApi::Results(const http::RouteMatch& m, const std::string& id, http::Responder r) {
  uint64_t after = 0;
  double wait_s = 0;
  if (auto it = m.query.find("after"); it != m.query.end() && !it->second.empty()) {
    char* end = nullptr;
    after = std::strtoull(it->second.c_str(), &end, 10);
    if (*end != '\0') {
      r.Send(ErrorResponse(BadField("after must be a result seq (an integer >= 0)")));
      return;
    }
  }
  if (auto it = m.query.find("wait"); it != m.query.end() && !it->second.empty()) {
    char* end = nullptr;
    wait_s = std::strtod(it->second.c_str(), &end);
    if (*end != '\0' || wait_s < 0) {
      r.Send(ErrorResponse(BadField("wait must be seconds >= 0 (at most 60 are used)")));
      return;
    }
  }
  double linger_s = 0;
  if (auto it = m.query.find("linger"); it != m.query.end() && !it->second.empty()) {
    char* end = nullptr;
    linger_s = std::strtod(it->second.c_str(), &end);
    if (*end != '\0' || linger_s < 0 || linger_s > 1) {
      r.Send(ErrorResponse(BadField("linger must be seconds from 0 to 1")));
      return;
    }
  }
  auto wait_ms = static_cast<int64_t>(std::min(wait_s, 60.0) * 1000);
  auto linger_ms = static_cast<int64_t>(linger_s * 1000);
  jobs_.Results(id, after, wait_ms, linger_ms, [r](Result<engine::MapJobs::ResultBatch> batch) {
    if (!batch.ok()) {
      r.Send(ErrorResponse(FromStatus(batch.status())));
      return;
    }
    auto response = http::MakeResponse(http::beast_http::status::ok, std::move(batch->body),
                                       "application/octet-stream");
    response.set("X-Gust-Last-Seq", std::to_string(batch->last_seq));
    response.set("X-Gust-Count", std::to_string(batch->count));
    r.Send(std::move(response));
  });
}

}  // namespace gust::api
