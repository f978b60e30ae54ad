#include "engine/async_invoker.h"

#include <boost/asio/post.hpp>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <set>

#include "common/clock.h"
#include "common/ids.h"
#include "common/json_read.h"
#include "runtime/protocol.h"
#include "store/arn.h"

namespace gust::engine {

using runtime::ErrorDocument;

namespace {

constexpr size_t kWindowBytes = 64u << 20;
constexpr size_t kPageEvents = 1000;
constexpr int64_t kFirstThrottleBackoffMs = 20;
constexpr int64_t kMaxThrottleBackoffMs = 1000;
// A throttled function whose waiting events went back to disk stays paused at
// least this long (each round trip costs a page-in and a spill).
constexpr int64_t kSpilledPauseMs = 5000;
constexpr int64_t kPurgeIntervalMs = 10 * 60 * 1000;
constexpr int64_t kNever = std::numeric_limits<int64_t>::max();
// Cluster mode: how often an idle node looks for events accepted by other nodes (and how soon
// a node whose membership lapsed looks again); the latency an event accepted by a busy node
// waits at most for an idle one.
constexpr int64_t kClusterPollMs = 500;
// An outcome the unreachable queue did not take is written again this often.
constexpr int64_t kRetryWriteMs = 1000;

nlohmann::json JsonOrString(const std::string& text) {
  auto doc = JsonParse(text);
  return doc.is_discarded() ? nlohmann::json(text) : doc;
}

}  // namespace

struct AsyncInvoker::Item {
  AsyncEvent event;
  bool running = false;
  std::string sandbox_id;  // while its invocation runs on a sandbox
  bool abandoned = false;  // its sandbox was killed: its outcome is a give-back
};

AsyncInvoker::AsyncInvoker(boost::asio::io_context& io, const EngineConfig& config,
                           Invoker& invoker, EventQueue& queue, MetadataStore& store)
    : io_(io),
      config_(config),
      invoker_(invoker),
      queue_(queue),
      store_(store),
      committer_(io, queue),
      page_ins_log_("event queue page-in", "retried every second"),
      timer_(io),
      purge_timer_(io),
      membership_timer_(io) {}

AsyncInvoker::~AsyncInvoker() = default;

void AsyncInvoker::UseClusterLeases(std::function<bool()> membership_live) {
  membership_live_ = std::move(membership_live);
}

size_t AsyncInvoker::Window() const {
  return static_cast<size_t>(membership_live_ ? config_.async_concurrency
                                              : config_.async_window_events);
}

void AsyncInvoker::Drain() {
  if (draining_ || !membership_live_) return;
  draining_ = true;
  spdlog::info("async: draining: this node leases no more events; {} running finish here",
               running_);
  ReleaseWaiting();
}

bool AsyncInvoker::MayLease() {
  if (!membership_live_) return true;
  if (draining_) return false;
  bool live = membership_live_();
  if (live == lease_lost_) {
    lease_lost_ = !live;
    if (lease_lost_) {
      spdlog::warn(
          "async: this node's membership lease ran out (its heartbeats fail): it leases and "
          "starts no events until a heartbeat succeeds; running ones are abandoned");
      AbandonRunning();
    } else {
      spdlog::info("async: this node's membership is live again: leasing events");
      ReleaseWaiting();
    }
  }
  return live;
}

void AsyncInvoker::WatchMembership() {
  if (shutting_down_) return;
  MayLease();
  membership_timer_.expires_after(std::chrono::milliseconds(kClusterPollMs));
  membership_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) WatchMembership();
  });
}

void AsyncInvoker::AbandonRunning() {
  // Collected first: a kill may complete its invocation (and change resident_) inline.
  std::vector<std::shared_ptr<Item>> running;
  for (auto& [id, item] : resident_) {
    if (item->running && !item->abandoned && !item->sandbox_id.empty()) running.push_back(item);
  }
  const size_t abandoned = running.size();
  for (auto& item : running) Abandon(item);
  if (abandoned > 0) {
    spdlog::warn(
        "async: abandoned {} running event(s): their leases lapsed with this node's membership "
        "and another node may run them now",
        abandoned);
  }
}

