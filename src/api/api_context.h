// ApiContext: what the engine's HTTP APIs are built on, made once by
// EngineServer (the composition root) and handed to each API's constructor.
// Each API keeps references to the fields it uses as its own members, so its
// header still says what it depends on; the context only spares the five
// APIs' constructors (and their one caller) the same long list of parameters.
//
// Thread-safety: a bundle of references; every object keeps its own rules
// (the io_context's objects live on the engine thread, the stores are
// thread-safe, the worker pool runs management calls).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include <cstdint>
#include <string>

#include "common/config.h"
#include "engine/async_invoker.h"
#include "engine/invoker.h"
#include "engine/log_sink.h"
#include "engine/map_functions.h"
#include "engine/map_jobs.h"
#include "schedule/scheduler.h"
#include "store/blob_store.h"
#include "store/code_bundle.h"
#include "store/event_queue.h"
#include "store/metadata_store.h"
#include "store/schedule_store.h"

namespace gust::api {

class ClusterLogs;
class Forwarder;
}  // namespace gust::api

namespace gust::engine {
class MapJournal;
class MapTakeover;
}  // namespace gust::engine

namespace gust::api {

// What /v1/health reports about the engine process.
struct EngineInfo {
  std::string version;
  std::string state_dir;
  std::string url;  // the engine's own URL (GetFunction's Code.Location points into it)
  std::string isolation;
  int pid = 0;
  int64_t started_ms = 0;
};

struct ApiContext {
  boost::asio::io_context& io;        // the engine thread
  boost::asio::thread_pool& workers;  // management calls: SQLite, files, hashing, unzip
  const EngineConfig& config;
  const EngineInfo& info;
  MetadataStore& store;
  BlobStore& blobs;
  BundleCache& bundles;
  EventQueue& event_queue;
  ScheduleStore& schedules;
  engine::LogSink& logs;
  engine::Invoker& invoker;
  engine::AsyncInvoker& async;
  engine::MapJobs& map_jobs;
  engine::MapFunctions& map_functions;
  schedule::Scheduler& scheduler;
  // Cluster mode only (forwarder.h): where a sync invoke not warm here goes.
  Forwarder* forwarder = nullptr;
  // Cluster mode only (map_journal.h, map_takeover.h): map jobs recorded in PostgreSQL, and
  // the reads and takeovers of jobs whose owner is another node.
  engine::MapJournal* map_journal = nullptr;
  engine::MapTakeover* map_takeover = nullptr;
  // Cluster mode only (cluster_logs.h): a function's logs read from every node.
  ClusterLogs* cluster_logs = nullptr;
};

}  // namespace gust::api
