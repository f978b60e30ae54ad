#include "schedule/scheduler.h"

#include <boost/asio/post.hpp>

#include <spdlog/spdlog.h>

#include <cstdio>

#include "common/clock.h"
#include "common/json_read.h"
#include "store/arn.h"

namespace gust::schedule {

namespace {

// The timer never sleeps longer than this, so a wall-clock step is noticed.
constexpr int64_t kMaxSleepMs = 30'000;

uint64_t Fnv1a(const std::string& text, uint64_t seed) {
  uint64_t h = seed;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

}  // namespace

std::string TickId(const std::string& name, int64_t tick_ms) {
  std::string key = name + '\n' + std::to_string(tick_ms);
  uint64_t hi = Fnv1a(key, 14695981039346656037ull);
  uint64_t lo = Fnv1a(key, hi ^ 0x9e3779b97f4a7c15ull);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%08x-%04x-5%03x-%04x-%012llx", static_cast<unsigned>(hi >> 32),
                static_cast<unsigned>((hi >> 16) & 0xffff), static_cast<unsigned>(hi & 0xfff),
                static_cast<unsigned>(0x8000 | ((lo >> 48) & 0x3fff)),
                static_cast<unsigned long long>(lo & 0xffffffffffffull));
  return buf;
}

nlohmann::json ScheduledEvent(const std::string& name, int64_t tick_ms, const std::string& id,
                              const std::string& extra_json) {
  nlohmann::json event = {
      {"version", "0"},
      {"id", id},
      {"detail-type", "Scheduled Event"},
      {"source", "aws.events"},
      {"account", kAccountId},
      {"time", FormatEventTime(tick_ms)},
      {"region", kRegion},
      {"resources",
       {std::string("arn:aws:events:") + kRegion + ":" + kAccountId + ":rule/" + name}},
      {"detail", nlohmann::json::object()}};
  if (!extra_json.empty()) {
    auto extra = JsonParse(extra_json);
    if (extra.is_object()) {
      for (auto& [key, value] : extra.items()) {
        if (!event.contains(key)) event[key] = value;  // the standard keys stay as EventBridge's
      }
    }
  }
  return event;
}

Scheduler::Scheduler(boost::asio::io_context& io, boost::asio::thread_pool& workers,
                     ScheduleStore& store, engine::Invoker& invoker, engine::AsyncInvoker& async)
    : workers_(workers), store_(store), invoker_(invoker), async_(async), timer_(io) {}

Status Scheduler::Start() {
  GUST_ASSIGN_OR_RETURN(std::vector<Schedule> all, store_.List(""));
  int64_t now = NowEpochMs();
  for (Schedule& s : all) {
    std::string name = s.name;
    Entry entry;
    if (!Prepare(std::move(s), &entry)) continue;
    auto& e = entries_.emplace(name, std::move(entry)).first->second;
    if (!e.schedule.enabled) continue;
    int64_t floor = std::max(e.schedule.last_fire_ms, e.schedule.updated_ms);
    if (auto missed = e.expression.LastAtOrBefore(now, floor, e.schedule.anchor_ms, e.tz.get())) {
      ++stats_.catch_ups;
      spdlog::info("schedule {}: catching up the tick of {} missed while the engine was down", name,
                   FormatEventTime(*missed));
      Fire(e, *missed);
    }
    SetNext(e, e.expression.NextAfter(now, e.schedule.anchor_ms, e.tz.get()));
  }
  Arm();
  return Status::Ok();
}

bool Scheduler::Prepare(Schedule schedule, Entry* out) {
  auto expression = ScheduleExpression::Parse(schedule.expression);
  if (!expression.ok()) {
    spdlog::error("schedule {}: expression does not parse: {}", schedule.name,
                  expression.status().message());
    return false;
  }
  out->tz = nullptr;
  if (!schedule.timezone.empty()) {
    auto tz = TimeZone::Load(schedule.timezone);
    if (!tz.ok()) {
      spdlog::error("schedule {}: {}", schedule.name, tz.status().message());
      return false;
    }
    out->tz = std::make_shared<const TimeZone>(std::move(tz).value());
  }
  out->schedule = std::move(schedule);
  out->expression = std::move(expression).value();
  out->next_ms = std::nullopt;
  return true;
}

void Scheduler::SetNext(Entry& entry, std::optional<int64_t> next) {
  if (entry.next_ms) due_.erase({*entry.next_ms, entry.schedule.name});
  entry.next_ms = entry.schedule.enabled ? next : std::nullopt;
  if (entry.next_ms) due_.insert({*entry.next_ms, entry.schedule.name});
}

void Scheduler::Upsert(Schedule schedule) {
  std::string name = schedule.name;
  Remove(name);
  Entry entry;
  if (!Prepare(std::move(schedule), &entry)) return;  // the API checked both before storing
  auto& e = entries_.emplace(name, std::move(entry)).first->second;
  int64_t from = std::max(NowEpochMs(), e.schedule.last_fire_ms);
  SetNext(e, e.expression.NextAfter(from, e.schedule.anchor_ms, e.tz.get()));
  Arm();
}

void Scheduler::Remove(const std::string& name) {
  auto it = entries_.find(name);
  if (it == entries_.end()) return;
  SetNext(it->second, std::nullopt);
  entries_.erase(it);
}

std::optional<int64_t> Scheduler::NextFire(const std::string& name) const {
  auto it = entries_.find(name);
  return it == entries_.end() ? std::nullopt : it->second.next_ms;
}

void Scheduler::Arm() {
  if (shutting_down_ || due_.empty()) {
    timer_.cancel();
    return;
  }
  int64_t wait = std::clamp<int64_t>(due_.begin()->first - NowEpochMs(), 0, kMaxSleepMs);
  timer_.expires_after(std::chrono::milliseconds(wait));
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) OnTimer();
  });
}

