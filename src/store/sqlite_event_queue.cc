// SqliteEventQueue: EventQueue over one SQLite connection (WAL,
// synchronous=FULL). Layout: one `events` table; `seq` (the rowid) is the
// acceptance order; partial indexes serve the dispatcher's page-in (queued,
// not resident, by due time), the dead-letter listing and the purge.
#include <sqlite3.h>

#include <iterator>

#include "common/mutex.h"
#include "common/thread_annotations.h"
#include "store/event_queue.h"
#include "store/event_rules.h"
#include "store/sqlite_util.h"

namespace gust {

namespace event_rules {

Status NotFound(const std::string& id) {
  return Status::NotFound("no asynchronous invocation with request id " + id);
}

std::string_view StoredResponse(const std::string& response) {
  return std::string_view(response).substr(0, std::min(response.size(), kMaxStoredResponseBytes));
}

void AddCount(int64_t status, int64_t n, QueueCounts* c) {
  switch (static_cast<EventStatus>(status)) {
    case EventStatus::kQueued:
      c->queued = n;
      break;
    case EventStatus::kSucceeded:
      c->succeeded = n;
      break;
    case EventStatus::kFailed:
      c->failed = n;
      break;
    case EventStatus::kDeadLettered:
      c->dead_lettered = n;
      break;
  }
}

}  // namespace event_rules

namespace {

using sqlite::Statement;

constexpr const char* kMigrations[] = {R"sql(
CREATE TABLE events (
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  function TEXT NOT NULL,
  qualifier TEXT NOT NULL,
  payload TEXT NOT NULL,
  source TEXT NOT NULL,
  enqueued_ms INTEGER NOT NULL,
  due_ms INTEGER NOT NULL,
  attempts INTEGER NOT NULL,
  resident INTEGER NOT NULL,
  status INTEGER NOT NULL,
  last_attempt_ms INTEGER NOT NULL DEFAULT 0,
  finished_ms INTEGER NOT NULL DEFAULT 0,
  condition TEXT NOT NULL DEFAULT '',
  response TEXT NOT NULL DEFAULT '',
  response_truncated INTEGER NOT NULL DEFAULT 0,
  destination TEXT NOT NULL DEFAULT ''
);
CREATE INDEX events_ready ON events(resident, due_ms, seq) WHERE status = 0;
CREATE INDEX events_dead ON events(function, seq) WHERE status = 3;
CREATE INDEX events_finished ON events(finished_ms) WHERE status IN (1, 2);
)sql"};

constexpr const char* kRecordColumns =
    "SELECT id, function, qualifier, payload, source, enqueued_ms, due_ms, attempts, status, "
    "last_attempt_ms, finished_ms, condition, response, response_truncated, destination "
    "FROM events ";

using event_rules::ReadRecord;

class SqliteEventQueue : public EventQueue {
 public:
  explicit SqliteEventQueue(std::unique_ptr<sqlite::Database> db) : db_(std::move(db)) {}

  Status Init() {
    MutexLock lock(&mu_);
    return db_->Migrate(kMigrations, static_cast<int>(std::size(kMigrations)));
  }

  // One engine owns the file: no write is ever fenced.
  Status Commit(const std::vector<EventWrite>& writes,
                std::vector<std::string>* /*fenced*/) override {
    MutexLock lock(&mu_);
    return db_->InTransaction([&]() REQUIRES(mu_) -> Status {
      for (const EventWrite& w : writes) GUST_RETURN_IF_ERROR(Apply(w));
      return Status::Ok();
    });
  }

