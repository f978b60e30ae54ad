// Invoker admission: the function's concurrency (with the optional FIFO wait
// of InvokeRequest::max_queue_ms), a web app's adaptive limit (AdaptiveLimit,
// the same queue) and the engine-wide sandbox cap, then dispatch to a warm
// sandbox or a cold start.
#include <algorithm>

#include "engine/invoker.h"
#include "engine/invoker_internal.h"

namespace gust::engine {

namespace {

std::chrono::milliseconds Ms(int64_t ms) { return std::chrono::milliseconds(ms); }

}  // namespace

void Invoker::Admit(std::shared_ptr<Invocation> inv, bool queued) {
  const std::string& name = inv->request.function;
  int& in_flight = in_flight_[name];
  AdaptiveLoad* load = nullptr;
  if (inv->request.adaptive_limit) {
    auto [it, created] = adaptive_.try_emplace(name);
    load = &it->second;
    if (created) {
      load->policy = *inv->request.adaptive_limit;
      load->limit = std::max(1, load->policy.base_in_flight);
      load->window_start = MonoClock::now();
    }
  }
  // An adaptive request waits its turn behind those already waiting (FIFO).
  auto waiting = queued_.find(name);
  bool behind = load != nullptr && !queued && waiting != queued_.end() && !waiting->second.empty();
  bool over_adaptive = load != nullptr && in_flight >= load->limit;
  bool over_limit = !inv->request.job_bounded && in_flight >= inv->target->concurrency_limit;
  if (over_limit || over_adaptive || behind) {
    auto& queue = queued_[name];
    if (inv->request.max_queue_ms > 0 && inv->target->concurrency_limit > 0 &&
        queue.size() < kMaxQueuedPerFunction) {
      if (queued) {
        queue.push_front(std::move(inv));  // still the head: its wait goes on
      } else {
        inv->queued_at = MonoClock::now();
        queue.push_back(std::move(inv));
      }
      if (load != nullptr) ArmScaleOut(name);
      return;
    }
    if (queue.empty()) queued_.erase(name);
    ++counters_.throttles;
    Fail(inv, Status::TooManyRequests("Rate Exceeded."),
         inv->target->reserved ? "ReservedFunctionConcurrentInvocationLimitExceeded"
                               : "ConcurrentInvocationLimitExceeded");
    return;
  }
  ++in_flight;
  if (load != nullptr) load->peak = std::max(load->peak, in_flight);
  ++counters_.invocations;
  inv->generation = generation_[name];

  if (auto session = pool_.TakeIdle(inv->target->pool_key)) {
    RunOn(std::move(inv), std::move(session));
    return;
  }
  if (!MakeRoomForSandbox()) {
    --in_flight_[name];
    ++counters_.throttles;
    Fail(inv, Status::TooManyRequests("Rate Exceeded."), "ConcurrentInvocationLimitExceeded");
    return;
  }
  SpawnFor(std::move(inv));
}

bool Invoker::HeadMayStart(const std::string& function) const {
  auto q = queued_.find(function);
  if (q == queued_.end() || q->second.empty()) return false;
  const Invocation& head = *q->second.front();
  auto f = in_flight_.find(function);
  int in_flight = f != in_flight_.end() ? f->second : 0;
  if (in_flight >= head.target->concurrency_limit) return false;
  if (head.request.adaptive_limit) {
    auto a = adaptive_.find(function);
    if (a != adaptive_.end() && in_flight >= a->second.limit) return false;
  }
  return true;
}

void Invoker::StartQueued(const std::string& function) {
  // A freed slot goes to the longest-waiting invocation, at once (so a newer
  // request cannot take it first) and on the sandbox just returned.
  while (!shutting_down_ && HeadMayStart(function)) {
    auto q = queued_.find(function);
    auto next = std::move(q->second.front());
    q->second.pop_front();
    if (q->second.empty()) queued_.erase(q);
    Admit(std::move(next), /*queued=*/true);
  }
}

void Invoker::AdaptiveFinished(AdaptiveLoad& load, int in_flight) {
  auto now = MonoClock::now();
  load.last_finish = now;
  if (MsBetween(load.window_start, now) >= 1000) {
    // A second in which fewer ran at once than allowed: shrink to what was used.
    load.limit = std::max(load.policy.base_in_flight, std::min(load.limit, load.peak));
    load.peak = in_flight;
    load.window_start = now;
  }
}

void Invoker::ArmScaleOut(const std::string& function) {
  auto a = adaptive_.find(function);
  auto q = queued_.find(function);
  if (a == adaptive_.end() || q == queued_.end() || q->second.empty()) return;
  AdaptiveLoad& load = a->second;
  if (load.timer_armed) return;
  if (!load.timer) load.timer = std::make_unique<Timer>(io_);
  load.timer_armed = true;
  auto interval = Ms(load.policy.scale_out_after_ms);
  auto at = std::max(q->second.front()->queued_at, load.last_scale_out) + interval;
  load.timer->expires_at(std::max(at, MonoClock::now() + interval / 2));
  load.timer->async_wait([this, function](const boost::system::error_code& ec) {
    if (ec || shutting_down_) return;
    auto a = adaptive_.find(function);
    if (a == adaptive_.end()) return;
    AdaptiveLoad& l = a->second;
    l.timer_armed = false;
    auto q = queued_.find(function);
    if (q == queued_.end() || q->second.empty()) return;
    auto now = MonoClock::now();
    auto interval = Ms(l.policy.scale_out_after_ms);
    const Invocation& head = *q->second.front();
    auto waited = now - head.queued_at;
    auto f = in_flight_.find(function);
    int in_flight = f != in_flight_.end() ? f->second : 0;
    // More sandboxes help when the running requests are slow or stuck (none
    // finished for an interval), or when the queue drains too slowly for
    // anyone's taste; not when the machine is merely busy and the queue
    // moves: CPU-bound requests then only compete for the same cores. Only
    // the adaptive limit grows; the function's concurrency stays the cap.
    bool stuck = now - l.last_finish >= interval;
    bool starving = waited >= 4 * interval;
    if (waited >= interval && now >= l.last_scale_out + interval && (stuck || starving) &&
        in_flight >= l.limit && in_flight < head.target->concurrency_limit) {
      ++l.limit;
      l.last_scale_out = now;
      StartQueued(function);
    }
    ArmScaleOut(function);
  });
}

void Invoker::ExpireQueued(const std::string& function) {
  auto it = queued_.find(function);
  if (it == queued_.end()) return;
  auto now = MonoClock::now();
  auto& queue = it->second;
  while (!queue.empty() && MsBetween(queue.front()->queued_at, now) >
                               static_cast<double>(queue.front()->request.max_queue_ms)) {
    auto inv = std::move(queue.front());
    queue.pop_front();
    ++counters_.throttles;
    Fail(inv, Status::TooManyRequests("Rate Exceeded."),
         inv->target->reserved ? "ReservedFunctionConcurrentInvocationLimitExceeded"
                               : "ConcurrentInvocationLimitExceeded");
  }
  if (queue.empty()) queued_.erase(it);
}

bool Invoker::MakeRoomForSandbox() {
  if (sessions_.size() + spawning_ < static_cast<size_t>(config_.max_sandboxes)) return true;
  // At the cap: an idle sandbox of any function yields its place.
  if (auto victim = pool_.TakeLeastRecentlyUsed()) {
    victim->Kill();
    // It still counts until its exit is reported; allow one over the cap meanwhile,
    // since its memory is released as soon as the kill lands.
    return sessions_.size() + spawning_ < static_cast<size_t>(config_.max_sandboxes) + 1;
  }
  return false;
}

}  // namespace gust::engine
