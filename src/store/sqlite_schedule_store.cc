// SqliteScheduleStore: ScheduleStore over one SQLite connection (WAL). One
// `schedules` table keyed by name.
#include <sqlite3.h>

#include <iterator>

#include "common/mutex.h"
#include "common/thread_annotations.h"
#include "store/schedule_rules.h"
#include "store/schedule_store.h"
#include "store/sqlite_util.h"

namespace gust {

namespace schedule_rules {

Status MergeWithStored(const Schedule& old, Schedule* s) {
  if (old.group != s->group) {
    return Status::Conflict("schedule " + s->name + " belongs to group '" + old.group + "', not '" +
                            s->group + "'");
  }
  s->created_ms = old.created_ms;
  if (old.expression == s->expression && old.timezone == s->timezone) {
    s->anchor_ms = old.anchor_ms;
    s->last_fire_ms = old.last_fire_ms;
    s->last_error = old.last_error;
  }
  return Status::Ok();
}

Status NotFound(const std::string& name) { return Status::NotFound("Schedule not found: " + name); }

Status ReplaceGroupRows(const std::string& group, const std::vector<std::string>& old_names,
                        const std::vector<Schedule>& schedules,
                        const std::function<Status(const std::string&)>& remove,
                        const std::function<Status(const Schedule&)>& upsert) {
  for (const std::string& name : old_names) {
    bool kept = false;
    for (const Schedule& s : schedules) kept = kept || s.name == name;
    if (!kept) GUST_RETURN_IF_ERROR(remove(name));
  }
  for (Schedule s : schedules) {
    s.group = group;
    GUST_RETURN_IF_ERROR(upsert(s));
  }
  return Status::Ok();
}

}  // namespace schedule_rules

namespace {

using sqlite::Statement;

constexpr const char* kMigrations[] = {R"sql(
CREATE TABLE schedules (
  name TEXT PRIMARY KEY,
  grp TEXT NOT NULL,
  function TEXT NOT NULL,
  qualifier TEXT NOT NULL,
  expression TEXT NOT NULL,
  timezone TEXT NOT NULL,
  kind TEXT NOT NULL,
  enabled INTEGER NOT NULL,
  payload TEXT NOT NULL,
  anchor_ms INTEGER NOT NULL,
  created_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL,
  last_fire_ms INTEGER NOT NULL,
  last_error TEXT NOT NULL
);
CREATE INDEX schedules_by_group ON schedules(grp, name);
)sql"};

constexpr const char* kColumns =
    "SELECT name, grp, function, qualifier, expression, kind, enabled, payload, anchor_ms, "
    "created_ms, updated_ms, last_fire_ms, last_error, timezone FROM schedules ";

using schedule_rules::ReadRow;

class SqliteScheduleStore : public ScheduleStore {
 public:
  explicit SqliteScheduleStore(std::unique_ptr<sqlite::Database> db) : db_(std::move(db)) {}

  Status Init() {
    MutexLock lock(&mu_);
    return db_->Migrate(kMigrations, static_cast<int>(std::size(kMigrations)));
  }

  Status Put(const Schedule& schedule) override {
    MutexLock lock(&mu_);
    return db_->InTransaction([&]() REQUIRES(mu_) { return Upsert(schedule); });
  }

  Result<Schedule> Get(const std::string& name) override {
    MutexLock lock(&mu_);
    return Load(name);
  }

  Result<std::vector<Schedule>> List(const std::string& group) override {
    MutexLock lock(&mu_);
    GUST_ASSIGN_OR_RETURN(
        Statement q,
        db_->Prepare(std::string(kColumns) +
                     (group.empty() ? "ORDER BY name" : "WHERE grp = ? ORDER BY name")));
    if (!group.empty()) q.Bind(1, group);
    std::vector<Schedule> out;
    while (true) {
      GUST_ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) break;
      out.push_back(ReadRow(q));
    }
    return out;
  }

  Status Delete(const std::string& name) override {
    MutexLock lock(&mu_);
    GUST_ASSIGN_OR_RETURN(Statement d, db_->Prepare("DELETE FROM schedules WHERE name = ?"));
    GUST_RETURN_IF_ERROR(d.Bind(1, name).Run());
    if (sqlite3_changes(db_->handle()) == 0) return NotFound(name);
    return Status::Ok();
  }