void AsyncInvoker::Abandon(const std::shared_ptr<Item>& item) {
  item->abandoned = true;
  invoker_.Abandon(item->sandbox_id);
}

EventWrite AsyncInvoker::GiveBack(const AsyncEvent& event) {
  EventWrite w;
  w.kind = EventWrite::Kind::kRelease;
  w.event.id = event.id;
  w.event.due_ms = event.due_ms;
  return w;
}

EventWrite AsyncInvoker::Evict(const Item& item) {
  EventWrite w = GiveBack(item.event);
  resident_bytes_ -= item.event.payload.size();
  resident_.erase(item.event.id);  // last: item may be owned by resident_ alone
  return w;
}

void AsyncInvoker::ReleaseWaiting() {
  // Their leases ran out meanwhile and another node may run them now: give back what has not
  // started (a no-op write for an event taken over) and lease afresh, rather than run a
  // duplicate whose outcome would be fenced.
  std::vector<EventWrite> writes;
  for (auto& [function, queue] : queues_) {
    for (auto& item : queue.ready) writes.push_back(Evict(*item));
    queue.ready.clear();
  }
  if (writes.empty()) return;
  NoteBacklog(NowEpochMs());
  CommitUntilStored(std::move(writes), [this](const Status& st) {
    if (!st.ok()) spdlog::error("async events not given back: {}", st.ToString());
    Pump();
  });
}

Status AsyncInvoker::Start() {
  GUST_RETURN_IF_ERROR(queue_.ReleaseAll());
  backlog_due_ms_ = 0;  // whatever a previous engine left queued is due now
  MaybePageIn();
  Purge();
  if (membership_live_) WatchMembership();
  return Status::Ok();
}

void AsyncInvoker::Enqueue(AsyncEvent event, Accepted accepted) {
  int64_t now = NowEpochMs();
  bool preset_id = !event.id.empty();
  if (!preset_id) event.id = NewRequestId();
  if (event.enqueued_ms == 0) event.enqueued_ms = now;
  if (event.due_ms == 0) event.due_ms = now;
  if (event.source.empty()) event.source = "invoke";
  size_t size = event.payload.size();
  // Resident straight away when nothing older waits on disk and the window
  // has room; an event with a preset id may already exist, so it goes through
  // the disk (the insert is then a no-op and nothing runs twice).
  // In a cluster a resident insert is a lease: only into free capacity, while live.
  bool resident = !preset_id && !shutting_down_ && backlog_due_ms_ > now &&
                  resident_.size() + accepting_ < Window() &&
                  resident_bytes_ + size <= kWindowBytes && MayLease();
  if (resident) {
    ++accepting_;
    resident_bytes_ += size;
  } else {
    // A paused function's events are not paged in before its pause ends.
    auto paused = paused_.find(event.function);
    NoteBacklog(paused != paused_.end() ? std::max(event.due_ms, paused->second) : event.due_ms);
  }
  ++counters_.accepted;
  EventWrite write;
  write.kind = EventWrite::Kind::kInsert;
  write.event = event;
  write.resident = resident;
  auto item = std::make_shared<Item>();
  item->event = std::move(event);
  committer_.Submit({std::move(write)}, [this, item, resident, size,
                                         accepted = std::move(accepted)](const Status& status) {
    if (resident) {
      --accepting_;
      resident_bytes_ -= size;
    }
    if (!status.ok()) {
      // Unavailable (the cluster's database is down) stays a 503: the client may retry.
      std::string why = "the event could not be stored: " + status.message();
      accepted(status.code() == Code::kUnavailable ? Status::Unavailable(std::move(why))
                                                   : Status::Internal(std::move(why)));
      return;
    }
    if (resident && !shutting_down_) AddResident(item);
    accepted(item->event.id);
    if (!resident) MaybePageIn();
    Pump();
  });
}

