#include "api/cluster_maps.h"

#include <boost/asio/post.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/lambda_shapes.h"
#include "common/clock.h"
#include "common/ids.h"
#include "common/json_read.h"
#include "engine/map_scaler.h"

namespace gust::api {
namespace {

using nlohmann::json;
using beast_verb = http::beast_http::verb;
using Resume = runtime::SandboxSession::Resume;

// Shares are scaled this often; offers and the membership read every kOfferEvery ticks.
constexpr auto kTickInterval = std::chrono::milliseconds(100);
constexpr int kOfferEvery = 5;
// A share whose owner has had nothing for it and no new offer for this long is forgotten.
constexpr auto kShareIdle = std::chrono::seconds(5);
// A helper whose sandbox was refused (429) waits this long before starting another.
constexpr auto kThrottleBackoff = std::chrono::milliseconds(500);
// Exchanges are one engine-thread step on the owner: seconds mean the owner is gone.
constexpr auto kChunkCallTimeout = std::chrono::seconds(10);
constexpr auto kOfferCallTimeout = std::chrono::seconds(3);
// The first chunk of a session holds the worker's setup: not a measurement of its tasks.
constexpr int kSettleChunks = 1;
constexpr double kMinSampleMs = 20;
// A share's task time is the median of its latest this many tasks.
constexpr size_t kShareTaskSamples = 64;

std::string Header(const http::Request& req, const char* name) {
  auto it = req.find(name);
  return it == req.end() ? std::string() : std::string(it->value());
}

int64_t HeaderInt(const http::ClientResponse& r, const char* name) {
  std::string v = r.Header(name);
  char* end = nullptr;
  long long n = std::strtoll(v.c_str(), &end, 10);
  return v.empty() || *end != '\0' ? 0 : n;
}

http::Response BadRequest(const std::string& message) {
  return ErrorResponse({400, "InvalidRequestContentException", message});
}

}  // namespace

// A helper session: one sandbox of this node running chunks of an owner's job.
struct ClusterMaps::RemoteSession {
  std::string id;
  bool started = false;
  bool owner_ended = false;  // the owner has let the session go: nothing more to report
  int pid = -1;
  std::string sandbox;
  bool cold = false;
  MonoTime launched;
  MonoTime chunk_started;
  size_t chunk_tasks = 0;
  int chunks = 0;
  uint64_t cpu_ns = 0;
  bool cpu_valid = false;
};

// This node's share of an owner's job, sized by this node's scaler.
struct ClusterMaps::Share {
  std::string key, job, owner, owner_url, function;
  int task_timeout_s = 300;
  int concurrency = 64;
  size_t owner_pending = 0;
  bool exhausted = false;  // the owner had no chunk for a session: wait for an offer
  MonoTime offered_at;
  MonoTime backoff_until;
  std::vector<RemoteSessionPtr> sessions;
  size_t starting = 0;
  size_t width = 1;
  // This node's own sessions' task times, CPU shares and cold starts (as MapJobs' of its own).
  engine::TaskMeasures measured;
};

ClusterMaps::ClusterMaps(boost::asio::io_context& io, engine::Invoker& invoker,
                         engine::MapJobs& jobs, const engine::ClusterView& view, std::string self,
                         std::string self_url, int64_t epoch, PeerLink link, int cores)
    : io_(io),
      invoker_(invoker),
      jobs_(jobs),
      view_(view),
      self_(std::move(self)),
      self_url_(std::move(self_url)),
      epoch_(epoch),
      link_(std::move(link)),
      cores_(cores > 0 ? cores : jobs.cores()),
      pool_(8),
      timer_(io) {}

ClusterMaps::~ClusterMaps() { Shutdown(); }

void ClusterMaps::Register(http::Router& router) {
  router.Add(beast_verb::post, "/v1/cluster/jobs/{id}/chunks",
             std::bind_front(&ClusterMaps::Chunks, this));
  router.Add(beast_verb::post, "/v1/cluster/jobs/{id}/offer",
             std::bind_front(&ClusterMaps::Offered, this));
}

void ClusterMaps::Start() { Tick(); }

void ClusterMaps::Shutdown() {
  if (stopping_) return;
  stopping_ = true;
  timer_.cancel();
  pool_.join();
}

// --- Owner -------------------------------------------------------------------------------

void ClusterMaps::Chunks(http::Request&& req, const http::RouteMatch& m, http::Responder r) {
  engine::MapJobs::RemoteCall call;
  call.node = Header(req, "x-gust-node");
  call.session = Header(req, "x-gust-session");
  call.sandbox = Header(req, "x-gust-sandbox");
  call.cold = Header(req, "x-gust-cold") == "1";
  std::string epoch = Header(req, "x-gust-epoch");
  std::string turn = Header(req, "x-gust-turn");
  char* end = nullptr;
  call.epoch = std::strtoll(epoch.c_str(), &end, 10);
  if (call.node.empty() || call.session.empty() || epoch.empty() || *end != '\0') {
    r.Send(
        BadRequest("a chunk request needs x-gust-node, x-gust-session and a numeric "
                   "x-gust-epoch"));
    return;
  }
  if (turn == "yield") {
    call.kind = engine::MapJobs::RemoteCall::Kind::kYield;
  } else if (turn == "last") {
    call.kind = engine::MapJobs::RemoteCall::Kind::kLast;
  } else if (turn == "done") {
    call.kind = engine::MapJobs::RemoteCall::Kind::kDone;
    int code = std::atoi(Header(req, "x-gust-status").c_str());
    if (code < 0 || code > static_cast<int>(Code::kInternal))
      code = static_cast<int>(Code::kInternal);
    if (code != 0) {
      call.outcome.status = Status(static_cast<Code>(code), req.body());
    } else {
      call.outcome.function_error = Header(req, "x-gust-function-error") == "1";
      call.outcome.payload = req.body();
    }
  } else {
    r.Send(BadRequest("x-gust-turn must be yield, last or done, not '" + turn + "'"));
    return;
  }
  if (call.kind != engine::MapJobs::RemoteCall::Kind::kDone) call.body = std::move(req.body());
  auto chunk = jobs_.RemoteTurn(m.params.at("id"), std::move(call));
  if (!chunk.ok()) {
    r.Send(ErrorResponse(FromStatus(chunk.status())));
    return;
  }
  bool more = !chunk->input.empty();
  auto response =
      http::MakeResponse(more ? http::beast_http::status::ok : http::beast_http::status::no_content,
                         std::move(chunk->input), "application/octet-stream");
  response.set("x-gust-timeout-ms", std::to_string(chunk->timeout_ms));
  response.set("x-gust-pending", std::to_string(chunk->pending));
  response.set("x-gust-tasks", std::to_string(chunk->tasks));
  r.Send(std::move(response));
}

void ClusterMaps::UseMembership(std::function<bool()> live) { membership_live_ = std::move(live); }

bool ClusterMaps::CheckMembership() {
  bool live = !membership_live_ || membership_live_();
  if (live == !lapsed_) return live;
  lapsed_ = !live;
  if (live) {
    spdlog::info("cluster maps: this node's membership is live again: it runs shares again");
    return live;
  }
  size_t killed = 0;
  for (auto& [key, share] : shares_) {
    for (const RemoteSessionPtr& session : share->sessions) {
      session->owner_ended = true;  // its owner reads this node dead and took its chunk back
      if (!session->sandbox.empty() && invoker_.Abandon(session->sandbox)) ++killed;
    }
    share->exhausted = true;  // until offered again
  }
  // And the jobs this node owns: another node takes them over once its lease ends.
  auto [jobs, sandboxes] = jobs_.AbandonRecorded();
  spdlog::warn(
      "cluster maps: this node's membership lease ran out (its heartbeats fail): its owners "
      "take its chunks back, so it abandoned {} remote session(s) and runs no shares until "
      "it is live again; {} map job(s) it owned dropped ({} sandbox(es) killed) for another "
      "node to take over",
      killed, jobs, sandboxes);
  return live;
}

void ClusterMaps::Tick() {
  if (stopping_) return;
  static_assert(kOfferEvery > 0);
  const bool live = CheckMembership();
  for (auto it = shares_.begin(); it != shares_.end();) {
    SharePtr share = it->second;
    if (share->sessions.empty() && share->exhausted &&
        MonoClock::now() - share->offered_at > kShareIdle) {
      it = shares_.erase(it);
      continue;
    }
    if (live) Scale(share);
    ++it;
  }
  if (++ticks_ % kOfferEvery == 0) SendOffers();
  timer_.expires_after(kTickInterval);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) Tick();
  });
}

