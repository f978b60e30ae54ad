// PgEventQueue: EventQueue over PostgreSQL's `events` table (pg_schema.h, migration 4),
// shared by the nodes of a cluster. SqliteEventQueue's `resident` flag becomes a lease
// (lease_node, lease_epoch, lease_until): an event is resident for the node that holds an
// unexpired lease on it, and free for every node once the lease runs out. Lease picks rows
// with FOR UPDATE SKIP LOCKED, so concurrent Leases of two nodes skip each other's rows
// instead of waiting or handing one event to both.
#include <algorithm>
#include <atomic>

#include "common/clock.h"
#include "common/mutex.h"
#include "common/thread_annotations.h"
#include "store/event_queue.h"
#include "store/event_rules.h"
#include "store/pg_schema.h"
#include "store/pg_util.h"

namespace gust {
namespace {

using pg::Params;
using pg::Rows;

constexpr const char* kRecordColumns =
    "SELECT id, function, qualifier, payload, source, enqueued_ms, due_ms, attempts, status, "
    "last_attempt_ms, finished_ms, condition, response, response_truncated, destination "
    "FROM events ";

// A write to a leased event applies only for the lease's holder (or to an unleased event):
// the condition, with the node's name and epoch the parameters $n and $n+1.
std::string HeldByUs(int n) {
  return " AND (lease_node = '' OR (lease_node = $" + std::to_string(n) + " AND lease_epoch = $" +
         std::to_string(n + 1) + "))";
}

EventRecord ReadRecord(const Rows& rows, int i) { return event_rules::ReadRecord(rows.at(i)); }

// " AND function NOT IN ($first, ...)" for the paused functions, added to params.
std::string SkipClause(const std::vector<std::string>& skip_functions, Params* params) {
  std::string skip;
  for (const std::string& f : skip_functions) {
    skip += skip.empty() ? " AND function NOT IN (" : ", ";
    params->Add(f);
    skip += "$" + std::to_string(params->size());
  }
  if (!skip.empty()) skip += ")";
  return skip;
}

class PgEventQueue : public EventQueue {
 public:
  PgEventQueue(std::unique_ptr<pg::Connection> db, std::string node, int64_t epoch,
               int64_t lease_ms)
      : db_(std::move(db)), node_(std::move(node)), epoch_(epoch), lease_ms_(lease_ms) {}

  void SetEpoch(int64_t epoch) override { epoch_.store(epoch); }

  Status Commit(const std::vector<EventWrite>& writes, std::vector<std::string>* fenced) override {
    MutexLock lock(&mu_);
    std::vector<std::string> stale;
    Status s = db_->InTransaction([&]() REQUIRES(mu_) -> Status {
      stale.clear();  // not carried over from a failed attempt
      for (const EventWrite& w : writes) {
        GUST_ASSIGN_OR_RETURN(Rows changed, Apply(w));
        // An insert of an existing id is a no-op by design (a replayed schedule tick).
        if (w.kind != EventWrite::Kind::kInsert && changed.affected() == 0) {
          stale.push_back(w.event.id);
        }
      }
      return Status::Ok();
    });
    if (s.ok() && fenced != nullptr) *fenced = std::move(stale);
    return s;
  }

