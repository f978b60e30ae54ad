// Thin RAII helpers over the SQLite C API for gust's stores: a borrowed
// prepared statement that resets itself when it goes out of scope, a
// connection with a statement cache, transactions and append-only schema
// migrations (Database), and conversion of SQLite error codes into Status.
//
// Thread-safety: none; the owner of the connection serialises access.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "common/thread_annotations.h"

namespace gust::sqlite {

// Status for a failed SQLite call on db: Conflict for constraint violations
// (a racing writer got there first), Unavailable when the database stayed
// busy past busy_timeout, Internal otherwise.
Status Error(sqlite3* db, int rc, std::string_view what);

// A cached statement borrowed for one use. Bind indices start at 1, column
// indices at 0 (as in SQLite). Bindings and cursor are cleared on destruction
// so the cache can hand the statement out again.
class Statement {
 public:
  Statement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  Statement(Statement&& other) noexcept : db_(other.db_), stmt_(other.stmt_) {
    other.stmt_ = nullptr;
  }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  Statement& operator=(Statement&&) = delete;
  ~Statement();

  Statement& Bind(int index, std::string_view text);
  Statement& Bind(int index, int64_t value);
  Statement& Bind(int index, int value) { return Bind(index, static_cast<int64_t>(value)); }
  Statement& Bind(int index, double value);
  Statement& Bind(int index, std::optional<int> value);

  // True when a row is available, false when the statement is done.
  Result<bool> Step();
  // Steps a statement that returns no rows.
  Status Run();
  // Rewinds the cursor (keeping bindings) to run the statement again.
  void Reset() { sqlite3_reset(stmt_); }

  std::string Text(int col) const;
  int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }
  double Double(int col) const { return sqlite3_column_double(stmt_, col); }
  bool IsNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_;
};

// One SQLite connection in WAL mode with a cache of prepared statements.
class Database {
 public:
  // Opens (creating if needed) path; `what` names the database in errors
  // ("event queue"). synchronous is FULL (every commit fsyncs the WAL: the
  // write is durable when Commit returns) or NORMAL (survives a process crash,
  // not a power loss).
  static Result<std::unique_ptr<Database>> Open(const std::string& path, const std::string& what,
                                                bool fsync_commits);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  Status Exec(const char* sql);
  // A cached statement; Internal if it is already borrowed (a nested use).
  Result<Statement> Prepare(const std::string& sql);
  // BEGIN IMMEDIATE; body(); COMMIT, or ROLLBACK when body fails.
  // body runs on the calling thread before this returns. A store whose
  // Database is GUARDED_BY its mutex passes a body annotated REQUIRES(that
  // mutex); the analysis checks the body against it and, through the guarded
  // Database, that the caller holds it; only this call of body() in between
  // is beyond what it can follow, hence NO_THREAD_SAFETY_ANALYSIS.
  template <typename Body>
  Status InTransaction(Body&& body) NO_THREAD_SAFETY_ANALYSIS {
    GUST_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
    Status s = body();
    if (s.ok()) s = Exec("COMMIT");
    if (!s.ok()) (void)Exec("ROLLBACK");
    return s;
  }
  // Brings the schema to version `count` by applying migrations[current...]
  // in one transaction; a database newer than this build is refused.
  Status Migrate(const char* const* migrations, int count);
  sqlite3* handle() const { return db_; }

 private:
  Database(sqlite3* db, std::string what) : db_(db), what_(std::move(what)) {}
  sqlite3* db_;
  std::string what_;
  std::map<std::string, sqlite3_stmt*> stmts_;
};

}  // namespace gust::sqlite