void ClusterMaps::SendOffers() {
  // The membership as the last heartbeat read it: whose remote sessions still stand, and
  // whom to offer to. None read yet (or the database away at start): nothing to decide.
  engine::ClusterView::Snapshot nodes = view_.Get();
  if (!nodes) return;
  // A draining node finishes the chunks it holds (its sessions stand) but is offered nothing.
  std::map<std::string, int64_t> live;
  std::vector<const engine::Peer*> peers;
  for (const engine::Peer& peer : *nodes) {
    if (!peer.up && !peer.draining) continue;
    live[peer.name] = peer.epoch;
    if (peer.up && peer.name != self_) peers.push_back(&peer);
  }
  jobs_.ReleaseNodes(live);
  if (peers.empty()) return;
  for (const engine::MapJobs::Offer& offer : jobs_.Offers()) {
    std::string body = json{
        {"owner", self_},
        {"owner_url", self_url_},
        {"function", offer.function},
        {"task_timeout_s", offer.task_timeout_s},
        {"concurrency", offer.concurrency},
        {"pending",
         offer.pending}}.dump();
    for (const engine::Peer* peer : peers) {
      boost::asio::post(pool_, [this, name = peer->name, url = peer->url, job = offer.job, body] {
        auto r = Call(url, "/v1/cluster/jobs/" + job + "/offer", body, {});
        if (!r.ok() || r->status != 202) {
          spdlog::debug("map {}: offer to node {} failed: {}", job, name,
                        r.ok() ? std::to_string(r->status) : r.status().ToString());
        }
      });
    }
  }
}