  Result<LeasedPage> Lease(int64_t now_ms, size_t max_events, size_t max_bytes,
                           const std::vector<std::string>& skip_functions) override {
    MutexLock lock(&mu_);
    LeasedPage page;
    Status s = db_->InTransaction([&]() REQUIRES(mu_) -> Status {
      Params params;
      params.Add(now_ms).Add(static_cast<int64_t>(max_events));
      std::string skip = SkipClause(skip_functions, &params);
      GUST_ASSIGN_OR_RETURN(
          Rows rows,
          db_->Exec(("SELECT seq, id, function, qualifier, payload, source, enqueued_ms, due_ms, "
                     "attempts FROM events WHERE status = 0 AND due_ms <= $1 AND "
                     "(lease_node = '' OR lease_until < $1)" +
                     skip + " ORDER BY due_ms, seq LIMIT $2 FOR UPDATE SKIP LOCKED")
                        .c_str(),
                    params));
      std::string seqs;
      size_t bytes = 0;
      for (int i = 0; i < rows.size(); ++i) {
        AsyncEvent e;
        e.payload = rows.Text(i, 4);
        if (!page.events.empty() && bytes + e.payload.size() > max_bytes) break;
        bytes += e.payload.size();
        seqs += (seqs.empty() ? "{" : ",") + rows.Text(i, 0);
        e.id = rows.Text(i, 1);
        e.function = rows.Text(i, 2);
        e.qualifier = rows.Text(i, 3);
        e.source = rows.Text(i, 5);
        e.enqueued_ms = rows.Int(i, 6);
        e.due_ms = rows.Int(i, 7);
        e.attempts = static_cast<int>(rows.Int(i, 8));
        page.events.push_back(std::move(e));
      }
      if (!seqs.empty()) {
        GUST_RETURN_IF_ERROR(
            db_->Exec(
                   "UPDATE events SET lease_node = $2, lease_epoch = $3, "
                   "lease_until = $4 WHERE seq = ANY($1::bigint[])",
                   Params().Add(seqs + "}").Add(node_).Add(epoch_.load()).Add(now_ms + lease_ms_))
                .status());
      }
      // The next event this node could lease: a free one when due, one leased elsewhere
      // when due and its lease has run out. Two index walks, not one MIN over every pending
      // event (a full scan of a large backlog on every lease; bench/RESULTS.md, "Async
      // next-due time"): the earliest free event in due order (events_ready; the
      // leased ones it steps over are those in flight), and the leased events (events_leases:
      // as many as run now).
      Params next_params;
      next_params.Add(now_ms).Add(node_);
      std::string next_skip = SkipClause(skip_functions, &next_params);
      GUST_ASSIGN_OR_RETURN(
          Rows next,
          db_->Exec(("SELECT LEAST((SELECT due_ms FROM events WHERE status = 0 AND lease_node = "
                     "''" +
                     next_skip +
                     " ORDER BY due_ms, seq LIMIT 1), (SELECT MIN(GREATEST(due_ms, lease_until + "
                     "1)) FROM events WHERE status = 0 AND lease_node <> '' AND NOT (lease_node "
                     "= $2 AND lease_until >= $1)" +
                     next_skip + "))")
                        .c_str(),
                    next_params));
      if (!next.IsNull(0, 0)) page.next_due_ms = next.Int(0, 0);
      return Status::Ok();
    });
    if (!s.ok()) return s;
    return page;
  }

  Status ReleaseAll() override {
    MutexLock lock(&mu_);
    return db_
        ->Exec(
            "UPDATE events SET lease_node = '', lease_epoch = 0, lease_until = 0 "
            "WHERE status = 0 AND lease_node = $1",
            Params().Add(node_))
        .status();
  }

  Result<int> RenewLeases(int64_t now_ms) override {
    MutexLock lock(&mu_);
    // Under READ COMMITTED a row another node is leasing at this moment is re-checked after its
    // lock is released: lease_node is then the other node's, and the row is not ours to extend.
    GUST_ASSIGN_OR_RETURN(
        Rows renewed, db_->Exec("UPDATE events SET lease_until = $1 WHERE "
                                "status = 0 AND lease_node = $2 AND "
                                "lease_epoch = $3",
                                Params().Add(now_ms + lease_ms_).Add(node_).Add(epoch_.load())));
    return static_cast<int>(renewed.affected());
  }

  Result<EventRecord> Get(const std::string& id) override {
    MutexLock lock(&mu_);
    GUST_ASSIGN_OR_RETURN(
        Rows rows,
        db_->Exec((std::string(kRecordColumns) + "WHERE id = $1").c_str(), Params().Add(id)));
    if (rows.empty()) return event_rules::NotFound(id);
    return ReadRecord(rows, 0);
  }

  Result<std::vector<EventRecord>> DeadLetters(const std::string& function, int limit) override {
    MutexLock lock(&mu_);
    GUST_ASSIGN_OR_RETURN(Rows rows,
                          db_->Exec((std::string(kRecordColumns) +
                                     "WHERE status = 3 AND function = $1 ORDER BY seq LIMIT $2")
                                        .c_str(),
                                    Params().Add(function).Add(limit)));
    std::vector<EventRecord> out;
    for (int i = 0; i < rows.size(); ++i) out.push_back(ReadRecord(rows, i));
    return out;
  }

  Result<int> Redrive(const std::string& function, const std::vector<std::string>& ids,
                      int64_t now_ms) override {
    MutexLock lock(&mu_);
    int changed = 0;
    Status s = db_->InTransaction([&]() REQUIRES(mu_) -> Status {
      const std::string sql =
          "UPDATE events SET status = 0, lease_node = '', lease_epoch = 0, lease_until = 0, "
          "attempts = 0, enqueued_ms = $1, due_ms = $1, finished_ms = 0, condition = '', "
          "source = 'redrive' WHERE status = 3 AND function = $2";
      if (ids.empty()) {
        GUST_ASSIGN_OR_RETURN(Rows u, db_->Exec(sql.c_str(), Params().Add(now_ms).Add(function)));
        changed += static_cast<int>(u.affected());
        return Status::Ok();
      }
      for (const std::string& id : ids) {
        GUST_ASSIGN_OR_RETURN(Rows u, db_->Exec((sql + " AND id = $3").c_str(),
                                                Params().Add(now_ms).Add(function).Add(id)));
        changed += static_cast<int>(u.affected());
      }
      return Status::Ok();
    });
    if (!s.ok()) return s;
    return changed;
  }

