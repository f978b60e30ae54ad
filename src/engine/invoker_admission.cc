// Invoker admission: the function's concurrency (with the optional FIFO wait
// of InvokeRequest::max_queue_ms) and the engine-wide sandbox cap, then
// dispatch to a warm sandbox or a cold start.
#include "engine/invoker.h"
#include "engine/invoker_internal.h"

namespace gust::engine {

void Invoker::Admit(std::shared_ptr<Invocation> inv) {
  const std::string& name = inv->request.function;
  int& in_flight = in_flight_[name];
  if (in_flight >= inv->target->concurrency_limit) {
    auto& queue = queued_[name];
    if (inv->request.max_queue_ms > 0 && inv->target->concurrency_limit > 0 &&
        queue.size() < kMaxQueuedPerFunction) {
      inv->queued_at = MonoClock::now();
      queue.push_back(std::move(inv));
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