  Result<LeasedPage> Lease(int64_t now_ms, size_t max_events, size_t max_bytes,
                           const std::vector<std::string>& skip_functions) override {
    std::string skip;
    for (size_t i = 0; i < skip_functions.size(); ++i)
      skip += i ? ", ?" : " AND function NOT IN (?";
    if (!skip.empty()) skip += ")";
    MutexLock lock(&mu_);
    LeasedPage page;
    Status s = db_->InTransaction([&]() REQUIRES(mu_) -> Status {
      std::vector<int64_t> seqs;
      {
        GUST_ASSIGN_OR_RETURN(
            Statement q,
            db_->Prepare("SELECT seq, id, function, qualifier, payload, source, enqueued_ms, "
                         "due_ms, attempts FROM events WHERE status = 0 AND resident = 0 AND "
                         "due_ms <= ?" +
                         skip + " ORDER BY due_ms, seq LIMIT ?"));
        int at = 1;
        q.Bind(at++, now_ms);
        for (const std::string& f : skip_functions) q.Bind(at++, f);
        q.Bind(at, static_cast<int64_t>(max_events));
        size_t bytes = 0;
        while (true) {
          GUST_ASSIGN_OR_RETURN(bool row, q.Step());
          if (!row) break;
          AsyncEvent e;
          e.payload = q.Text(4);
          if (!page.events.empty() && bytes + e.payload.size() > max_bytes) break;
          bytes += e.payload.size();
          seqs.push_back(q.Int(0));
          e.id = q.Text(1);
          e.function = q.Text(2);
          e.qualifier = q.Text(3);
          e.source = q.Text(5);
          e.enqueued_ms = q.Int(6);
          e.due_ms = q.Int(7);
          e.attempts = static_cast<int>(q.Int(8));
          page.events.push_back(std::move(e));
        }
      }
      for (int64_t seq : seqs) {
        GUST_ASSIGN_OR_RETURN(Statement u,
                              db_->Prepare("UPDATE events SET resident = 1 WHERE seq = ?"));
        GUST_RETURN_IF_ERROR(u.Bind(1, seq).Run());
      }
      GUST_ASSIGN_OR_RETURN(
          Statement next,
          db_->Prepare("SELECT MIN(due_ms) FROM events WHERE status = 0 AND resident = 0" + skip));
      for (size_t i = 0; i < skip_functions.size(); ++i)
        next.Bind(static_cast<int>(i) + 1, skip_functions[i]);
      GUST_ASSIGN_OR_RETURN(bool row, next.Step());
      if (row && !next.IsNull(0)) page.next_due_ms = next.Int(0);
      return Status::Ok();
    });
    if (!s.ok()) return s;
    return page;
  }

  Status ReleaseAll() override {
    MutexLock lock(&mu_);
    return db_->Exec("UPDATE events SET resident = 0 WHERE status = 0 AND resident = 1");
  }

  Result<int> RenewLeases(int64_t /*now_ms*/) override { return 0; }

  Result<EventRecord> Get(const std::string& id) override {
    MutexLock lock(&mu_);
    GUST_ASSIGN_OR_RETURN(Statement q, db_->Prepare(std::string(kRecordColumns) + "WHERE id = ?"));
    GUST_ASSIGN_OR_RETURN(bool row, q.Bind(1, id).Step());
    if (!row) return event_rules::NotFound(id);
    return ReadRecord(q);
  }

  Result<std::vector<EventRecord>> DeadLetters(const std::string& function, int limit) override {
    MutexLock lock(&mu_);
    GUST_ASSIGN_OR_RETURN(Statement q,
                          db_->Prepare(std::string(kRecordColumns) +
                                       "WHERE status = 3 AND function = ? ORDER BY seq LIMIT ?"));
    q.Bind(1, function).Bind(2, static_cast<int64_t>(limit));
    std::vector<EventRecord> out;
    while (true) {
      GUST_ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) break;
      out.push_back(ReadRecord(q));
    }
    return out;
  }

  Result<int> Redrive(const std::string& function, const std::vector<std::string>& ids,
                      int64_t now_ms) override {
    MutexLock lock(&mu_);
    int changed = 0;
    Status s = db_->InTransaction([&]() REQUIRES(mu_) -> Status {
      const char* sql =
          "UPDATE events SET status = 0, resident = 0, attempts = 0, enqueued_ms = ?, due_ms = ?, "
          "finished_ms = 0, condition = '', source = 'redrive' WHERE status = 3 AND function = ?";
      if (ids.empty()) {
        GUST_ASSIGN_OR_RETURN(Statement u, db_->Prepare(sql));
        GUST_RETURN_IF_ERROR(u.Bind(1, now_ms).Bind(2, now_ms).Bind(3, function).Run());
        changed += sqlite3_changes(db_->handle());
        return Status::Ok();
      }
      for (const std::string& id : ids) {
        GUST_ASSIGN_OR_RETURN(Statement u, db_->Prepare(std::string(sql) + " AND id = ?"));
        GUST_RETURN_IF_ERROR(u.Bind(1, now_ms).Bind(2, now_ms).Bind(3, function).Bind(4, id).Run());
        changed += sqlite3_changes(db_->handle());
      }
      return Status::Ok();
    });
    if (!s.ok()) return s;
    return changed;
  }

