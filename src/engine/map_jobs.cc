#include "engine/map_jobs.h"

#include <boost/asio/post.hpp>

#include <algorithm>
#include <deque>
#include <unordered_set>

#include "common/clock.h"
#include "common/ids.h"
#include "engine/map_framing.h"

namespace gust::engine {
namespace {

using nlohmann::json;

constexpr int kMaxAutoChunk = 64;
constexpr auto kThrottleBackoff = std::chrono::milliseconds(50);
constexpr auto kStragglerCheck = std::chrono::milliseconds(200);
constexpr auto kSweepInterval = std::chrono::seconds(10);
constexpr size_t kMinFinishedForStragglers = 5;
constexpr size_t kMaxBatchBytes = 32u << 20;
// A lingering reader is answered at once when this many results wait.
constexpr size_t kLingerMaxResults = 4096;

// Sandbox losses: the task may succeed on a fresh sandbox (or alone).
bool Retryable(const std::string& error_type) {
  return error_type == "Sandbox.Timedout" || error_type == "Runtime.OutOfMemory" ||
         error_type == "Runtime.ExitError" || error_type == "Runtime.Unknown" ||
         error_type == "Function.ResponseSizeTooLarge";
}

double EpochSeconds() { return static_cast<double>(NowEpochMs()) / 1000.0; }

}  // namespace

struct MapJobs::Chunk {
  std::vector<uint32_t> indexes;
  MonoTime started;
  bool backed_up = false;  // a backup copy was started for it
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
    int copies = 0;     // invocations in flight that carry it
  };

  Job(boost::asio::io_context& io) : retry_timer(io), straggler_timer(io) {}

  std::string id;
  MapJobSpec spec;
  std::vector<std::string> payloads;
  std::vector<Task> tasks;
  std::deque<uint32_t> queue;  // candidates; entries not pending any more are skipped
  std::vector<std::shared_ptr<Chunk>> in_flight;
  size_t finished = 0, failed = 0, cancelled = 0;
  std::vector<std::string> results;   // encoded, in seq order (seq = position + 1)
  std::vector<MonoTime> finished_at;  // when each result was added (reader linger)
  std::vector<double> per_task_ms;    // finished chunks' duration per task (stragglers)
  int64_t created_ms = 0;
  int64_t finished_ms = 0;  // 0 while running
  bool deleted = false;
  bool backing_off = false;
  boost::asio::steady_timer retry_timer;
  boost::asio::steady_timer straggler_timer;
  std::vector<Reader> readers;

  bool complete() const { return finished + failed + cancelled == tasks.size(); }
};

MapJobs::MapJobs(boost::asio::io_context& io, Invoker& invoker)
    : io_(io), invoker_(invoker), sweeper_(io) {
  ScheduleSweep();
}

MapJobs::~MapJobs() { Shutdown(); }

int MapJobs::AutoChunkSize(size_t tasks, int concurrency) {
  size_t per_slot = tasks / (4 * static_cast<size_t>(std::max(concurrency, 1)));
  return static_cast<int>(std::clamp<size_t>(per_slot, 1, kMaxAutoChunk));
}

std::string MapJobs::Create(MapJobSpec spec, std::vector<std::string> tasks) {
  auto job = std::make_shared<Job>(io_);
  job->id = "job-" + RandomHex(8);
  if (spec.chunksize <= 0) spec.chunksize = AutoChunkSize(tasks.size(), spec.concurrency);
  job->spec = std::move(spec);
  job->payloads = std::move(tasks);
  job->tasks.resize(job->payloads.size());
  for (uint32_t i = 0; i < job->payloads.size(); ++i) job->queue.push_back(i);
  job->created_ms = NowEpochMs();
  jobs_[job->id] = job;
  boost::asio::post(io_, [this, job] { Pump(job); });
  if (job->spec.straggler_factor > 0) CheckStragglers(job);
  return job->id;
}

void MapJobs::Pump(const std::shared_ptr<Job>& job) {
  if (job->deleted || shutting_down_ || job->backing_off) return;
  using TaskState = Job::TaskState;
  while (static_cast<int>(job->in_flight.size()) < job->spec.concurrency) {
    while (!job->queue.empty() && job->tasks[job->queue.front()].state != TaskState::kPending) {
      job->queue.pop_front();
    }
    if (job->queue.empty()) return;
    auto chunk = std::make_shared<Chunk>();
    bool solo = job->tasks[job->queue.front()].solo;
    while (!job->queue.empty() &&
           chunk->indexes.size() < static_cast<size_t>(job->spec.chunksize)) {
      uint32_t i = job->queue.front();
      if (job->tasks[i].state != TaskState::kPending) {
        job->queue.pop_front();
        continue;
      }
      if (job->tasks[i].solo != solo) break;
      job->queue.pop_front();
      chunk->indexes.push_back(i);
      if (solo) break;
    }
    if (chunk->indexes.empty()) continue;
    for (uint32_t i : chunk->indexes) job->tasks[i].state = TaskState::kRunning;
    Launch(job, std::move(chunk));
  }
}

