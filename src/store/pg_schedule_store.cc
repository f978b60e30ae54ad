// PgScheduleStore: ScheduleStore over one PostgreSQL connection (cluster mode,
// docs/CLUSTER.md), with the SQLite store's semantics (schedule_rules.h). One `schedules`
// table keyed by name (pg_schema.h, migration 2). Every node evaluates every schedule; a
// fire is an async event with a deterministic id, so nodes need no leader here.
//
// Concurrency between nodes: Put inserts a new name with ON CONFLICT DO NOTHING, else locks
// the stored row (FOR UPDATE) before merging into it, so two nodes' racing Puts of one name
// apply one after the other and the group check holds across them.
#include "common/mutex.h"
#include "common/thread_annotations.h"
#include "store/pg_schema.h"
#include "store/pg_util.h"
#include "store/schedule_rules.h"
#include "store/schedule_store.h"

namespace gust {
namespace {

using pg::Params;
using pg::Rows;

constexpr const char* kColumns =
    "SELECT name, grp, function, qualifier, expression, kind, enabled, payload, anchor_ms, "
    "created_ms, updated_ms, last_fire_ms, last_error, timezone FROM schedules ";

Schedule ReadRow(const Rows& rows, int i) { return schedule_rules::ReadRow(rows.at(i)); }

// $1.. in the order of the INSERT and UPDATE below.
Params RowParams(const Schedule& s) {
  return Params()
      .Add(s.name)
      .Add(s.group)
      .Add(s.function)
      .Add(s.qualifier)
      .Add(s.expression)
      .Add(s.kind)
      .Add(s.enabled)
      .Add(s.payload)
      .Add(s.anchor_ms)
      .Add(s.created_ms)
      .Add(s.updated_ms)
      .Add(s.last_fire_ms)
      .Add(s.last_error)
      .Add(s.timezone);
}

class PgScheduleStore : public ScheduleStore {
 public:
  explicit PgScheduleStore(std::unique_ptr<pg::Connection> db) : db_(std::move(db)) {}

  Status Put(const Schedule& schedule) override {
    MutexLock lock(&mu_);
    return db_->InTransaction([&]() REQUIRES(mu_) { return Upsert(schedule); });
  }

  Result<Schedule> Get(const std::string& name) override {
    MutexLock lock(&mu_);
    GUST_ASSIGN_OR_RETURN(Rows rows, db_->Exec((std::string(kColumns) + "WHERE name = $1").c_str(),
                                               Params().Add(name)));
    if (rows.empty()) return schedule_rules::NotFound(name);
    return ReadRow(rows, 0);
  }

  Result<std::vector<Schedule>> List(const std::string& group) override {
    MutexLock lock(&mu_);
    Params params;
    if (!group.empty()) params.Add(group);
    GUST_ASSIGN_OR_RETURN(
        Rows rows, db_->Exec((std::string(kColumns) +
                              (group.empty() ? "ORDER BY name" : "WHERE grp = $1 ORDER BY name"))
                                 .c_str(),
                             params));
    std::vector<Schedule> out;
    for (int i = 0; i < rows.size(); ++i) out.push_back(ReadRow(rows, i));
    return out;
  }

  Status Delete(const std::string& name) override {
    MutexLock lock(&mu_);
    GUST_ASSIGN_OR_RETURN(Rows del,
                          db_->Exec("DELETE FROM schedules WHERE name = $1", Params().Add(name)));
    if (del.affected() == 0) return schedule_rules::NotFound(name);
    return Status::Ok();
  }

  Result<int> DeleteGroup(const std::string& group) override {
    MutexLock lock(&mu_);
    GUST_ASSIGN_OR_RETURN(Rows del,
                          db_->Exec("DELETE FROM schedules WHERE grp = $1", Params().Add(group)));
    return static_cast<int>(del.affected());
  }

  Status ReplaceGroup(const std::string& group, const std::vector<Schedule>& schedules) override {
    MutexLock lock(&mu_);
    return db_->InTransaction([&]() REQUIRES(mu_) -> Status {
      GUST_ASSIGN_OR_RETURN(Rows old, db_->Exec("SELECT name FROM schedules WHERE grp = $1 "
                                                "FOR UPDATE",
                                                Params().Add(group)));
      std::vector<std::string> old_names;
      for (int i = 0; i < old.size(); ++i) old_names.push_back(old.Text(i, 0));
      return schedule_rules::ReplaceGroupRows(
          group, old_names, schedules,
          [&](const std::string& name) REQUIRES(mu_) {
            return db_->Exec("DELETE FROM schedules WHERE name = $1", Params().Add(name)).status();
          },
          [&](const Schedule& s) REQUIRES(mu_) { return Upsert(s); });
    });
  }

  Status RecordFire(const std::string& name, int64_t tick_ms, const std::string& error) override {
    MutexLock lock(&mu_);
    return db_
        ->Exec(
            "UPDATE schedules SET last_fire_ms = GREATEST(last_fire_ms, $1), last_error = $2 "
            "WHERE name = $3",
            Params().Add(tick_ms).Add(error).Add(name))
        .status();
  }

 private:
  // Runs inside a transaction.
  Status Upsert(Schedule s) REQUIRES(mu_) {
    GUST_ASSIGN_OR_RETURN(
        Rows ins,
        db_->Exec("INSERT INTO schedules(name, grp, function, qualifier, expression, kind, "
                  "enabled, payload, anchor_ms, created_ms, updated_ms, last_fire_ms, last_error, "
                  "timezone) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) "
                  "ON CONFLICT (name) DO NOTHING",
                  RowParams(s)));
    if (ins.affected() == 1) return Status::Ok();
    GUST_ASSIGN_OR_RETURN(Rows old,
                          db_->Exec((std::string(kColumns) + "WHERE name = $1 FOR UPDATE").c_str(),
                                    Params().Add(s.name)));
    if (old.empty()) return Status::Unavailable("schedule " + s.name + " changed under a write");
    GUST_RETURN_IF_ERROR(schedule_rules::MergeWithStored(ReadRow(old, 0), &s));
    return db_
        ->Exec(
            "UPDATE schedules SET grp = $2, function = $3, qualifier = $4, expression = $5, "
            "kind = $6, enabled = $7, payload = $8, anchor_ms = $9, created_ms = $10, "
            "updated_ms = $11, last_fire_ms = $12, last_error = $13, timezone = $14 "
            "WHERE name = $1",
            RowParams(s))
        .status();
  }

  Mutex mu_;
  std::unique_ptr<pg::Connection> db_ GUARDED_BY(mu_);
};

}  // namespace

Result<std::unique_ptr<ScheduleStore>> OpenPgScheduleStore(const std::string& conninfo) {
  GUST_ASSIGN_OR_RETURN(auto db, pg_schema::Connect(conninfo, "schedule store"));
  return std::unique_ptr<ScheduleStore>(std::make_unique<PgScheduleStore>(std::move(db)));
}

}  // namespace gust