  Result<int> DeleteGroup(const std::string& group) override {
    MutexLock lock(&mu_);
    GUST_ASSIGN_OR_RETURN(Statement d, db_->Prepare("DELETE FROM schedules WHERE grp = ?"));
    GUST_RETURN_IF_ERROR(d.Bind(1, group).Run());
    return sqlite3_changes(db_->handle());
  }

  Status ReplaceGroup(const std::string& group, const std::vector<Schedule>& schedules) override {
    MutexLock lock(&mu_);
    return db_->InTransaction([&]() REQUIRES(mu_) -> Status {
      std::vector<std::string> old_names;
      {
        GUST_ASSIGN_OR_RETURN(Statement q,
                              db_->Prepare("SELECT name FROM schedules WHERE grp = ?"));
        q.Bind(1, group);
        while (true) {
          GUST_ASSIGN_OR_RETURN(bool row, q.Step());
          if (!row) break;
          old_names.push_back(q.Text(0));
        }
      }
      return schedule_rules::ReplaceGroupRows(
          group, old_names, schedules,
          [&](const std::string& name) REQUIRES(mu_) -> Status {
            GUST_ASSIGN_OR_RETURN(Statement d,
                                  db_->Prepare("DELETE FROM schedules WHERE name = ?"));
            return d.Bind(1, name).Run();
          },
          [&](const Schedule& s) REQUIRES(mu_) { return Upsert(s); });
    });
  }

  Status RecordFire(const std::string& name, int64_t tick_ms, const std::string& error) override {
    MutexLock lock(&mu_);
    GUST_ASSIGN_OR_RETURN(
        Statement u,
        db_->Prepare("UPDATE schedules SET last_fire_ms = MAX(last_fire_ms, ?), last_error = ? "
                     "WHERE name = ?"));
    return u.Bind(1, tick_ms).Bind(2, error).Bind(3, name).Run();
  }

 private:
  static Status NotFound(const std::string& name) { return schedule_rules::NotFound(name); }

  Result<Schedule> Load(const std::string& name) REQUIRES(mu_) {
    GUST_ASSIGN_OR_RETURN(Statement q, db_->Prepare(std::string(kColumns) + "WHERE name = ?"));
    GUST_ASSIGN_OR_RETURN(bool row, q.Bind(1, name).Step());
    if (!row) return NotFound(name);
    return ReadRow(q);
  }

  Status Upsert(Schedule s) REQUIRES(mu_) {
    auto old = Load(s.name);
    if (old.ok()) {
      GUST_RETURN_IF_ERROR(schedule_rules::MergeWithStored(*old, &s));
    } else if (old.status().code() != Code::kNotFound) {
      return old.status();
    }
    GUST_ASSIGN_OR_RETURN(
        Statement st,
        db_->Prepare("INSERT OR REPLACE INTO schedules(name, grp, function, qualifier, expression, "
                     "kind, enabled, payload, anchor_ms, created_ms, updated_ms, last_fire_ms, "
                     "last_error, timezone) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
    return st.Bind(1, s.name)
        .Bind(2, s.group)
        .Bind(3, s.function)
        .Bind(4, s.qualifier)
        .Bind(5, s.expression)
        .Bind(6, s.kind)
        .Bind(7, s.enabled ? 1 : 0)
        .Bind(8, s.payload)
        .Bind(9, s.anchor_ms)
        .Bind(10, s.created_ms)
        .Bind(11, s.updated_ms)
        .Bind(12, s.last_fire_ms)
        .Bind(13, s.last_error)
        .Bind(14, s.timezone)
        .Run();
  }

  Mutex mu_;
  std::unique_ptr<sqlite::Database> db_ GUARDED_BY(mu_);
};

}  // namespace

Result<std::unique_ptr<ScheduleStore>> OpenSqliteScheduleStore(const std::string& path) {
  GUST_ASSIGN_OR_RETURN(auto db, sqlite::Database::Open(path, "schedule store", true));
  auto store = std::make_unique<SqliteScheduleStore>(std::move(db));
  GUST_RETURN_IF_ERROR(store->Init().WithContext("open schedule store " + path));
  return std::unique_ptr<ScheduleStore>(std::move(store));
}

}  // namespace gust
