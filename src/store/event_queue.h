// EventQueue: the durable queue of asynchronous invocations (Lambda's
// InvocationType=Event) and the record of what became of each one: queued,
// succeeded, failed (its failure went to an on-failure destination) or
// dead-lettered (kept in gust's dead-letter store until redriven).
//
// One interface; SqliteEventQueue (its own SQLite file, WAL, synchronous=FULL)
// is the single-machine implementation, PgEventQueue (PostgreSQL) the
// cluster's (docs/CLUSTER.md), where "resident" is a lease held by one node.
//
// The dispatcher keeps a window of queued events in memory; the queue marks
// those as "resident" so a page-in (Lease) never hands out an event twice.
// Residency is not state that survives the engine: ReleaseAll() at start-up.
// "Running" is never stored either: an event that was running when the
// engine died is still queued and runs again (at-least-once delivery).
//
// Thread-safety: implementations are safe to call from any thread. Commit is
// meant for one group-commit thread (engine/async_invoker.h batches writes).
// Invariants:
//  - an event's id is unique; inserting an existing id changes nothing
//    (schedule ticks use deterministic ids, so a replayed tick is a no-op);
//  - Commit applies all its writes in one transaction and, when the queue
//    was opened with fsync on, returns OK only after they are on disk.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace gust {

enum class EventStatus { kQueued = 0, kSucceeded = 1, kFailed = 2, kDeadLettered = 3 };
// "queued", "succeeded", "failed", "dead-lettered"
std::string_view EventStatusName(EventStatus status);

// Stored responses are cut at this size (the record notes it).
inline constexpr size_t kMaxStoredResponseBytes = 256 * 1024;

struct AsyncEvent {
  std::string id;  // the request id (x-amzn-RequestId; the handler's aws_request_id)
  std::string function;
  std::string qualifier;  // "" = $LATEST
  std::string payload;
  std::string source;       // "invoke", "schedule:NAME", "destination", "redrive"
  int64_t enqueued_ms = 0;  // age (MaximumEventAgeInSeconds) counts from here
  int64_t due_ms = 0;       // not run before
  int attempts = 0;         // runs so far that ended in a function error
};

struct EventRecord {
  AsyncEvent event;
  EventStatus status = EventStatus::kQueued;
  int64_t last_attempt_ms = 0;
  int64_t finished_ms = 0;
  std::string condition;  // failed/dead-lettered: RetriesExhausted, EventAgeExceeded, ...
  std::string response;   // succeeded: the output; otherwise the last Lambda error document
  bool response_truncated = false;
  std::string destination;  // where the outcome record went ("" none)
};

// One change in a group commit.
struct EventWrite {
  enum class Kind {
    kInsert,   // event (all fields); resident: the dispatcher holds it
    kFinish,   // event.id, event.attempts; status, condition, response, destination, at_ms
    kRequeue,  // event.id, event.attempts, event.due_ms; response (last error), at_ms
    kRelease,  // event.id, event.due_ms: back to disk only, not run before due_ms
  };
  Kind kind = Kind::kInsert;
  AsyncEvent event;
  bool resident = false;
  EventStatus status = EventStatus::kSucceeded;
  std::string condition;
  std::string response;
  std::string destination;
  int64_t at_ms = 0;
};

struct LeasedPage {
  std::vector<AsyncEvent> events;
  // Earliest due time of queued events still not resident after this lease.
  std::optional<int64_t> next_due_ms;
};

struct QueueCounts {
  int64_t queued = 0, succeeded = 0, failed = 0, dead_lettered = 0;
};

class EventQueue {
 public:
  virtual ~EventQueue() = default;
  // Applies writes in order, in one transaction (durable when it returns OK). fenced, when
  // given, receives the ids of Finish, Requeue and Release writes that changed nothing
  // because the event is no longer this queue's to change (its lease passed to another node
  // or epoch, or another node recorded its outcome): the PostgreSQL queue's stale writes.
  virtual Status Commit(const std::vector<EventWrite>& writes,
                        std::vector<std::string>* fenced = nullptr) = 0;
  // Marks queued, non-resident events due at or before now_ms resident (due
  // order, then acceptance order) — at most max_events, and at most max_bytes
  // of payload (at least one event) — and returns them.
  // Events of skip_functions (paused ones) are neither leased nor counted in
  // next_due_ms.
  virtual Result<LeasedPage> Lease(int64_t now_ms, size_t max_events, size_t max_bytes,
                                   const std::vector<std::string>& skip_functions = {}) = 0;
  // Start-up: nothing is resident (the previous engine's memory is gone).
  virtual Status ReleaseAll() = 0;
  // Extends the leases this queue holds on unfinished events to now_ms + its lease time, so
  // that an event running longer than one lease is not leased again; the dispatcher calls it
  // while events run (a lease this node lost to another is not taken back). Returns how many
  // were extended. The SQLite queue's residency does not expire: 0, nothing written.
  virtual Result<int> RenewLeases(int64_t now_ms) = 0;
  virtual Result<EventRecord> Get(const std::string& id) = 0;  // NotFound
  // Dead-lettered events of a function, oldest first.
  virtual Result<std::vector<EventRecord>> DeadLetters(const std::string& function, int limit) = 0;
  // Puts dead-lettered events of function (all, or those in ids) back in the
  // queue: attempts 0, age counted from now_ms. Returns how many.
  virtual Result<int> Redrive(const std::string& function, const std::vector<std::string>& ids,
                              int64_t now_ms) = 0;
  // Deletes succeeded and failed events finished before before_ms.
  virtual Result<int> PurgeFinished(int64_t before_ms) = 0;
  virtual Result<QueueCounts> Counts() = 0;
  // The PostgreSQL queue: this node rejoined the cluster as `epoch` (NodeStore::Rejoin);
  // leases from then on are that epoch's, and the writes of events leased under the old one
  // change nothing. The SQLite queue has no epochs: ignored.
  virtual void SetEpoch(int64_t /*epoch*/) {}
};

// Opens (creating if needed) the queue's SQLite database. fsync_commits off
// trades power-loss durability for speed (benchmarks' peer, never the default).
Result<std::unique_ptr<EventQueue>> OpenSqliteEventQueue(const std::string& path,
                                                         bool fsync_commits = true);

// The cluster's queue in conninfo's PostgreSQL database, shared by every node. `node` (its
// name) and `epoch` (its membership epoch) identify this node's leases: Lease leases events
// to it until now_ms + lease_ms (FOR UPDATE SKIP LOCKED, so two nodes never lease one event at
// once); an event whose lease ran out is leased again by any node (at least once, as a
// restart is today); ReleaseAll releases this node's leases of every epoch; the Finish,
// Requeue and Release writes of an event now leased to another node or epoch change nothing
// (fencing: the event is someone else's). Errors as OpenPgMetadataStore's (metadata_store.h).
Result<std::unique_ptr<EventQueue>> OpenPgEventQueue(const std::string& conninfo,
                                                     const std::string& node, int64_t epoch,
                                                     int64_t lease_ms = 10'000);

}  // namespace gust
