// MapJobs: runs map jobs (docs/MAP.md) on top of the Invoker. A job is a list
// of opaque task payloads for one function (the map worker with the job's
// pickled code). Each sandbox serving a job runs one streaming invocation
// (a "session") that pulls chunks of tasks, one round trip per chunk, until
// the job has no more for it; MapJobs keeps every finished task's result (in
// finishing order, numbered by seq) until the job is deleted or its TTL after
// completion passes. Readers long-poll for results after a seq.
//
// Width and chunk size adapt (map_scaler.h): a job starts on one sandbox per
// core and adds sandboxes only while its queue would wait longer than a cold
// start and its tasks leave CPU idle (I/O-bound maps go wide, CPU-bound ones
// stay near the core count); chunks of an automatically chunked job carry
// ~20 ms of work each (map_scaler.h).
//
// Failures: a session whose sandbox timed out, ran out of memory or crashed
// loses only its current chunk; each of those tasks is retried alone up to
// `retries` times, then finishes with status "error" and that errorType. Any
// other function error (the worker cannot load, a malformed answer) fails the
// chunk's tasks at once. Throttles (429) put the chunk back and retry after a
// short back-off. Stragglers (straggler_factor k > 0): a chunk running longer
// than k x the median task time x its size gets one backup copy; the first
// result wins.
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
#include "engine/map_framing.h"
#include "store/bucket_grants.h"
#include "store/map_job_store.h"

namespace gust::engine {

class MapJournal;

struct MapJobSpec {
  std::string function;  // the map function (its handler is the map worker)
  int task_timeout_s = 300;
  int retries = 2;
  int chunksize = 0;            // 0: sized by the engine from measured task times
  int concurrency = 64;         // the most sandboxes the job may use at once
  double straggler_factor = 0;  // > 0: back up tasks slower than k x the median
  int ttl_s = 3600;             // results kept this long after the job finished
  // The jobs this one was submitted from by a task, through the sandbox
  // channel (api/channel_api.h): its parent first; empty for a client's job.
  // Its size is the job's nesting depth.
  std::vector<std::string> ancestors;
  // The buckets its tasks may use through the sandbox channel (the job
  // header's "Buckets"; a nested job's are within its parent's: JobsApi).
  BucketGrants buckets;
};

class MapJobs {
 public:
  // Encoded results (docs/MAP.md framing) and the highest seq they contain.
  struct ResultBatch {
    std::string body;
    uint64_t last_seq = 0;
    size_t count = 0;
    // Cluster mode: the job's owner as "NODE:EPOCH" and the results it has
    // stored (seqs 1..stored; the body may hold later ones, not stored yet).
    // A reader that goes on elsewhere, or finds another owner, resumes after
    // `stored`: later seqs may name other tasks once the job is taken over.
    // Embedded: owner empty, stored 0.
    std::string owner;
    uint64_t stored = 0;
  };
  using ResultsCallback = std::function<void(Result<ResultBatch>)>;

  // cores: what the width rules count as the machine's (0: this process's CPUs).
  MapJobs(boost::asio::io_context& io, Invoker& invoker, int cores = 0);
  ~MapJobs();

  // Starts the job; returns its id. tasks must not be empty. id: one the
  // caller recorded in the journal (UseJournal) under this node's ownership;
  // empty: a new id, and the job is not journaled (embedded engines, nested
  // maps).
  std::string Create(MapJobSpec spec, std::vector<std::string> tasks, std::string id = "");

