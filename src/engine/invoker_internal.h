// The Invoker's private records, shared by its implementation files
// (invoker.cc: resolution, spawning, completion; invoker_admission.cc:
// concurrency, queueing, the sandbox cap). Not for use outside src/engine.
//
// Thread-safety: as the Invoker (engine thread only).
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "common/clock.h"
#include "engine/invoker.h"

namespace gust::engine {

struct Invoker::Target {
  FunctionConfig config;  // of the resolved version
  std::string pool_key;
  std::string bundle_dir;
  int concurrency_limit = 0;
  bool reserved = false;
  std::chrono::milliseconds keep_alive{0};
};

struct Invoker::Invocation {
  InvokeRequest request;
  std::string request_id;
  std::shared_ptr<const Target> target;
  Done done;
  Generations generation;  // the function's, when admitted
  int64_t start_epoch_ms = 0;
  bool cold = false;
  int64_t timeout_ms = 0;           // the request's, else the function's
  MonoClock::time_point queued_at;  // when it started waiting for a slot
  double init_ms = 0;
  std::string init_log;  // init-phase output, logged before START
  std::shared_ptr<runtime::SandboxSession> session;
};

}  // namespace gust::engine
