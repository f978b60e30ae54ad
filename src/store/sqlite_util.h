// Thin RAII helpers over the SQLite C API for the metadata store: a borrowed
// prepared statement that resets itself when it goes out of scope, and
// conversion of SQLite error codes into Status.
//
// Thread-safety: none; the owner of the connection serialises access.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

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

}  // namespace gust::sqlite