  // Cluster mode (docs/CLUSTER.md, "Step 5b as built"): a journaled job's
  // results are appended to the journal in batches (one append in flight per
  // job, at most one per --map-store-interval while it runs; what finishes meanwhile
  // is the next batch). Readers get results as they finish, before they are
  // stored, with the stored count (ResultBatch::stored): a reader that resumes
  // on another node, from PostgreSQL or from the node that took the job over,
  // resumes after that count and ignores tasks it has already (a task whose
  // result was not stored runs again there). A job whose append is refused as
  // taken over is dropped here (its new owner runs it). Call before any Create.
  void UseJournal(MapJournal* journal) { journal_ = journal; }
  // Continues job `id` taken over from a dead owner (MapJobStore::TakeOver):
  // its inputs and the results stored so far (seq 1, 2, ...), which are not
  // run again; every other task runs (at least once: one that was in flight
  // on the dead owner runs again). InvalidArgument when a stored result does
  // not decode or follow the previous one; Conflict when the job runs here.
  Status Adopt(const std::string& id, MapJobSpec spec, int64_t created_ms,
               std::vector<std::string> tasks, const std::vector<MapResultRow>& stored);
  bool Has(const std::string& id) const { return jobs_.contains(id); }
  // {"JobId","Function","Tasks","Done","Failed","Running","Pending","Cancelled",
  //  "Sandboxes","ChunkSize","Concurrency","State","CreatedMs","FinishedMs"}.
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
  // Cluster mode, when this node's membership lapses (docs/CLUSTER.md, "Fencing as built"):
  // the jobs it owns and has recorded (journaled, not complete) are another node's to take
  // over once its lease ends, so they go, as a job taken over does ("dropped here"), and
  // their sandboxes are killed now, with those of the jobs their tasks submitted (nested
  // maps die with their parent's task). Jobs not recorded (none journaled, nested) and
  // complete ones are not touched: no node runs them again. Returns {jobs, sandboxes}
  // dropped and killed.
  std::pair<size_t, size_t> AbandonRecorded();
  // Fails every waiting reader; called before the invoker shuts down.
  void Shutdown();
  // What the width rules count as the machine's cores.
  int cores() const { return cores_; }
  // Functions used by a job that is not finished yet (they must not be collected).
  std::vector<std::string> ActiveFunctions() const;

  // Cluster mode (docs/CLUSTER.md, "Step 5a as built"): sessions of this
  // node's jobs that run on other nodes. Such a session is one more session of
  // the job: chunks sized, retried and ordered as a local one's, and its node
  // pulls them one round trip at a time, as a local sandbox's yields do.
  struct RemoteCall {
    std::string node;     // the calling node's name
    int64_t epoch = 0;    // its membership epoch
    std::string session;  // its id for the session (unique on that node)
    std::string sandbox;  // where it runs there (results' metadata)
    bool cold = false;
    // kYield: the answers to its chunk (empty on the session's first call),
    // and it wants the next; kLast: answers, and it wants no more; kDone: its
    // invocation ended with `outcome` (the chunk it held is lost unless
    // answered there, as a local session's).
    enum class Kind { kYield, kLast, kDone } kind = Kind::kYield;
    std::string body;
    InvokeResponse outcome;
  };
  struct RemoteChunk {
    std::string input;  // the next chunk (or "go on" after a partial answer); empty: no more
    int64_t timeout_ms = 0;
    size_t pending = 0;  // tasks of the job not handed out yet
    size_t tasks = 0;    // in input; 0 for "go on" with the current chunk
  };
  // One round trip of a remote session. A call of a session the job does not
  // hold (its chunk was taken back: lease or membership) changes nothing and
  // is answered "no more"; so is a job that has nothing left to hand out.
  // NotFound when there is no job `id`.
  Result<RemoteChunk> RemoteTurn(const std::string& id, RemoteCall call);
  // Jobs whose tasks wait while every local session they want is running:
  // what other nodes are offered. Jobs submitted from a task stay local.
  struct Offer {
    std::string job;
    std::string function;
    int task_timeout_s = 0;
    int concurrency = 0;
    size_t pending = 0;
  };
  std::vector<Offer> Offers() const;
  // Remote sessions of nodes not in `live` (name -> membership epoch) lose
  // their chunks as a lost sandbox does: retried, on any node.
  void ReleaseNodes(const std::map<std::string, int64_t>& live);

