// Scheduler: fires schedules (ScheduleStore) on the engine thread. One timer
// is armed for the earliest next fire; when it goes off each due schedule
//   - "invoke": enqueues an asynchronous invocation (AsyncInvoker) of its
//     function with an EventBridge "Scheduled Event" payload whose id is
//     derived from the schedule's name and tick, so a tick replayed after a
//     crash is queued once;
//   - "keep_warm": asks the Invoker for one warm sandbox (Invoker::Warm; the
//     handler is never called);
// then records the fire (tick time, error) in the store on the worker pool
// and arms the next tick.
//
// Downtime: at Start each enabled schedule whose ticks passed while the engine
// was down fires once, for the newest missed tick (never a burst).
//
// Thread-safety: single-threaded on the engine's io_context. The API layer
// stores schedules on its worker pool and then posts Upsert/Remove here.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/timer.h"
#include "engine/async_invoker.h"
#include "engine/invoker.h"
#include "schedule/expression.h"
#include "schedule/timezone.h"
#include "store/schedule_store.h"

namespace gust::schedule {

// The EventBridge Scheduled Event for a tick of rule `name` (extra: a JSON
// object whose keys are added, e.g. {"gust_function": "mod.fn"}).
nlohmann::json ScheduledEvent(const std::string& name, int64_t tick_ms, const std::string& id,
                              const std::string& extra_json);
// A UUID-shaped id that depends only on (name, tick_ms).
std::string TickId(const std::string& name, int64_t tick_ms);

struct SchedulerStats {
  uint64_t fires = 0;
  uint64_t catch_ups = 0;
  uint64_t errors = 0;
};

class Scheduler {
 public:
  Scheduler(boost::asio::io_context& io, boost::asio::thread_pool& workers, ScheduleStore& store,
            engine::Invoker& invoker, engine::AsyncInvoker& async);

  // Loads every schedule, fires the catch-ups, arms the timer. Engine thread,
  // before serving (reads the store).
  Status Start();
  // A schedule was stored (created, replaced, enabled or disabled) or removed.
  void Upsert(Schedule schedule);
  void Remove(const std::string& name);
  // The next fire time of an enabled schedule.
  std::optional<int64_t> NextFire(const std::string& name) const;
  SchedulerStats stats() const { return stats_; }
  void Shutdown();

 private:
  struct Entry {
    Schedule schedule;
    ScheduleExpression expression;
    std::shared_ptr<const TimeZone> tz;  // null: UTC
    std::optional<int64_t> next_ms;
  };
  // Parses the expression and loads the time zone; false (logged) if either is bad.
  bool Prepare(Schedule schedule, Entry* out);
  void Arm();
  void OnTimer();
  void Fire(Entry& entry, int64_t tick_ms);
  void Record(const std::string& name, int64_t tick_ms, std::string error);
  void SetNext(Entry& entry, std::optional<int64_t> next);

  boost::asio::thread_pool& workers_;
  ScheduleStore& store_;
  engine::Invoker& invoker_;
  engine::AsyncInvoker& async_;
  Timer timer_;
  std::map<std::string, Entry> entries_;
  std::set<std::pair<int64_t, std::string>> due_;  // (next_ms, name) of enabled schedules
  bool shutting_down_ = false;
  SchedulerStats stats_;
};

}  // namespace gust::schedule