void AsyncInvoker::AddResident(std::shared_ptr<Item> item) {
  resident_bytes_ += item->event.payload.size();
  resident_[item->event.id] = item;
  queues_[item->event.function].ready.push_back(std::move(item));
}

void AsyncInvoker::Pump() {
  if (shutting_down_) return;
  if (draining_) {
    // What waits here (an event put back after a throttle) is the other nodes' to run.
    ReleaseWaiting();
    return;
  }
  int64_t now = NowEpochMs();
  if (!MayLease()) {
    // The leases of what waits here may be another node's by now: start nothing, look again.
    ArmTimer(now + kClusterPollMs);
    return;
  }
  int64_t next_unpause = kNever;
  while (running_ < static_cast<size_t>(config_.async_concurrency) && !queues_.empty()) {
    // Round-robin: the first function after the last one served with work it may start.
    auto start = queues_.upper_bound(last_served_);
    auto pick = queues_.end();
    for (size_t n = 0, size = queues_.size(); n < size; ++n) {
      if (start == queues_.end()) start = queues_.begin();
      FunctionQueue& q = start->second;
      if (!q.ready.empty()) {
        if (q.paused_until_ms <= now) {
          pick = start;
          break;
        }
        next_unpause = std::min(next_unpause, q.paused_until_ms);
      }
      ++start;
    }
    if (pick == queues_.end()) break;
    last_served_ = pick->first;
    auto item = std::move(pick->second.ready.front());
    pick->second.ready.pop_front();
    Dispatch(item);
  }
  for (auto it = queues_.begin(); it != queues_.end();) {
    const FunctionQueue& q = it->second;
    bool idle = q.ready.empty() && q.running == 0 && q.paused_until_ms <= now;
    it = idle ? queues_.erase(it) : std::next(it);
  }
  if (next_unpause != kNever) ArmTimer(next_unpause);
  MaybePageIn();
}

const AsyncInvoker::Settings& AsyncInvoker::SettingsFor(const std::string& function,
                                                        const std::string& qualifier) {
  std::string key = function + '\n' + qualifier;
  auto it = settings_.find(key);
  if (it != settings_.end()) return it->second;
  Settings s;
  auto config = store_.GetEventInvokeConfig(function, qualifier.empty() ? kLatest : qualifier);
  if (config.ok()) {
    s.max_retry_attempts = config->max_retry_attempts.value_or(kDefaultMaxRetryAttempts);
    s.max_event_age_s = config->max_event_age_s.value_or(kDefaultMaxEventAgeS);
    s.on_success = config->on_success;
    s.on_failure = config->on_failure;
  }
  return settings_.emplace(key, std::move(s)).first->second;
}

std::vector<std::string> AsyncInvoker::CachedFunctions() const {
  std::set<std::string> names;
  for (const auto& [key, settings] : settings_) names.insert(key.substr(0, key.find('\n')));
  for (const auto& [function, until] : paused_) names.insert(function);
  return {names.begin(), names.end()};
}

void AsyncInvoker::ConfigChanged(const std::string& function) {
  // A change (e.g. its concurrency) may have lifted what throttled it: retry now.
  if (paused_.erase(function) > 0) {
    if (auto q = queues_.find(function); q != queues_.end()) {
      q->second.paused_until_ms = 0;
      q->second.backoff_ms = 0;
    }
    NoteBacklog(NowEpochMs());
    boost::asio::post(io_, [this] { Pump(); });
  }
  for (auto it = settings_.begin(); it != settings_.end();) {
    bool match = it->first.size() > function.size() && it->first[function.size()] == '\n' &&
                 it->first.compare(0, function.size(), function) == 0;
    it = match ? settings_.erase(it) : std::next(it);
  }
}

