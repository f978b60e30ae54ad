// How wide a map job runs and how big its chunks are: the decisions of the
// map scheduler (map_jobs.h) as pure functions, plus the /proc readings that
// feed them.
//
// Width (sandboxes pulling tasks of one job):
//   - a job starts on as many sandboxes as the machine has cores, or, when
//     its function's previous job measured its tasks, where that job's
//     measurements lead (a scraping map run again goes wide at once);
//   - it grows only while the queued tasks would wait longer than a cold start
//     (time until a running sandbox frees up + pending x task time / running
//     sandboxes > cold-start time), and only once its running sandboxes' CPU
//     use has been measured;
//   - it stays near cores / (CPU share of a task): a CPU-bound map keeps ~one
//     sandbox per core, an I/O-bound one (sleep, network) goes wide;
//   - never past its concurrency, nor while the host is short of memory.
// Chunk size (chunksize=None): tasks per round trip such that a round trip
// carries ~kTargetRoundMs of work, while leaving every sandbox >= 2 chunks.
//
// The measurements feeding them (TaskMeasures: task times, CPU shares, cold
// starts) and the step from a job's sessions to its width (MeasureSessions,
// ScaledWidth) are shared by the node that owns a job (MapJobs,
// map_scheduler.cc) and a node running a share of it (api/cluster_maps.h):
// each measures its own sandboxes the same way.
//
// Thread-safety: pure functions; the /proc readers are reentrant. A
// TaskMeasures is used by one thread (the engine's).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace gust::engine {

struct ScaleInputs {
  int cores = 1;
  int concurrency = 1;          // the job's ceiling
  size_t pending_tasks = 0;     // queued, not running
  size_t sessions = 0;          // sandboxes serving the job (running or starting)
  size_t running_sessions = 0;  // of which running tasks
  double task_ms = -1;          // typical time per task; < 0: unknown yet
  double cpu_share = -1;        // CPU demand / wall time of running tasks; < 0: unknown
  double cold_start_ms = 10;    // what one more sandbox would take to start
  // Until the first running sandbox is expected to take new work (its chunk
  // done). Sandboxes that all started together free up together: a queue
  // of a few tasks behind 100 one-second tasks waits for the seconds, not
  // for its share of them.
  double first_free_ms = 0;
  bool memory_short = false;  // the host is below its memory reserve
  // cpu_share and task_ms are the function's previous job's (nothing of this
  // job measured yet): a map run again starts at the width that job found.
  bool from_history = false;
};

// What a job (or a node's share of one) has measured of its tasks.
class TaskMeasures {
 public:
  // Task times kept: a ring of the latest, for medians without one entry per task.
  static constexpr size_t kTaskTimes = 256;

  // One finished task's time (ms).
  void AddTaskTime(double ms) { task_ms_[task_count_++ % task_ms_.size()] = ms; }
  // Tasks timed so far (not only those the ring still holds).
  size_t task_count() const { return task_count_; }
  // Median of the `recent` latest task times (at most kTaskTimes); < 0 when
  // none finished yet.
  double MedianTaskMs(size_t recent = kTaskTimes) const;

  // CPU demand / time on tasks of the sessions sampled in one window.
  void AddCpuShare(double share);
  // The largest of the recent windows' shares (< 0: none yet). A window can
  // miss a task's CPU (the kernel books a wait for a CPU only once the task
  // runs, run time at scheduler ticks), not invent it, so the maximum keeps a
  // CPU-bound map from going wide on one short sample.
  double cpu_share() const { return cpu_share_; }

  // One sandbox's cold start (ms), from launch to running.
  void AddColdStart(double ms);
  // Smoothed (an EWMA); 10 ms until the first is measured.
  double cold_start_ms() const { return cold_start_ms_; }

 private:
  std::array<double, kTaskTimes> task_ms_{};
  size_t task_count_ = 0;
  std::array<double, 5> cpu_shares_{};
  size_t cpu_share_count_ = 0;
  double cpu_share_ = -1;
  double cold_start_ms_ = 10;
};

// One sandbox serving a job, as its width counts it: `running` a chunk of
// `chunk_tasks` for `chunk_age_ms`, or not (starting, or between chunks).
struct SessionLoad {
  bool running = false;
  size_t chunk_tasks = 0;
  double chunk_age_ms = 0;
};

// Sets sessions, running_sessions, task_ms and first_free_ms of `in` (whose
// pending_tasks is set) from the sessions the width counts and the median of
// the job's finished task times (< 0: none yet). A task takes at least as long
// as the oldest running chunk's tasks have been at it.
void MeasureSessions(const std::vector<SessionLoad>& sessions, double median_task_ms,
                     ScaleInputs* in);

// TargetSessions of `in` once everything else is set; the host's memory is
// read (in->memory_short) only when the width would grow.
size_t ScaledWidth(ScaleInputs* in);

// first_free_ms of ScaleInputs from one running sandbox: its chunk of
// `chunk_tasks`, at it for `age_ms`. With no task of the job finished yet
// (median_task_ms < 0), a task is assumed to take twice the longest any has
// run so far (`lower_bound_task_ms`): guessing short would keep tasks queued
// behind long ones, guessing long costs a sandbox that may idle.
double ExpectedFreeInMs(double median_task_ms, double lower_bound_task_ms, size_t chunk_tasks,
                        double age_ms);

// The number of sandboxes the job should have now (>= 1 while it has work).
size_t TargetSessions(const ScaleInputs& in);
// Cold starts one job (or one node's share of it) keeps in flight at most:
// more would only queue in the zygote.
inline constexpr size_t kMaxStartingSessions = 16;

// Round-trip target of an automatically sized chunk.
inline constexpr double kTargetRoundMs = 20.0;
inline constexpr int kMaxAutoChunk = 1000;
// Tasks per chunk when the caller left it to the engine.
int AutoChunkTasks(double task_ms, size_t pending_tasks, size_t width);

// A process's cumulative CPU demand in ns: time on a CPU plus time runnable
// but waiting for one (/proc/<pid>/schedstat), or nothing. Counting the wait
// keeps a CPU-bound task CPU-bound on a busy machine, where it runs less than
// it wants to.
std::optional<uint64_t> ProcessCpuDemandNs(int pid);
// MemAvailable and MemTotal of /proc/meminfo, in bytes.
struct HostMemory {
  uint64_t available = 0;
  uint64_t total = 0;
};
std::optional<HostMemory> ReadHostMemory();
// The reserve below which jobs stop adding sandboxes: a tenth of RAM, >= 1 GiB.
bool MemoryShort(const HostMemory& m);

}  // namespace gust::engine
