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
// Thread-safety: pure functions; the /proc readers are reentrant.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

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

// first_free_ms of ScaleInputs from one running sandbox: its chunk of
// `chunk_tasks`, at it for `age_ms`. With no task of the job finished yet
// (median_task_ms < 0), a task is assumed to take twice the longest any has
// run so far (`lower_bound_task_ms`): guessing short would keep tasks queued
// behind long ones, guessing long costs a sandbox that may idle.
double ExpectedFreeInMs(double median_task_ms, double lower_bound_task_ms, size_t chunk_tasks,
                        double age_ms);

// The number of sandboxes the job should have now (>= 1 while it has work).
size_t TargetSessions(const ScaleInputs& in);

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
