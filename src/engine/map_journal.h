// MapJournal: what a cluster node's MapJobs writes to PostgreSQL (store/map_job_store.h) so
// that its map jobs survive its death (docs/CLUSTER.md, "Step 5b as built"). Embedded engines
// have none: MapJobs without a journal behaves, and costs, exactly as before.
//
// Writes carry this node's name and membership epoch, so a node whose job was taken over
// writes nothing more (the store fences them). Appends run one at a time, in order, on a
// thread of the journal's own (never on the engine thread: a slow PostgreSQL delays a job's
// result stream, never the engine), and answer on the engine thread.
//
// A job's settings travel with its row as JSON (EncodeSpec/DecodeSpec), so a node taking the
// job over runs it as submitted.
//
// Errors: the store's (Conflict: taken over; Unavailable: PostgreSQL unreachable; NotFound:
// the job was deleted). DecodeSpec: InvalidArgument naming the field.
// Thread-safety: the store's reads from any thread; Create, Append, Finish and Delete from the
// engine thread (their callbacks run there).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"
#include "engine/map_jobs.h"
#include "store/map_job_store.h"

namespace gust::engine {

std::string EncodeSpec(const MapJobSpec& spec);
Result<MapJobSpec> DecodeSpec(const std::string& function, const std::string& options);

class MapJournal {
 public:
  // store_interval: how often MapJobs appends a running job's results, at most.
  MapJournal(boost::asio::io_context& io, MapJobStore& store, std::string self, int64_t epoch,
             std::chrono::milliseconds store_interval = std::chrono::milliseconds(100));
  ~MapJournal();  // Shutdown()
  MapJournal(const MapJournal&) = delete;
  MapJournal& operator=(const MapJournal&) = delete;

  // Records job `id`, owned by this node, and its inputs; done(status) on the engine thread
  // (Unavailable at once after Shutdown). The job may run meanwhile: its appends, posted
  // after this call, follow the record.
  void Create(const std::string& id, const MapJobSpec& spec, std::vector<std::string> tasks,
              std::function<void(Status)> done);
  // Appends results (their seqs follow the stored ones); done(status) on the engine thread.
  void Append(const std::string& id, std::vector<MapResultRow> results,
              std::function<void(Status)> done);
  // Marks the job done; a failure is logged (the job's results are all stored already, so a
  // node taking it over finds nothing to run and finishes it itself).
  void Finish(const std::string& id, int64_t finished_ms);
  // Removes the job's row, inputs and results; a failure is logged.
  void Delete(const std::string& id);
  // Waits for the writes in flight; later calls are dropped.
  void Shutdown();

  MapJobStore& store() { return store_; }
  const std::string& self() const { return self_; }
  int64_t epoch() const { return epoch_.load(); }
  // This node rejoined the cluster as `epoch` (ClusterNode::OnRejoin): rows created from now
  // on name it, and writes of jobs owned under the old one are refused (it dropped them at
  // its lapse). Any thread.
  void SetEpoch(int64_t epoch) { epoch_.store(epoch); }
  std::chrono::milliseconds store_interval() const { return store_interval_; }

 private:
  boost::asio::io_context& io_;
  MapJobStore& store_;
  const std::string self_;
  std::atomic<int64_t> epoch_;
  const std::chrono::milliseconds store_interval_;
  boost::asio::thread_pool pool_{1};  // one thread: a job's appends stay in order
  bool stopped_ = false;              // engine thread
};

}  // namespace gust::engine