void AsyncInvoker::Dispatch(const std::shared_ptr<Item>& item) {
  item->running = true;
  ++running_;
  ++queues_[item->event.function].running;
  const AsyncEvent& e = item->event;
  const Settings& settings = SettingsFor(e.function, e.qualifier);
  int64_t age_ms = NowEpochMs() - e.enqueued_ms;
  if (age_ms > int64_t{settings.max_event_age_s} * 1000) {
    Finish(item, settings.on_failure.empty() ? EventStatus::kDeadLettered : EventStatus::kFailed,
           "EventAgeExceeded",
           ErrorDocument("EventAgeExceeded", "the event was " + std::to_string(age_ms / 1000) +
                                                 " s old, over MaximumEventAgeInSeconds " +
                                                 std::to_string(settings.max_event_age_s)),
           "", "");
    return;
  }
  InvokeRequest request;
  request.function = e.function;
  request.qualifier = e.qualifier;
  request.payload = e.payload;
  request.request_id = e.id;
  if (membership_live_) {
    request.on_start = [this, item](const InvocationStart& start) {
      item->sandbox_id = start.sandbox_id;
      // Dispatched while live, started (a cold start ended) after the lapse. Posted: this
      // runs inside the Invoker's dispatch.
      if (lease_lost_) {
        boost::asio::post(io_, [this, item] {
          if (lease_lost_ && !item->abandoned && !item->sandbox_id.empty()) Abandon(item);
        });
      }
    };
  }
  invoker_.Invoke(std::move(request),
                  [this, item](InvokeResponse response) { OnResult(item, std::move(response)); });
}

void AsyncInvoker::OnResult(const std::shared_ptr<Item>& item, InvokeResponse response) {
  if (shutting_down_) return;  // still queued on disk: it runs again at the next start
  item->sandbox_id.clear();    // the sandbox may run other work from now on
  if (item->abandoned) {
    // Not an attempt: its lease lapsed, so whatever it answered is not this node's to record.
    CommitUntilStored({GiveBack(item->event)}, [this, item](const Status& st) {
      if (!st.ok())
        spdlog::error("async event {}: abandoned run not given back: {}", item->event.id,
                      st.ToString());
      Release(item);
    });
    return;
  }
  FunctionQueue& queue = queues_[item->event.function];
  const Status& status = response.status;
  std::string error;
  if (!status.ok()) {
    if (status.code() == Code::kTooManyRequests || status.code() == Code::kUnavailable) {
      // Not the function's fault: wait and try again, without counting an attempt.
      ++counters_.throttled;
      item->running = false;
      --running_;
      --queue.running;
      queue.backoff_ms = std::min(queue.backoff_ms ? queue.backoff_ms * 2 : kFirstThrottleBackoffMs,
                                  kMaxThrottleBackoffMs);
      queue.paused_until_ms = NowEpochMs() + queue.backoff_ms;
      paused_[item->event.function] = queue.paused_until_ms;
      queue.ready.push_front(item);
      SpillIfCrowded(item->event.function);
      Pump();
      return;
    }
    if (status.code() == Code::kNotFound) {
      // The function (or its qualifier) is gone: retrying cannot help.
      Finish(item, EventStatus::kDeadLettered, "ResourceNotFound",
             ErrorDocument("ResourceNotFoundException", status.message()), "", "");
      return;
    }
    error = ErrorDocument("ServiceException", status.message());
  }
  queue.backoff_ms = 0;
  queue.paused_until_ms = 0;
  if (status.ok() && !response.function_error) {
    Finish(item, EventStatus::kSucceeded, "", std::move(response.payload), "",
           response.executed_version);
    return;
  }
  if (error.empty()) error = std::move(response.payload);
  const Settings& settings = SettingsFor(item->event.function, item->event.qualifier);
  if (item->event.attempts + 1 <= settings.max_retry_attempts) {
    Requeue(item, std::move(error));
    return;
  }
  Finish(item, settings.on_failure.empty() ? EventStatus::kDeadLettered : EventStatus::kFailed,
         "RetriesExhausted", std::move(error), "Unhandled", response.executed_version);
}

