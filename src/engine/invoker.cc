#include "engine/invoker.h"
#include "engine/invoker_internal.h"

#include <boost/asio/post.hpp>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <set>

#include "common/clock.h"
#include "common/ids.h"
#include "common/json_read.h"
#include "engine/map_functions.h"
#include "store/arn.h"

namespace gust::engine {

using runtime::ErrorDocument;
using runtime::Outcome;
using runtime::SandboxSession;

namespace {

std::string TargetKey(const std::string& function, const std::string& qualifier) {
  return function + '\n' + (qualifier.empty() ? std::string(kLatest) : qualifier);
}

// Lambda's Sandbox.Timedout document for an init that overran; prefix names
// the request when there is one.
std::string InitTimeoutDocument(const std::string& prefix, int init_timeout_s) {
  return ErrorDocument("Sandbox.Timedout", prefix + "Init timed out after " +
                                               std::to_string(init_timeout_s) + ".00 seconds");
}

// "[ERROR] ValueError: boom\nTraceback (most recent call last):\n  File ..." as
// Lambda's Python runtime logs a failed invocation.
std::string ErrorLogLines(const std::string& error_body) {
  auto doc = JsonParse(error_body);
  if (!doc.is_object()) return "";
  // A function's error document: any field may be of any type.
  std::string type = JsonStringOr(doc, "errorType", "Runtime.Unknown");
  std::string message = JsonStringOr(doc, "errorMessage", "");
  std::string out = "[ERROR] " + type + ": " + message + "\n";
  if (const auto* trace = JsonFind(doc, "stackTrace");
      trace && trace->is_array() && !trace->empty()) {
    out += "Traceback (most recent call last):\n";
    for (const auto& frame : *trace) {
      if (frame.is_string()) out += frame.get<std::string>();
    }
    if (!out.empty() && out.back() != '\n') out.push_back('\n');
  }
  return out;
}

std::string FormatMs(double ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", ms);
  return buf;
}

}  // namespace

Invoker::Invoker(boost::asio::io_context& io, EngineConfig config, MetadataStore& store,
                 BlobStore& blobs, BundleCache& bundles, sandbox::SandboxLauncher& launcher,
                 LogSink& logs)
    : io_(io),
      config_(std::move(config)),
      store_(store),
      blobs_(blobs),
      bundles_(bundles),
      launcher_(launcher),
      logs_(logs),
      records_log_("recording invocations", "each batch's records are dropped"),
      reaper_(io) {
  records_ = std::make_unique<BatchWorker<InvocationRecord>>(
      [this](std::vector<InvocationRecord>& batch) {
        // Lost, not retried: records are statistics, and a database outage must not grow
        // the engine's memory.
        records_log_.Note(store_.RecordInvocations(batch));
      },
      1000, std::chrono::milliseconds(200));
}

Invoker::~Invoker() { records_.reset(); }

void Invoker::Start() {
  launcher_.SetExitCallback(
      [this](const std::string& id, const sandbox::ExitInfo& info) { OnSandboxExit(id, info); });
  Reap();
}

Result<std::shared_ptr<const Invoker::Target>> Invoker::Resolve(const std::string& function,
                                                                const std::string& qualifier) {
  std::string key = TargetKey(function, qualifier);
  if (auto it = targets_.find(key); it != targets_.end()) return it->second;

  auto config = GetFunctionByQualifier(store_, function, qualifier);
  if (!config.ok()) return config.status();
  auto settings = store_.GetSettings(function);
  auto target = std::make_shared<Target>();
  target->config = std::move(config).value();
  target->pool_key = runtime::PoolKey(function, target->config.version, target->config.revision_id);
  if (settings.ok() && settings->reserved_concurrency) {
    target->reserved = true;
    target->concurrency_limit = *settings->reserved_concurrency;
  } else {
    target->concurrency_limit = config_.default_concurrency;
  }
  int keep_alive_s =
      target->config.keep_alive_s >= 0 ? target->config.keep_alive_s : config_.keep_alive_s;
  target->keep_alive = std::chrono::milliseconds(int64_t{keep_alive_s} * 1000);

  const std::string& digest = target->config.code_sha256;
  if (!bundles_.Contains(digest)) {
    // Normally extracted at deploy time; after a cache wipe, re-extract from the blob.
    GUST_ASSIGN_OR_RETURN(std::string zip, blobs_.Get(digest));
    GUST_ASSIGN_OR_RETURN(std::string dir, bundles_.Ensure(digest, zip));
    (void)dir;
  }
  target->bundle_dir = bundles_.DirOf(digest);
  targets_[key] = target;
  return std::shared_ptr<const Target>(target);
}

Status Invoker::CheckExists(const std::string& function, const std::string& qualifier) {
  auto target = Resolve(function, qualifier);
  return target.ok() ? Status::Ok() : target.status();
}

Result<std::shared_ptr<const FunctionConfig>> Invoker::Describe(const std::string& function,
                                                                const std::string& qualifier) {
  GUST_ASSIGN_OR_RETURN(std::shared_ptr<const Target> target, Resolve(function, qualifier));
  return std::shared_ptr<const FunctionConfig>(target, &target->config);
}

void Invoker::Invoke(InvokeRequest request, Done done) {
  auto inv = std::make_shared<Invocation>();
  inv->request_id = request.request_id.empty() ? NewRequestId() : request.request_id;
  inv->done = std::move(done);
  inv->start_epoch_ms = NowEpochMs();
  inv->request = std::move(request);
  if (shutting_down_) {
    Fail(inv, Status::Unavailable("the engine is shutting down"));
    return;
  }
  auto target = Resolve(inv->request.function, inv->request.qualifier);
  if (!target.ok()) {
    Fail(inv, target.status());
    return;
  }
  inv->target = *target;
  inv->timeout_ms = inv->request.timeout_ms > 0 ? inv->request.timeout_ms
                                                : int64_t{(*target)->config.timeout_s} * 1000;
  Admit(std::move(inv));
}

void Invoker::SpawnSandbox(const std::shared_ptr<const Target>& target, SpawnDone done) {
  ++counters_.cold_starts;
  ++spawning_;
  const FunctionConfig& cfg = target->config;
  sandbox::SandboxSpec spec;
  spec.id = "sbx-" + RandomHex(8);
  spec.bundle_dir = target->bundle_dir;
  spec.handler = cfg.handler;
  spec.function_name = cfg.name;
  spec.function_version = cfg.version;
  spec.memory_mb = cfg.memory_mb;
  spec.tmp_mb = cfg.ephemeral_storage_mb;
  spec.timeout_s = cfg.timeout_s;
  spec.network = cfg.network;
  // A function with bucket grants, or a map's (its jobs' grants vary, job by job).
  spec.object_relay = !cfg.buckets.empty() || cfg.name.rfind(kMapFunctionPrefix, 0) == 0;
  spec.env = cfg.env;
  spec.python = cfg.python;
  auto spawn_start = MonoClock::now();
  launcher_.Spawn(spec, [this, target, spawn_start,
                         done = std::move(done)](Result<sandbox::SandboxHandle> handle) mutable {
    --spawning_;
    if (!handle.ok()) {
      spdlog::error("sandbox for {} could not start: {}", target->config.name,
                    handle.status().ToString());
      done(nullptr, Status::Unavailable("could not start a sandbox: " + handle.status().message()),
           Outcome{}, 0);
      return;
    }
    auto session = std::make_shared<SandboxSession>(io_, launcher_, *handle);
    SessionInfo info;
    info.session = session;
    info.target = target;
    info.pool_key = target->pool_key;
    info.function = target->config.name;
    info.keep_alive = target->keep_alive;
    keep_alive_[target->pool_key] = target->keep_alive;
    sessions_[handle->id] = std::move(info);
    session->AwaitInit(std::chrono::seconds(config_.init_timeout_s),
                       [session, spawn_start, done = std::move(done)](Outcome init) mutable {
                         done(session, Status::Ok(), std::move(init),
                              MsBetween(spawn_start, MonoClock::now()));
                       });
  });
}

void Invoker::SpawnFor(std::shared_ptr<Invocation> inv) {
  inv->cold = true;
  SpawnSandbox(inv->target, [this, inv](std::shared_ptr<SandboxSession> session, Status spawn_error,
                                        Outcome init, double init_ms) {
    if (!session) {
      Release(inv);
      Fail(inv, std::move(spawn_error));
      return;
    }
    inv->session = session;
    inv->init_ms = init_ms;
    inv->init_log = init.output;
    if (init.kind != Outcome::Kind::kSuccess) {
      if (init.kind == Outcome::Kind::kTimeout) {
        init.body = InitTimeoutDocument("RequestId: " + inv->request_id + " Error: ",
                                        config_.init_timeout_s);
      }
      Complete(inv, std::move(init));
      return;
    }
    RunOn(inv, session);
  });
}

bool Invoker::HasLiveSandbox(const std::string& pool_key) const {
  for (const auto& [id, info] : sessions_) {
    if (info.pool_key == pool_key && info.session->state() != SandboxSession::State::kDead) {
      return true;
    }
  }
  return false;
}

void Invoker::Warm(const std::string& function, const std::string& qualifier,
                   std::function<void(WarmResponse)> done) {
  auto reply = [this, done = std::move(done)](WarmResponse r) mutable {
    boost::asio::post(io_,
                      [done = std::move(done), r = std::move(r)]() mutable { done(std::move(r)); });
  };
  WarmResponse response;
  if (shutting_down_) {
    response.status = Status::Unavailable("the engine is shutting down");
    return reply(std::move(response));
  }
  auto resolved = Resolve(function, qualifier);
  if (!resolved.ok()) {
    response.status = resolved.status();
    return reply(std::move(response));
  }
  std::shared_ptr<const Target> target = *resolved;
  if (auto idle = pool_.TakeIdle(target->pool_key)) {
    idle->Touch();
    response.sandbox_id = idle->id();
    pool_.PutIdle(target->pool_key, std::move(idle));
    return reply(std::move(response));
  }
  if (HasLiveSandbox(target->pool_key)) return reply(std::move(response));  // busy or starting
  if (!MakeRoomForSandbox()) {
    ++counters_.throttles;
    response.status = Status::TooManyRequests("Rate Exceeded.");
    return reply(std::move(response));
  }
  Generations generation = generation_[function];
  SpawnSandbox(target, [this, target, generation, reply = std::move(reply)](
                           std::shared_ptr<SandboxSession> session, Status spawn_error,
                           const Outcome& init, double init_ms) mutable {
    WarmResponse r;
    if (!session) {
      r.status = std::move(spawn_error);
      return reply(std::move(r));
    }
    r.spawned = true;
    r.sandbox_id = session->id();
    r.init_ms = init_ms;
    r.init_log = init.output;
    const FunctionConfig& cfg = target->config;
    std::string log = init.output;
    if (!log.empty() && log.back() != '\n') log += '\n';
    if (init.kind != Outcome::Kind::kSuccess) {
      r.init_failed = true;
      r.error_type = init.kind == Outcome::Kind::kTimeout ? "Sandbox.Timedout" : init.error_type;
      r.error_body = init.kind == Outcome::Kind::kTimeout
                         ? InitTimeoutDocument("", config_.init_timeout_s)
                         : init.body;
      log += "WARM Version: " + cfg.version + " failed: " + ErrorLogLines(r.error_body);
      if (log.back() != '\n') log += '\n';
      logs_.Append(cfg.name, log, NowEpochMs());
      session->Kill();
      return reply(std::move(r));
    }
    log += "WARM Version: " + cfg.version + "\tSandbox: " + session->id() +
           "\tInit Duration: " + FormatMs(init_ms) + " ms\n";
    logs_.Append(cfg.name, log, NowEpochMs());
    if (Retired(cfg.name, cfg.version, generation)) {
      session->Kill();
    } else {
      pool_.PutIdle(target->pool_key, session);
    }
    reply(std::move(r));
  });
}

void Invoker::RunOn(std::shared_ptr<Invocation> inv, std::shared_ptr<SandboxSession> session) {
  inv->session = session;
  const FunctionConfig& cfg = inv->target->config;
  runtime::InvokeMeta meta;
  meta.request_id = inv->request_id;
  auto timeout = std::chrono::milliseconds(inv->timeout_ms);
  meta.deadline_ms = NowEpochMs() + timeout.count();
  meta.raw_event = inv->request.raw_payload;
  meta.stream = static_cast<bool>(inv->request.on_yield);
  meta.invoked_function_arn = FunctionArn(cfg.name, inv->request.qualifier);
  meta.client_context_json = inv->request.client_context_json;
  if (inv->request.on_start) {
    inv->request.on_start(
        InvocationStart{inv->request_id, session->id(), session->pid(), inv->cold});
  }
  session->Invoke(
      meta, inv->request.payload, timeout,
      [this, inv](Outcome outcome) { Complete(inv, std::move(outcome)); }, inv->request.on_yield);
}

void Invoker::Complete(std::shared_ptr<Invocation> inv, Outcome outcome) {
  const FunctionConfig& cfg = inv->target->config;
  const std::string& id = inv->request_id;
  InvokeResponse response;
  response.request_id = id;
  response.executed_version = cfg.version;
  response.cold = inv->cold;
  if (inv->session) response.sandbox_id = inv->session->id();
  if (outcome.kind != Outcome::Kind::kSuccess) response.error_type = outcome.error_type;

  std::string error_log;
  switch (outcome.kind) {
    case Outcome::Kind::kSuccess:
      response.payload = outcome.body.empty() ? "null" : std::move(outcome.body);
      break;
    case Outcome::Kind::kFunctionError:
      response.function_error = true;
      response.payload = std::move(outcome.body);
      error_log = ErrorLogLines(response.payload);
      break;
    case Outcome::Kind::kTimeout:
      response.function_error = true;
      if (outcome.body.empty()) {
        outcome.body =
            ErrorDocument("Sandbox.Timedout", "RequestId: " + id + " Error: Task timed out after " +
                                                  FormatMs(inv->timeout_ms / 1000.0) + " seconds");
      }
      response.payload = std::move(outcome.body);
      error_log = FormatIso8601(NowEpochMs()) + " " + id + " Task timed out after " +
                  FormatMs(inv->timeout_ms / 1000.0) + " seconds\n";
      break;
    case Outcome::Kind::kOutOfMemory:
    case Outcome::Kind::kExitError:
    case Outcome::Kind::kEngineError: {
      response.function_error = true;
      auto doc = JsonParse(outcome.body);
      std::string message = JsonStringOr(doc, "errorMessage", "");
      response.payload =
          ErrorDocument(outcome.error_type, "RequestId: " + id + " Error: " + message);
      error_log = "RequestId: " + id + " Error: " + message + "\n";
      break;
    }
  }

  // Metering and the REPORT line.
  uint64_t peak = inv->session ? inv->session->PeakMemoryBytes() : 0;
  int max_used_mb = static_cast<int>((peak + (1 << 20) - 1) >> 20);
  double duration = outcome.duration_ms;
  int64_t billed = static_cast<int64_t>(std::ceil(duration));
  if (inv->cold) billed += static_cast<int64_t>(std::ceil(inv->init_ms));
  if (billed < 1) billed = 1;

  std::string log;
  log.reserve(outcome.output.size() + inv->init_log.size() + 256);
  log += inv->init_log;
  if (!inv->init_log.empty() && log.back() != '\n') log += '\n';
  log += "START RequestId: " + id + " Version: " + cfg.version + "\n";
  log += outcome.output;
  if (!outcome.output.empty() && log.back() != '\n') log += '\n';
  log += error_log;
  log += "END RequestId: " + id + "\n";
  log += "REPORT RequestId: " + id + "\tDuration: " + FormatMs(duration) +
         " ms\tBilled Duration: " + std::to_string(billed) +
         " ms\tMemory Size: " + std::to_string(cfg.memory_mb) +
         " MB\tMax Memory Used: " + std::to_string(max_used_mb) + " MB\t";
  if (inv->cold) log += "Init Duration: " + FormatMs(inv->init_ms) + " ms\t";
  if (outcome.kind == Outcome::Kind::kTimeout) log += "Status: timeout\t";
  log += "\n";
  if (inv->request.tail_log) {
    response.log_tail = log.size() > 4096 ? log.substr(log.size() - 4096) : log;
  }
  logs_.Append(cfg.name, log, inv->start_epoch_ms);

  InvocationRecord record;
  record.request_id = id;
  record.function = cfg.name;
  record.version = cfg.version;
  record.start_ms = inv->start_epoch_ms;
  record.duration_ms = duration;
  record.billed_ms = billed;
  record.memory_mb = cfg.memory_mb;
  record.max_memory_used_mb = max_used_mb;
  record.init_ms = inv->cold ? inv->init_ms : 0;
  record.cold = inv->cold;
  record.outcome = runtime::OutcomeKindName(outcome.kind);
  record.error_type = outcome.kind == Outcome::Kind::kSuccess ? "" : outcome.error_type;
  record.sandbox_id = inv->session ? inv->session->id() : "";
  records_->Push(std::move(record));

  Release(inv);
  Done done = std::move(inv->done);
  done(std::move(response));
}

// Gives back the concurrency slot and the sandbox: to the pool if it is alive
// and of the function's current generation, otherwise killed.
void Invoker::Release(const std::shared_ptr<Invocation>& inv) {
  const std::string& function = inv->request.function;
  auto it = in_flight_.find(function);
  if (it != in_flight_.end() && --it->second <= 0) in_flight_.erase(it);
  if (auto session = std::move(inv->session)) {
    inv->session = nullptr;  // keep the invocation from pinning the sandbox
    if (session->state() == SandboxSession::State::kIdle) {
      if (Retired(function, inv->target->config.version, inv->generation)) {
        session->Kill();
      } else {
        pool_.PutIdle(inv->target->pool_key, session);
      }
    }
  }
  if (auto a = adaptive_.find(function); a != adaptive_.end()) {
    auto f = in_flight_.find(function);
    AdaptiveFinished(a->second, f != in_flight_.end() ? f->second : 0);
  }
  ExpireQueued(function);
  StartQueued(function);
}

void Invoker::Fail(std::shared_ptr<Invocation> inv, Status status, std::string throttle_reason) {
  InvokeResponse response;
  response.status = std::move(status);
  response.throttle_reason = std::move(throttle_reason);
  response.request_id = inv->request_id;
  boost::asio::post(io_, [done = std::move(inv->done), response = std::move(response)]() mutable {
    done(std::move(response));
  });
}

bool Invoker::Abandon(const std::string& sandbox_id) {
  auto it = sessions_.find(sandbox_id);
  if (it == sessions_.end()) return false;
  it->second.session->Kill();
  return true;
}

void Invoker::OnSandboxExit(const std::string& id, const sandbox::ExitInfo& info) {
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return;
  SessionInfo session_info = std::move(it->second);
  sessions_.erase(it);
  pool_.Forget(session_info.pool_key, id);
  session_info.session->OnExit(info);
}

bool Invoker::Retired(const std::string& function, const std::string& version,
                      const Generations& seen) const {
  if (shutting_down_) return true;
  auto it = generation_.find(function);
  Generations now = it == generation_.end() ? Generations{} : it->second;
  return now.deleted != seen.deleted || (version == kLatest && now.latest != seen.latest);
}

void Invoker::FunctionChanged(const std::string& function, Change change,
                              const std::string& keep_latest_revision) {
  Generations& g = generation_[function];
  ++g.any;
  if (change == Change::kLatest) ++g.latest;
  if (change == Change::kDeleted) ++g.deleted;
  // Cached resolutions go in every case (an alias may point elsewhere now) but one of
  // $LATEST the caller knows to be newer than a routing change.
  const std::string latest_key = TargetKey(function, kLatest);
  for (auto it = targets_.begin(); it != targets_.end();) {
    bool match = it->first.size() > function.size() && it->first[function.size()] == '\n' &&
                 it->first.compare(0, function.size(), function) == 0;
    bool keep = change == Change::kRouting && !keep_latest_revision.empty() &&
                it->first == latest_key && it->second->config.revision_id == keep_latest_revision;
    it = match && !keep ? targets_.erase(it) : std::next(it);
  }
  if (change == Change::kRouting) return;
  auto idle = change == Change::kLatest ? pool_.TakeVersion(function, kLatest)
                                        : pool_.TakeFunction(function, "");
  for (auto& session : idle) session->Kill();
}

std::vector<std::string> Invoker::CachedFunctions() const {
  std::set<std::string> names;
  for (const auto& [key, target] : targets_) names.insert(key.substr(0, key.find('\n')));
  for (const auto& [id, info] : sessions_) names.insert(info.function);
  return {names.begin(), names.end()};
}

std::string Invoker::CachedRevision(const std::string& function,
                                    const std::string& qualifier) const {
  auto it = targets_.find(TargetKey(function, qualifier));
  return it == targets_.end() ? "" : it->second->config.revision_id;
}

void Invoker::Reap() {
  if (shutting_down_) return;
  std::vector<std::string> waiting;
  for (const auto& [function, queue] : queued_) waiting.push_back(function);
  for (const auto& function : waiting) ExpireQueued(function);
  auto expired = pool_.TakeExpired(MonoClock::now(), [this](const std::string& key) {
    auto it = keep_alive_.find(key);
    return it != keep_alive_.end()
               ? it->second
               : std::chrono::milliseconds(int64_t{config_.keep_alive_s} * 1000);
  });
  for (auto& session : expired) {
    spdlog::debug("sandbox {} idle past its keep-alive: stopping it", session->id());
    session->Kill();
  }
  reaper_.expires_after(std::chrono::milliseconds(config_.reaper_interval_ms));
  reaper_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) Reap();
  });
}

