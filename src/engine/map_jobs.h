// MapJobs: runs map jobs (docs/MAP.md) on top of the Invoker. A job is a list
// of opaque task payloads for one function (the map worker with the job's
// pickled code); MapJobs groups tasks into chunks, keeps up to `concurrency`
// chunk invocations in flight, retries tasks whose sandbox was lost, starts
// backup copies of stragglers, and keeps every finished task's result (in
// finishing order, numbered by seq) until the job is deleted or its TTL after
// completion passes. Readers long-poll for results after a seq.
//
// Failures: a chunk whose sandbox timed out, ran out of memory or crashed is
// split; each task is retried alone up to `retries` times, then finishes with
// status "error" and that errorType. Any other function error (the worker
// cannot load, a malformed answer) fails the chunk's tasks at once. Throttles
// (429) put the chunk back and retry after a short back-off.
//
// Thread-safety: single-threaded, on the engine's io_context, like the
// Invoker. Callbacks never run inline.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "common/status.h"
#include "engine/invoker.h"

namespace gust::engine {

struct MapJobSpec {
  std::string function;  // the map function (its handler is the map worker)
  int task_timeout_s = 300;
  int retries = 2;
  int chunksize = 0;            // 0: chosen from the task count and the concurrency
  int concurrency = 64;         // chunk invocations in flight
  double straggler_factor = 0;  // > 0: back up tasks slower than k x the median
  int ttl_s = 3600;             // results kept this long after the job finished
};

class MapJobs {
 public:
  // Encoded results (docs/MAP.md framing) and the highest seq they contain.
  struct ResultBatch {
    std::string body;
    uint64_t last_seq = 0;
    size_t count = 0;
  };
  using ResultsCallback = std::function<void(Result<ResultBatch>)>;

  MapJobs(boost::asio::io_context& io, Invoker& invoker);
  ~MapJobs();

  // Starts the job; returns its id. tasks must not be empty.
  std::string Create(MapJobSpec spec, std::vector<std::string> tasks);
  // {"JobId","Tasks","Done","Failed","Running","Pending","Cancelled","State","CreatedMs"}.
  Result<nlohmann::json> Describe(const std::string& id) const;
  // Results with seq > after; with none yet, waits up to wait_ms for some
  // (an empty batch when the wait ends or the job is complete). linger_ms > 0:
  // once a result is there, waits up to that long after it finished for more
  // (unless the job completes or thousands are waiting), so a fast map's
  // results travel in batches rather than one HTTP response each.
  void Results(const std::string& id, uint64_t after, int64_t wait_ms, int64_t linger_ms,
               ResultsCallback done);
  // Cancels pending tasks (all when indexes is empty); running ones finish.
  Status Cancel(const std::string& id, const std::vector<uint32_t>& indexes);
  Status Delete(const std::string& id);
  // Fails every waiting reader; called before the invoker shuts down.
  void Shutdown();

  // The chunk size used when the caller leaves it to the engine.
  static int AutoChunkSize(size_t tasks, int concurrency);

 private:
  struct Job;
  struct Reader;
  struct Chunk;
  void Pump(const std::shared_ptr<Job>& job);
  void Launch(const std::shared_ptr<Job>& job, std::shared_ptr<Chunk> chunk);
  void OnChunkDone(const std::shared_ptr<Job>& job, const std::shared_ptr<Chunk>& chunk,
                   InvokeResponse response);
  void FinishTask(Job& job, uint32_t index, nlohmann::json meta, std::string data);
  void FailChunkTasks(Job& job, const Chunk& chunk, const std::string& type,
                      const std::string& message, bool retryable);
  void NotifyReaders(Job& job);
  void ArmReader(const std::shared_ptr<Job>& job, Reader& reader, MonoTime when);
  static ResultBatch Collect(const Job& job, uint64_t after);
  void CheckStragglers(const std::shared_ptr<Job>& job);
  void ScheduleSweep();

  boost::asio::io_context& io_;
  Invoker& invoker_;
  std::map<std::string, std::shared_ptr<Job>> jobs_;
  boost::asio::steady_timer sweeper_;
  bool shutting_down_ = false;
};

}  // namespace gust::engine
