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

// Reads a record from either store's row (sqlite::Statement or pg::Row) of the columns
// id, function, qualifier, payload, source, enqueued_ms, due_ms, attempts, status,
// last_attempt_ms, finished_ms, condition, response, response_truncated, destination.
template <typename Row>
EventRecord ReadRecord(const Row& q) {
  EventRecord r;
  r.event.id = q.Text(0);
  r.event.function = q.Text(1);
  r.event.qualifier = q.Text(2);
  r.event.payload = q.Text(3);
  r.event.source = q.Text(4);
  r.event.enqueued_ms = q.Int(5);
  r.event.due_ms = q.Int(6);
  r.event.attempts = static_cast<int>(q.Int(7));
  r.status = static_cast<EventStatus>(q.Int(8));
  r.last_attempt_ms = q.Int(9);
  r.finished_ms = q.Int(10);
  r.condition = q.Text(11);
  r.response = q.Text(12);
  r.response_truncated = q.Int(13) != 0;
  r.destination = q.Text(14);
  return r;
}
// The part of a response that is stored (at most kMaxStoredResponseBytes).
std::string_view StoredResponse(const std::string& response);
// Adds n events of the stored status code `status` to counts (unknown codes are ignored).
void AddCount(int64_t status, int64_t n, QueueCounts* counts);

}  // namespace gust::event_rules
