// What the ScheduleStore implementations (SQLite, PostgreSQL) share so that they behave alike:
// the rules for what a Put keeps of the stored schedule and what ReplaceGroup keeps, their row
// reader, and the wording of their errors.
// Defined in sqlite_schedule_store.cc.
//
// Internal to src/store. Thread-safety: pure functions.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "common/status.h"
#include "store/schedule_store.h"

namespace gust::schedule_rules {

// Prepares `s` to replace the stored `old` of the same name: Conflict naming both groups if
// old belongs to another; else s keeps old's created_ms and, when its expression and timezone
// are unchanged, old's anchor, last fire and last error (see schedule_store.h's invariants).
Status MergeWithStored(const Schedule& old, Schedule* s);

Status NotFound(const std::string& name);

// ReplaceGroup's rule over a store's own statements: of the group's stored names (old_names),
// those not in `schedules` are deleted (remove); every schedule is upserted into `group` (a
// name that stays keeps its row, and so its anchor and last fire). Stops at the first error.
// Called inside the store's transaction.
Status ReplaceGroupRows(const std::string& group, const std::vector<std::string>& old_names,
                        const std::vector<Schedule>& schedules,
                        const std::function<Status(const std::string&)>& remove,
                        const std::function<Status(const Schedule&)>& upsert);

// Reads a schedule from either store's row (sqlite::Statement or pg::Row) of the columns
// name, grp, function, qualifier, expression, kind, enabled, payload, anchor_ms, created_ms,
// updated_ms, last_fire_ms, last_error, timezone.
template <typename Row>
Schedule ReadRow(const Row& q) {
  Schedule s;
  s.name = q.Text(0);
  s.group = q.Text(1);
  s.function = q.Text(2);
  s.qualifier = q.Text(3);
  s.expression = q.Text(4);
  s.kind = q.Text(5);
  s.enabled = q.Int(6) != 0;
  s.payload = q.Text(7);
  s.anchor_ms = q.Int(8);
  s.created_ms = q.Int(9);
  s.updated_ms = q.Int(10);
  s.last_fire_ms = q.Int(11);
  s.last_error = q.Text(12);
  s.timezone = q.Text(13);
  return s;
}

}  // namespace gust::schedule_rules
