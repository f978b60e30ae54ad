// GustApi: gust's own /v1 API beside the Lambda one — health and isolation
// report, code download (GetFunction's Code.Location), function logs by offset
// (`gust logs --follow` polls it) and invocation records (status, cost).
//
// Thread-safety: handlers that read files or SQLite run on the worker pool;
// /v1/health reads the invoker's counters on the engine thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include <functional>
#include <string>

#include "engine/invoker.h"
#include "http/router.h"
#include "sandbox/sandbox.h"
#include "store/blob_store.h"
#include "store/metadata_store.h"

namespace gust::api {

struct EngineInfo {
  std::string version;
  std::string state_dir;
  std::string url;
  std::string isolation;
  int pid = 0;
  int64_t started_ms = 0;
};

class GustApi {
 public:
  GustApi(boost::asio::thread_pool& workers, MetadataStore& store, BlobStore& blobs,
          engine::Invoker& invoker, std::string log_dir, EngineInfo info);
  void Register(http::Router& router);

 private:
  void Health(http::Responder responder);
  boost::asio::thread_pool& workers_;
  MetadataStore& store_;
  BlobStore& blobs_;
  engine::Invoker& invoker_;
  std::string log_dir_;
  EngineInfo info_;
};

}  // namespace gust::api
