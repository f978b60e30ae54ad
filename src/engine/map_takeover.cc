#include "engine/map_takeover.h"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>

#include <algorithm>
#include <cstdint>

#include "common/run_guarded.h"
#include "engine/map_journal.h"

namespace gust::engine {
namespace {

constexpr auto kSweepInterval = std::chrono::milliseconds(2000);
// After an owner's lease runs out by the copy, the fresh read waits this much more: the
// database's deadline has then passed by its own clock too (Peer::lapses_at).
constexpr auto kLapseMargin = std::chrono::milliseconds(100);
// Sweeps are never closer than this (an owner that keeps lapsing by a stale copy and renewing
// by the fresh read costs a sweep each time, not a loop).
constexpr auto kMinSweepGap = std::chrono::milliseconds(250);
// A fresh read of the nodes' rows answers for this long.
constexpr auto kFreshFor = std::chrono::milliseconds(200);
constexpr int kExpireEvery = 30;  // sweeps: done jobs past their ttl go once a minute
constexpr auto kPollInterval = std::chrono::milliseconds(250);
constexpr size_t kMaxBatchBytes = 32u << 20;  // as MapJobs' answers

// The row of job `id` unless it is done and past its ttl (the sweeps delete such rows once a
// minute; until then it is as gone as it is on its owner).
Result<MapJobRow> LiveRow(MapJobStore& store, const std::string& id) {
  auto row = store.Get(id);
  if (row.ok() && row->state == "done" && row->finished_ms + row->ttl_ms < NowEpochMs()) {
    return Status::NotFound("no map job " + id);
  }
  return row;
}

// What peers say of the row's owner: dead (restarted, so its new start does not know the job;
// or this start's lease ran out), else alive, unless it renews, until *lapses_at (the end of
// time when peers say nothing of this start).
bool DeadIn(const std::vector<Peer>& peers, const MapJobRow& row, MonoTime* lapses_at) {
  *lapses_at = MonoTime::max();
  for (const Peer& p : peers) {
    if (p.name != row.owner) continue;
    // A copy older than the owner's start (p.epoch below it) says nothing about that start. A
    // draining owner is alive: it finishes its own jobs before it leaves.
    if (p.epoch > row.owner_epoch) return true;
    if (p.epoch < row.owner_epoch) return false;
    if (!p.up && !p.draining) return true;
    *lapses_at = p.lapses_at;
    return false;
  }
  // No row at all: a copy read before the owner joined. Nodes' rows are never deleted.
  return false;
}

}  // namespace

MapTakeover::MapTakeover(boost::asio::io_context& io, MapJobs& jobs, MapJobStore& store,
                         NodeStore& nodes, const ClusterView& view, std::string self, int64_t epoch)
    : io_(io),
      jobs_(jobs),
      store_(store),
      nodes_(nodes),
      view_(view),
      self_(std::move(self)),
      epoch_(epoch),
      timer_(io) {}

MapTakeover::~MapTakeover() { Shutdown(); }

void MapTakeover::Start() { ScheduleSweep(kSweepInterval); }

void MapTakeover::Shutdown() {
  if (stopping_.exchange(true)) return;
  timer_.cancel();
  pool_.join();
}

void MapTakeover::ScheduleSweep(std::chrono::milliseconds after) {
  timer_.expires_after(after);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopping_) return;
    PostGuarded(pool_, [this] {
      std::chrono::milliseconds next = Sweep();
      boost::asio::post(io_, [this, next] {
        if (!stopping_) ScheduleSweep(next);
      });
    });
  });
}

