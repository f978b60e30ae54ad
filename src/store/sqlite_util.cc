#include "store/sqlite_util.h"

namespace gust::sqlite {

Status Error(sqlite3* db, int rc, std::string_view what) {
  std::string msg(what);
  msg += ": ";
  msg += db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
      return Status::Conflict(std::move(msg));
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Status::Unavailable(std::move(msg));
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
      return Status::IoError(std::move(msg));
    default:
      return Status::Internal(std::move(msg));
  }
}

Statement::~Statement() {
  if (stmt_ != nullptr) {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
}

Statement& Statement::Bind(int index, std::string_view text) {
  sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
  return *this;
}

Statement& Statement::Bind(int index, int64_t value) {
  sqlite3_bind_int64(stmt_, index, value);
  return *this;
}

Statement& Statement::Bind(int index, double value) {
  sqlite3_bind_double(stmt_, index, value);
  return *this;
}

Statement& Statement::Bind(int index, std::optional<int> value) {
  if (value.has_value()) {
    sqlite3_bind_int64(stmt_, index, *value);
  } else {
    sqlite3_bind_null(stmt_, index);
  }
  return *this;
}

Result<bool> Statement::Step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return Error(db_, rc, sqlite3_sql(stmt_));
}

Status Statement::Run() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_DONE || rc == SQLITE_ROW) return Status::Ok();
  return Error(db_, rc, sqlite3_sql(stmt_));
}

std::string Statement::Text(int col) const {
  const unsigned char* p = sqlite3_column_text(stmt_, col);
  if (p == nullptr) return {};
  return std::string(reinterpret_cast<const char*>(p),
                     static_cast<size_t>(sqlite3_column_bytes(stmt_, col)));
}

Result<std::unique_ptr<Database>> Database::Open(const std::string& path, const std::string& what,
                                                 bool fsync_commits) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    Status s = Error(db, rc, "open " + what + " " + path);
    sqlite3_close_v2(db);
    return s;
  }
  std::unique_ptr<Database> out(new Database(db, what));
  sqlite3_busy_timeout(db, 5000);
  GUST_RETURN_IF_ERROR(
      out->Exec("PRAGMA journal_mode=WAL").WithContext("open " + what + " " + path));
  GUST_RETURN_IF_ERROR(
      out->Exec(fsync_commits ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL"));
  return out;
}

Database::~Database() {
  for (auto& [sql, stmt] : stmts_) sqlite3_finalize(stmt);
  sqlite3_close_v2(db_);
}

Status Database::Exec(const char* sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
  if (rc == SQLITE_OK) return Status::Ok();
  std::string msg = err != nullptr ? err : sqlite3_errstr(rc);
  sqlite3_free(err);
  return Error(nullptr, rc, msg);
}

Result<Statement> Database::Prepare(const std::string& sql) {
  auto it = stmts_.find(sql);
  if (it == stmts_.end()) {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()),
                                SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (rc != SQLITE_OK) return Error(db_, rc, "prepare " + sql);
    it = stmts_.emplace(sql, stmt).first;
  } else if (sqlite3_stmt_busy(it->second)) {
    return Status::Internal("statement borrowed twice: " + sql);
  }
  return Statement(db_, it->second);
}

Status Database::Migrate(const char* const* migrations, int count) {
  return InTransaction([&]() -> Status {
    GUST_RETURN_IF_ERROR(
        Exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"));
    int current = 0;
    {
      GUST_ASSIGN_OR_RETURN(Statement q, Prepare("SELECT MAX(version) FROM schema_version"));
      GUST_ASSIGN_OR_RETURN(bool row, q.Step());
      if (row && !q.IsNull(0)) current = static_cast<int>(q.Int(0));
    }
    if (current > count) {
      return Status::Internal(what_ + " has schema version " + std::to_string(current) +
                              ", newer than this gust (" + std::to_string(count) + ")");
    }
    for (int v = current; v < count; ++v) {
      GUST_RETURN_IF_ERROR(Exec(migrations[v]));
      GUST_ASSIGN_OR_RETURN(Statement st,
                            Prepare("INSERT INTO schema_version(version) VALUES (?)"));
      GUST_RETURN_IF_ERROR(st.Bind(1, v + 1).Run());
    }
    return Status::Ok();
  });
}

}  // namespace gust::sqlite
