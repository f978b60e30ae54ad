// Invoker: the path of one invocation through the engine, as one straight walk:
//
//   Invoke(request)
//     -> Resolve: function + qualifier (version or alias) -> Target (config, pool key)
//     -> Admit: per-function concurrency (reserved or default), a web app's
//        adaptive limit (below), and the engine-wide sandbox cap, else 429
//        TooManyRequests
//     -> Acquire: a warm sandbox from the WarmPool, or Spawn + AwaitInit (cold)
//     -> Run: SandboxSession::Invoke with the function's timeout
//     -> Complete: Lambda's START/END/REPORT log, an InvocationRecord, the
//        response, and the sandbox back to the pool (or killed if stale/dead).
//
// Scale to zero: a reaper kills sandboxes idle longer than their keep-alive.
// Changes bump per-function generations: a change to $LATEST's code or
// configuration retires $LATEST's sandboxes, a deletion retires all of the
// function's; retired sandboxes finish their current invocation and are then
// killed, so "update" switches traffic atomically while in-flight requests
// finish on the old code. Published versions are immutable, so their
// sandboxes survive alias and concurrency changes (a deploy's warmed sandbox
// serves the first request after the alias moves to it).
//
// Thread-safety: single-threaded, on the engine's io_context. Invoke() may be
// called only from that thread; FunctionChanged/FunctionDeleted too (post them).
// Callbacks never run inline.
#pragma once

#include <boost/asio/io_context.hpp>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "common/batch_worker.h"
#include "common/config.h"
#include "common/timer.h"
#include "engine/log_sink.h"
#include "engine/outage_log.h"
#include "runtime/sandbox_session.h"
#include "runtime/warm_pool.h"
#include "sandbox/sandbox.h"
#include "store/blob_store.h"
#include "store/code_bundle.h"
#include "store/metadata_store.h"

namespace gust::engine {

inline constexpr size_t kMaxSyncPayloadBytes = 6 * 1024 * 1024;  // Lambda: 6 MB
// Invocations that may wait for a concurrency slot of one function (beyond: 429).
inline constexpr size_t kMaxQueuedPerFunction = 10000;

// What InvokeRequest::on_start learns about the sandbox an invocation runs on.
struct InvocationStart {
  std::string request_id;
  std::string sandbox_id;
  int pid = -1;
  bool cold = false;
};

// Admission for requests that should share few sandboxes rather than each
// start one (the HTTP gateway's, api/gateway.h): a soft limit on the
// function's invocations in flight, starting at base_in_flight. Requests
// beyond it wait in the function's queue (FIFO, max_queue_ms, the same queue
// as at the concurrency limit) for a running one to finish. When the oldest
// has waited scale_out_after_ms and none of the function's invocations
// finished during that interval (they are slow or stuck), or it has waited
// four intervals (the queue drains too slowly), the limit grows by one, at
// most one step per interval; it shrinks back to the peak in-flight count of
// each quieter second. Why: docs/ARCHITECTURE.md, "A web app's requests queue".
struct AdaptiveLimit {
  int base_in_flight = 2;
  int64_t scale_out_after_ms = 50;
};

struct InvokeRequest {
  std::string function;   // plain name (ARNs are reduced by the API layer)
  std::string qualifier;  // "" or "$LATEST", a version number, or an alias
  std::string payload;
  bool tail_log = false;
  std::string client_context_json;
  // Engine-internal callers (map jobs): the payload goes to the handler as
  // bytes, and the time limit may differ from the function's (0: its own).
  bool raw_payload = false;
  int64_t timeout_ms = 0;
  // Asynchronous invocations keep the id they were accepted with (every
  // retry of an event runs under it); "" -> a new one.
  std::string request_id;
  // > 0: at the function's concurrency limit, wait up to this long (FIFO) for
  // one of its invocations to finish instead of failing with 429 at once (the
  // HTTP gateway: a burst queues briefly, as behind a load balancer).
  int64_t max_queue_ms = 0;
  // Set: the function's invocations in flight also keep under an adaptive
  // limit (needs max_queue_ms > 0 to wait); the first such request of a
  // function sets its policy.
  std::optional<AdaptiveLimit> adaptive_limit;
  // Set by map jobs, which bound their own sessions (a job's concurrency):
  // the function's concurrency limit does not apply, only --max-sandboxes.
  // Several jobs share one map function (same code, memory, timeout), nested
  // ones included; a shared limit would let a parent task hold the only slot
  // its own nested map needs.
  bool job_bounded = false;
  // A streaming invocation (map jobs): the handler's YIELDs go to on_yield,
  // whose answers resume it (runtime/sandbox_session.h).
  runtime::SandboxSession::OnYield on_yield;
  // Called when the invocation starts running on its sandbox (engine thread;
  // inline from Invoke() when a warm sandbox takes it).
  std::function<void(const InvocationStart&)> on_start;
};

struct InvokeResponse {
  Status status;                // non-OK: nothing ran (not found, throttled, ...)
  std::string throttle_reason;  // with kTooManyRequests
  std::string request_id;
  std::string payload;          // the function's output or a Lambda error document
  bool function_error = false;  // X-Amz-Function-Error: Unhandled
  std::string error_type;       // with function_error: e.g. "Sandbox.Timedout", "ValueError"
  std::string executed_version;
  std::string log_tail;  // last 4 KB of this invocation's log (tail_log only)
  bool cold = false;     // ran on a sandbox created for it
  std::string sandbox_id;
};

// Warm(): at least one initialised sandbox of a function, without invoking
// its handler (keep-warm schedules; deploys that check the code imports).
struct WarmResponse {
  Status status;             // non-OK: nothing was tried (not found, at the cap, ...)
  bool spawned = false;      // a sandbox was created for this call (else one was already live)
  bool init_failed = false;  // the sandbox's init failed: error_type/error_body say why
  std::string sandbox_id;
  double init_ms = 0;
  std::string error_type;  // e.g. Runtime.ImportModuleError
  std::string error_body;  // Lambda error document
  std::string init_log;    // the init phase's output
};

struct SandboxInfo {
  std::string id;
  int pid = -1;
  std::string function;
  std::string state;  // "starting", "idle", "busy", "dead"
  double idle_s = 0;
};

struct InvokerStats {
  size_t live_sandboxes = 0;
  size_t idle_sandboxes = 0;
  size_t spawning = 0;
  uint64_t invocations = 0;
  uint64_t cold_starts = 0;
  uint64_t throttles = 0;
};

class Invoker {
 public:
  using Done = std::function<void(InvokeResponse)>;