bool MapTakeover::OwnerDead(const MapJobRow& row, MonoTime* lapses_at) {
  MonoTime unused;
  if (lapses_at == nullptr) lapses_at = &unused;
  *lapses_at = MonoTime::max();
  if (row.owner == self_ && row.owner_epoch == epoch_.load()) return false;
  ClusterView::Snapshot peers = view_.Get();
  if (peers == nullptr) return false;
  if (DeadIn(*peers, row, lapses_at)) return true;
  MonoTime now = MonoClock::now();
  if (*lapses_at > now) return false;
  // By the copy (up to a beat old) the owner's lease has run out; whether it renewed since,
  // only the rows say.
  if (fresh_ == nullptr || now - fresh_at_ > kFreshFor) {
    auto rows = nodes_.List();
    if (!rows.ok()) {
      spdlog::warn("map jobs: reading the nodes for job {}'s owner {}: {}", row.id, row.owner,
                   rows.status().ToString());
      return false;
    }
    fresh_at_ = MonoClock::now();
    fresh_ = std::make_shared<const std::vector<Peer>>(PeersFromRows(*rows, fresh_at_));
  }
  return DeadIn(*fresh_, row, lapses_at);
}

std::chrono::milliseconds MapTakeover::Sweep() {
  if (++sweeps_ % kExpireEvery == 0) {
    auto expired = store_.DeleteExpired(NowEpochMs());
    if (!expired.ok())
      spdlog::warn("map jobs: deleting expired ones: {}", expired.status().ToString());
  }
  auto running = store_.Running();
  if (!running.ok()) {
    spdlog::warn("map jobs: reading the running ones: {}", running.status().ToString());
    return kSweepInterval;
  }
  MonoTime next = MonoClock::now() + kSweepInterval;
  for (const MapJobRow& row : *running) {
    if (stopping_) return kSweepInterval;
    bool retry = false;
    {
      MutexLock lock(&mu_);
      retry = unloaded_.contains(row.id) && row.owner == self_ && row.owner_epoch == epoch_.load();
    }
    if (retry) {
      (void)Load(row);
      continue;
    }
    MonoTime lapses_at;
    if (!TryTakeOver(row, &lapses_at) && lapses_at < next - kLapseMargin) {
      next = lapses_at + kLapseMargin;
    }
  }
  auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next - MonoClock::now());
  return std::clamp<std::chrono::milliseconds>(wait, kMinSweepGap, kSweepInterval);
}

bool MapTakeover::TryTakeOver(const MapJobRow& row, MonoTime* lapses_at) {
  if (!OwnerDead(row, lapses_at)) return false;
  const int64_t epoch = epoch_.load();
  auto won = store_.TakeOver(row.id, row.owner, row.owner_epoch, self_, epoch);
  if (!won.ok()) {
    spdlog::warn("map job {}: taking it over from {}: {}", row.id, row.owner,
                 won.status().ToString());
    return false;
  }
  if (!*won) return false;  // another node was first
  spdlog::info("map job {}: its owner {} (epoch {}) is gone: taken over by {} (epoch {})", row.id,
               row.owner, row.owner_epoch, self_, epoch);
  return Load(row);
}

bool MapTakeover::Load(const MapJobRow& row) {
  auto fail = [&](const Status& s) {
    spdlog::error("map job {}: taken over but not loaded (retried at the next sweep): {}", row.id,
                  s.ToString());
    MutexLock lock(&mu_);
    unloaded_.insert(row.id);
    return false;
  };
  auto spec = DecodeSpec(row.function, row.options);
  if (!spec.ok()) return fail(spec.status());
  auto inputs = store_.Inputs(row.id);
  if (!inputs.ok()) return fail(inputs.status());
  auto stored = store_.Results(row.id, 0, SIZE_MAX);
  if (!stored.ok()) return fail(stored.status());
  {
    MutexLock lock(&mu_);
    unloaded_.erase(row.id);
  }
  auto tasks = std::make_shared<std::vector<std::string>>(std::move(inputs).value());
  auto results = std::make_shared<std::vector<MapResultRow>>(std::move(stored).value());
  boost::asio::post(
      io_, [this, id = row.id, created = row.created_ms, spec = *spec, tasks, results]() mutable {
        if (jobs_.Has(id)) return;
        Status s = jobs_.Adopt(id, std::move(spec), created, std::move(*tasks), *results);
        if (!s.ok()) {
          spdlog::error("map job {}: cannot continue it: {}", id, s.ToString());
          return;
        }
        spdlog::info("map job {}: continued here with {} results stored", id, results->size());
      });
  return true;
}

