#include "engine/cluster_node.h"

#include <sched.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>

#include "common/clock.h"
#include "common/json_read.h"
#include "engine/map_scaler.h"

namespace gust::engine {

void MeasureNode(NodeInfo& info) {
  cpu_set_t set;
  CPU_ZERO(&set);
  info.cores = ::sched_getaffinity(0, sizeof(set), &set) == 0
                   ? CPU_COUNT(&set)
                   : static_cast<int>(std::thread::hardware_concurrency());
  if (auto memory = ReadHostMemory()) {
    info.memory_mb = static_cast<int64_t>(memory->total >> 20);
    info.memory_free_mb = static_cast<int64_t>(memory->available >> 20);
  }
  double load[1] = {0};
  if (::getloadavg(load, 1) == 1) info.load1 = load[0];
}

namespace {

int64_t MonoNs(MonoTime t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

}  // namespace

void MeasureSandboxes(const Invoker& invoker, NodeInfo& info) {
  nlohmann::json warm = nlohmann::json::object();
  for (const Invoker::WarmCount& count : invoker.WarmCounts()) {
    warm[count.function][count.version] = count.idle;
  }
  info.warm = JsonDump(warm);
  info.free_slots = invoker.FreeSlots();
}

ClusterNode::ClusterNode(NodeStore& nodes, EventQueue& queue, NodeInfo self,
                         std::chrono::milliseconds interval, std::chrono::milliseconds lease)
    : nodes_(nodes),
      queue_(queue),
      self_(std::move(self)),
      interval_(interval),
      lease_(lease),
      beats_("cluster: node " + self_.name + "'s heartbeat",
             "retried every " + std::to_string(interval.count()) + " ms"),
      margin_(LapseMargin(lease)),
      live_until_ns_(MonoNs(MonoClock::now() + lease)) {}

std::chrono::milliseconds ClusterNode::LapseMargin(std::chrono::milliseconds lease) {
  return std::max(kMinLapseMargin, lease / 10);
}

bool ClusterNode::Live() const {
  if (lapsed_.load()) return false;
  if (MonoNs(MonoClock::now() + margin_) < live_until_ns_.load()) return true;
  lapsed_.store(true);
  return false;
}

ClusterNode::~ClusterNode() { Stop(); }

void ClusterNode::Publish(std::function<void(NodeInfo&)> measure_sandboxes, ClusterView* view) {
  measure_sandboxes_ = std::move(measure_sandboxes);
  view_ = view;
}

void ClusterNode::OnDrain(std::function<void()> drain) { on_drain_ = std::move(drain); }

void ClusterNode::OnRejoin(std::function<void(int64_t)> rejoined) {
  on_rejoin_ = std::move(rejoined);
}

Status ClusterNode::ReadPeers() {
  if (view_ == nullptr) return Status::Ok();
  GUST_ASSIGN_OR_RETURN(std::vector<NodeRow> rows, nodes_.List());
  view_->Set(PeersFromRows(rows));
  return Status::Ok();
}

void ClusterNode::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void ClusterNode::Stop() {
  {
    MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake_.SignalAll();
  if (thread_.joinable()) thread_.join();
  Status left = nodes_.Leave();
  if (!left.ok()) spdlog::warn("cluster: leaving as node {}: {}", self_.name, left.ToString());
}

void ClusterNode::Loop() {
  auto next = std::chrono::steady_clock::now();
  for (;;) {
    // A beat slower than the interval (a database that is slow to answer) is not followed
    // by a burst of beats to catch up.
    next = std::max(next + interval_, std::chrono::steady_clock::now());
    {
      MutexLock lock(&mu_);
      while (!stopping_ && wake_.WaitUntil(&mu_, next)) {
      }
      if (stopping_) return;
    }
    Beat();
  }
}

void ClusterNode::Beat() {
  // The deadlines this beat sets run from before it was sent: by this clock the node never
  // thinks itself live longer than the database (or another node) does.
  MonoTime sent = MonoClock::now();
  MeasureNode(self_);
  if (measure_sandboxes_) measure_sandboxes_(self_);
  // Lapsed (by a check, or by this beat finding the deadline passed): the same epoch would
  // make this node the owner again of what it gave up, so it rejoins as the next one.
  const bool lapsed = !Live();
  Status s;
  if (lapsed && !rejoined_) {
    auto epoch = nodes_.Rejoin(self_);
    s = epoch.status();
    if (epoch.ok()) {
      rejoined_ = true;         // a failure below is retried as a heartbeat of the new epoch
      queue_.SetEpoch(*epoch);  // before RenewLeases: the old epoch's leases are not renewed
      if (on_rejoin_) on_rejoin_(*epoch);
      spdlog::warn(
          "cluster: node {} rejoined as epoch {}: its lease had lapsed, so what it gave up "
          "(events, map jobs, chunks) is fenced by the old epoch",
          self_.name, *epoch);
    }
  } else {
    s = nodes_.Heartbeat(self_);
  }
  if (s.ok()) {
    auto renewed = queue_.RenewLeases(NowEpochMs());
    if (!renewed.ok()) s = renewed.status();
  }
  if (s.ok()) {
    live_until_ns_.store(MonoNs(sent + lease_), std::memory_order_relaxed);
    // A check that found the lapse after this beat's Live() (it ran out meanwhile) stays
    // lapsed: the next beat rejoins.
    if (lapsed) lapsed_.store(false);
    // A beat slower than the lease less the margin (one that waited for a connection through
    // the outage) leaves the node lapsed at once. After a rejoin that is an epoch it has not
    // been live at, so it has nothing to fence: the next beat renews it, not another.
    if (Live()) rejoined_ = false;
  }
  if (s.ok() && view_ != nullptr) {
    auto rows = nodes_.List();
    if (rows.ok()) {
      bool drained_now = false;
      for (const NodeRow& row : *rows) {
        if (row.info.name != self_.name || row.state != "draining" || drain_noticed_) continue;
        drain_noticed_ = drained_now = true;
        spdlog::info(
            "cluster: node {} is draining: it takes no new work, finishes what runs "
            "and leaves",
            self_.name);
      }
      view_->Set(PeersFromRows(*rows));
      // Once the copy reads "draining": from then on the forwarder sends calls away.
      if (drained_now && on_drain_) on_drain_();
    } else {
      s = rows.status();
    }
  }
  beats_.Note(s);
}

}  // namespace gust::engine