// --- Helper ------------------------------------------------------------------------------

void ClusterMaps::Offered(http::Request&& req, const http::RouteMatch& m, http::Responder r) {
  json doc = JsonParse(req.body());
  std::string owner = doc.is_object() ? JsonStringOr(doc, "owner", "") : "";
  std::string url = doc.is_object() ? JsonStringOr(doc, "owner_url", "") : "";
  std::string function = doc.is_object() ? JsonStringOr(doc, "function", "") : "";
  if (owner.empty() || url.empty() || function.empty()) {
    r.Send(BadRequest("an offer needs owner, owner_url and function"));
    return;
  }
  if (draining_) {
    r.Send(ErrorResponse(
        {503, "ServiceException", "node " + self_ + " is draining: it takes no new map shares"}));
    return;
  }
  r.Send(http::MakeResponse(http::beast_http::status::accepted, ""));
  if (owner == self_ || stopping_) return;
  const std::string& job = m.params.at("id");
  std::string key = owner + "/" + job;
  SharePtr& share = shares_[key];
  if (!share) {
    share = std::make_shared<Share>();
    share->key = key;
    share->job = job;
    share->owner = owner;
    share->function = function;
    share->task_timeout_s = static_cast<int>(JsonIntOr(doc, "task_timeout_s", 300));
    share->concurrency = std::max(1, static_cast<int>(JsonIntOr(doc, "concurrency", 64)));
    share->width = std::min<size_t>(share->concurrency, cores_);
    spdlog::info("map {}: node {} offered a share (function {})", job, owner, function);
  }
  share->owner_url = url;
  share->owner_pending = static_cast<size_t>(std::max<int64_t>(0, JsonIntOr(doc, "pending", 0)));
  share->offered_at = MonoClock::now();
  share->exhausted = false;
  Scale(share);
}

void ClusterMaps::Drain() {
  if (draining_) return;
  draining_ = true;
  spdlog::info(
      "map: draining: node {} takes no new shares; {} helper sessions finish their "
      "chunks",
      self_, Sessions());
}

size_t ClusterMaps::Sessions() const {
  size_t n = 0;
  for (const auto& [key, share] : shares_) n += share->sessions.size();
  return n;
}

