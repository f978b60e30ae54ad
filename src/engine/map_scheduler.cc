// MapJobs' scheduling: sessions (one streaming invocation per sandbox, pulling
// chunks), retries of lost chunks, straggler backups and the width ticks.
// The bookkeeping half is map_jobs.cc; the width/chunk rules are map_scaler.h.
#include <boost/asio/post.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>

#include "common/config.h"
#include "common/json_read.h"
#include "engine/map_framing.h"
#include "engine/map_job_state.h"
#include "engine/map_jobs.h"
#include "engine/map_scaler.h"

namespace gust::engine {
namespace {

using nlohmann::json;
using Resume = runtime::SandboxSession::Resume;

constexpr auto kThrottleBackoff = std::chrono::milliseconds(50);
// A map submitted from a task that gets no sandbox at all for this long fails
// with Map.NoSandbox instead of waiting: the sandboxes it waits for may all be
// held by tasks waiting on it (docs/MAP.md, "Maps from a task").
constexpr auto kNestedStarvation = std::chrono::seconds(10);
// Width decisions and straggler checks, while a job has work.
constexpr auto kTickInterval = std::chrono::milliseconds(5);
// Sessions whose CPU use is read per tick (a /proc read each), and the
// shortest window measured: the kernel accounts run time at scheduler ticks
// (a few ms), so shorter windows alternate between too little and too much.
constexpr size_t kCpuSamples = 8;
constexpr double kCpuWindowMs = 20;
// Less work than this in a window says nothing about the tasks.
constexpr double kMinExecMs = 2;
// A chunk stays well under the runtime's 6 MB frame limit (one bigger task
// still travels alone).
constexpr size_t kMaxChunkBytes = 4u << 20;
constexpr size_t kMinFinishedForStragglers = 5;
// Chunks are sized from the latest chunks' times (the first, one task each,
// are mostly round-trip overhead and would keep later chunks small).
constexpr size_t kChunkSizingSamples = 8;
// A remote session's chunk is taken back when its node has not been heard
// from for the chunk's time limit and this much more (a node that died is
// usually noticed sooner, by its membership: ReleaseNodes).
constexpr auto kRemoteLeaseGrace = std::chrono::seconds(10);

// Sandbox losses: the task may succeed on a fresh sandbox (or alone).
bool Retryable(const std::string& error_type) {
  return error_type == "Sandbox.Timedout" || error_type == "Runtime.OutOfMemory" ||
         error_type == "Runtime.ExitError" || error_type == "Runtime.Unknown" ||
         error_type == "Function.ResponseSizeTooLarge";
}

// A chunk payload telling the worker to go on with its current chunk (it sent
// a partial answer to keep its frames small).
const std::string& ContinueChunk() {
  static const std::string kContinue(4, '\0');
  return kContinue;
}

// A chunk's time: its tasks' one after another. Capped at ten years: a chunk
// of 1000 tasks of a year each would overflow a steady clock's nanoseconds.
std::chrono::milliseconds ChunkTimeout(const MapJobSpec& spec, size_t tasks) {
  constexpr int64_t kMaxChunkMs = int64_t{kHardMaxTimeoutS} * 1000 * 10;
  int64_t per_task_ms = int64_t{std::max(spec.task_timeout_s, 1)} * 1000;
  int64_t n = static_cast<int64_t>(std::clamp<size_t>(tasks, 1, 1'000'000));
  return std::chrono::milliseconds(std::min(per_task_ms * n, kMaxChunkMs));
}

}  // namespace

bool MapJobs::NextChunk(Job& job, size_t width, std::vector<uint32_t>* chunk) {
  using TaskState = Job::TaskState;
  auto& q = job.queue;
  while (!q.empty() && job.tasks[q.front()].state != TaskState::kPending) q.pop_front();
  if (q.empty()) return false;
  chunk->clear();
  bool solo = job.tasks[q.front()].solo;
  size_t limit =
      solo
          ? 1
          : static_cast<size_t>(job.spec.chunksize > 0
                                    ? job.spec.chunksize
                                    : AutoChunkTasks(job.measured.MedianTaskMs(kChunkSizingSamples),
                                                     job.pending, width));
  size_t bytes = 0;
  while (!q.empty() && chunk->size() < limit) {
    uint32_t i = q.front();
    Job::Task& t = job.tasks[i];
    if (t.state != TaskState::kPending) {
      q.pop_front();
      continue;
    }
    if (t.solo != solo) break;
    size_t size = job.payloads[i].size() + 8;
    if (!chunk->empty() && bytes + size > kMaxChunkBytes) break;
    q.pop_front();
    bytes += size;
    chunk->push_back(i);
    t.state = TaskState::kRunning;
    --job.pending;
  }
  return !chunk->empty();
}

void MapJobs::Pump(const JobPtr& job) {
  if (job->deleted || shutting_down_ || job->backing_off) return;
  std::vector<uint32_t> chunk;
  size_t n = job->LocalActive();
  while (job->pending > 0 && n < job->width && job->starting < kMaxStartingSessions) {
    if (!NextChunk(*job, job->width, &chunk)) return;
    LaunchSession(job, chunk, /*backup=*/false);
    ++n;
  }
}

void MapJobs::LaunchSession(const JobPtr& job, std::vector<uint32_t> chunk, bool backup) {
  auto session = std::make_shared<Session>();
  session->backup = backup;
  session->launched = MonoClock::now();
  session->chunk_started = session->launched;
  session->chunk_size = chunk.size();
  for (uint32_t i : chunk) ++job->tasks[i].copies;
  session->chunk = std::move(chunk);
  job->sessions.push_back(session);
  ++job->starting;

  InvokeRequest request;
  request.function = job->spec.function;
  request.raw_payload = true;
  request.job_bounded = true;  // the job's width is its concurrency (MapScaler)
  request.timeout_ms = ChunkTimeout(job->spec, session->chunk.size()).count();
  request.payload = EncodeChunk(session->chunk, job->payloads);
  request.on_yield = [this, job, session](const std::string& answer,
                                          const runtime::SandboxSession::ResumeFn& resume) {
    resume(OnYield(job, session, answer));
  };
  request.on_start = [this, job, session](const InvocationStart& start) {
    OnSessionStart(job, session, start);
  };
  invoker_.Invoke(std::move(request), [this, job, session](const InvokeResponse& r) {
    OnSessionDone(job, session, r);
  });
}

void MapJobs::OnSessionStart(const JobPtr& job, const SessionPtr& session,
                             const InvocationStart& start) {
  session->started = true;
  --job->starting;
  job->starved_since = MonoTime{};
  session->sandbox = start.sandbox_id;
  session->request_id = start.request_id;
  session->pid = start.pid;
  session->cold = start.cold;
  if (job->abandoned) {
    // Launched before its job was abandoned (AbandonRecorded), started after: its chunk is
    // another node's to run. Posted: the kill must not end the invocation inside its start.
    boost::asio::post(io_, [this, sandbox = start.sandbox_id] { invoker_.Abandon(sandbox); });
    return;
  }
  auto now = MonoClock::now();
  if (auto cpu = ProcessCpuDemandNs(start.pid)) {
    session->cpu_ns = *cpu;
    session->cpu_at = now;
    session->cpu_valid = true;
  }
  session->executing = true;
  session->resumed_at = now;
  if (start.cold) {
    job->measured.AddColdStart(MsBetween(session->launched, now));
    // A spawn slot is free: keep the pipeline of cold starts full.
    boost::asio::post(io_, [this, job] { Pump(job); });
  }
}

bool MapJobs::TakeAnswers(Job& job, Session& session, std::string_view answer) {
  auto answers = DecodeChunkAnswer(answer);
  if (!answers.ok()) {
    std::vector<uint32_t> lost = std::move(session.chunk);
    session.chunk.clear();
    for (uint32_t i : lost) --job.tasks[i].copies;
    FailTasks(job, lost, "Map.MalformedResponse",
              "the map worker's answer is malformed: " + answers.status().message(), false);
    return false;
  }
  if (session.cpu_valid) {
    double since_sample = MsBetween(session.cpu_at, MonoClock::now());
    session.exec_ms += std::min(answers->exec_us / 1000.0, since_sample);
  }
  // The worker answers in chunk order; a cursor finds each index in O(1).
  size_t cursor = 0, answered = 0;
  auto& chunk = session.chunk;
  for (const TaskAnswer& a : answers->tasks) {
    size_t at =
        cursor < chunk.size() && chunk[cursor] == a.index
            ? cursor
            : static_cast<size_t>(std::find(chunk.begin(), chunk.end(), a.index) - chunk.begin());
    if (at >= chunk.size()) continue;  // not a task of this chunk (or answered twice)
    chunk[at] = UINT32_MAX;
    cursor = at + 1;
    ++answered;
    --job.tasks[a.index].copies;
    FinishTask(job, a, &session);
  }
  if (answered > 0) {
    chunk.erase(std::remove(chunk.begin(), chunk.end(), UINT32_MAX), chunk.end());
  }
  if (chunk.empty() && session.chunk_size > 0) {
    double ms = MsBetween(session.chunk_started, MonoClock::now());
    job.measured.AddTaskTime(ms / static_cast<double>(session.chunk_size));
    session.chunk_size = 0;
  }
  return true;
}

Resume MapJobs::OnYield(const JobPtr& job, const SessionPtr& session, std::string_view answer) {
  if (job->deleted || shutting_down_) {
    session->ending = true;
    return Resume{};
  }
  session->executing = false;
  bool ok = TakeAnswers(*job, *session, answer);
  MaybeComplete(*job);
  NotifyReaders(*job);
  if (ok && !session->chunk.empty()) {  // a partial answer: the worker goes on
    session->executing = true;
    session->resumed_at = MonoClock::now();
    return Resume{ContinueChunk(), {}};
  }
  bool too_wide = job->LocalActive() > job->width;
  std::vector<uint32_t> chunk;
  if (!ok || session->backup || too_wide || !NextChunk(*job, job->width, &chunk)) {
    session->ending = true;
    return Resume{};
  }
  for (uint32_t i : chunk) ++job->tasks[i].copies;
  session->chunk = std::move(chunk);
  session->chunk_size = session->chunk.size();
  session->chunk_started = MonoClock::now();
  session->backed_up = false;
  session->executing = true;
  session->resumed_at = session->chunk_started;
  return Resume{EncodeChunk(session->chunk, job->payloads),
                ChunkTimeout(job->spec, session->chunk.size())};
}

void MapJobs::OnSessionDone(const JobPtr& job, const SessionPtr& session,
                            const InvokeResponse& response) {
  auto& sessions = job->sessions;
  sessions.erase(std::remove(sessions.begin(), sessions.end(), session), sessions.end());
  if (!session->started) --job->starting;
  if (job->deleted || shutting_down_) return;
  auto release = [&job, &session] {
    std::vector<uint32_t> lost = std::move(session->chunk);
    session->chunk.clear();
    for (uint32_t i : lost) --job->tasks[i].copies;
    return lost;
  };
  if (!response.status.ok()) {
    std::vector<uint32_t> lost = release();
    if (response.status.code() == Code::kTooManyRequests) {
      if (FailIfStarved(*job)) return;
      // Back in the queue in their order, tried again after a pause.
      for (auto it = lost.rbegin(); it != lost.rend(); ++it) {
        Job::Task& t = job->tasks[*it];
        if (t.state == Job::TaskState::kRunning && t.copies == 0) {
          t.state = Job::TaskState::kPending;
          ++job->pending;
          job->queue.push_front(*it);
        }
      }
      if (!job->backing_off) {
        job->backing_off = true;
        job->retry_timer.expires_after(kThrottleBackoff);
        job->retry_timer.async_wait([this, job](const boost::system::error_code& ec) {
          if (ec) return;
          job->backing_off = false;
          Pump(job);
        });
      }
      return;
    }
    // A sandbox that could not start (Unavailable) is a lost sandbox: retried.
    FailTasks(*job, lost, "Map.EngineError", response.status.message(),
              response.status.code() == Code::kUnavailable);
  } else if (response.function_error) {
    auto doc = JsonParse(response.payload);
    std::string type = doc.is_object() ? JsonStringOr(doc, "errorType", "Runtime.Unknown") : "";
    std::string message =
        doc.is_object() ? JsonStringOr(doc, "errorMessage", "") : response.payload;
    FailTasks(*job, release(), type, message, Retryable(type));
  } else if (TakeAnswers(*job, *session, response.payload) && !session->chunk.empty()) {
    FailTasks(*job, release(), "Map.MalformedResponse",
              "the map worker did not answer for every task of its chunk", false);
  }
  MaybeComplete(*job);
  NotifyReaders(*job);
  Pump(job);
}

bool MapJobs::FailIfStarved(Job& job) {
  if (job.spec.ancestors.empty() || !job.sessions.empty()) return false;
  auto now = MonoClock::now();
  if (job.starved_since == MonoTime{}) job.starved_since = now;
  if (now - job.starved_since < kNestedStarvation) return false;
  const std::string message =
      "no sandbox came free for this map, submitted from a task of job " + job.spec.ancestors[0] +
      ", in " + std::to_string(kNestedStarvation.count()) +
      " s: the engine's sandboxes are all taken (gust up --max-sandboxes), maybe by tasks "
      "waiting on maps of their own; raise --max-sandboxes or lower the outer map's concurrency";
  for (uint32_t i = 0; i < job.tasks.size(); ++i) {
    Job::Task& t = job.tasks[i];
    if (t.state == Job::TaskState::kPending ||
        (t.state == Job::TaskState::kRunning && t.copies == 0)) {
      FinishWithError(job, i, "error", "Map.NoSandbox", message, t.attempts + 1);
    }
  }
  MaybeComplete(job);
  NotifyReaders(job);
  return true;
}

void MapJobs::FailTasks(Job& job, const std::vector<uint32_t>& tasks, const std::string& type,
                        const std::string& message, bool retryable) {
  for (uint32_t i : tasks) {
    Job::Task& t = job.tasks[i];
    // Finished by another copy, or another copy still carries it.
    if (t.state != Job::TaskState::kRunning || t.copies > 0) continue;
    if (retryable && tasks.size() > 1 && !t.solo) {
      t.solo = true;  // the culprit is unknown: each task of the chunk again, alone
    } else if (retryable && t.attempts < job.spec.retries) {
      ++t.attempts;
      t.solo = true;
    } else {
      FinishWithError(job, i, "error", type, message, t.attempts + 1);
      continue;
    }
    t.state = Job::TaskState::kPending;
    ++job.pending;
    job.queue.push_front(i);
  }
}

void MapJobs::SampleCpu(Job& job) {
  auto now = MonoClock::now();
  double cpu_ms = 0, exec_ms = 0;
  size_t sampled = 0;
  for (const SessionPtr& s : job.sessions) {
    if (sampled == kCpuSamples) break;
    if (!s->started || !s->cpu_valid || MsBetween(s->cpu_at, now) < kCpuWindowMs) continue;
    if (!s->cpu_settled) {
      // The first window holds the worker's setup (loading the function, its
      // imports), not its tasks: a baseline only. Counted, it made a map of
      // sleeping tasks look CPU-bound while its sandboxes were starting.
      if (auto cpu = ProcessCpuDemandNs(s->pid)) s->cpu_ns = *cpu;
      s->cpu_at = now;
      s->exec_ms = 0;
      s->cpu_settled = true;
      continue;
    }
    double exec = s->exec_ms;
    if (s->executing) exec += MsBetween(std::max(s->resumed_at, s->cpu_at), now);
    if (exec <= 0) continue;  // between chunks, nothing to weigh
    auto cpu = ProcessCpuDemandNs(s->pid);
    if (!cpu) continue;
    if (*cpu >= s->cpu_ns && exec >= kMinExecMs) {
      cpu_ms += static_cast<double>(*cpu - s->cpu_ns) / 1e6;
      exec_ms += exec;
      ++sampled;
    }
    s->cpu_ns = *cpu;
    s->cpu_at = now;
    s->exec_ms = 0;
  }
  // Sessions sampled first this time go last next time (a rotation).
  if (job.sessions.size() > kCpuSamples) {
    std::rotate(job.sessions.begin(), job.sessions.begin() + kCpuSamples, job.sessions.end());
  }
  if (sampled == 0) return;
  job.measured.AddCpuShare(cpu_ms / exec_ms);
}

void MapJobs::ScheduleTick(const JobPtr& job) {
  if (job->ticking || job->complete() || job->deleted || shutting_down_) return;
  job->ticking = true;
  job->tick_timer.expires_after(kTickInterval);
  job->tick_timer.async_wait([this, job](const boost::system::error_code& ec) {
    job->ticking = false;
    if (ec) return;
    Tick(job);
  });
}

void MapJobs::Tick(const JobPtr& job) {
  if (job->deleted || shutting_down_ || job->complete()) return;
  ExpireRemote(job);
  SampleCpu(*job);
  ScaleInputs in;
  in.cores = cores_;
  in.concurrency = job->spec.concurrency;
  in.pending_tasks = job->pending;
  auto now = MonoClock::now();
  std::vector<SessionLoad> loads;
  loads.reserve(job->sessions.size());
  for (const SessionPtr& s : job->sessions) {
    // Remote sessions are their nodes' own width, not this one's.
    if (s->ending || s->backup || s->remote()) continue;
    bool running = s->started && !s->chunk.empty();
    loads.push_back({running, s->chunk_size, running ? MsBetween(s->chunk_started, now) : 0});
  }
  MeasureSessions(loads, job->measured.MedianTaskMs(), &in);
  in.cpu_share = job->measured.cpu_share();
  if (in.cpu_share < 0 && job->prior_cpu_share >= 0) {
    in.cpu_share = job->prior_cpu_share;
    in.task_ms = std::max(in.task_ms, job->prior_task_ms);
    in.from_history = true;
  }
  in.cold_start_ms = job->measured.cold_start_ms();
  size_t width = ScaledWidth(&in);
  if (width != job->width) {
    spdlog::debug(
        "map {}: width {} -> {} (pending {}, sessions {}, running {}, task {:.2f} ms, "
        "cpu share {:.3f}, cold start {:.1f} ms, memory short {})",
        job->id, job->width, width, in.pending_tasks, in.sessions, in.running_sessions, in.task_ms,
        in.cpu_share, in.cold_start_ms, in.memory_short);
  }
  job->width = width;
  if (job->spec.straggler_factor > 0) BackUpStragglers(job);
  Pump(job);
  ScheduleTick(job);
}

void MapJobs::BackUpStragglers(const JobPtr& job) {
  if (job->measured.task_count() < kMinFinishedForStragglers) return;
  double median = job->measured.MedianTaskMs();
  auto now = MonoClock::now();
  std::vector<std::vector<uint32_t>> backups;
  for (const SessionPtr& s : job->sessions) {
    if (s->backed_up || s->backup || s->chunk.empty()) continue;
    double limit = job->spec.straggler_factor * median * static_cast<double>(s->chunk_size);
    if (MsBetween(s->chunk_started, now) <= std::max(limit, 1.0)) continue;
    s->backed_up = true;
    std::vector<uint32_t> copy;
    for (uint32_t i : s->chunk) {
      if (job->tasks[i].state == Job::TaskState::kRunning) copy.push_back(i);
    }
    if (!copy.empty()) backups.push_back(std::move(copy));
  }
  for (auto& chunk : backups) LaunchSession(job, std::move(chunk), /*backup=*/true);
}

Result<MapJobs::RemoteChunk> MapJobs::RemoteTurn(const std::string& id, RemoteCall call) {
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return Status::NotFound("no map job " + id);
  JobPtr job = it->second;
  RemoteChunk none;
  none.pending = job->pending;
  auto& sessions = job->sessions;
  auto found = std::find_if(sessions.begin(), sessions.end(), [&call](const SessionPtr& s) {
    return s->node == call.node && s->node_epoch == call.epoch && s->remote_id == call.session;
  });
  auto now = MonoClock::now();
  std::vector<uint32_t> chunk;
  SessionPtr session;
  if (found == sessions.end()) {
    // A session the job does not hold: a new one brings no answers; one that
    // does lost its chunk already (taken back and handed out again), and its
    // answers are not this job's to take.
    bool fresh = call.kind == RemoteCall::Kind::kYield && call.body.empty();
    if (!fresh || job->deleted || shutting_down_ || !NextChunk(*job, job->width, &chunk)) {
      if (!fresh) {
        spdlog::info("map {}: stale call of session {} of node {}: ignored", id, call.session,
                     call.node);
      }
      return none;
    }
    session = std::make_shared<Session>();
    session->node = call.node;
    session->node_epoch = call.epoch;
    session->remote_id = call.session;
    session->started = true;
    session->launched = now;
    sessions.push_back(session);
  } else {
    session = *found;
    if (call.kind == RemoteCall::Kind::kDone) {
      OnSessionDone(job, session, call.outcome);
      return none;
    }
    session->executing = false;
    bool ok = TakeAnswers(*job, *session, call.body);
    MaybeComplete(*job);
    NotifyReaders(*job);
    if (ok && !session->chunk.empty() && call.kind == RemoteCall::Kind::kYield) {
      session->lease_until =
          now + ChunkTimeout(job->spec, session->chunk.size()) + kRemoteLeaseGrace;
      return RemoteChunk{ContinueChunk(), 0, job->pending, 0};
    }
    if (!ok || call.kind == RemoteCall::Kind::kLast || job->deleted || shutting_down_ ||
        !NextChunk(*job, job->width, &chunk)) {
      EndRemote(job, session);
      none.pending = job->pending;
      return none;
    }
  }
  session->sandbox = call.node + "/" + call.sandbox;
  session->cold = call.cold;
  for (uint32_t i : chunk) ++job->tasks[i].copies;
  session->chunk = std::move(chunk);
  session->chunk_size = session->chunk.size();
  session->chunk_started = now;
  session->backed_up = false;
  session->executing = true;
  auto timeout = ChunkTimeout(job->spec, session->chunk.size());
  session->lease_until = now + timeout + kRemoteLeaseGrace;
  ScheduleTick(job);
  return RemoteChunk{EncodeChunk(session->chunk, job->payloads), timeout.count(), job->pending,
                     session->chunk.size()};
}

void MapJobs::EndRemote(const JobPtr& job, const SessionPtr& session) {
  auto& sessions = job->sessions;
  sessions.erase(std::remove(sessions.begin(), sessions.end(), session), sessions.end());
  std::vector<uint32_t> rest = std::move(session->chunk);
  session->chunk.clear();
  for (uint32_t i : rest) --job->tasks[i].copies;
  if (!rest.empty()) {
    FailTasks(*job, rest, "Map.MalformedResponse",
              "the map worker did not answer for every task of its chunk", false);
  }
  MaybeComplete(*job);
  NotifyReaders(*job);
  Pump(job);
}

void MapJobs::ExpireRemote(const JobPtr& job) {
  auto now = MonoClock::now();
  std::vector<SessionPtr> expired;
  for (const SessionPtr& s : job->sessions) {
    if (s->remote() && !s->chunk.empty() && now > s->lease_until) expired.push_back(s);
  }
  for (const SessionPtr& s : expired) {
    spdlog::warn("map {}: node {} did not answer for its chunk in time: its tasks run again",
                 job->id, s->node);
    InvokeResponse lost;
    lost.status =
        Status::Unavailable("node " + s->node + " did not answer for its chunk within its lease");
    OnSessionDone(job, s, lost);
  }
}

void MapJobs::ReleaseNodes(const std::map<std::string, int64_t>& live) {
  for (const auto& [id, job] : jobs_) {
    std::vector<SessionPtr> gone;
    for (const SessionPtr& s : job->sessions) {
      if (!s->remote()) continue;
      auto node = live.find(s->node);
      if (node == live.end() || node->second != s->node_epoch) gone.push_back(s);
    }
    JobPtr keep = job;  // OnSessionDone may complete (not erase) the job
    for (const SessionPtr& s : gone) {
      spdlog::warn("map {}: node {} left the cluster: its chunk runs again", id, s->node);
      InvokeResponse lost;
      lost.status = Status::Unavailable("node " + s->node + " left the cluster (membership)");
      OnSessionDone(keep, s, lost);
    }
  }
}

std::vector<MapJobs::Offer> MapJobs::Offers() const {
  std::vector<Offer> out;
  for (const auto& [id, job] : jobs_) {
    if (job->deleted || job->pending == 0 || !job->spec.ancestors.empty()) continue;
    if (job->LocalActive() + job->starting < job->width && !job->backing_off) continue;
    out.push_back(Offer{id, job->spec.function, job->spec.task_timeout_s, job->spec.concurrency,
                        job->pending});
  }
  return out;
}

}  // namespace gust::engine