  Result<int> PurgeFinished(int64_t before_ms) override {
    MutexLock lock(&mu_);
    GUST_ASSIGN_OR_RETURN(
        Rows d, db_->Exec("DELETE FROM events WHERE status IN (1, 2) AND finished_ms < $1",
                          Params().Add(before_ms)));
    return static_cast<int>(d.affected());
  }

  Result<QueueCounts> Counts() override {
    MutexLock lock(&mu_);
    GUST_ASSIGN_OR_RETURN(Rows rows, db_->Exec("SELECT status, COUNT(*) FROM events GROUP BY "
                                               "status"));
    QueueCounts c;
    for (int i = 0; i < rows.size(); ++i) event_rules::AddCount(rows.Int(i, 0), rows.Int(i, 1), &c);
    return c;
  }

 private:
  Result<Rows> Apply(const EventWrite& w) REQUIRES(mu_) {
    const AsyncEvent& e = w.event;
    switch (w.kind) {
      case EventWrite::Kind::kInsert:
        // A resident insert is this node's from the start: leased from its acceptance.
        return db_->Exec(
            "INSERT INTO events(id, function, qualifier, payload, source, enqueued_ms, "
            "due_ms, attempts, status, lease_node, lease_epoch, lease_until) VALUES "
            "($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, $10, $11) ON CONFLICT (id) DO NOTHING",
            Params()
                .Add(e.id)
                .Add(e.function)
                .Add(e.qualifier)
                .Add(e.payload)
                .Add(e.source)
                .Add(e.enqueued_ms)
                .Add(e.due_ms)
                .Add(e.attempts)
                .Add(w.resident ? node_ : std::string())
                .Add(w.resident ? epoch_.load() : int64_t{0})
                .Add(w.resident ? e.enqueued_ms + lease_ms_ : int64_t{0}));
      case EventWrite::Kind::kFinish:
        return db_->Exec(
            (std::string("UPDATE events SET status = $2, attempts = $3, lease_node = '', "
                         "lease_epoch = 0, lease_until = 0, last_attempt_ms = $4, "
                         "finished_ms = $4, condition = $5, response = $6, "
                         "response_truncated = $7, destination = $8 WHERE id = $1 AND status = 0") +
             HeldByUs(9))
                .c_str(),
            Params()
                .Add(e.id)
                .Add(static_cast<int>(w.status))
                .Add(e.attempts)
                .Add(w.at_ms)
                .Add(w.condition)
                .Add(event_rules::StoredResponse(w.response))
                .Add(w.response.size() > kMaxStoredResponseBytes)
                .Add(w.destination)
                .Add(node_)
                .Add(epoch_.load()));
      case EventWrite::Kind::kRequeue:
        return db_->Exec(
            (std::string("UPDATE events SET attempts = $2, due_ms = $3, lease_node = '', "
                         "lease_epoch = 0, lease_until = 0, last_attempt_ms = $4, "
                         "response = $5 WHERE id = $1 AND status = 0") +
             HeldByUs(6))
                .c_str(),
            Params()
                .Add(e.id)
                .Add(e.attempts)
                .Add(e.due_ms)
                .Add(w.at_ms)
                .Add(event_rules::StoredResponse(w.response))
                .Add(node_)
                .Add(epoch_.load()));
      case EventWrite::Kind::kRelease:
        return db_->Exec((std::string("UPDATE events SET lease_node = '', lease_epoch = 0, "
                                      "lease_until = 0, due_ms = $2 WHERE id = $1 AND status = 0") +
                          HeldByUs(3))
                             .c_str(),
                         Params().Add(e.id).Add(e.due_ms).Add(node_).Add(epoch_.load()));
    }
    return Status::Internal("unknown event write");
  }

  Mutex mu_;
  std::unique_ptr<pg::Connection> db_ GUARDED_BY(mu_);
  const std::string node_;
  std::atomic<int64_t> epoch_;  // SetEpoch: a rejoin's
  const int64_t lease_ms_;
};

}  // namespace

Result<std::unique_ptr<EventQueue>> OpenPgEventQueue(const std::string& conninfo,
                                                     const std::string& node, int64_t epoch,
                                                     int64_t lease_ms) {
  GUST_ASSIGN_OR_RETURN(auto db, pg_schema::Connect(conninfo, "event queue"));
  return std::unique_ptr<EventQueue>(
      std::make_unique<PgEventQueue>(std::move(db), node, epoch, lease_ms));
}

}  // namespace gust