void Invoker::Shutdown() {
  shutting_down_ = true;
  reaper_.cancel();
  for (auto& [function, queue] : queued_) {
    for (auto& inv : queue) Fail(inv, Status::Unavailable("the engine is shutting down"));
  }
  queued_.clear();
  adaptive_.clear();  // and their scale-out timers
  while (auto session = pool_.TakeLeastRecentlyUsed()) session->Kill();
  for (auto& [id, info] : sessions_) info.session->Kill();
  records_->Flush();
  logs_.Flush();
}

Result<std::shared_ptr<const FunctionConfig>> Invoker::SandboxConfig(int pid) const {
  // A scan: one per sandbox channel request of a function, far rarer than an
  // invocation.
  for (const auto& [id, info] : sessions_) {
    if (info.session->pid() == pid && info.session->state() != SandboxSession::State::kDead) {
      return std::shared_ptr<const FunctionConfig>(info.target, &info.target->config);
    }
  }
  return Status::NotFound("no sandbox runs in process " + std::to_string(pid));
}

std::vector<SandboxInfo> Invoker::Sandboxes() const {
  std::vector<SandboxInfo> out;
  auto now = MonoClock::now();
  for (const auto& [id, info] : sessions_) {
    SandboxInfo s;
    s.id = id;
    s.pid = info.session->pid();
    s.function = info.function;
    switch (info.session->state()) {
      case SandboxSession::State::kStarting:
        s.state = "starting";
        break;
      case SandboxSession::State::kIdle:
        s.state = "idle";
        break;
      case SandboxSession::State::kBusy:
        s.state = "busy";
        break;
      case SandboxSession::State::kDead:
        s.state = "dead";
        break;
    }
    if (s.state == "idle") s.idle_s = MsBetween(info.session->last_used(), now) / 1000.0;
    out.push_back(std::move(s));
  }
  return out;
}