void Scheduler::OnTimer() {
  int64_t now = NowEpochMs();
  while (!due_.empty() && due_.begin()->first <= now) {
    auto [tick, name] = *due_.begin();
    Entry& e = entries_.at(name);
    Fire(e, tick);
    // The next tick after now: a stalled engine thread never fires a burst.
    SetNext(e, e.expression.NextAfter(std::max(tick, now), e.schedule.anchor_ms, e.tz.get()));
  }
  Arm();
}

void Scheduler::Fire(Entry& entry, int64_t tick_ms) {
  ++stats_.fires;
  const Schedule& s = entry.schedule;
  std::string name = s.name;
  if (s.kind == "keep_warm") {
    invoker_.Warm(s.function, s.qualifier, [this, name, tick_ms](const engine::WarmResponse& r) {
      std::string error;
      if (!r.status.ok()) error = r.status.message();
      if (r.init_failed) error = "the function's init failed: " + r.error_type;
      Record(name, tick_ms, std::move(error));
    });
    return;
  }
  Status exists = invoker_.CheckExists(s.function, s.qualifier);
  if (!exists.ok()) {
    Record(name, tick_ms, exists.message());
    return;
  }
  AsyncEvent event;
  event.id = TickId(name, tick_ms);
  event.function = s.function;
  event.qualifier = s.qualifier;
  event.payload = JsonDump(ScheduledEvent(name, tick_ms, event.id, s.payload));
  event.source = "schedule:" + name;
  async_.Enqueue(std::move(event), [this, name, tick_ms](const Result<std::string>& id) {
    Record(name, tick_ms, id.ok() ? "" : id.status().message());
  });
}

void Scheduler::Record(const std::string& name, int64_t tick_ms, std::string error) {
  if (!error.empty()) {
    ++stats_.errors;
    spdlog::warn("schedule {}: the tick of {} did not go through: {}", name,
                 FormatEventTime(tick_ms), error);
  }
  if (auto it = entries_.find(name); it != entries_.end()) {
    it->second.schedule.last_fire_ms = std::max(it->second.schedule.last_fire_ms, tick_ms);
    it->second.schedule.last_error = error;
  }
  boost::asio::post(workers_, [this, name, tick_ms, error = std::move(error)] {
    Status st = store_.RecordFire(name, tick_ms, error);
    if (!st.ok()) spdlog::warn("schedule {}: fire not recorded: {}", name, st.ToString());
  });
}

void Scheduler::Shutdown() {
  shutting_down_ = true;
  timer_.cancel();
}

}  // namespace gust::schedule
