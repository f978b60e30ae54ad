// ScheduleStore: the durable list of schedules (EventBridge-style rules that
// invoke a function asynchronously or keep one of its sandboxes warm), and
// when each last fired. Schedules are engine state: they survive restarts.
//
// One interface; SqliteScheduleStore (its own SQLite file, WAL) is the
// single-machine implementation, PgScheduleStore (PostgreSQL) the cluster's
// (docs/CLUSTER.md), with the same semantics and errors.
//
// Thread-safety: implementations are safe to call from any thread.
// Invariants:
//  - names are unique across groups; a group is a label (the stage's
//    function for `gust schedule STAGE`) that can be listed or replaced whole;
//  - Put and ReplaceGroup keep anchor_ms and last_fire_ms of a schedule whose
//    expression and timezone are unchanged, so re-applying settings neither
//    shifts a rate's phase nor fires it again.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace gust {

struct Schedule {
  std::string name;
  std::string group;
  std::string function;
  std::string qualifier;        // "" = $LATEST
  std::string expression;       // rate(...) or cron(...), checked by the API before storing
  std::string timezone;         // IANA zone whose wall clock a cron matches ("" = UTC)
  std::string kind = "invoke";  // "invoke" | "keep_warm"
  bool enabled = true;
  std::string payload;    // JSON object added to the Scheduled Event ("" none)
  int64_t anchor_ms = 0;  // rate(): fires at anchor + k * period
  int64_t created_ms = 0;
  int64_t updated_ms = 0;
  int64_t last_fire_ms = 0;  // the tick time of the last fire; 0 never
  std::string last_error;    // why the last fire did not go through ("" ok)
};

class ScheduleStore {
 public:
  virtual ~ScheduleStore() = default;
  // Creates or replaces by name. Conflict if the name belongs to another group.
  virtual Status Put(const Schedule& schedule) = 0;
  virtual Result<Schedule> Get(const std::string& name) = 0;  // NotFound
  // By name; group "" lists every group.
  virtual Result<std::vector<Schedule>> List(const std::string& group) = 0;
  virtual Status Delete(const std::string& name) = 0;  // NotFound
  // Removes the group's schedules; returns how many.
  virtual Result<int> DeleteGroup(const std::string& group) = 0;
  // The group becomes exactly `schedules` (each's group is set to group), in
  // one transaction. Conflict if a name belongs to another group.
  virtual Status ReplaceGroup(const std::string& group, const std::vector<Schedule>& schedules) = 0;
  // Records a fire (tick time) and its error ("" ok).
  virtual Status RecordFire(const std::string& name, int64_t tick_ms, const std::string& error) = 0;
};

Result<std::unique_ptr<ScheduleStore>> OpenSqliteScheduleStore(const std::string& path);
// Connects to conninfo's PostgreSQL database and brings its schema up to date; errors as
// OpenPgMetadataStore's (metadata_store.h).
Result<std::unique_ptr<ScheduleStore>> OpenPgScheduleStore(const std::string& conninfo);

}  // namespace gust
