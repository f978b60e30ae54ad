// MapJobs' bookkeeping: jobs, results, readers, cancel/delete and the TTL
// sweep. The scheduling half is map_scheduler.cc.
#include "engine/map_jobs.h"

#include <sched.h>
#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>

#include <algorithm>
#include <thread>

#include "common/ids.h"
#include "common/json_read.h"
#include "common/run_guarded.h"
#include "engine/map_framing.h"
#include "engine/map_job_state.h"
#include "engine/map_journal.h"

namespace gust::engine {
namespace {

using nlohmann::json;

constexpr auto kSweepInterval = std::chrono::seconds(1);  // TTLs are checked this often
constexpr size_t kMaxBatchBytes = 32u << 20;
// A lingering reader is answered at once when this many results wait.
constexpr size_t kLingerMaxResults = 4096;
// Map functions whose last job's measurements are remembered.
constexpr size_t kMaxProfiles = 1024;
// Results one journal append carries at most (a job's first append after a
// slow PostgreSQL may find many waiting); as many waiting are appended at once.
constexpr size_t kMaxAppend = 4096;
// A journal append that found PostgreSQL unavailable is tried again after this.
constexpr auto kAppendRetry = std::chrono::seconds(1);

int UsableCores() {
  cpu_set_t set;
  if (::sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

}  // namespace

MapJobs::MapJobs(boost::asio::io_context& io, Invoker& invoker, int cores)
    : io_(io), invoker_(invoker), cores_(cores > 0 ? cores : UsableCores()), sweeper_(io) {
  ScheduleSweep();
}

// Shutdown() posts the readers' answers; an allocation failing there must not
// throw out of a destructor (std::terminate): it is logged as the bug it is.
MapJobs::~MapJobs() {
  try {
    Shutdown();
  } catch (const std::exception& e) {
    LogEscapedException(e.what());
  } catch (...) {
    LogEscapedException("an exception that is not a std::exception");
  }
}

std::string MapJobs::Create(MapJobSpec spec, std::vector<std::string> tasks, std::string id) {
  auto job = std::make_shared<Job>(io_);
  job->journaled = journal_ != nullptr && !id.empty();
  job->id = id.empty() ? "job-" + RandomHex(8) : std::move(id);
  job->spec = std::move(spec);
  job->payloads = std::move(tasks);
  job->tasks.resize(job->payloads.size());
  for (uint32_t i = 0; i < job->payloads.size(); ++i) job->queue.push_back(i);
  job->pending = job->payloads.size();
  job->created_ms = NowEpochMs();
  job->last_flush = MonoClock::now();
  Start(job);
  return job->id;
}

Status MapJobs::Adopt(const std::string& id, MapJobSpec spec, int64_t created_ms,
                      std::vector<std::string> tasks, const std::vector<MapResultRow>& stored) {
  if (jobs_.contains(id)) return Status::Conflict("map job " + id + " runs here already");
  auto job = std::make_shared<Job>(io_);
  job->journaled = journal_ != nullptr;
  job->id = id;
  job->spec = std::move(spec);
  job->payloads = std::move(tasks);
  job->tasks.resize(job->payloads.size());
  job->created_ms = created_ms;
  for (const MapResultRow& r : stored) {
    auto head = DecodeResultHead(r.body);
    if (!head.ok()) return head.status().WithContext("map job " + id);
    if (head->seq != r.seq || r.seq != job->results.size() + 1 ||
        head->index >= job->tasks.size() ||
        job->tasks[head->index].state != Job::TaskState::kPending) {
      return Status::InvalidArgument("map job " + id + ": stored result seq " +
                                     std::to_string(r.seq) + " (task " +
                                     std::to_string(head->index) + ") does not follow seq " +
                                     std::to_string(job->results.size()) + " or repeats a task");
    }
    Job::Task& t = job->tasks[head->index];
    bool cancelled = head->status == ResultStatus::kCancelled;
    t.state = cancelled ? Job::TaskState::kCancelled : Job::TaskState::kDone;
    ++(cancelled                           ? job->cancelled
       : head->status == ResultStatus::kOk ? job->finished
                                           : job->failed);
    job->results.push_back(r.body);
    job->finished_at.push_back(MonoClock::now());
    job->payloads[head->index].clear();
    job->payloads[head->index].shrink_to_fit();
  }
  for (uint32_t i = 0; i < job->tasks.size(); ++i) {
    if (job->tasks[i].state != Job::TaskState::kPending) continue;
    job->queue.push_back(i);
    ++job->pending;
  }
  job->durable = job->results.size();
  job->last_flush = MonoClock::now();
  Start(job);
  MaybeComplete(*job);  // a job whose every result was stored needs nothing more
  NotifyReaders(*job);
  return Status::Ok();
}

void MapJobs::Start(const JobPtr& job) {
  job->width = std::min<size_t>(static_cast<size_t>(std::max(job->spec.concurrency, 1)),
                                static_cast<size_t>(cores_));
  if (auto it = profiles_.find(job->spec.function); it != profiles_.end()) {
    job->prior_cpu_share = it->second.cpu_share;
    job->prior_task_ms = it->second.task_ms;
  }
  jobs_[job->id] = job;
  boost::asio::post(io_, [this, job] { Tick(job); });  // width, first sessions, next tick
}

void MapJobs::Flush(const JobPtr& job) {
  if (!job->journaled || job->flushing || job->deleted || shutting_down_) return;
  if (job->durable == job->results.size()) {
    if (job->complete() && !job->finish_recorded) {
      job->finish_recorded = true;
      journal_->Finish(job->id, job->finished_ms);
    }
    return;
  }
  // A running job's results are appended at most every store_interval (one row
  // each: fewer, larger appends cost PostgreSQL and the machine's cores less; a
  // takeover runs again at most the tasks of that long); a complete job's last
  // results go at once.
  MonoTime due = job->last_flush + journal_->store_interval();
  if (!job->complete() && job->results.size() - job->durable < kMaxAppend &&
      MonoClock::now() < due) {
    if (!job->flush_armed) {
      job->flush_armed = true;
      job->flush_timer.expires_at(due);
      std::weak_ptr<Job> weak = job;
      job->flush_timer.async_wait([this, weak](const boost::system::error_code& ec) {
        JobPtr j = weak.lock();
        if (!j) return;
        j->flush_armed = false;
        if (!ec) Flush(j);
      });
    }
    return;
  }
  job->last_flush = MonoClock::now();
  std::vector<MapResultRow> batch;
  for (uint64_t seq = job->durable + 1; seq <= job->results.size() && batch.size() < kMaxAppend;
       ++seq) {
    const std::string& body = job->results[seq - 1];
    auto head = DecodeResultHead(body);  // our own encoding: it decodes
    batch.push_back({seq, head.ok() ? head->index : 0, body});
  }
  uint64_t last = batch.back().seq;
  job->flushing = true;
  std::weak_ptr<Job> weak = job;
  journal_->Append(job->id, std::move(batch), [this, weak, last](Status s) {
    JobPtr j = weak.lock();
    if (!j || j->deleted) return;
    if (s.ok()) {
      j->flushing = false;
      j->durable = last;
      Flush(j);  // what finished meanwhile, or the job's end
      return;
    }
    if (s.code() == Code::kUnavailable) {
      // PostgreSQL is down: the job runs on, its readers are served, the append is retried.
      spdlog::warn("map job {}: storing results: {} (retried in 1 s)", j->id, s.ToString());
      auto timer = std::make_shared<boost::asio::steady_timer>(io_, kAppendRetry);
      timer->async_wait([this, weak, timer](const boost::system::error_code& ec) {
        JobPtr again = weak.lock();
        if (ec || !again) return;
        again->flushing = false;
        Flush(again);
      });
      return;
    }
    // Taken over (its owner was seen dead) or deleted through another node: the job is
    // not this node's any more; its readers find it where it is now.
    spdlog::warn("map job {}: dropped here: {}", j->id, s.ToString());
    (void)Remove(j->id, /*stored=*/false, /*taken=*/s.code() == Code::kConflict);
  });
}

void MapJobs::FinishTask(Job& job, const TaskAnswer& answer, const Session* session) {
  Job::Task& t = job.tasks[answer.index];
  if (t.state == Job::TaskState::kDone || t.state == Job::TaskState::kCancelled) return;
  if (t.state == Job::TaskState::kPending) --job.pending;
  t.state = Job::TaskState::kDone;
  ++(answer.ok ? job.finished : job.failed);
  ResultMeta meta;
  meta.seq = job.results.size() + 1;
  meta.index = answer.index;
  meta.status = answer.ok ? ResultStatus::kOk : ResultStatus::kError;
  meta.attempts = t.attempts + 1;
  if (session != nullptr) {
    meta.cold = session->cold;
    meta.sandbox = session->sandbox;
    meta.request_id = session->request_id;
  }
  meta.t_start = answer.t_start;
  meta.t_setup = answer.t_setup;
  meta.t_done = answer.t_done;
  meta.queued_ms = job.created_ms;
  meta.finished_ms = NowEpochMs();
  job.results.push_back(EncodeResult(meta, answer.meta, answer.data));
  job.finished_at.push_back(MonoClock::now());
  job.payloads[answer.index].clear();
  job.payloads[answer.index].shrink_to_fit();
}

void MapJobs::FinishWithError(Job& job, uint32_t index, const std::string& status,
                              const std::string& type, const std::string& message, int attempts) {
  Job::Task& t = job.tasks[index];
  if (t.state == Job::TaskState::kDone || t.state == Job::TaskState::kCancelled) return;
  json body = json::object();
  if (!type.empty()) body["error_type"] = type;
  if (!message.empty()) body["error_message"] = message;
  if (status == "cancelled") {
    if (t.state == Job::TaskState::kPending) --job.pending;
    t.state = Job::TaskState::kCancelled;
    ++job.cancelled;
    ResultMeta meta;
    meta.seq = job.results.size() + 1;
    meta.index = index;
    meta.status = ResultStatus::kCancelled;
    meta.attempts = t.attempts;
    meta.queued_ms = job.created_ms;
    meta.finished_ms = NowEpochMs();
    job.results.push_back(EncodeResult(meta, JsonDump(body), ""));
    job.finished_at.push_back(MonoClock::now());
    job.payloads[index].clear();
    job.payloads[index].shrink_to_fit();
    return;
  }
  t.attempts = attempts - 1;  // FinishTask reports attempts + 1
  std::string meta = JsonDump(body);
  TaskAnswer answer;
  answer.index = index;
  answer.meta = meta;
  FinishTask(job, answer, nullptr);
}

void MapJobs::MaybeComplete(Job& job) {
  if (job.complete() && job.finished_ms == 0) {
    job.finished_ms = NowEpochMs();
    double median = job.measured.MedianTaskMs();
    double cpu_share = job.measured.cpu_share();
    if (cpu_share >= 0 && median >= 0) {
      if (profiles_.size() >= kMaxProfiles && !profiles_.contains(job.spec.function)) {
        profiles_.erase(profiles_.begin());  // bounded; any one may go
      }
      profiles_[job.spec.function] = Profile{cpu_share, median};
    }
    job.tick_timer.cancel();
    job.retry_timer.cancel();
  }
}

Result<nlohmann::json> MapJobs::Describe(const std::string& id) const {
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return Status::NotFound("no map job " + id);
  const Job& job = *it->second;
  size_t running = 0;
  for (const auto& t : job.tasks) running += t.state == Job::TaskState::kRunning;
  return json{{"JobId", job.id},
              {"Function", job.spec.function},
              {"Parent", job.spec.ancestors.empty() ? json(nullptr) : json(job.spec.ancestors[0])},
              {"Depth", job.spec.ancestors.size()},
              {"Tasks", job.tasks.size()},
              {"Done", job.finished},
              {"Failed", job.failed},
              {"Cancelled", job.cancelled},
              {"Running", running},
              {"Pending", job.pending},
              {"Sandboxes", job.sessions.size()},
              {"ChunkSize", job.spec.chunksize > 0 ? json(job.spec.chunksize) : json(nullptr)},
              {"Concurrency", job.spec.concurrency},
              {"State", job.complete() ? "done" : "running"},
              {"CreatedMs", job.created_ms},
              {"FinishedMs", job.finished_ms}};
}

std::vector<std::string> MapJobs::ActiveFunctions() const {
  std::vector<std::string> out;
  for (const auto& [id, job] : jobs_) {
    if (!job->complete() || !job->sessions.empty()) out.push_back(job->spec.function);
  }
  return out;
}

Result<MapJobs::Lineage> MapJobs::SandboxJob(int pid) const {
  // A scan of the running sessions: one per live map sandbox, and asked once
  // per channel request, which is far rarer than a task.
  for (const auto& [id, job] : jobs_) {
    for (const auto& session : job->sessions) {
      if (session->pid == pid && session->started)
        return Lineage{id, job->spec.ancestors, job->spec.buckets};
    }
  }
  return Status::NotFound("no map task runs in process " + std::to_string(pid));
}

Result<bool> MapJobs::DescendsFrom(const std::string& id, const std::string& ancestor) const {
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return Status::NotFound("no map job " + id);
  const auto& chain = it->second->spec.ancestors;
  return id == ancestor || std::find(chain.begin(), chain.end(), ancestor) != chain.end();
}

MapJobs::ResultBatch MapJobs::Collect(const Job& job, uint64_t after) const {
  ResultBatch batch;
  batch.last_seq = after;
  if (job.journaled) {
    batch.owner = journal_->self() + ":" + std::to_string(journal_->epoch());
    batch.stored = job.durable;
  }
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
  JobPtr job = it->second;
  auto timer = std::make_shared<boost::asio::steady_timer>(io_);
  auto deadline = MonoClock::now() + std::chrono::milliseconds(std::max<int64_t>(0, wait_ms));
  job->readers.push_back(
      {after, std::max<int64_t>(0, linger_ms), std::move(done), timer, deadline, false});
  NotifyReaders(*job);
  // Still waiting and not lingering: answer (possibly empty) when the wait ends.
  for (Reader& r : job->readers) {
    if (r.timer == timer && !r.lingering) ArmReader(job, r, r.deadline);
  }
}

void MapJobs::ArmReader(const JobPtr& job, Reader& reader, MonoTime when) {
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
  auto found = jobs_.find(job.id);
  JobPtr self = found != jobs_.end() && found->second.get() == &job ? found->second : nullptr;
  if (self != nullptr && job.journaled) Flush(self);
  if (job.readers.empty()) return;
  std::vector<Reader> waiting;
  waiting.swap(job.readers);
  auto now = MonoClock::now();
  const size_t visible = job.results.size();
  for (Reader& r : waiting) {
    size_t available = visible > r.after ? visible - r.after : 0;
    bool answer = job.complete() || shutting_down_ || now >= r.deadline || self == nullptr;
    if (available > 0 && !answer) {
      // Linger so that one response carries many results: a fast map would
      // otherwise cost one HTTP round trip per finished task on both sides.
      MonoTime ripe = job.finished_at[r.after] + std::chrono::milliseconds(r.linger_ms);
      if (available >= kLingerMaxResults || now >= ripe) {
        answer = true;
      } else if (!r.lingering) {
        r.lingering = true;
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
    // Running tasks finish; finished ones stay as they are.
    if (job.tasks[i].state != Job::TaskState::kPending) continue;
    FinishWithError(job, i, "cancelled", "", "", 0);
  }
  MaybeComplete(job);
  NotifyReaders(job);
  return Status::Ok();
}

Status MapJobs::Delete(const std::string& id) { return Remove(id, /*stored=*/true); }

std::pair<size_t, size_t> MapJobs::AbandonRecorded() {
  std::vector<std::string> owned;
  for (const auto& [id, job] : jobs_) {
    if (job->journaled && !job->complete() && !job->deleted) owned.push_back(id);
  }
  if (owned.empty()) return {0, 0};
  std::vector<JobPtr> gone;
  for (const auto& [id, job] : jobs_) {
    const auto& chain = job->spec.ancestors;
    bool nested = std::any_of(owned.begin(), owned.end(), [&chain](const std::string& o) {
      return std::find(chain.begin(), chain.end(), o) != chain.end();
    });
    if (nested || std::find(owned.begin(), owned.end(), id) != owned.end()) gone.push_back(job);
  }
  // The sandboxes are collected before the jobs go (Remove forgets nothing of a session, but
  // a kill may end one inline), and killed after: a killed session's end finds its job
  // deleted and starts nothing.
  std::vector<std::string> sandboxes;
  for (const JobPtr& job : gone) {
    for (const SessionPtr& s : job->sessions) {
      if (!s->remote() && !s->sandbox.empty()) sandboxes.push_back(s->sandbox);
    }
    spdlog::warn(
        "map job {}: dropped here: this node's membership lease ran out, so another node "
        "takes the job over",
        job->id);
    job->abandoned = true;
    (void)Remove(job->id, /*stored=*/false, /*taken=*/true);
  }
  size_t killed = 0;
  for (const std::string& sandbox : sandboxes) killed += invoker_.Abandon(sandbox) ? 1 : 0;
  return {gone.size(), killed};
}

Status MapJobs::Remove(const std::string& id, bool stored, bool taken) {
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return Status::NotFound("no map job " + id);
  JobPtr job = it->second;
  if (stored && job->journaled) journal_->Delete(id);
  job->deleted = true;  // before Cancel: its "cancelled" results are not for the journal
  if (!taken) (void)Cancel(id, {});
  job->retry_timer.cancel();
  job->tick_timer.cancel();
  job->flush_timer.cancel();
  jobs_.erase(it);
  NotifyReaders(*job);  // readers of a deleted job get what there is, at once
  return Status::Ok();
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
    // With their stored copies: a job's results are gone from every node at its ttl (a dead
    // owner's are deleted by the other nodes' sweeps, MapJobStore::DeleteExpired).
    for (const std::string& id : expired) (void)Remove(id, /*stored=*/true);
    ScheduleSweep();
  });
}

void MapJobs::Shutdown() {
  if (shutting_down_) return;
  shutting_down_ = true;
  sweeper_.cancel();
  for (auto& [id, job] : jobs_) {
    job->retry_timer.cancel();
    job->tick_timer.cancel();
    job->flush_timer.cancel();
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