void ClusterMaps::Scale(const SharePtr& share) {
  if (stopping_ || draining_ || share->exhausted || lapsed_) return;
  auto now = MonoClock::now();
  engine::ScaleInputs in;
  in.cores = cores_;
  in.concurrency = share->concurrency;
  in.pending_tasks = share->owner_pending;
  std::vector<engine::SessionLoad> loads;
  loads.reserve(share->sessions.size());
  for (const RemoteSessionPtr& s : share->sessions) {
    bool running = s->started && s->chunk_tasks > 0;
    loads.push_back({running, s->chunk_tasks, running ? MsBetween(s->chunk_started, now) : 0});
  }
  engine::MeasureSessions(loads, share->measured.MedianTaskMs(kShareTaskSamples), &in);
  in.cpu_share = share->measured.cpu_share();
  in.cold_start_ms = share->measured.cold_start_ms();
  share->width = std::max<size_t>(engine::ScaledWidth(&in), 1);
  if (now < share->backoff_until) return;
  while (share->sessions.size() < share->width && share->starting < engine::kMaxStartingSessions)
    Launch(share);
}

void ClusterMaps::Launch(const SharePtr& share) {
  auto session = std::make_shared<RemoteSession>();
  session->id = RandomHex(8);
  session->launched = MonoClock::now();
  share->sessions.push_back(session);
  ++share->starting;
  // The first chunk comes before the sandbox: a session the owner has nothing for costs no
  // cold start.
  Exchange(share, session, "yield", "", nullptr, [this, share, session](Turn turn) {
    if (stopping_) return;
    if (turn.input.empty()) {
      --share->starting;
      auto& v = share->sessions;
      v.erase(std::remove(v.begin(), v.end(), session), v.end());
      share->exhausted = true;
      share->owner_pending = turn.pending;
      if (!turn.status.ok()) {
        spdlog::warn("map {}: owner {} unreachable: {}", share->job, share->owner,
                     turn.status.ToString());
      }
      return;
    }
    share->owner_pending = turn.pending;
    session->chunk_tasks = turn.tasks;
    engine::InvokeRequest request;
    request.function = share->function;
    request.raw_payload = true;
    request.job_bounded = true;  // the share's width is its bound, as a local job's
    request.timeout_ms = turn.timeout_ms;
    request.payload = std::move(turn.input);
    request.on_start = [share, session](const engine::InvocationStart& start) {
      session->started = true;
      --share->starting;
      session->pid = start.pid;
      session->sandbox = start.sandbox_id;
      session->cold = start.cold;
      auto now = MonoClock::now();
      session->chunk_started = now;
      if (start.cold) share->measured.AddColdStart(MsBetween(session->launched, now));
      if (auto cpu = engine::ProcessCpuDemandNs(start.pid)) {
        session->cpu_ns = *cpu;
        session->cpu_valid = true;
      }
    };
    request.on_yield = [this, share, session](const std::string& answer,
                                              const runtime::SandboxSession::ResumeFn& resume) {
      OnYield(share, session, answer, resume);
    };
    invoker_.Invoke(std::move(request), [this, share, session](const engine::InvokeResponse& r) {
      OnDone(share, session, r);
    });
  });
}

void ClusterMaps::OnYield(const SharePtr& share, const RemoteSessionPtr& session,
                          std::string answer, runtime::SandboxSession::ResumeFn resume) {
  auto now = MonoClock::now();
  double chunk_ms = MsBetween(session->chunk_started, now);
  std::optional<uint64_t> cpu =
      session->cpu_valid ? engine::ProcessCpuDemandNs(session->pid) : std::nullopt;
  bool too_wide = share->sessions.size() > share->width || stopping_ || draining_;
  Exchange(share, session, too_wide ? "last" : "yield", std::move(answer), nullptr,
           [share, session, chunk_ms, cpu, resume](Turn turn) {
             share->owner_pending = turn.pending;
             if (turn.input.empty()) {
               session->owner_ended = true;
               if (!turn.status.ok()) {
                 spdlog::warn("map {}: owner {} unreachable: {}", share->job, share->owner,
                              turn.status.ToString());
               }
               share->exhausted = true;
               resume(Resume{});
               return;
             }
             if (turn.tasks > 0) {  // a new chunk (not "go on" with the same one)
               if (session->chunks++ >= kSettleChunks && chunk_ms >= kMinSampleMs) {
                 share->measured.AddTaskTime(
                     chunk_ms / static_cast<double>(std::max<size_t>(session->chunk_tasks, 1)));
                 if (cpu && *cpu >= session->cpu_ns) {
                   double cpu_ms = static_cast<double>(*cpu - session->cpu_ns) / 1e6;
                   share->measured.AddCpuShare(cpu_ms / chunk_ms);
                 }
               }
               if (cpu) session->cpu_ns = *cpu;
               session->chunk_started = MonoClock::now();
               session->chunk_tasks = turn.tasks;
             }
             resume(Resume{std::move(turn.input), std::chrono::milliseconds(turn.timeout_ms)});
           });
}

