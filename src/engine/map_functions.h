// MapFunctions: the functions map jobs run on (docs/MAP.md). One function
// "gust-map-<16 hex of sha256(code, memory, timeout, network[, python])>" per
// distinct map configuration, created on first use with the map worker as its
// handler and a reserved concurrency at least the job's (what
// GetFunctionConcurrency shows; a job bounds its own invocations,
// InvokeRequest::job_bounded, so jobs sharing the function, nested ones
// included, do not share a limit); the same function and arguments mapped
// twice reuse it (and its warm sandboxes).
//
// Collection: every map function records when a job last used it. A sweep
// (every ttl/2, at most a minute) deletes the map functions that no running
// job uses and none has used for `ttl` (gust up --job-ttl, default 1 h), then
// their code blob and unpacked bundle when no other function has that code.
// After an engine restart a function's last use is its creation time until a
// job uses it again. A client whose code was collected is told
// CodeNotUploadedException and uploads it again (python/gust does).
//
// Thread-safety: Ensure() and the sweep's deletions run on the worker pool
// and exclude each other (a function is never deleted between Ensure() and
// its job's start: Ensure() marks it used first); Start()/Stop() and the timer
// run on the engine thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/mutex.h"
#include "common/status.h"
#include "common/thread_annotations.h"
#include "engine/invoker.h"
#include "engine/map_jobs.h"
#include "store/blob_store.h"
#include "store/code_bundle.h"
#include "store/metadata_store.h"

namespace gust::engine {

inline constexpr char kMapFunctionPrefix[] = "gust-map-";

struct MapFunctionKey {
  std::string code;  // sha256 of the code zip (uploaded)
  int memory_mb = 256;
  int timeout_s = 300;
  bool network = false;
  // The Python environment the map runs in (FunctionConfig::python): the
  // client's interpreter, "" for the engine's own (MapPython below).
  std::string python;
};

// The python of a map whose client runs `executable` (its sys.prefix and
// sys.base_prefix given): "" when that is the engine's own interpreter,
// `engine_python` by path, or by realpath outside a venv (prefix ==
// base_prefix: /usr/bin/python3.11 is Debian's python3), so such clients keep
// the engine's zygote; else `executable` as is (a venv's bin/python links to
// its base interpreter, so only the path as run finds the venv).
std::string MapPython(const std::string& executable, const std::string& prefix,
                      const std::string& base_prefix, const std::string& engine_python);

class MapFunctions {
 public:
  MapFunctions(boost::asio::io_context& io, boost::asio::thread_pool& workers, MetadataStore& store,
               BlobStore& blobs, BundleCache& bundles, Invoker& invoker, MapJobs& jobs, int ttl_s);

  // The function for key (created if missing) with a reserved concurrency of
  // at least `concurrency`; marks it used now. Worker pool.
  Result<std::string> Ensure(const MapFunctionKey& key, int concurrency);
  // Starts / stops the collection sweeps (engine thread).
  void Start();
  void Stop();
  // One sweep now, on the calling thread (tests); `active` are the functions
  // running jobs use. Returns the names deleted.
  std::vector<std::string> Collect(const std::vector<std::string>& active, int64_t now_ms);

 private:
  void ScheduleSweep();

  boost::asio::io_context& io_;
  boost::asio::thread_pool& workers_;
  MetadataStore& store_;
  BlobStore& blobs_;
  BundleCache& bundles_;
  Invoker& invoker_;
  MapJobs& jobs_;
  const int ttl_s_;
  boost::asio::steady_timer timer_;
  bool stopped_ = false;
  Mutex mu_;  // Ensure() vs deletions; last_used_
  std::map<std::string, int64_t> last_used_ms_ GUARDED_BY(mu_);
  // Functions made or checked by Ensure(), with their reserved concurrency.
  std::map<std::string, int> reserved_ GUARDED_BY(mu_);
};

}  // namespace gust::engine