void MapTakeover::Describe(const std::string& id,
                           std::function<void(Result<nlohmann::json>)> done) {
  PostGuarded(pool_, [this, id, done = std::move(done)]() mutable {
    auto row = LiveRow(store_, id);
    // (A Result is never built from an OK Status.)
    Result<nlohmann::json> doc =
        row.ok() ? Result<nlohmann::json>(nlohmann::json{{"JobId", row->id},
                                                         {"Function", row->function},
                                                         {"Tasks", row->tasks},
                                                         {"State", row->state},
                                                         {"Owner", row->owner},
                                                         {"CreatedMs", row->created_ms},
                                                         {"FinishedMs", row->finished_ms}})
                 : Result<nlohmann::json>(row.status());
    boost::asio::post(
        io_, [done = std::move(done), doc = std::move(doc)]() mutable { done(std::move(doc)); });
  });
}

void MapTakeover::Results(const std::string& id, uint64_t after, int64_t wait_ms, int64_t linger_ms,
                          MapJobs::ResultsCallback done) {
  MonoTime deadline = MonoClock::now() + std::chrono::milliseconds(std::max<int64_t>(0, wait_ms));
  PostGuarded(pool_, [this, id, after, deadline, linger_ms, done = std::move(done)]() mutable {
    Poll(id, after, deadline, linger_ms, std::move(done));
  });
}

void MapTakeover::Poll(const std::string& id, uint64_t after, MonoTime deadline, int64_t linger_ms,
                       MapJobs::ResultsCallback done) {
  auto answer = [this, &done](Result<MapJobs::ResultBatch> r) {
    boost::asio::post(io_,
                      [done = std::move(done), r = std::move(r)]() mutable { done(std::move(r)); });
  };
  if (stopping_) return answer(Status::Unavailable("the engine is shutting down"));
  auto row = LiveRow(store_, id);
  if (!row.ok()) return answer(row.status());
  // Taken over here meanwhile (by the sweep, or by this reader's own call below): MapJobs
  // answers, as it does the job's other readers.
  if (row->owner == self_ && row->owner_epoch == epoch_.load()) {
    boost::asio::post(io_, [this, id, after, deadline, linger_ms, done = std::move(done)] {
      auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - MonoClock::now());
      jobs_.Results(id, after, std::max<int64_t>(0, left.count()), linger_ms, done);
    });
    return;
  }
  auto stored = store_.Results(id, after, kMaxBatchBytes);
  if (!stored.ok()) return answer(stored.status());
  if (stored->empty() && row->state != "done" && MonoClock::now() < deadline) {
    if (TryTakeOver(*row)) {
      // Adopt was posted to the engine thread: polled again after it, this reader is
      // MapJobs' (the row names this node now).
      boost::asio::post(io_, [this, id, after, deadline, linger_ms, done = std::move(done)] {
        PostGuarded(pool_, [this, id, after, deadline, linger_ms, done]() mutable {
          Poll(id, after, deadline, linger_ms, std::move(done));
        });
      });
      return;
    }
    auto timer = std::make_shared<boost::asio::steady_timer>(io_, kPollInterval);
    timer->async_wait([this, timer, id, after, deadline, linger_ms,
                       done = std::move(done)](const boost::system::error_code&) mutable {
      PostGuarded(pool_, [this, id, after, deadline, linger_ms, done = std::move(done)]() mutable {
        Poll(id, after, deadline, linger_ms, std::move(done));
      });
    });
    return;
  }
  MapJobs::ResultBatch batch;
  batch.last_seq = after;
  for (MapResultRow& r : *stored) {
    batch.body += r.body;
    batch.last_seq = r.seq;
    ++batch.count;
  }
  batch.owner = row->owner + ":" + std::to_string(row->owner_epoch);
  // Everything served here is stored: what the row counts, and what was read after it.
  batch.stored = std::max(static_cast<uint64_t>(row->stored),
                          stored->empty() ? uint64_t{0} : stored->back().seq);
  answer(std::move(batch));
}

}  // namespace gust::engine
