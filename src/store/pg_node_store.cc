// PgNodeStore: NodeStore over one PostgreSQL connection (the `nodes` table, pg_schema.h
// migration 5), and InitPgCluster. Every time is the database's now(), so membership does not
// depend on the nodes' clocks agreeing.
#include "common/mutex.h"
#include "common/thread_annotations.h"
#include "store/node_store.h"
#include "store/pg_schema.h"
#include "store/pg_util.h"

namespace gust {
namespace {

using pg::Params;
using pg::Rows;

// $1.. of Join's INSERT and Heartbeat's UPDATE: the figures a node publishes.
Params FigureParams(const NodeInfo& info, int64_t lease_ms) {
  return Params()
      .Add(info.name)
      .Add(lease_ms)
      .Add(info.cores)
      .Add(info.memory_mb)
      .Add(info.memory_free_mb)
      .Add(info.load1)
      .Add(info.warm)
      .Add(info.free_slots)
      .Add(info.activity);
}

// A node's row as List and Drain read it ('dead': up or draining past its deadline).
constexpr const char* kListSelect =
    "SELECT name, advertise, version, cores, memory_mb, memory_free_mb, load1, "
    "epoch, CASE WHEN state <> 'stopped' AND deadline <= now() THEN 'dead' "
    "ELSE state END, "
    "(extract(epoch FROM started_at) * 1000)::bigint, "
    "(extract(epoch FROM heartbeat_at) * 1000)::bigint, "
    "(extract(epoch FROM now() - heartbeat_at) * 1000)::bigint, "
    "(extract(epoch FROM deadline - now()) * 1000)::bigint, warm, free_slots, "
    "activity FROM nodes";

NodeRow RowAt(const Rows& rows, int i) {
  NodeRow row;
  row.info.name = rows.Text(i, 0);
  row.info.advertise_url = rows.Text(i, 1);
  row.info.version = rows.Text(i, 2);
  row.info.cores = static_cast<int>(rows.Int(i, 3));
  row.info.memory_mb = rows.Int(i, 4);
  row.info.memory_free_mb = rows.Int(i, 5);
  row.info.load1 = rows.Double(i, 6);
  row.epoch = rows.Int(i, 7);
  row.state = rows.Text(i, 8);
  row.started_ms = rows.Int(i, 9);
  row.heartbeat_ms = rows.Int(i, 10);
  row.heartbeat_age_ms = rows.Int(i, 11);
  row.deadline_in_ms = rows.Int(i, 12);
  row.info.warm = rows.Text(i, 13);
  row.info.free_slots = static_cast<int>(rows.Int(i, 14));
  row.info.activity = rows.Text(i, 15);
  return row;
}

// A lease of lease_ms from the database's now().
constexpr const char* kDeadline = "now() + $2::bigint * interval '1 millisecond'";

class PgNodeStore : public NodeStore {
 public:
  PgNodeStore(std::unique_ptr<pg::Connection> db, int64_t lease_ms)
      : db_(std::move(db)), lease_ms_(lease_ms) {}

  Result<int64_t> Join(const NodeInfo& info) override {
    MutexLock lock(&mu_);
    int64_t epoch = 0;
    GUST_RETURN_IF_ERROR(db_->InTransaction([&]() REQUIRES(mu_) -> Status {
      GUST_ASSIGN_OR_RETURN(
          Rows held, db_->Exec("SELECT advertise, (state <> 'stopped' AND deadline > now()), "
                               "(extract(epoch FROM now() - heartbeat_at) * 1000)::bigint "
                               "FROM nodes WHERE name = $1 FOR UPDATE",
                               Params().Add(info.name)));
      // The same address is the same node restarting (after a crash its lease may still
      // run); another address is a second engine given this name.
      if (!held.empty() && held.Bool(0, 1) && held.Text(0, 0) != info.advertise_url) {
        return Status::Conflict("node name " + info.name + " is held by a live node at " +
                                held.Text(0, 0) + " (its last heartbeat " +
                                std::to_string(held.Int(0, 2)) +
                                " ms ago): give this node another --node-name, or stop that "
                                "one");
      }
      GUST_ASSIGN_OR_RETURN(
          Rows rows,
          db_->Exec(
              (std::string(
                   "INSERT INTO nodes (name, advertise, epoch, state, version, "
                   "started_at, heartbeat_at, deadline, cores, memory_mb, "
                   "memory_free_mb, load1, warm, free_slots, activity) VALUES ($1, $10, 1, 'up', "
                   "$11, now(), now(), ") +
               kDeadline +
               ", $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (name) DO UPDATE SET "
               "advertise = EXCLUDED.advertise, epoch = nodes.epoch + 1, state = 'up', "
               "version = EXCLUDED.version, started_at = now(), heartbeat_at = now(), "
               "deadline = EXCLUDED.deadline, cores = EXCLUDED.cores, "
               "memory_mb = EXCLUDED.memory_mb, memory_free_mb = EXCLUDED.memory_free_mb, "
               "load1 = EXCLUDED.load1, warm = EXCLUDED.warm, free_slots = EXCLUDED.free_slots, "
               "activity = EXCLUDED.activity RETURNING epoch")
                  .c_str(),
              FigureParams(info, lease_ms_).Add(info.advertise_url).Add(info.version)));
      if (rows.empty()) return Status::Internal("join: no epoch returned for " + info.name);
      epoch = rows.Int(0, 0);
      return Status::Ok();
    }));
    name_ = info.name;
    epoch_ = epoch;
    return epoch;
  }

