// AsyncInvoker: asynchronous invocations (Lambda's InvocationType=Event) on
// top of the Invoker and a durable EventQueue.
//
//   Enqueue(event) -> GroupCommitter (one fsync for many) -> accepted(id)
//   dispatcher: a window of queued events in memory, per-function FIFOs served
//   round-robin, at most `async_concurrency` running
//     -> Invoker::Invoke under the event's own request id
//     -> success: finished (+ the OnSuccess destination's event)
//     -> function error: requeued on disk with a back-off (base, then 2x base)
//        until MaximumRetryAttempts, then the OnFailure destination (an async
//        event for that function) or gust's dead-letter store
//     -> throttled (429) / no sandbox now: put back, the function pauses with a
//        growing back-off; not an attempt (when the window is crowded and events
//        wait on disk, the paused function's events go back to disk instead)
//     -> older than MaximumEventAgeInSeconds when its turn comes: EventAgeExceeded
//
// Durability: an event is accepted only once committed. A running event's
// concurrency slot is released only when its outcome is committed, so after a
// crash at most `async_concurrency` events run again (at-least-once, and the
// duplicates are bounded by what was in flight).
//
// Memory: at most async_window_events queued events (and 64 MB of payload)
// are resident; the rest stay on disk and are paged in (EventQueue::Lease) as
// the window empties or their retry comes due.
//
// Cluster mode (UseClusterLeases; docs/CLUSTER.md, "Step 4 as built"): the
// queue is shared by every node and "resident" is a lease held by this node.
// The window is then this node's free capacity (async_concurrency), not
// async_window_events: a node leases only what it can start now, so nodes
// share a backlog in proportion to their capacity and a recovered backlog is
// not taken by the first node up (nor replayed by it as a cold-start storm).
// An idle node polls the queue every kClusterPollMs for events accepted
// elsewhere. While the node's membership is not live (its heartbeats fail) it
// neither leases nor starts events, and the events it was running are
// abandoned: their sandboxes are killed (their leases lapsed with the
// membership, so another node may be running them already: a node cut off
// must not keep running work another node took over) and they are given back,
// not counted as an attempt (a no-op write once another node holds them).
// Membership is checked every kClusterPollMs whatever else the dispatcher
// waits for. When it is live again, the events it held but had not started go
// back to the queue (their leases may have passed to another node meanwhile). An outcome that
// cannot be written because the database is unreachable (Unavailable) keeps
// its slot and is written again every second until it is stored or fenced
// (the lease passed to another node: logged by the GroupCommitter).
//
// Errors: an accept that cannot be stored answers Unavailable (a 503 naming
// the database) when the queue is unreachable, else Internal.
//
// Thread-safety: single-threaded on the engine's io_context, like the Invoker;
// callbacks never run inline (membership_live may be called from it at any
// time, so it must be thread-safe).
#pragma once

#include <boost/asio/io_context.hpp>

#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/config.h"
#include "common/status.h"
#include "common/timer.h"
#include "engine/group_commit.h"
#include "engine/invoker.h"
#include "engine/outage_log.h"
#include "store/event_queue.h"
#include "store/metadata_store.h"

namespace gust::engine {

inline constexpr size_t kMaxAsyncPayloadBytes = 1024 * 1024;  // Lambda: 1 MB
inline constexpr int kDefaultMaxRetryAttempts = 2;
inline constexpr int kDefaultMaxEventAgeS = 21'600;

struct AsyncStats {
  size_t resident = 0;  // queued events in memory (waiting or running)
  size_t running = 0;
  bool backlog_on_disk = false;  // queued events wait on disk beyond the window
  uint64_t accepted = 0, succeeded = 0, retried = 0, failed = 0, dead_lettered = 0, throttled = 0,
           commits = 0;
};

class AsyncInvoker {
 public:
  using Accepted = std::function<void(Result<std::string> request_id)>;

  AsyncInvoker(boost::asio::io_context& io, const EngineConfig& config, Invoker& invoker,
               EventQueue& queue, MetadataStore& store);
  ~AsyncInvoker();

  // Cluster mode, before Start: leases follow free capacity, and nothing is leased or
  // started while membership_live() is false (ClusterNode::Live).
  void UseClusterLeases(std::function<bool()> membership_live);
  // Cluster mode: this node drains (`gust node drain`): from now on it leases no events
  // (accepts still go into the shared queue, unleased, for the other nodes), gives back at
  // once the leased events that have not started, and lets the running ones finish and
  // record their outcomes. stats().running is what is left. Not undone (a drained node
  // leaves; its next start joins as up).
  void Drain();
  // Releases what a previous engine held resident and starts paging in.
  Status Start();
  // Durably queues event (function, qualifier, payload; id optional: a preset
  // id that already exists is a no-op, so a replayed schedule tick runs once);
  // accepted gets the request id once it is committed. The caller checked
  // that the function exists and the payload's size.
  void Enqueue(AsyncEvent event, Accepted accepted);
  // Dead-lettered events of function (all, or ids) back into the queue.
  void Redrive(const std::string& function, std::vector<std::string> ids,
               std::function<void(Result<int>)> done);
  // The function or its event invoke configuration changed (or it was
  // deleted): cached settings are dropped and a throttle pause is lifted.
  void ConfigChanged(const std::string& function);
  // The functions whose settings are cached or whose throttle pause runs: what a node that
  // may have missed changes made elsewhere passes to ConfigChanged (engine/function_feed.h).
  std::vector<std::string> CachedFunctions() const;
  // "running" or "queued" for a resident event, nullopt otherwise.
  std::optional<std::string> ResidentState(const std::string& id) const;
  AsyncStats stats() const;
  // Stops dispatching; running events finish but their outcomes are not
  // recorded (they stay queued on disk and run again at the next start).
  void Shutdown();