void AsyncInvoker::Finish(const std::shared_ptr<Item>& item, EventStatus status,
                          const std::string& condition, std::string response,
                          const std::string& function_error, const std::string& executed_version) {
  AsyncEvent& e = item->event;
  int64_t now = NowEpochMs();
  if (condition != "EventAgeExceeded") ++e.attempts;  // this run counts
  const Settings& settings = SettingsFor(e.function, e.qualifier);
  std::vector<EventWrite> writes(1);
  writes.reserve(2);  // w stays valid when the destination's event is added
  EventWrite& w = writes[0];
  w.kind = EventWrite::Kind::kFinish;
  w.event.id = e.id;
  w.event.attempts = e.attempts;
  w.status = status;
  w.condition = condition;
  w.at_ms = now;
  const std::string& destination = status == EventStatus::kSucceeded ? settings.on_success
                                   : status == EventStatus::kFailed  ? settings.on_failure
                                                                     : std::string();
  std::string target, target_qualifier;
  if (!destination.empty() && ParseFunctionArn(destination, &target, &target_qualifier)) {
    nlohmann::json response_context = {
        {"statusCode", 200},
        {"executedVersion", executed_version.empty() ? std::string(kLatest) : executed_version}};
    if (!function_error.empty()) response_context["functionError"] = function_error;
    nlohmann::json record = {
        {"version", "1.0"},
        {"timestamp", FormatIso8601(now)},
        {"requestContext",
         {{"requestId", e.id},
          {"functionArn", FunctionArn(e.function, e.qualifier.empty() ? kLatest : e.qualifier)},
          {"condition", status == EventStatus::kSucceeded ? std::string("Success") : condition},
          {"approximateInvokeCount", e.attempts}}},
        {"requestPayload", JsonOrString(e.payload)},
        {"responseContext", response_context},
        {"responsePayload", JsonOrString(response)}};
    EventWrite d;
    d.kind = EventWrite::Kind::kInsert;
    d.event.id = NewRequestId();
    d.event.function = target;
    d.event.qualifier = target_qualifier;
    d.event.payload = JsonDump(record);
    d.event.source = "destination";
    d.event.enqueued_ms = d.event.due_ms = now;
    writes.push_back(std::move(d));
    w.destination = destination;
    NoteBacklog(now);
  }
  w.response = std::move(response);
  switch (status) {
    case EventStatus::kSucceeded:
      ++counters_.succeeded;
      break;
    case EventStatus::kFailed:
      ++counters_.failed;
      break;
    case EventStatus::kDeadLettered:
      ++counters_.dead_lettered;
      break;
    case EventStatus::kQueued:
      break;
  }
  CommitUntilStored(std::move(writes), [this, item](const Status& st) {
    if (!st.ok())
      spdlog::error("async event {}: outcome not stored: {}", item->event.id, st.ToString());
    Release(item);
  });
}

void AsyncInvoker::Requeue(const std::shared_ptr<Item>& item, std::string error) {
  AsyncEvent& e = item->event;
  ++e.attempts;
  int64_t now = NowEpochMs();
  EventWrite w;
  w.kind = EventWrite::Kind::kRequeue;
  w.event.id = e.id;
  w.event.attempts = e.attempts;
  // ~1 min then ~2 min by default (Lambda's back-off), from the configured base.
  w.event.due_ms = now + config_.async_retry_base_ms * (int64_t{1} << std::min(e.attempts - 1, 10));
  w.response = std::move(error);
  w.at_ms = now;
  ++counters_.retried;
  NoteBacklog(w.event.due_ms);
  CommitUntilStored({std::move(w)}, [this, item](const Status& st) {
    if (!st.ok())
      spdlog::error("async event {}: retry not stored: {}", item->event.id, st.ToString());
    Release(item);
  });
}