  Status Heartbeat(const NodeInfo& info) override {
    MutexLock lock(&mu_);
    return Renew(info, /*new_epoch=*/false).status();
  }

  Result<int64_t> Rejoin(const NodeInfo& info) override {
    MutexLock lock(&mu_);
    return Renew(info, /*new_epoch=*/true);
  }

  Status Leave() override {
    MutexLock lock(&mu_);
    GUST_ASSIGN_OR_RETURN(Rows rows, db_->Exec("UPDATE nodes SET state = 'stopped', deadline = "
                                               "now() WHERE name = $1 AND epoch = $2",
                                               Params().Add(name_).Add(epoch_)));
    if (rows.affected() == 0) return Superseded();
    return Status::Ok();
  }

  Result<std::vector<NodeRow>> List() override {
    MutexLock lock(&mu_);
    GUST_ASSIGN_OR_RETURN(Rows rows,
                          db_->Exec((std::string(kListSelect) + " ORDER BY name").c_str()));
    std::vector<NodeRow> out;
    out.reserve(static_cast<size_t>(rows.size()));
    for (int i = 0; i < rows.size(); ++i) out.push_back(RowAt(rows, i));
    return out;
  }

  Result<NodeRow> Drain(const std::string& name) override {
    MutexLock lock(&mu_);
    // Only a live node changes: a dead or stopped one has nothing running to finish.
    GUST_RETURN_IF_ERROR(db_->Exec("UPDATE nodes SET state = 'draining' WHERE name = $1 AND "
                                   "state = 'up' AND deadline > now()",
                                   Params().Add(name))
                             .status());
    GUST_ASSIGN_OR_RETURN(
        Rows rows,
        db_->Exec((std::string(kListSelect) + " WHERE name = $1").c_str(), Params().Add(name)));
    if (rows.empty()) {
      return Status::NotFound("the cluster has no node named '" + name +
                              "' (`gust cluster status` lists them)");
    }
    NodeRow row = RowAt(rows, 0);
    if (row.state != "draining") {
      return Status::Conflict(
          "node " + name + " is " + row.state + ", not up: there is nothing on it to drain" +
          (row.state == "dead"
               ? " (its heartbeats stopped " + std::to_string(row.heartbeat_age_ms) + " ms ago)"
               : ""));
    }
    return row;
  }

  int64_t epoch() const override {
    MutexLock lock(&mu_);
    return epoch_;
  }

  Result<std::pair<std::string, std::string>> ClusterCredential() override {
    MutexLock lock(&mu_);
    GUST_ASSIGN_OR_RETURN(Rows key, db_->Exec("SELECT access_key_id, secret_access_key FROM "
                                              "cluster_credentials ORDER BY created_at LIMIT 1"));
    if (key.empty()) {
      return Status::NotFound(
          "the cluster database has no cluster credential: run `gust cluster init` on it");
    }
    return std::make_pair(key.Text(0, 0), key.Text(0, 1));
  }