size_t Invoker::Recycle(const std::string& function) {
  auto idle = pool_.TakeFunction(function, "");
  for (auto& session : idle) session->Kill();
  return idle.size();
}

std::vector<Invoker::WarmCount> Invoker::WarmCounts() const {
  std::map<std::pair<std::string, std::string>, size_t> sums;
  for (const auto& [key, idle] : pool_.IdleCounts()) {
    // PoolKey: "name\nversion\nrevision".
    size_t first = key.find('\n');
    size_t second = first == std::string::npos ? first : key.find('\n', first + 1);
    if (second == std::string::npos) continue;
    sums[{key.substr(0, first), key.substr(first + 1, second - first - 1)}] += idle;
  }
  std::vector<WarmCount> out;
  out.reserve(sums.size());
  for (auto& [fv, idle] : sums) out.push_back({fv.first, fv.second, idle});
  return out;
}

int Invoker::FreeSlots() const {
  const int busy = static_cast<int>(sessions_.size()) - static_cast<int>(pool_.idle_count()) +
                   static_cast<int>(spawning_);
  return std::max(0, config_.max_sandboxes - busy);
}

size_t Invoker::InFlight() const {
  size_t n = 0;
  for (const auto& [function, count] : in_flight_) n += static_cast<size_t>(std::max(0, count));
  for (const auto& [function, queue] : queued_) n += queue.size();
  return n;
}

Result<Invoker::WarmCount> Invoker::WarmHere(const std::string& function,
                                             const std::string& qualifier) {
  GUST_ASSIGN_OR_RETURN(std::shared_ptr<const Target> target, Resolve(function, qualifier));
  return WarmCount{function, target->config.version, pool_.idle_count(target->pool_key)};
}

InvokerStats Invoker::stats() const {
  InvokerStats s = counters_;
  s.live_sandboxes = sessions_.size();
  s.idle_sandboxes = pool_.idle_count();
  s.spawning = spawning_;
  return s;
}

}  // namespace gust::engine