void AsyncInvoker::Release(const std::shared_ptr<Item>& item) {
  if (shutting_down_) return;
  --running_;
  auto q = queues_.find(item->event.function);
  if (q != queues_.end()) --q->second.running;
  resident_bytes_ -= item->event.payload.size();
  resident_.erase(item->event.id);
  Pump();
}

void AsyncInvoker::SpillIfCrowded(const std::string& function) {
  int64_t now = NowEpochMs();
  size_t window = Window();
  bool crowded = resident_.size() + accepting_ >= window - window / 4 ||
                 resident_bytes_ >= kWindowBytes - kWindowBytes / 4;
  auto it = queues_.find(function);
  if (!crowded || backlog_due_ms_ > now || it == queues_.end() || it->second.ready.empty()) return;
  FunctionQueue& queue = it->second;
  queue.paused_until_ms = std::max(queue.paused_until_ms, now + kSpilledPauseMs);
  paused_[function] = queue.paused_until_ms;
  // The newest quarter of the window at most: enough room for the others,
  // one bounded transaction.
  size_t count = std::min(queue.ready.size(), window / 4 + 1);
  std::vector<EventWrite> writes;
  writes.reserve(count);
  for (size_t n = 0; n < count; ++n) {
    // Its due time stays: page-ins skip it while the function is paused.
    writes.push_back(Evict(*queue.ready.back()));
    queue.ready.pop_back();
  }
  NoteBacklog(queue.paused_until_ms);
  CommitUntilStored(std::move(writes), [this](const Status& st) {
    if (!st.ok()) spdlog::error("async events not moved back to disk: {}", st.ToString());
    Pump();
  });
}

void AsyncInvoker::CommitUntilStored(std::vector<EventWrite> writes,
                                     std::function<void(const Status&)> then) {
  std::vector<EventWrite> again = writes;  // kept for a retry
  committer_.Submit(std::move(writes), [this, again = std::move(again),
                                        then = std::move(then)](const Status& st) mutable {
    if (st.code() != Code::kUnavailable || shutting_down_) {
      if (st.ok() && writes_waiting_) {
        writes_waiting_ = false;
        spdlog::info("async: the event queue takes writes again");
      }
      then(st);
      return;
    }
    // Dropping the write would leave the event leased to this node (and its lease renewed
    // by every heartbeat) without anything here to run it: it would never run again.
    if (!writes_waiting_) {
      writes_waiting_ = true;
      spdlog::warn("async: outcomes wait for the event queue (written again every {} ms): {}",
                   kRetryWriteMs, st.ToString());
    }
    auto timer = std::make_shared<Timer>(io_);
    timer->expires_after(std::chrono::milliseconds(kRetryWriteMs));
    timer->async_wait([this, timer, again = std::move(again),
                       then = std::move(then)](const boost::system::error_code& ec) mutable {
      if (ec || shutting_down_) return;  // still leased: it runs again after a restart
      CommitUntilStored(std::move(again), std::move(then));
    });
  });
}

void AsyncInvoker::NoteBacklog(int64_t due_ms) {
  backlog_due_ms_ = std::min(backlog_due_ms_, due_ms);
  if (paging_) backlog_while_paging_ms_ = std::min(backlog_while_paging_ms_, due_ms);
}

