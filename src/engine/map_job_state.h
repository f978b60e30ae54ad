// The state of one map job, shared by MapJobs' bookkeeping (map_jobs.cc) and
// its scheduler (map_scheduler.cc). Internal to src/engine.
//
// Invariants: a task is in exactly one state; a kRunning task is carried by
// `copies` >= 1 sessions (2 while a straggler's backup runs) or is being
// retried; `queue` holds every kPending task (and may hold stale entries of
// tasks that left kPending, skipped when met); results[seq - 1] is the result
// of seq; finished_at has one entry per result.
//
// Thread-safety: engine thread only, like MapJobs.
#pragma once

#include <boost/asio/steady_timer.hpp>

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "common/clock.h"
#include "engine/map_jobs.h"
#include "engine/map_scaler.h"

namespace gust::engine {

// One sandbox serving a job: a streaming invocation pulling chunks.
struct MapJobs::Session {
  std::vector<uint32_t> chunk;  // tasks it runs now, not yet answered
  size_t chunk_size = 0;        // tasks the current chunk started with
  MonoTime chunk_started;
  bool backed_up = false;  // a backup copy of the current chunk was started
  bool backup = false;     // runs a backup copy: one chunk, then ends
  bool ending = false;     // was told there is no more input
  bool started = false;    // running on a sandbox (else being spawned)
  bool cold = false;
  std::string sandbox;
  std::string request_id;
  int pid = -1;
  MonoTime launched;
  // CPU sampling (map_scaler.h). CPU demand is weighed against the time the
  // worker spent on tasks, not wall time: a sandbox waiting for its next
  // chunk (the engine or client is the bottleneck) is not leaving a CPU idle.
  uint64_t cpu_ns = 0;  // the reading at cpu_at
  MonoTime cpu_at;
  bool cpu_valid = false;
  bool cpu_settled = false;  // the first window (the worker's setup) is behind it
  double exec_ms = 0;        // the worker's time on tasks since cpu_at (answers' exec_us)
  bool executing = false;    // tasks are out at the worker
  MonoTime resumed_at;       // when they went out
  // A session on another node of the cluster (RemoteTurn): that node's name
  // and membership epoch, its id for the session, and when its chunk is taken
  // back if it has not been heard from. Empty node: a sandbox of this engine.
  std::string node;
  int64_t node_epoch = 0;
  std::string remote_id;
  MonoTime lease_until;

  bool remote() const { return !node.empty(); }
};

// A results request waiting for results (long poll).
struct MapJobs::Reader {
  uint64_t after;
  int64_t linger_ms;  // wait this long after the first new result for more
  ResultsCallback done;
  std::shared_ptr<boost::asio::steady_timer> timer;
  MonoTime deadline;       // the long poll's end
  bool lingering = false;  // the timer is armed for the linger, not the deadline
};

struct MapJobs::Job {
  enum class TaskState { kPending, kRunning, kDone, kCancelled };
  struct Task {
    TaskState state = TaskState::kPending;
    int attempts = 0;   // failed solo attempts on a lost sandbox
    bool solo = false;  // runs alone from now on (its chunk lost a sandbox)
    int copies = 0;     // sessions carrying it
  };

  explicit Job(boost::asio::io_context& io) : retry_timer(io), tick_timer(io), flush_timer(io) {}

  std::string id;
  MapJobSpec spec;
  std::vector<std::string> payloads;
  std::vector<Task> tasks;
  std::deque<uint32_t> queue;  // candidates; entries not pending any more are skipped
  size_t pending = 0;          // tasks in kPending
  std::vector<SessionPtr> sessions;
  size_t starting = 0;  // sessions launched and not yet running
  size_t width = 1;     // sessions wanted now (map_scaler.h)
  size_t finished = 0, failed = 0, cancelled = 0;
  std::vector<std::string> results;   // encoded, in seq order (seq = position + 1)
  std::vector<MonoTime> finished_at;  // when each result was added (reader linger)
  // Per-task times of finished chunks (medians for stragglers, chunk sizing
  // and the width), CPU shares of the sampled sessions' windows (SampleCpu),
  // cold starts: map_scaler.h.
  TaskMeasures measured;
  // The function's previous job's measurements (< 0: none), used until this
  // job has its own.
  double prior_cpu_share = -1;
  double prior_task_ms = -1;
  int64_t created_ms = 0;
  int64_t finished_ms = 0;  // 0 while running
  bool deleted = false;
  bool abandoned = false;  // dropped at a membership lapse (AbandonRecorded): kill late starts
  bool backing_off = false;
  // A nested job (spec.ancestors) throttled with no session of its own since
  // then (epoch: not starved); see kNestedStarvation.
  MonoTime starved_since{};
  bool ticking = false;
  boost::asio::steady_timer retry_timer;
  boost::asio::steady_timer tick_timer;
  std::vector<Reader> readers;

  // Journaled jobs (MapJobs::UseJournal): results[0, durable) are stored.
  // A journal append is in flight while flushing; flush_timer is armed
  // (flush_armed) for the next append while results wait for it.
  bool journaled = false;
  bool flushing = false;
  bool flush_armed = false;
  bool finish_recorded = false;
  uint64_t durable = 0;
  MonoTime last_flush{};
  boost::asio::steady_timer flush_timer;

  bool complete() const { return finished + failed + cancelled == tasks.size(); }
  // Sessions of this engine that take new chunks: what the width counts.
  size_t LocalActive() const {
    size_t n = 0;
    for (const auto& s : sessions) n += !s->ending && !s->backup && !s->remote();
    return n;
  }
};

}  // namespace gust::engine