  Result<int> PurgeFinished(int64_t before_ms) override {
    MutexLock lock(&mu_);
    GUST_ASSIGN_OR_RETURN(
        Statement d, db_->Prepare("DELETE FROM events WHERE status IN (1, 2) AND finished_ms < ?"));
    GUST_RETURN_IF_ERROR(d.Bind(1, before_ms).Run());
    return sqlite3_changes(db_->handle());
  }

  Result<QueueCounts> Counts() override {
    MutexLock lock(&mu_);
    GUST_ASSIGN_OR_RETURN(Statement q,
                          db_->Prepare("SELECT status, COUNT(*) FROM events GROUP BY status"));
    QueueCounts c;
    while (true) {
      GUST_ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) break;
      event_rules::AddCount(q.Int(0), q.Int(1), &c);
    }
    return c;
  }

 private:
  Status Apply(const EventWrite& w) REQUIRES(mu_) {
    const AsyncEvent& e = w.event;
    switch (w.kind) {
      case EventWrite::Kind::kInsert: {
        GUST_ASSIGN_OR_RETURN(
            Statement st,
            db_->Prepare("INSERT OR IGNORE INTO events(id, function, qualifier, payload, source, "
                         "enqueued_ms, due_ms, attempts, resident, status) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0)"));
        return st.Bind(1, e.id)
            .Bind(2, e.function)
            .Bind(3, e.qualifier)
            .Bind(4, e.payload)
            .Bind(5, e.source)
            .Bind(6, e.enqueued_ms)
            .Bind(7, e.due_ms)
            .Bind(8, e.attempts)
            .Bind(9, w.resident ? 1 : 0)
            .Run();
      }
      case EventWrite::Kind::kFinish: {
        bool cut = w.response.size() > kMaxStoredResponseBytes;
        GUST_ASSIGN_OR_RETURN(
            Statement st,
            db_->Prepare("UPDATE events SET status = ?, attempts = ?, resident = 0, "
                         "last_attempt_ms = ?, finished_ms = ?, condition = ?, response = ?, "
                         "response_truncated = ?, destination = ? WHERE id = ?"));
        return st.Bind(1, static_cast<int>(w.status))
            .Bind(2, e.attempts)
            .Bind(3, w.at_ms)
            .Bind(4, w.at_ms)
            .Bind(5, w.condition)
            .Bind(6, event_rules::StoredResponse(w.response))
            .Bind(7, cut ? 1 : 0)
            .Bind(8, w.destination)
            .Bind(9, e.id)
            .Run();
      }
      case EventWrite::Kind::kRequeue: {
        GUST_ASSIGN_OR_RETURN(
            Statement st,
            db_->Prepare("UPDATE events SET attempts = ?, due_ms = ?, resident = 0, "
                         "last_attempt_ms = ?, response = ? WHERE id = ? AND status = 0"));
        return st.Bind(1, e.attempts)
            .Bind(2, e.due_ms)
            .Bind(3, w.at_ms)
            .Bind(4, event_rules::StoredResponse(w.response))
            .Bind(5, e.id)
            .Run();
      }
      case EventWrite::Kind::kRelease: {
        GUST_ASSIGN_OR_RETURN(
            Statement st,
            db_->Prepare("UPDATE events SET resident = 0, due_ms = ? WHERE id = ? AND status = 0"));
        return st.Bind(1, e.due_ms).Bind(2, e.id).Run();
      }
    }
    return Status::Internal("unknown event write");
  }

  Mutex mu_;
  std::unique_ptr<sqlite::Database> db_ GUARDED_BY(mu_);
};

}  // namespace

std::string_view EventStatusName(EventStatus status) {
  switch (status) {
    case EventStatus::kQueued:
      return "queued";
    case EventStatus::kSucceeded:
      return "succeeded";
    case EventStatus::kFailed:
      return "failed";
    case EventStatus::kDeadLettered:
      return "dead-lettered";
  }
  return "unknown";
}

Result<std::unique_ptr<EventQueue>> OpenSqliteEventQueue(const std::string& path,
                                                         bool fsync_commits) {
  GUST_ASSIGN_OR_RETURN(auto db, sqlite::Database::Open(path, "event queue", fsync_commits));
  auto queue = std::make_unique<SqliteEventQueue>(std::move(db));
  GUST_RETURN_IF_ERROR(queue->Init().WithContext("open event queue " + path));
  return std::unique_ptr<EventQueue>(std::move(queue));
}

}  // namespace gust