  Invoker(boost::asio::io_context& io, EngineConfig config, MetadataStore& store, BlobStore& blobs,
          BundleCache& bundles, sandbox::SandboxLauncher& launcher, LogSink& logs);
  ~Invoker();

  void Start();
  void Invoke(InvokeRequest request, Done done);
  // Ensures one live sandbox of the function's resolved version: an idle one is
  // refreshed (its keep-alive restarts), else one is spawned and initialised
  // (the handler module is imported; the handler is not called). Does not
  // count against the function's concurrency; an init failure is reported
  // in the response (status stays OK) and written to the function's log.
  void Warm(const std::string& function, const std::string& qualifier,
            std::function<void(WarmResponse)> done);
  // NotFound (Lambda wording) if the function/qualifier does not resolve.
  Status CheckExists(const std::string& function, const std::string& qualifier);
  // The configuration function + qualifier resolves to, as Invoke would run
  // it (cached; SQLite only on a miss).
  Result<std::shared_ptr<const FunctionConfig>> Describe(const std::string& function,
                                                         const std::string& qualifier);
  // Changes with every FunctionChanged(function): callers that cache what a
  // function resolves to (the HTTP gateway) compare it to notice changes.
  uint64_t Generation(const std::string& function) const {
    auto it = generation_.find(function);
    return it == generation_.end() ? 0 : it->second.any;
  }
  // Drops cached configuration and retires idle sandboxes of the function.
  enum class Change {
    kLatest,   // $LATEST's code or configuration changed (or the function was created)
    kRouting,  // aliases or concurrency: where calls go, not what a sandbox runs
    kDeleted,  // the function or one of its versions was deleted
  };
  // keep_latest_revision (kRouting only): $LATEST's cached resolution stays if it has this
  // revision: it was read after the change committed, so it already reflects it, and
  // dropping it would send the next call to the database (which a node cut off from it
  // does not reach: a warm invoke would fail).
  void FunctionChanged(const std::string& function, Change change = Change::kDeleted,
                       const std::string& keep_latest_revision = "");
  void FunctionDeleted(const std::string& function) { FunctionChanged(function); }
  // Every function this invoker caches a resolution or keeps a sandbox of: what a node that
  // may have missed changes made elsewhere drops (engine/function_feed.h).
  std::vector<std::string> CachedFunctions() const;
  // The revision of the configuration function + qualifier resolves to in the cache; ""
  // when it is not cached.
  std::string CachedRevision(const std::string& function, const std::string& qualifier) const;
  // Kills every sandbox and flushes records. Pending invocations complete with errors.
  void Shutdown();
  InvokerStats stats() const;
  std::vector<SandboxInfo> Sandboxes() const;
  // The configuration the live sandbox whose runtime is process `pid` (the
  // engine's pid namespace) was started with; NotFound when none is (the
  // sandbox channel: api/channel_api.h).
  Result<std::shared_ptr<const FunctionConfig>> SandboxConfig(int pid) const;
  // What a cluster node publishes and routes by (docs/CLUSTER.md, "Step 3 as built").
  struct WarmCount {
    std::string function;
    std::string version;
    size_t idle = 0;
  };
  // Idle, initialised sandboxes per function version (revisions summed).
  std::vector<WarmCount> WarmCounts() const;
  // Invocations that could start now without waiting: --max-sandboxes less the busy ones.
  int FreeSlots() const;
  // Invocations admitted and not finished, plus those waiting for a concurrency slot: what
  // a draining cluster node waits for (docs/CLUSTER.md, "Step 6 as built").
  size_t InFlight() const;
  // The version function + qualifier resolves to and how many idle sandboxes of it wait
  // here; Resolve's error when it does not resolve.
  Result<WarmCount> WarmHere(const std::string& function, const std::string& qualifier);
  // Kills the function's idle sandboxes (the next invocation is a cold start).
  size_t Recycle(const std::string& function);
  // Kills the sandbox sandbox_id (InvocationStart::sandbox_id) while it runs an invocation
  // the caller no longer wants (a cluster node's async event whose lease lapsed): that
  // invocation's Done gets the sandbox's exit as its error. false if no such sandbox lives.
  bool Abandon(const std::string& sandbox_id);
  // Blocks until queued invocation records are in the store (tests, status).
  void FlushRecords() { records_->Flush(); }