void ClusterMaps::OnDone(const SharePtr& share, const RemoteSessionPtr& session,
                         const engine::InvokeResponse& response) {
  auto& v = share->sessions;
  v.erase(std::remove(v.begin(), v.end(), session), v.end());
  if (!session->started) --share->starting;
  if (stopping_) return;
  if (response.status.code() == Code::kTooManyRequests) {
    share->backoff_until = MonoClock::now() + kThrottleBackoff;
  }
  if (!session->owner_ended) {
    // What the owner must know: the chunk it handed out is lost (or answered in the
    // invocation's last payload).
    Exchange(share, session, "done", "", &response, [](Turn) {});
  }
  Scale(share);
}

void ClusterMaps::Exchange(const SharePtr& share, const RemoteSessionPtr& session,
                           const std::string& turn, std::string body,
                           const engine::InvokeResponse* outcome, std::function<void(Turn)> done) {
  std::map<std::string, std::string> headers = {{"x-gust-node", self_},
                                                {"x-gust-epoch", std::to_string(epoch_.load())},
                                                {"x-gust-session", session->id},
                                                {"x-gust-sandbox", session->sandbox},
                                                {"x-gust-cold", session->cold ? "1" : "0"},
                                                {"x-gust-turn", turn}};
  if (outcome != nullptr) {
    headers["x-gust-status"] = std::to_string(static_cast<int>(outcome->status.code()));
    headers["x-gust-function-error"] = outcome->function_error ? "1" : "0";
    body = outcome->status.ok() ? outcome->payload : outcome->status.message();
  }
  std::string url = share->owner_url;
  std::string target = "/v1/cluster/jobs/" + share->job + "/chunks";
  boost::asio::post(pool_, [this, url, target, body = std::move(body), headers = std::move(headers),
                            done = std::move(done)]() mutable {
    Turn turn;
    auto r = Call(url, target, std::move(body), std::move(headers));
    if (!r.ok()) {
      turn.status = r.status();
    } else if (r->status == 200 || r->status == 204) {
      turn.pending = static_cast<size_t>(std::max<int64_t>(0, HeaderInt(*r, "x-gust-pending")));
      turn.timeout_ms = HeaderInt(*r, "x-gust-timeout-ms");
      turn.tasks = static_cast<size_t>(std::max<int64_t>(0, HeaderInt(*r, "x-gust-tasks")));
      if (r->status == 200) turn.input = std::move(r->body);
    } else {
      turn.status =
          Status::Unavailable("the owner answered " + std::to_string(r->status) + ": " + r->body);
    }
    boost::asio::post(
        io_, [done = std::move(done), turn = std::move(turn)]() mutable { done(std::move(turn)); });
  });
}

Result<http::ClientResponse> ClusterMaps::Call(const std::string& url, const std::string& target,
                                               std::string body,
                                               std::map<std::string, std::string> headers) {
  std::unique_ptr<http::Client> client;
  {
    MutexLock lock(&clients_mu_);
    auto it = idle_clients_.find(url);
    if (it != idle_clients_.end()) {
      client = std::move(it->second);
      idle_clients_.erase(it);
    }
  }
  if (!client) {
    GUST_ASSIGN_OR_RETURN(client, ConnectPeer(link_, url));
  }
  auto timeout = target.ends_with("/offer") ? kOfferCallTimeout : kChunkCallTimeout;
  auto r = client->Do(beast_verb::post, target, body, headers,
                      std::chrono::duration_cast<std::chrono::milliseconds>(timeout));
  if (r.ok()) {
    MutexLock lock(&clients_mu_);
    idle_clients_.emplace(url, std::move(client));
  }
  return r;
}

}  // namespace gust::api
