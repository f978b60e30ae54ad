// PgFunctionChangeFeed: FunctionChangeFeed over a connection of its own to the cluster
// database (the `function_changes` table and channel of pg_schema.h's migration 7).
#include "store/function_changes.h"
#include "store/pg_util.h"

namespace gust {
namespace {

using pg::Params;
using pg::Rows;

class PgFunctionChangeFeed : public FunctionChangeFeed {
 public:
  explicit PgFunctionChangeFeed(std::unique_ptr<pg::Connection> db) : db_(std::move(db)) {}

  Result<int64_t> Head() override {
    GUST_ASSIGN_OR_RETURN(Rows rows,
                          db_->Exec("SELECT COALESCE(MAX(seq), 0) FROM function_changes"));
    return rows.Int(0, 0);
  }

  Result<std::vector<FunctionChange>> Since(int64_t after, int limit) override {
    GUST_ASSIGN_OR_RETURN(
        Rows rows,
        db_->Exec("SELECT seq, function, kind, revision FROM function_changes WHERE seq > $1 "
                  "ORDER BY seq LIMIT $2",
                  Params().Add(after).Add(limit)));
    std::vector<FunctionChange> changes;
    changes.reserve(rows.size());
    for (int i = 0; i < rows.size(); ++i) {
      FunctionChange c;
      c.seq = rows.Int(i, 0);
      c.function = rows.Text(i, 1);
      int64_t kind = rows.Int(i, 2);
      // An unknown kind (a newer gust's) is treated as the widest: deleted drops everything.
      c.kind = kind == 0   ? FunctionChangeKind::kLatest
               : kind == 1 ? FunctionChangeKind::kRouting
                           : FunctionChangeKind::kDeleted;
      c.revision = rows.Text(i, 3);
      changes.push_back(std::move(c));
    }
    return changes;
  }

  Result<bool> Wait(std::chrono::milliseconds timeout) override {
    if (listening_session_ != db_->sessions()) {
      // A new session (the first, or after a reconnect) listens to nothing yet. The channel
      // is the schema's that holds function_changes (the trigger's, pg_schema.h).
      GUST_ASSIGN_OR_RETURN(
          Rows channel,
          db_->Exec("SELECT 'gust_fc_' || left(md5(n.nspname), 16) FROM pg_class c JOIN "
                    "pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = "
                    "'function_changes'::regclass"));
      GUST_RETURN_IF_ERROR(db_->Exec(("LISTEN " + channel.Text(0, 0)).c_str()).status());
      listening_session_ = db_->sessions();
    }
    return db_->WaitForNotification(timeout);
  }

  Status Prune(std::chrono::seconds max_age) override {
    return db_
        ->Exec("DELETE FROM function_changes WHERE at < now() - $1::bigint * interval '1 second'",
               Params().Add(static_cast<int64_t>(max_age.count())))
        .status();
  }

 private:
  std::unique_ptr<pg::Connection> db_;
  uint64_t listening_session_ = 0;  // db_->sessions() when LISTEN last ran; 0 never
};

}  // namespace

Result<std::unique_ptr<FunctionChangeFeed>> OpenPgFunctionChangeFeed(const std::string& conninfo) {
  GUST_ASSIGN_OR_RETURN(
      auto db, pg::Connection::Open(conninfo, "cluster database", "gust function changes"));
  return std::unique_ptr<FunctionChangeFeed>(new PgFunctionChangeFeed(std::move(db)));
}

}  // namespace gust