 private:
  struct Item;
  struct FunctionQueue {
    std::deque<std::shared_ptr<Item>> ready;
    int running = 0;
    int64_t paused_until_ms = 0;  // after a throttle
    int64_t backoff_ms = 0;
  };
  struct Settings {
    int max_retry_attempts = kDefaultMaxRetryAttempts;
    int max_event_age_s = kDefaultMaxEventAgeS;
    std::string on_success, on_failure;
  };

  void AddResident(std::shared_ptr<Item> item);
  void Pump();
  void Dispatch(const std::shared_ptr<Item>& item);
  void OnResult(const std::shared_ptr<Item>& item, InvokeResponse response);
  // Commits the event's outcome (and a destination event), then frees its slot.
  void Finish(const std::shared_ptr<Item>& item, EventStatus status, const std::string& condition,
              std::string response, const std::string& function_error,
              const std::string& executed_version);
  void Requeue(const std::shared_ptr<Item>& item, std::string error);
  void Release(const std::shared_ptr<Item>& item);
  // When queued events wait on disk and the window is crowded, moves the
  // waiting events of a paused function back to disk (due when its pause
  // ends), so one throttled function cannot hold the window others need.
  void SpillIfCrowded(const std::string& function);
  // Commits writes; while the queue answers Unavailable, tries again every second (the
  // event's lease is kept by the heartbeats meanwhile). then(status) once stored or failed
  // for another reason.
  void CommitUntilStored(std::vector<EventWrite> writes, std::function<void(const Status&)> then);
  // The events held in memory at most: the window, or this node's capacity in a cluster.
  size_t Window() const;
  // Cluster mode: false while this node's membership is not live (logged when it changes;
  // running events are abandoned when it lapses).
  bool MayLease();
  // Cluster mode: MayLease() every kClusterPollMs, so a lapse is acted on while the
  // dispatcher waits on a database that does not answer.
  void WatchMembership();
  // Kills the sandboxes of the running events (their outcomes become a give-back).
  void AbandonRunning();
  void Abandon(const std::shared_ptr<Item>& item);
  // The write that gives an event back to the queue (unleased; a no-op for an event whose
  // lease passed to another node).
  static EventWrite GiveBack(const AsyncEvent& event);
  // Drops a waiting event from the window; returns the write that gives it back to disk.
  EventWrite Evict(const Item& item);
  // Moves the resident events that have not started back to the queue.
  void ReleaseWaiting();
  void NoteBacklog(int64_t due_ms);
  void MaybePageIn();
  void ArmTimer(int64_t at_ms);
  void Purge();
  const Settings& SettingsFor(const std::string& function, const std::string& qualifier);

  boost::asio::io_context& io_;
  EngineConfig config_;
  Invoker& invoker_;
  EventQueue& queue_;
  MetadataStore& store_;
  GroupCommitter committer_;
  OutageLog page_ins_log_;
  Timer timer_;
  Timer purge_timer_;
  Timer membership_timer_;  // cluster mode: WatchMembership
  int64_t timer_at_ms_ = std::numeric_limits<int64_t>::max();
  bool shutting_down_ = false;

  std::unordered_map<std::string, std::shared_ptr<Item>> resident_;  // by id
  std::map<std::string, FunctionQueue> queues_;                      // by function
  std::string last_served_;  // round-robin cursor over queues_
  size_t resident_bytes_ = 0;
  size_t accepting_ = 0;  // resident inserts not yet committed
  size_t running_ = 0;
  // Earliest due time of queued events on disk but not resident (max: none).
  int64_t backlog_due_ms_ = std::numeric_limits<int64_t>::max();
  bool paging_ = false;
  int64_t backlog_while_paging_ms_ = std::numeric_limits<int64_t>::max();
  std::unordered_map<std::string, Settings> settings_;  // "function\nqualifier"
  // Functions paused after a throttle, until when: page-ins skip their events.
  std::map<std::string, int64_t> paused_;
  AsyncStats counters_;
  std::function<bool()> membership_live_;  // set: cluster mode
  bool lease_lost_ = false;                // cluster mode: membership not live when last seen
  bool draining_ = false;                  // cluster mode: Drain() was called
  bool writes_waiting_ = false;            // an outcome waits for the queue to come back
};

}  // namespace gust::engine