 private:
  struct Target;
  struct Invocation;
  // Per function: bumped by every change / by changes to $LATEST / by deletions.
  struct Generations {
    uint64_t any = 0;
    uint64_t latest = 0;
    uint64_t deleted = 0;
  };
  struct SessionInfo {
    std::shared_ptr<runtime::SandboxSession> session;
    std::shared_ptr<const Target> target;  // what it was started for
    std::string pool_key;
    std::string function;
    std::chrono::milliseconds keep_alive{0};
  };

  Result<std::shared_ptr<const Target>> Resolve(const std::string& function,
                                                const std::string& qualifier);
  // A function's adaptive limit (AdaptiveLimit) and what moves it.
  struct AdaptiveLoad {
    AdaptiveLimit policy;
    int limit = 0;
    int peak = 0;  // most in flight since window_start
    MonoClock::time_point window_start;
    MonoClock::time_point last_scale_out;
    MonoClock::time_point last_finish;
    std::unique_ptr<Timer> timer;  // armed while the queue is non-empty
    bool timer_armed = false;
  };
  // Admission (concurrency, adaptive limit, sandbox cap) and dispatch of a
  // resolved invocation; `queued`: it is the queue's head, whose turn it is.
  void Admit(std::shared_ptr<Invocation> inv, bool queued = false);
  // Whether the function's queue head may start now.
  bool HeadMayStart(const std::string& function) const;
  // Starts queued invocations of `function` while there is room.
  void StartQueued(const std::string& function);
  // After an invocation of an adaptive function ends: shrink its limit after a quiet second.
  void AdaptiveFinished(AdaptiveLoad& load, int in_flight);
  // While the function's queue is non-empty: grow its adaptive limit when it stalls.
  void ArmScaleOut(const std::string& function);
  // Fails queued invocations of `function` that waited past their max_queue_ms.
  void ExpireQueued(const std::string& function);
  void SpawnFor(std::shared_ptr<Invocation> inv);
  // Spawns a sandbox for target and waits for its init. On success the
  // session is registered in sessions_; the callback gets it (null if the
  // spawn failed: spawn_error says why) and the init outcome.
  using SpawnDone = std::function<void(std::shared_ptr<runtime::SandboxSession> session,
                                       Status spawn_error, runtime::Outcome init, double init_ms)>;
  void SpawnSandbox(const std::shared_ptr<const Target>& target, SpawnDone done);
  // Whether a sandbox of function/version started under `seen` must not be reused.
  bool Retired(const std::string& function, const std::string& version,
               const Generations& seen) const;
  bool HasLiveSandbox(const std::string& pool_key) const;
  void RunOn(std::shared_ptr<Invocation> inv, std::shared_ptr<runtime::SandboxSession> session);
  void Complete(std::shared_ptr<Invocation> inv, runtime::Outcome outcome);
  void Release(const std::shared_ptr<Invocation>& inv);
  void Fail(std::shared_ptr<Invocation> inv, Status status, std::string throttle_reason = "");
  void OnSandboxExit(const std::string& id, const sandbox::ExitInfo& info);
  void Reap();
  bool MakeRoomForSandbox();

  boost::asio::io_context& io_;
  EngineConfig config_;
  MetadataStore& store_;
  BlobStore& blobs_;
  BundleCache& bundles_;
  sandbox::SandboxLauncher& launcher_;
  LogSink& logs_;
  OutageLog records_log_;  // records_'s thread's
  std::unique_ptr<BatchWorker<InvocationRecord>> records_;
  runtime::WarmPool pool_;
  Timer reaper_;
  bool shutting_down_ = false;

  std::unordered_map<std::string, std::shared_ptr<const Target>> targets_;  // "name\nqualifier"
  std::unordered_map<std::string, Generations> generation_;                 // per function
  std::unordered_map<std::string, int> in_flight_;                          // per function
  // Invocations waiting for a concurrency slot (max_queue_ms > 0), per function.
  std::unordered_map<std::string, std::deque<std::shared_ptr<Invocation>>> queued_;
  std::unordered_map<std::string, AdaptiveLoad> adaptive_;                 // per function
  std::unordered_map<std::string, SessionInfo> sessions_;                  // by sandbox id
  std::unordered_map<std::string, std::chrono::milliseconds> keep_alive_;  // by pool key
  size_t spawning_ = 0;
  InvokerStats counters_;
};

}  // namespace gust::engine