void MapJobs::Launch(const std::shared_ptr<Job>& job, std::shared_ptr<Chunk> chunk) {
  for (uint32_t i : chunk->indexes) ++job->tasks[i].copies;
  chunk->started = MonoClock::now();
  job->in_flight.push_back(chunk);
  InvokeRequest request;
  request.function = job->spec.function;
  request.raw_payload = true;
  // The function's timeout is per task; a chunk gets one per task it carries.
  request.timeout_ms =
      int64_t{job->spec.task_timeout_s} * 1000 * static_cast<int64_t>(chunk->indexes.size());
  request.payload = EncodeChunk(chunk->indexes, job->payloads);
  invoker_.Invoke(std::move(request),
                  [this, job, chunk](InvokeResponse r) { OnChunkDone(job, chunk, std::move(r)); });
}

void MapJobs::OnChunkDone(const std::shared_ptr<Job>& job, const std::shared_ptr<Chunk>& chunk,
                          InvokeResponse response) {
  auto& flying = job->in_flight;
  flying.erase(std::remove(flying.begin(), flying.end(), chunk), flying.end());
  for (uint32_t i : chunk->indexes) --job->tasks[i].copies;
  if (job->deleted || shutting_down_) return;
  if (!response.status.ok()) {
    if (response.status.code() == Code::kTooManyRequests) {
      // Back in the queue in their order, tried again after a pause.
      for (auto it = chunk->indexes.rbegin(); it != chunk->indexes.rend(); ++it) {
        Job::Task& t = job->tasks[*it];
        if (t.state == Job::TaskState::kRunning && t.copies == 0) {
          t.state = Job::TaskState::kPending;
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
    FailChunkTasks(*job, *chunk, "Map.EngineError", response.status.message(), false);
  } else if (response.function_error) {
    auto doc = json::parse(response.payload, nullptr, false);
    std::string type = doc.is_object() ? doc.value("errorType", "Runtime.Unknown") : "";
    std::string message = doc.is_object() ? doc.value("errorMessage", "") : response.payload;
    FailChunkTasks(*job, *chunk, type, message, Retryable(type));
  } else {
    auto answers = DecodeChunkAnswer(response.payload);
    if (!answers.ok()) {
      FailChunkTasks(*job, *chunk, "Map.MalformedResponse", answers.status().message(), false);
    } else {
      std::unordered_set<uint32_t> mine(chunk->indexes.begin(), chunk->indexes.end());
      for (TaskAnswer& a : *answers) {
        if (!mine.count(a.index)) continue;
        mine.erase(a.index);
        a.meta["attempts"] = job->tasks[a.index].attempts + 1;
        a.meta["cold"] = response.cold;
        a.meta["sandbox"] = response.sandbox_id;
        a.meta["request_id"] = response.request_id;
        FinishTask(*job, a.index, std::move(a.meta), std::move(a.data));
      }
      if (!mine.empty()) {
        Chunk missing;
        missing.indexes.assign(mine.begin(), mine.end());
        FailChunkTasks(*job, missing, "Map.MalformedResponse",
                       "the map worker did not answer for every task of its chunk", false);
      }
      double ms = MsBetween(chunk->started, MonoClock::now());
      job->per_task_ms.push_back(ms / static_cast<double>(chunk->indexes.size()));
    }
  }
  if (job->complete() && job->finished_ms == 0) {
    job->finished_ms = NowEpochMs();
    job->straggler_timer.cancel();
  }
  NotifyReaders(*job);
  Pump(job);
}

void MapJobs::FailChunkTasks(Job& job, const Chunk& chunk, const std::string& type,
                             const std::string& message, bool retryable) {
  for (uint32_t i : chunk.indexes) {
    Job::Task& t = job.tasks[i];
    // Finished by another copy, or another copy still carries it.
    if (t.state != Job::TaskState::kRunning || t.copies > 0) continue;
    if (retryable && chunk.indexes.size() > 1 && !t.solo) {
      t.solo = true;  // the culprit is unknown: each task of the chunk again, alone
    } else if (retryable && t.attempts < job.spec.retries) {
      ++t.attempts;
      t.solo = true;
    } else {
      if (retryable) ++t.attempts;
      json meta = {{"index", i},
                   {"status", "error"},
                   {"error_type", type},
                   {"error_message", message},
                   {"attempts", t.attempts + (retryable ? 0 : 1)}};
      FinishTask(job, i, std::move(meta), "");
      continue;
    }
    t.state = Job::TaskState::kPending;
    job.queue.push_front(i);
  }
}

void MapJobs::FinishTask(Job& job, uint32_t index, json meta, std::string data) {
  Job::Task& t = job.tasks[index];
  if (t.state == Job::TaskState::kDone || t.state == Job::TaskState::kCancelled) return;
  std::string status = meta.value("status", "error");
  if (status == "cancelled") {
    t.state = Job::TaskState::kCancelled;
    ++job.cancelled;
  } else {
    t.state = Job::TaskState::kDone;
    ++(status == "ok" ? job.finished : job.failed);
  }
  meta["index"] = index;
  meta["seq"] = job.results.size() + 1;
  meta["t_queued"] = static_cast<double>(job.created_ms) / 1000.0;
  meta["t_finished"] = EpochSeconds();
  job.results.push_back(EncodeResult(meta, data));
  job.finished_at.push_back(MonoClock::now());
  job.payloads[index].clear();
  job.payloads[index].shrink_to_fit();
}

Result<nlohmann::json> MapJobs::Describe(const std::string& id) const {
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return Status::NotFound("no map job " + id);
  const Job& job = *it->second;
  size_t running = 0, pending = 0;
  for (const auto& t : job.tasks) {
    running += t.state == Job::TaskState::kRunning;
    pending += t.state == Job::TaskState::kPending;
  }
  return json{{"JobId", job.id},
              {"Function", job.spec.function},
              {"Tasks", job.tasks.size()},
              {"Done", job.finished},
              {"Failed", job.failed},
              {"Cancelled", job.cancelled},
              {"Running", running},
              {"Pending", pending},
              {"ChunkSize", job.spec.chunksize},
              {"Concurrency", job.spec.concurrency},
              {"State", job.complete() ? "done" : "running"},
              {"CreatedMs", job.created_ms},
              {"FinishedMs", job.finished_ms}};
}

MapJobs::ResultBatch MapJobs::Collect(const Job& job, uint64_t after) {
  ResultBatch batch;
  batch.last_seq = after;
  for (uint64_t seq = after + 1; seq <= job.results.size(); ++seq) {
    const std::string& r = job.results[seq - 1];
    if (batch.count > 0 && batch.body.size() + r.size() > kMaxBatchBytes) break;
    batch.body += r;
    batch.last_seq = seq;
    ++batch.count;
  }
  return batch;
}

void MapJobs::Results(const std::string& id, uint64_t after, int64_t wait_ms, int64_t linger_ms,
                      ResultsCallback done) {
  auto it = jobs_.find(id);
  if (it == jobs_.end()) {
    boost::asio::post(io_, [done, id] { done(Status::NotFound("no map job " + id)); });
    return;
  }
  auto job = it->second;
  auto timer = std::make_shared<boost::asio::steady_timer>(io_);
  job->readers.push_back(
      {after, std::max<int64_t>(0, linger_ms), std::move(done), timer,
       MonoClock::now() + std::chrono::milliseconds(std::max<int64_t>(0, wait_ms)), false});
  NotifyReaders(*job);
  // Still waiting: answer (possibly empty) when the wait ends.
  for (Reader& r : job->readers) {
    if (r.timer == timer && !r.lingering) ArmReader(job, r, r.deadline);
  }
}

void MapJobs::ArmReader(const std::shared_ptr<Job>& job, Reader& reader, MonoTime when) {
  reader.timer->expires_at(when);
  std::weak_ptr<Job> weak = job;
  auto timer = reader.timer;
  timer->async_wait([this, weak, timer](const boost::system::error_code& ec) {
    auto j = weak.lock();
    if (ec || !j) return;
    auto& rs = j->readers;
    for (auto r = rs.begin(); r != rs.end(); ++r) {
      if (r->timer != timer) continue;
      ResultsCallback done = std::move(r->done);
      ResultBatch batch = Collect(*j, r->after);
      rs.erase(r);
      boost::asio::post(io_, [done = std::move(done), batch = std::move(batch)]() mutable {
        done(std::move(batch));
      });
      return;
    }
  });
}

void MapJobs::NotifyReaders(Job& job) {
  auto self = jobs_.count(job.id) ? jobs_[job.id] : nullptr;
  std::vector<Reader> waiting;
  waiting.swap(job.readers);
  auto now = MonoClock::now();
  for (Reader& r : waiting) {
    size_t available = job.results.size() > r.after ? job.results.size() - r.after : 0;
    bool answer = job.complete() || shutting_down_ || now >= r.deadline;
    if (available > 0 && !answer) {
      // Linger so that one response carries many results: a fast map would
      // otherwise cost one HTTP round trip per finished task on both sides.
      MonoTime first = job.finished_at[r.after];
      MonoTime ripe = first + std::chrono::milliseconds(r.linger_ms);
      if (available >= kLingerMaxResults || now >= ripe) {
        answer = true;
      } else if (!r.lingering && self) {
        r.lingering = true;
        r.timer->cancel();
        ArmReader(self, r, std::min(ripe, r.deadline));
      }
    }
    if (!answer) {
      job.readers.push_back(std::move(r));
      continue;
    }
    r.timer->cancel();
    ResultBatch batch = Collect(job, r.after);
    boost::asio::post(io_, [done = std::move(r.done), batch = std::move(batch)]() mutable {
      done(std::move(batch));
    });
  }
}

Status MapJobs::Cancel(const std::string& id, const std::vector<uint32_t>& indexes) {
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return Status::NotFound("no map job " + id);
  Job& job = *it->second;
  for (uint32_t i : indexes) {
    if (i >= job.tasks.size()) {
      return Status::InvalidArgument("task index " + std::to_string(i) + " out of range: job " +
                                     id + " has " + std::to_string(job.tasks.size()) + " tasks");
    }
  }
  std::vector<uint32_t> targets = indexes;
  if (targets.empty()) {
    for (uint32_t i = 0; i < job.tasks.size(); ++i) targets.push_back(i);
  }
  for (uint32_t i : targets) {
    // Running tasks finish; FinishTask ignores tasks already done.
    if (job.tasks[i].state != Job::TaskState::kPending) continue;
    FinishTask(job, i, json{{"status", "cancelled"}}, "");
  }
  if (job.complete() && job.finished_ms == 0) job.finished_ms = NowEpochMs();
  NotifyReaders(job);
  return Status::Ok();
}

Status MapJobs::Delete(const std::string& id) {
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return Status::NotFound("no map job " + id);
  auto job = it->second;
  (void)Cancel(id, {});
  job->deleted = true;
  job->retry_timer.cancel();
  job->straggler_timer.cancel();
  jobs_.erase(it);
  return Status::Ok();
}

void MapJobs::CheckStragglers(const std::shared_ptr<Job>& job) {
  job->straggler_timer.expires_after(kStragglerCheck);
  job->straggler_timer.async_wait([this, job](const boost::system::error_code& ec) {
    if (ec || job->deleted || shutting_down_ || job->complete()) return;
    if (job->per_task_ms.size() >= kMinFinishedForStragglers) {
      std::vector<double> sorted = job->per_task_ms;
      std::nth_element(sorted.begin(), sorted.begin() + sorted.size() / 2, sorted.end());
      double median = sorted[sorted.size() / 2];
      auto now = MonoClock::now();
      std::vector<std::shared_ptr<Chunk>> slow;
      for (const auto& c : job->in_flight) {
        double limit = job->spec.straggler_factor * median * static_cast<double>(c->indexes.size());
        if (!c->backed_up && MsBetween(c->started, now) > std::max(limit, 1.0)) slow.push_back(c);
      }
      for (const auto& c : slow) {
        c->backed_up = true;
        auto backup = std::make_shared<Chunk>();
        backup->backed_up = true;  // a backup is never backed up again
        for (uint32_t i : c->indexes) {
          if (job->tasks[i].state == Job::TaskState::kRunning) backup->indexes.push_back(i);
        }
        if (backup->indexes.empty()) continue;
        Launch(job, std::move(backup));
      }
    }
    CheckStragglers(job);
  });
}

void MapJobs::ScheduleSweep() {
  sweeper_.expires_after(kSweepInterval);
  sweeper_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || shutting_down_) return;
    int64_t now = NowEpochMs();
    std::vector<std::string> expired;
    for (const auto& [id, job] : jobs_) {
      if (job->finished_ms > 0 && now - job->finished_ms > int64_t{job->spec.ttl_s} * 1000) {
        expired.push_back(id);
      }
    }
    for (const std::string& id : expired) (void)Delete(id);
    ScheduleSweep();
  });
}

void MapJobs::Shutdown() {
  if (shutting_down_) return;
  shutting_down_ = true;
  sweeper_.cancel();
  for (auto& [id, job] : jobs_) {
    job->retry_timer.cancel();
    job->straggler_timer.cancel();
    for (Reader& r : job->readers) {
      r.timer->cancel();
      boost::asio::post(io_, [done = std::move(r.done)] {
        done(Status::Unavailable("the engine is shutting down"));
      });
    }
    job->readers.clear();
  }
}

}  // namespace gust::engine
