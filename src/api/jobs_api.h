// JobsApi: the map-job half of gust's /v1 API (docs/MAP.md): content-addressed
// code upload (HEAD/PUT /v1/blobs/{sha256}), job submission (POST /v1/jobs),
// status, long-polled results, cancel and delete.
//
// Submission runs on the worker pool (it parses up to ~100 MB, hashes and
// unzips code, writes SQLite): it validates the header and every task before
// anything is created, makes sure the job's function exists (MapFunctions:
// one per code, memory, timeout, network and Python environment), then hands the tasks to MapJobs
// on the engine thread. Everything else runs on the engine thread, where
// MapJobs lives.
//
// Cluster mode (docs/CLUSTER.md, "Step 5b as built"): a client's job is
// answered 201 at once and recorded in PostgreSQL (MapJournal::Create) while it
// runs; its id names this node, so another node that finds no row of it (the
// record not yet committed) asks this node. The results and status of a job
// that runs on another node (or whose node died) are read through MapTakeover,
// from PostgreSQL; a delete removes the stored job before
// it answers (so no node serves it after the 204), then the local one. A
// draining node sends a client's new job to an up node (Forwarder::ForwardAway);
// status and cancel of a job owned by another node go to that node
// (Forwarder::ForwardTo), and when it cannot be reached status is answered from
// the job's row with a "Note" saying what only the owner knows, cancel is a 503
// naming the owner.
//
// Errors: Lambda-shaped (lambda_shapes.h) with a message naming the field or
// the task index at fault; nothing is created when the request is refused
// (in cluster mode, a submission PostgreSQL cannot record is a 503).
//
// Thread-safety: Register once before serving.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include <deque>
#include <functional>
#include <string>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "api/api_context.h"
#include "common/config.h"
#include "common/status.h"
#include "engine/map_functions.h"
#include "engine/map_jobs.h"
#include "http/router.h"
#include "store/blob_store.h"

namespace gust::api {

// The version of the map wire contract (docs/MAP.md) this engine speaks;
// /v1/health reports it and python/gust refuses an engine with another.
inline constexpr int kMapProtocol = 4;  // 4: the header's python names the environment

class JobsApi {
 public:
  explicit JobsApi(const ApiContext& ctx);
  void Register(http::Router& router);

 private:
  // Worker pool: code blobs (hashing, zip checks) and submissions.
  http::Response HeadBlob(const http::Request& req, const http::RouteMatch& m);
  http::Response PutBlob(const http::Request& req, const http::RouteMatch& m);
  // Engine thread: a draining node's new job goes to an up node; else Submit.
  void SubmitOrForward(http::Request&& req, const http::RouteMatch& m, http::Responder r);
  // Validates and prepares a submission; on success posts it to MapJobs,
  // which answers through the responder.
  void Submit(const http::Request& req, const http::RouteMatch& m, http::Responder responder);
  // Engine thread, where MapJobs lives.
  void Describe(http::Request&& req, const http::RouteMatch& m, http::Responder r);
  void Results(http::Request&& req, const http::RouteMatch& m, http::Responder r);
  void Cancel(http::Request&& req, const http::RouteMatch& m, http::Responder r);
  void Delete(http::Request&& req, const http::RouteMatch& m, http::Responder r);
  // Cluster mode, job `id` not run here: reads its row; forwards req to the row's owner when
  // the copy reads it live, else (or when it cannot be reached) calls here(row, why) on the
  // engine thread, why saying that the owner was not asked and why. A row that cannot be read
  // is answered (404 for a job no node has).
  using AnswerFromRow = std::function<void(nlohmann::json row, std::string why)>;
  void ToOwner(http::Request&& req, const std::string& id, const http::Responder& r,
               AnswerFromRow here);
  // Cluster mode, no row of job `id` (`missing` says so): the record of a job accepted by the
  // node its id names may not have committed yet, so req goes there when the copy reads it live
  // (it answers from memory); a job whose record failed here is answered with that error; else
  // `missing`.
  void Unknown(http::Request&& req, const std::string& id, const http::Responder& r,
               const Status& missing);

  boost::asio::io_context& io_;
  boost::asio::thread_pool& workers_;
  const EngineConfig& config_;
  BlobStore& blobs_;
  engine::MapJobs& jobs_;
  engine::MapFunctions& functions_;
  engine::MapJournal* journal_;    // cluster mode only
  engine::MapTakeover* takeover_;  // cluster mode only
  Forwarder* forwarder_;           // cluster mode only
  http::RouteHandler submit_;      // Submit on the worker pool
  // Engine thread: jobs whose record failed after their 201, and in which order (the oldest
  // are forgotten first).
  std::unordered_map<std::string, Status> unrecorded_;
  std::deque<std::string> unrecorded_order_;
};

}  // namespace gust::api
