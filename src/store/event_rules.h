// What the EventQueue implementations (SQLite, PostgreSQL) share so that they behave alike.
// Defined in sqlite_event_queue.cc.
//
// Internal to src/store. Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"
#include "store/event_queue.h"

namespace gust::event_rules {

Status NotFound(const std::string& id);
// The part of a response that is stored (at most kMaxStoredResponseBytes).
std::string_view StoredResponse(const std::string& response);
// Adds n events of the stored status code `status` to counts (unknown codes are ignored).
void AddCount(int64_t status, int64_t n, QueueCounts* counts);

}  // namespace gust::event_rules