 private:
  // Heartbeat's and Rejoin's UPDATE: fenced by this start's epoch, so a superseded start
  // changes nothing. A rejoin also takes the next epoch (what it gave up while lapsed stays
  // fenced by the old one) but keeps the state: a draining node rejoins draining.
  Result<int64_t> Renew(const NodeInfo& info, bool new_epoch) REQUIRES(mu_) {
    GUST_ASSIGN_OR_RETURN(
        Rows rows,
        db_->Exec((std::string("UPDATE nodes SET heartbeat_at = now(), deadline = ") + kDeadline +
                   ", cores = $3, memory_mb = $4, memory_free_mb = $5, load1 = $6, warm = $7, "
                   "free_slots = $8, activity = $9" +
                   (new_epoch ? ", epoch = epoch + 1, started_at = now()" : "") +
                   " WHERE name = $1 AND epoch = $10 AND state <> 'stopped' RETURNING epoch")
                      .c_str(),
                  FigureParams(info, lease_ms_).Add(epoch_)));
    if (rows.empty()) return Superseded();
    epoch_ = rows.Int(0, 0);
    return epoch_;
  }

  Status Superseded() REQUIRES(mu_) {
    return Status::Conflict("node " + name_ + " (epoch " + std::to_string(epoch_) +
                            ") was taken over by a later start of the same name");
  }

  mutable Mutex mu_;
  std::unique_ptr<pg::Connection> db_ GUARDED_BY(mu_);
  const int64_t lease_ms_;
  std::string name_ GUARDED_BY(mu_);
  int64_t epoch_ GUARDED_BY(mu_) = 0;
};

}  // namespace

Result<std::unique_ptr<NodeStore>> OpenPgNodeStore(const std::string& conninfo, int64_t lease_ms) {
  GUST_ASSIGN_OR_RETURN(auto db, pg::Connection::Open(conninfo, "cluster database"));
  return std::unique_ptr<NodeStore>(std::make_unique<PgNodeStore>(std::move(db), lease_ms));
}

Status CheckPgClusterSchema(const std::string& conninfo) {
  const std::string where = pg::DescribeConninfo(conninfo);
  GUST_ASSIGN_OR_RETURN(std::unique_ptr<pg::Connection> db,
                        pg::Connection::Open(conninfo, "cluster database"));
  GUST_ASSIGN_OR_RETURN(int version, db->SchemaVersion());
  const std::string ours = std::to_string(pg_schema::kSchemaVersion);
  const std::string theirs =
      "the cluster database at " + where + " has schema version " + std::to_string(version) + ", ";
  if (version == 0) {
    return Status::Conflict("the cluster database at " + where +
                            " has no gust schema: run `gust cluster init` with the same "
                            "connection string first");
  }
  if (version < pg_schema::kSchemaVersion) {
    return Status::Conflict(theirs + "older than this gust's (" + ours +
                            "): run this gust's `gust cluster init` on it to upgrade it (the "
                            "other nodes then need this gust too)");
  }
  if (version > pg_schema::kSchemaVersion) {
    return Status::Conflict(theirs + "newer than this gust's (" + ours +
                            "): upgrade gust on this node");
  }
  return Status::Ok();
}

Result<ClusterInitResult> InitPgCluster(const std::string& conninfo,
                                        const std::string& new_access_key_id,
                                        const std::string& new_secret_access_key) {
  ClusterInitResult out;
  GUST_ASSIGN_OR_RETURN(auto db, pg::Connection::Open(conninfo, "cluster database"));
  GUST_ASSIGN_OR_RETURN(out.schema_from, db->SchemaVersion());
  GUST_RETURN_IF_ERROR(
      db->Migrate(pg_schema::kMigrations, pg_schema::kSchemaVersion, pg_schema::kMigrationLock)
          .WithContext("initialise the cluster database at " + pg::DescribeConninfo(conninfo)));
  GUST_ASSIGN_OR_RETURN(out.schema_to, db->SchemaVersion());
  // One credential per cluster: a second init keeps the one nodes already use.
  GUST_ASSIGN_OR_RETURN(
      Rows inserted, db->Exec("INSERT INTO cluster_credentials (access_key_id, secret_access_key) "
                              "SELECT $1, $2 WHERE NOT EXISTS (SELECT 1 FROM cluster_credentials)",
                              Params().Add(new_access_key_id).Add(new_secret_access_key)));
  out.created_credential = inserted.affected() == 1;
  GUST_ASSIGN_OR_RETURN(
      Rows key,
      db->Exec("SELECT access_key_id FROM cluster_credentials ORDER BY created_at LIMIT 1"));
  if (!key.empty()) out.access_key_id = key.Text(0, 0);
  out.conninfo_has_password = pg::HasPassword(conninfo);
  return out;
}

}  // namespace gust
