// JobsApi: the map-job half of gust's /v1 API (docs/MAP.md): content-addressed
// code upload (HEAD/PUT /v1/blobs/{sha256}), job submission (POST /v1/jobs),
// status, long-polled results, cancel and delete.
//
// Submission runs on the worker pool (it parses up to ~100 MB, hashes and
// unzips code, writes SQLite): it validates the header and every task before
// anything is created, makes sure the job's function exists (MapFunctions:
// one per code, memory, timeout and network), then hands the tasks to MapJobs
// on the engine thread. Everything else runs on the engine thread, where
// MapJobs lives.
//
// Errors: Lambda-shaped (lambda_shapes.h) with a message naming the field or
// the task index at fault; nothing is created when the request is refused.
//
// Thread-safety: Register once before serving.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include <string>

#include "api/body_parsers.h"
#include "api/map_functions.h"
#include "common/config.h"
#include "engine/map_jobs.h"
#include "http/router.h"
#include "store/blob_store.h"

namespace gust::api {

// The version of the map wire contract (docs/MAP.md) this engine speaks;
// /v1/health reports it and python/gust refuses an engine with another.
inline constexpr int kMapProtocol = 3;

class JobsApi {
 public:
  JobsApi(boost::asio::io_context& io, boost::asio::thread_pool& workers,
          const EngineConfig& config, BlobStore& blobs, engine::MapJobs& jobs,
          MapFunctions& functions);
  void Register(http::Router& router);

 private:
  http::Response PutBlob(const http::Request& req, const std::string& digest);
  // Validates and prepares a submission; on success posts it to MapJobs,
  // which answers through the responder.
  void Submit(const http::Request& req, http::Responder responder);
  void Results(const http::RouteMatch& m, const std::string& id, http::Responder responder);

  boost::asio::io_context& io_;
  boost::asio::thread_pool& workers_;
  const EngineConfig& config_;
  BlobStore& blobs_;
  engine::MapJobs& jobs_;
  MapFunctions& functions_;
};

}  // namespace gust::api
