#include "api/jobs_api.h"

#include <unistd.h>

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>

#include <algorithm>
#include <cctype>
#include <functional>
#include <memory>

#include "api/body_parsers.h"
#include "api/channel_api.h"
#include "api/forwarder.h"
#include "api/lambda_shapes.h"
#include "api/run_guarded.h"
#include "common/clock.h"
#include "common/ids.h"
#include "common/json_read.h"
#include "engine/map_framing.h"
#include "engine/map_journal.h"
#include "engine/map_takeover.h"

namespace gust::api {
namespace {

using nlohmann::json;
using beast_verb = http::beast_http::verb;

// Error types (x-amzn-ErrorType) a client acts on: upload the code again.
constexpr char kCodeNotUploadedType[] = "CodeNotUploadedException";

// A cluster node's job ids name the node that accepted the job: "job-" + 16 hex digits + "-" +
// node. The 201 comes before the job's row is written, so another node asked for a job it
// finds no row of asks the node the id names (docs/CLUSTER.md, "Step 5b as built").
constexpr size_t kHexDigits = 16;  // RandomHex(8)
constexpr size_t kAcceptedByAt = 4 + kHexDigits + 1;

std::string ClusterJobId(const std::string& node) { return "job-" + RandomHex(8) + "-" + node; }

// The node named by a cluster job id, or "" (an embedded engine's id, a nested map's, or no id
// of ours).
std::string AcceptedBy(const std::string& id) {
  if (id.size() <= kAcceptedByAt || id.compare(0, 4, "job-") != 0 || id[kAcceptedByAt - 1] != '-') {
    return "";
  }
  for (size_t i = 4; i < kAcceptedByAt - 1; ++i) {
    if (!std::isxdigit(static_cast<unsigned char>(id[i]))) return "";
  }
  return id.substr(kAcceptedByAt);
}

// Jobs whose record failed after their 201, remembered so that their readers get the record's
// error (not a bare 404): at most this many, the oldest forgotten first.
constexpr size_t kUnrecordedKept = 256;

}  // namespace

JobsApi::JobsApi(const ApiContext& ctx)
    : io_(ctx.io),
      workers_(ctx.workers),
      config_(ctx.config),
      blobs_(ctx.blobs),
      jobs_(ctx.map_jobs),
      functions_(ctx.map_functions),
      journal_(ctx.map_journal),
      takeover_(ctx.map_takeover),
      forwarder_(ctx.forwarder),
      submit_(OnWorkers(workers_, this, &JobsApi::Submit)) {}

void JobsApi::Register(http::Router& router) {
  router.Add(beast_verb::head, "/v1/blobs/{digest}", OnWorkers(workers_, this, &JobsApi::HeadBlob));
  router.Add(beast_verb::put, "/v1/blobs/{digest}", OnWorkers(workers_, this, &JobsApi::PutBlob));
  router.Add(beast_verb::post, "/v1/jobs", std::bind_front(&JobsApi::SubmitOrForward, this));
  router.Add(beast_verb::get, "/v1/jobs/{id}", std::bind_front(&JobsApi::Describe, this));
  router.Add(beast_verb::get, "/v1/jobs/{id}/results", std::bind_front(&JobsApi::Results, this));
  router.Add(beast_verb::post, "/v1/jobs/{id}/cancel", std::bind_front(&JobsApi::Cancel, this));
  router.Add(beast_verb::delete_, "/v1/jobs/{id}", std::bind_front(&JobsApi::Delete, this));
}

http::Response JobsApi::HeadBlob(const http::Request&, const http::RouteMatch& m) {
  const std::string& digest = m.params.at("digest");
  bool present = IsSha256Hex(digest) && blobs_.Contains(digest);
  return http::MakeResponse(
      present ? http::beast_http::status::ok : http::beast_http::status::not_found, "");
}

http::Response JobsApi::PutBlob(const http::Request& req, const http::RouteMatch& m) {
  const std::string& digest = m.params.at("digest");
  if (!IsSha256Hex(digest)) {
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

void JobsApi::SubmitOrForward(http::Request&& req, const http::RouteMatch& m, http::Responder r) {
  // A draining node takes no new job of a client (docs/CLUSTER.md, "Step 6 as built"): an up
  // node gets it, and with none up or reachable it is accepted here (a drain never drops
  // work; the drain waits for it). A nested map (from a task) stays with its parent's node.
  if (forwarder_ != nullptr && ParseAncestors(req).empty()) {
    auto run_here = [this, m, r](http::Request&& back) { submit_(std::move(back), m, r); };
    if (forwarder_->ForwardAway(req, r, std::move(run_here))) return;
  }
  submit_(std::move(req), m, std::move(r));
}

void JobsApi::Submit(const http::Request& req, const http::RouteMatch&, http::Responder responder) {
  auto fail = [&responder](const ApiError& e) { responder.Send(ErrorResponse(e)); };
  auto body = engine::ParseJobBody(req.body(), engine::kMaxSyncPayloadBytes);
  if (!body.ok()) return fail(FromStatus(body.status()));
  if (body->tasks.empty()) return fail(BadField("a job needs at least one task"));
  JobHeader h;
  if (ApiError e = ParseJobHeader(body->header, config_, &h); e.status) return fail(e);
  const std::string& code = h.code;
  // A task without a timeout of its own runs until the engine's ceiling.
  int timeout = h.timeout > 0 ? h.timeout : config_.max_timeout_s;
  int memory = h.memory, retries = h.retries, chunksize = h.chunksize;
  int concurrency = h.concurrency, ttl = h.ttl_s;
  double straggler = h.straggler_factor;
  bool network = h.network;
  std::vector<std::string> ancestors = ParseAncestors(req);  // set by ChannelApi only
  if (static_cast<int>(ancestors.size()) > config_.max_map_depth) {
    return fail({400, "MapNestingTooDeepException",
                 "maps nested deeper than " + std::to_string(config_.max_map_depth) +
                     ": this task's job " + ancestors[0] + " is itself at depth " +
                     std::to_string(ancestors.size() - 1) + " (gust up --max-map-depth)"});
  }
  if (!ancestors.empty()) {
    // A task's map may use at most its job's buckets: a grant is the client's
    // to give, and nesting must not widen it.
    BucketGrants held = ParseGrantsHeader(req);
    if (auto wider = FirstWidening(h.buckets, held)) {
      return fail({403, "AccessDeniedException",
                   "a map submitted from a task may use only its job's buckets: '" +
                       FormatBucketGrant(*wider) + "' is not within job " + ancestors[0] +
                       "'s grants [" + JoinBucketGrants(held) + "]"});
    }
  }
  if (!blobs_.Contains(code)) {
    return fail({400, kCodeNotUploadedType,
                 "code " + code + " was not uploaded: PUT /v1/blobs/" + code + " first"});
  }
  // The map runs in the client's environment; Debian's python3 (the engine's
  // own) keeps the engine's zygote.
  std::string python =
      engine::MapPython(h.python.executable, h.python.prefix, h.python.base_prefix, config_.python);
  auto function = functions_.Ensure({code, memory, timeout, network, python}, concurrency);
  if (!function.ok()) return fail(FromStatus(function.status()));

  engine::MapJobSpec spec;
  spec.function = *function;
  spec.task_timeout_s = timeout;
  spec.retries = retries;
  spec.chunksize = chunksize;
  spec.concurrency = concurrency;
  spec.straggler_factor = straggler;
  spec.ttl_s = ttl;
  spec.ancestors = std::move(ancestors);
  spec.buckets = std::move(h.buckets);
  auto tasks = std::make_shared<std::vector<std::string>>(std::move(body->tasks));
  auto accepted = [responder, spec](const std::string& id, size_t n) {
    responder.Send(JsonResponse(
        201, json{{"JobId", id},
                  {"Tasks", n},
                  {"Function", spec.function},
                  {"Concurrency", spec.concurrency},
                  {"ChunkSize", spec.chunksize > 0 ? json(spec.chunksize) : json(nullptr)}}));
  };
  // A client's job in a cluster outlives this node: it is recorded in PostgreSQL (its row and
  // inputs, on the journal's thread) while it runs, and answered 201 at once, before the record
  // commits: a takeover resumes it from then on. Until then (the record's few milliseconds) it
  // lives on this node only: a read through another node finds no row and asks this node (the
  // id names it); this node's death in that window loses the job (docs/CLUSTER.md, "Step 5b
  // as built"). A record that fails deletes the job (tasks in flight finish) and its readers
  // get the record's error. Nested maps stay with their parent's node and die with it, as
  // their parent does.
  if (journal_ != nullptr && spec.ancestors.empty()) {
    std::vector<std::string> record = *tasks;  // the journal's copy, made off the engine thread
    boost::asio::post(io_, [this, spec, tasks, accepted, id = ClusterJobId(config_.node_name),
                            record = std::move(record)]() mutable {
      journal_->Create(id, spec, std::move(record), [this, id](const Status& recorded) {
        if (recorded.ok()) return;
        Status error = recorded.WithContext("record map job " + id);
        spdlog::warn("map job {}: {} (the job is deleted)", id, error.ToString());
        (void)jobs_.Delete(id);
        if (unrecorded_.emplace(id, error).second) unrecorded_order_.push_back(id);
        if (unrecorded_order_.size() > kUnrecordedKept) {
          unrecorded_.erase(unrecorded_order_.front());
          unrecorded_order_.pop_front();
        }
      });
      size_t n = tasks->size();
      accepted(jobs_.Create(spec, std::move(*tasks), id), n);
    });
    return;
  }
  boost::asio::post(io_, [this, spec, tasks, accepted]() mutable {
    size_t n = tasks->size();
    accepted(jobs_.Create(spec, std::move(*tasks)), n);
  });
}

void JobsApi::ToOwner(http::Request&& req, const std::string& id, const http::Responder& r,
                      AnswerFromRow here) {
  auto shared = std::make_shared<http::Request>(std::move(req));
  takeover_->Describe(id, [this, id, shared, r, here = std::move(here)](Result<json> row) {
    if (!row.ok()) {
      if (row.status().code() == Code::kNotFound)
        return Unknown(std::move(*shared), id, r, row.status());
      r.Send(ErrorResponse(FromStatus(row.status())));
      return;
    }
    std::string owner = JsonStringOr(*row, "Owner", "");
    auto unreachable = [here, row = *row, owner, self = config_.node_name](http::Request&&) {
      here(row,
           "its owner " + owner + " did not answer node " + self + " (dead, or cut off from it)");
    };
    if (forwarder_ != nullptr && forwarder_->ForwardTo(*shared, owner, r, unreachable)) return;
    std::string why =
        owner == config_.node_name ? "this node took it over and has not loaded it yet"
        : Forwarder::IsForwarded(*shared)
            ? "it was forwarded to node " + config_.node_name + ", which does not run it"
            : "its owner " + owner + " is not live in node " + config_.node_name +
                  "'s membership copy (dead, stopped, or not yet read)";
    here(std::move(row).value(), why);
  });
}

void JobsApi::Unknown(http::Request&& req, const std::string& id, const http::Responder& r,
                      const Status& missing) {
  if (auto it = unrecorded_.find(id); it != unrecorded_.end()) {
    r.Send(ErrorResponse(FromStatus(it->second)));
    return;
  }
  // The node the id names may have answered its 201 and not yet written the row: it answers.
  auto not_there = [r, missing](http::Request&&) { r.Send(ErrorResponse(FromStatus(missing))); };
  if (forwarder_ != nullptr && forwarder_->ForwardTo(req, AcceptedBy(id), r, not_there)) return;
  r.Send(ErrorResponse(FromStatus(missing)));
}

void JobsApi::Describe(http::Request&& req, const http::RouteMatch& m, http::Responder r) {
  const std::string& id = m.params.at("id");
  if (takeover_ != nullptr && !jobs_.Has(id)) {  // another node's job: its owner, or its row
    ToOwner(std::move(req), id, r, [r](json row, const std::string& why) {
      row["Note"] = "read from the job's stored row: " + why +
                    "; the counts (Done, Running, Pending, Failed, Cancelled, Sandboxes) are "
                    "known only to the owner";
      r.Send(JsonResponse(200, row));
    });
    return;
  }
  auto doc = jobs_.Describe(id);
  if (doc.ok() && takeover_ != nullptr) (*doc)["Owner"] = config_.node_name;
  r.Send(doc.ok() ? JsonResponse(200, *doc) : ErrorResponse(FromStatus(doc.status())));
}

void JobsApi::Cancel(http::Request&& req, const http::RouteMatch& m, http::Responder r) {
  std::vector<uint32_t> tasks;
  if (ApiError e = ParseCancelBody(req.body(), &tasks); e.status) {
    r.Send(ErrorResponse(e));
    return;
  }
  const std::string& id = m.params.at("id");
  if (takeover_ != nullptr && !jobs_.Has(id)) {  // only the owner cancels: it runs the tasks
    ToOwner(std::move(req), id, r, [r, id](const json& row, const std::string& why) {
      if (JsonStringOr(row, "State", "") == "done") {  // as its owner answers: nothing to do
        std::string note = "job " + id + " is done: nothing was left to cancel";
        r.Send(JsonResponse(200, json{{"Cancelled", true}, {"Note", note}}));
        return;
      }
      // Only the node that runs a job cancels its tasks.
      r.Send(ErrorResponse({503, "ServiceException",
                            "job " + id + " cannot be cancelled now: " + why +
                                "; cancel again in a few seconds (a dead owner's job is taken "
                                "over by another node a lease after its last heartbeat)"}));
    });
    return;
  }
  Status s = jobs_.Cancel(id, tasks);
  r.Send(s.ok() ? JsonResponse(200, json{{"Cancelled", true}}) : ErrorResponse(FromStatus(s)));
}

void JobsApi::Delete(http::Request&& req, const http::RouteMatch& m, http::Responder r) {
  const std::string id = m.params.at("id");
  auto shared = std::make_shared<http::Request>(std::move(req));
  auto answer = [this, id, r, shared](bool stored, const Status& deleted) {
    Status local = jobs_.Delete(id);
    if (!deleted.ok()) {
      r.Send(ErrorResponse(FromStatus(deleted)));
    } else if (local.ok() || stored) {
      r.Send(http::MakeResponse(http::beast_http::status::no_content, ""));
    } else if (journal_ != nullptr && local.code() == Code::kNotFound) {
      Unknown(std::move(*shared), id, r, local);  // accepted elsewhere, not yet recorded?
    } else {
      r.Send(ErrorResponse(FromStatus(local)));
    }
  };
  if (journal_ == nullptr) return answer(false, Status::Ok());
  // Cluster mode: the stored job goes first (on a worker: PostgreSQL), so that no node serves
  // it after the 204; its owner, here or elsewhere, drops it at its next append.
  PostGuarded(workers_, r, [this, id, answer] {
    auto row = journal_->store().Get(id);
    Status deleted = row.ok()                                 ? journal_->store().Delete(id)
                     : row.status().code() == Code::kNotFound ? Status::Ok()
                                                              : row.status();
    boost::asio::post(io_, [answer, stored = row.ok(), deleted] { answer(stored, deleted); });
  });
}

void JobsApi::Results(http::Request&& req, const http::RouteMatch& m, http::Responder r) {
  const std::string& id = m.params.at("id");
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
  auto answer = [r](Result<engine::MapJobs::ResultBatch> batch) {
    if (!batch.ok()) {
      r.Send(ErrorResponse(FromStatus(batch.status())));
      return;
    }
    auto response = http::MakeResponse(http::beast_http::status::ok, std::move(batch->body),
                                       "application/octet-stream");
    response.set("X-Gust-Last-Seq", std::to_string(batch->last_seq));
    response.set("X-Gust-Count", std::to_string(batch->count));
    if (!batch->owner.empty()) {  // cluster mode (docs/MAP.md, "Reading results in a cluster")
      response.set("X-Gust-Owner", batch->owner);
      response.set("X-Gust-Stored", std::to_string(batch->stored));
    }
    r.Send(std::move(response));
  };
  // Cluster mode: a job that does not run here is read from PostgreSQL (and taken over
  // when its owner is dead).
  if (takeover_ != nullptr && !jobs_.Has(id)) {
    auto shared = std::make_shared<http::Request>(std::move(req));
    takeover_->Results(id, after, wait_ms, linger_ms,
                       [this, id, r, shared, answer](Result<engine::MapJobs::ResultBatch> batch) {
                         if (!batch.ok() && batch.status().code() == Code::kNotFound) {
                           return Unknown(std::move(*shared), id, r, batch.status());
                         }
                         answer(std::move(batch));
                       });
    return;
  }
  jobs_.Results(id, after, wait_ms, linger_ms, std::move(answer));
}

}  // namespace gust::api
