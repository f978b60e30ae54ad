// What the ScheduleStore implementations (SQLite, PostgreSQL) share so that they behave alike:
// the rule for what a Put keeps of the stored schedule, and the wording of their errors.
// Defined in sqlite_schedule_store.cc.
//
// Internal to src/store. Thread-safety: pure functions.
#pragma once

#include <string>

#include "common/status.h"
#include "store/schedule_store.h"

namespace gust::schedule_rules {

// Prepares `s` to replace the stored `old` of the same name: Conflict naming both groups if
// old belongs to another; else s keeps old's created_ms and, when its expression and timezone
// are unchanged, old's anchor, last fire and last error (see schedule_store.h's invariants).
Status MergeWithStored(const Schedule& old, Schedule* s);

Status NotFound(const std::string& name);

}  // namespace gust::schedule_rules