  // A job as seen from the sandbox channel: the job and its ancestors
  // (parent first).
  struct Lineage {
    std::string job;
    std::vector<std::string> ancestors;
    BucketGrants buckets;  // the job's grants
  };
  // The job whose session runs on the sandbox with runtime pid `pid` (the
  // engine's pid namespace); NotFound when no map session runs there (a
  // Lambda function, a warm sandbox between jobs, any other process).
  Result<Lineage> SandboxJob(int pid) const;
  // Whether job `id` is `ancestor` or was submitted (through the channel)
  // from it or from a job below it. NotFound when there is no job `id`.
  Result<bool> DescendsFrom(const std::string& id, const std::string& ancestor) const;

 private:
  struct Job;
  struct Session;
  struct Reader;
  using JobPtr = std::shared_ptr<Job>;
  using SessionPtr = std::shared_ptr<Session>;

  // Scheduling (map_scheduler.cc).
  void Pump(const JobPtr& job);
  void LaunchSession(const JobPtr& job, std::vector<uint32_t> chunk, bool backup);
  bool NextChunk(Job& job, size_t width, std::vector<uint32_t>* chunk);
  runtime::SandboxSession::Resume OnYield(const JobPtr& job, const SessionPtr& session,
                                          std::string_view answer);
  void OnSessionStart(const JobPtr& job, const SessionPtr& session, const InvocationStart& start);
  void OnSessionDone(const JobPtr& job, const SessionPtr& session, const InvokeResponse& response);
  // Takes a chunk answer; false (and the session's chunk failed) if malformed.
  bool TakeAnswers(Job& job, Session& session, std::string_view answer);
  void FailTasks(Job& job, const std::vector<uint32_t>& tasks, const std::string& type,
                 const std::string& message, bool retryable);
  // A nested job with no session, throttled for kNestedStarvation: fails its
  // unfinished tasks with Map.NoSandbox and returns true.
  bool FailIfStarved(Job& job);
  void Tick(const JobPtr& job);
  void ScheduleTick(const JobPtr& job);
  void BackUpStragglers(const JobPtr& job);
  // Remote sessions: one that left (its chunk's unanswered tasks fail as a
  // short answer's), and the chunks whose lease ran out taken back.
  void EndRemote(const JobPtr& job, const SessionPtr& session);
  void ExpireRemote(const JobPtr& job);
  void SampleCpu(Job& job);

  // Bookkeeping (map_jobs.cc).
  // answer: the task's outcome (its meta a JSON object or empty);
  // session: the sandbox it ran on, null for the engine's own errors.
  void FinishTask(Job& job, const TaskAnswer& answer, const Session* session);
  void FinishWithError(Job& job, uint32_t index, const std::string& status, const std::string& type,
                       const std::string& message, int attempts);
  void MaybeComplete(Job& job);
  void NotifyReaders(Job& job);
  // Width, profile and first tick of a job made by Create or Adopt.
  void Start(const JobPtr& job);
  // Journaled jobs: appends the results not stored yet (one append at a time),
  // and records the job done once every result is stored.
  void Flush(const JobPtr& job);
  // Drops a job; stored: also its state in the journal. taken: another node runs it now (taken
  // over, or this node's lapse), so its pending tasks are not answered "cancelled" here: its
  // readers get the results there are and read the rest where the job is.
  Status Remove(const std::string& id, bool stored, bool taken = false);
  void ArmReader(const JobPtr& job, Reader& reader, MonoTime when);
  ResultBatch Collect(const Job& job, uint64_t after) const;
  void ScheduleSweep();

  boost::asio::io_context& io_;
  Invoker& invoker_;
  int cores_;
  std::map<std::string, JobPtr> jobs_;
  // Per map function, what its last finished job measured: CPU share of its
  // tasks and their median time (the next job's starting width).
  struct Profile {
    double cpu_share = -1;
    double task_ms = -1;
  };
  std::map<std::string, Profile> profiles_;
  boost::asio::steady_timer sweeper_;
  bool shutting_down_ = false;
  MapJournal* journal_ = nullptr;
};

}  // namespace gust::engine