void AsyncInvoker::MaybePageIn() {
  if (paging_ || shutting_down_ || backlog_due_ms_ == kNever || !MayLease()) return;
  int64_t now = NowEpochMs();
  if (backlog_due_ms_ > now) {
    ArmTimer(backlog_due_ms_);
    return;
  }
  size_t window = Window();
  size_t used = resident_.size() + accepting_;
  if (used >= window || resident_bytes_ >= kWindowBytes) return;  // Release pumps again
  // Page in chunks, not one event per finished one.
  size_t room = window - used;
  if (!resident_.empty() && room < std::min<size_t>(window / 8 + 1, 256)) return;
  size_t limit = std::min(room, kPageEvents);
  size_t bytes = kWindowBytes - resident_bytes_;
  // Paused functions' events stay on disk until their pause ends.
  std::vector<std::string> skip;
  int64_t resume = kNever;
  for (auto p = paused_.begin(); p != paused_.end();) {
    if (p->second <= now) {
      p = paused_.erase(p);
      continue;
    }
    skip.push_back(p->first);
    resume = std::min(resume, p->second);
    ++p;
  }
  paging_ = true;
  backlog_while_paging_ms_ = kNever;
  committer_.Run([this, now, limit, bytes, resume, skip = std::move(skip)](EventQueue& queue) {
    auto page = queue.Lease(now, limit, bytes, skip);
    boost::asio::post(io_, [this, page = std::move(page), resume]() mutable {
      paging_ = false;
      if (shutting_down_) return;
      if (!page.ok()) {
        page_ins_log_.Note(page.status());
        backlog_due_ms_ = NowEpochMs() + 1000;
        ArmTimer(backlog_due_ms_);
        return;
      }
      page_ins_log_.Note(Status::Ok());
      for (auto& e : page->events) {
        auto item = std::make_shared<Item>();
        item->event = std::move(e);
        AddResident(std::move(item));
      }
      backlog_due_ms_ =
          std::min({page->next_due_ms.value_or(kNever), backlog_while_paging_ms_, resume});
      // Other nodes accept events too, and nothing tells this one: look again soon.
      if (membership_live_)
        backlog_due_ms_ = std::min(backlog_due_ms_, NowEpochMs() + kClusterPollMs);
      Pump();
    });
  });
}

void AsyncInvoker::ArmTimer(int64_t at_ms) {
  if (at_ms >= timer_at_ms_) return;  // an earlier wake-up is armed
  timer_at_ms_ = at_ms;
  timer_.expires_after(std::chrono::milliseconds(std::max<int64_t>(0, at_ms - NowEpochMs())));
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    timer_at_ms_ = kNever;
    Pump();
  });
}

void AsyncInvoker::Purge() {
  if (shutting_down_) return;
  int64_t cutoff = NowEpochMs() - int64_t{config_.async_retention_s} * 1000;
  committer_.Run([cutoff](EventQueue& queue) {
    auto purged = queue.PurgeFinished(cutoff);
    if (!purged.ok()) spdlog::warn("event queue purge failed: {}", purged.status().ToString());
  });
  purge_timer_.expires_after(std::chrono::milliseconds(kPurgeIntervalMs));
  purge_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) Purge();
  });
}

void AsyncInvoker::Redrive(const std::string& function, std::vector<std::string> ids,
                           std::function<void(Result<int>)> done) {
  committer_.Run([this, function, ids = std::move(ids), done = std::move(done)](EventQueue& queue) {
    int64_t now = NowEpochMs();
    auto count = queue.Redrive(function, ids, now);
    boost::asio::post(io_, [this, count = std::move(count), now, done]() mutable {
      if (count.ok() && *count > 0) {
        NoteBacklog(now);
        Pump();
      }
      done(std::move(count));
    });
  });
}

std::optional<std::string> AsyncInvoker::ResidentState(const std::string& id) const {
  auto it = resident_.find(id);
  if (it == resident_.end()) return std::nullopt;
  return it->second->running ? "running" : "queued";
}

AsyncStats AsyncInvoker::stats() const {
  AsyncStats s = counters_;
  s.resident = resident_.size();
  s.running = running_;
  s.backlog_on_disk = backlog_due_ms_ != kNever;
  s.commits = committer_.stats().commits;
  return s;
}

void AsyncInvoker::Shutdown() {
  shutting_down_ = true;
  timer_.cancel();
  purge_timer_.cancel();
  membership_timer_.cancel();
}

}  // namespace gust::engine
