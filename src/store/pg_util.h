// Thin helpers over libpq for gust's PostgreSQL stores (cluster mode, docs/CLUSTER.md): a
// connection that runs parameterised statements (PQexecParams, text parameters and results),
// transactions, schema migrations under an advisory lock, and conversion of PostgreSQL's
// errors into Status.
//
// Errors: every failure is a Status whose message names what was attempted and carries
// PostgreSQL's own message and SQLSTATE ("insert function: duplicate key value violates unique
// constraint ... (SQLSTATE 23505)"). Codes by SQLSTATE class: 23 (integrity) and 40
// (serialization failure, deadlock: a racing writer won) are Conflict; 08 (connection), 53
// (insufficient resources), 57P (server shutting down) and a dropped connection are
// Unavailable; the rest Internal. A connection failure names the conninfo's host and port
// (never its password); once connected, every Unavailable reads "the cluster's PostgreSQL
// database at host H port P is unavailable (what: ...)", the message clients get as a 503. A
// connection found broken is reset (reconnected) once before the next statement, so a
// restarted server costs the statements in flight, not the store. Connecting gives up after
// 5 s and TCP keepalives notice a silent server in ~11 s (unless the conninfo sets its own
// connect_timeout or keepalives_*), so an unreachable server is an error, never a hang.
//
// Thread-safety: none; the owner of a Connection serialises access (the stores hold it under
// their gust::Mutex, as they do sqlite::Database).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/thread_annotations.h"

// libpq's types, declared so that users of this header need not include libpq-fe.h.
typedef struct pg_conn PGconn;      // NOLINT(modernize-use-using): libpq's own declaration
typedef struct pg_result PGresult;  // NOLINT(modernize-use-using)

namespace gust::pg {

// The parameters of one statement, $1 first. Values are sent as text; NULL is a missing value.
class Params {
 public:
  Params() = default;
  Params& Add(std::string_view text);
  Params& Add(const char* text) { return Add(std::string_view(text)); }
  Params& Add(const std::string& text) { return Add(std::string_view(text)); }
  Params& Add(int64_t value);
  Params& Add(int value) { return Add(static_cast<int64_t>(value)); }
  Params& Add(double value);
  Params& Add(bool value);
  Params& Add(std::optional<int> value);  // NULL when empty
  Params& AddNull();
  // Raw bytes (a bytea parameter): sent in binary format, no escaping.
  Params& AddBytes(std::string_view bytes);

  int size() const { return static_cast<int>(values_.size()); }

 private:
  friend class Connection;
  std::vector<std::optional<std::string>> values_;
  std::vector<int> formats_;  // 0 text, 1 binary
};

// The rows of one statement's result (owns the PGresult). Column values are text as
// PostgreSQL prints them; Int/Double parse them (0 for NULL or unparsable).
class Row;

class Rows {
 public:
  explicit Rows(PGresult* result) : result_(result) {}
  Rows(Rows&& other) noexcept : result_(other.result_) { other.result_ = nullptr; }
  Rows& operator=(Rows&& other) noexcept;
  Rows(const Rows&) = delete;
  Rows& operator=(const Rows&) = delete;
  ~Rows();

  int size() const;
  bool empty() const { return size() == 0; }
  Row at(int i) const;
  // Rows changed by an INSERT/UPDATE/DELETE (PQcmdTuples).
  int64_t affected() const;
  bool IsNull(int row, int col) const;
  std::string Text(int row, int col) const;
  int64_t Int(int row, int col) const;
  double Double(int row, int col) const;
  bool Bool(int row, int col) const;  // PostgreSQL prints booleans as "t"/"f"
  // A bytea column of a statement run with binary results (Connection::ExecBinary).
  std::string Bytes(int row, int col) const;

 private:
  PGresult* result_;
};

// Row i of a Rows, with the column accessors sqlite::Statement has (Text, Int, Double,
// IsNull by column), so that one row reader (a template) serves both stores. Int reads a
// boolean column as 1 or 0, as SQLite stores booleans.
class Row {
 public:
  Row(const Rows& rows, int i) : rows_(rows), i_(i) {}
  std::string Text(int col) const { return rows_.Text(i_, col); }
  int64_t Int(int col) const;
  double Double(int col) const { return rows_.Double(i_, col); }
  bool IsNull(int col) const { return rows_.IsNull(i_, col); }

 private:
  const Rows& rows_;
  int i_;
};

inline Row Rows::at(int i) const { return Row(*this, i); }

// Status for a failed result: see the header comment for the codes. `what` names the step.
Status ResultError(const PGresult* result, PGconn* conn, std::string_view what);

// "host 127.0.0.1 port 5432" of a conninfo (URI or key=value), for messages: never the
// password. Empty parts are libpq's defaults ("host (default) port (default)").
std::string DescribeConninfo(const std::string& conninfo);
// Whether conninfo carries a password (so that it is not printed back).
bool HasPassword(const std::string& conninfo);

// One libpq connection.
class Connection {
 public:
  // Connects to conninfo (a URI or key=value string, libpq's syntax, multi-host allowed);
  // `what` names the database in errors ("metadata database"). Unavailable when the server
  // cannot be reached, InvalidArgument when the conninfo does not parse. `application_name`
  // is what pg_stat_activity shows for the session unless the conninfo sets its own.
  static Result<std::unique_ptr<Connection>> Open(const std::string& conninfo,
                                                  const std::string& what,
                                                  const std::string& application_name = "gust");
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs one statement with $1.. parameters; results as text.
  Result<Rows> Exec(const char* sql, const Params& params = Params());
  // As Exec, with results in binary format (for bytea columns; other columns are then
  // PostgreSQL's binary encodings, so select only bytea and text with it).
  Result<Rows> ExecBinary(const char* sql, const Params& params = Params());

  // BEGIN; body(); COMMIT, or ROLLBACK when body (or COMMIT) fails. A failed statement
  // aborts a PostgreSQL transaction, so body returns its first error. As in sqlite::Database,
  // a body annotated REQUIRES(the store's mutex) is checked by the analysis; only this call
  // is beyond what it follows, hence NO_THREAD_SAFETY_ANALYSIS.
  template <typename Body>
  Status InTransaction(Body&& body) NO_THREAD_SAFETY_ANALYSIS {
    GUST_RETURN_IF_ERROR(Exec("BEGIN").status());
    in_transaction_ = true;
    Status s = body();
    if (s.ok()) s = Exec("COMMIT").status();
    if (!s.ok()) (void)Exec("ROLLBACK");
    in_transaction_ = false;
    return s;
  }

  // Brings the schema to version `count` by applying migrations[current...] in one
  // transaction, holding the transaction-level advisory lock `lock_key` so that two nodes
  // opening at once do not both migrate (the second waits, then finds nothing to do). A
  // database newer than this build is refused with a message naming both versions.
  Status Migrate(const char* const* migrations, int count, int64_t lock_key);
  // The schema version recorded by Migrate (0 for a database never migrated).
  Result<int> SchemaVersion();

  // LISTEN/NOTIFY: after `LISTEN channel` (Exec), waits up to `timeout` for a notification
  // and consumes every one received; true when at least one came. Unavailable when the
  // connection is lost (no reset here: the next Exec reconnects, and a new session listens to
  // nothing until LISTEN is run again; sessions() tells).
  Result<bool> WaitForNotification(std::chrono::milliseconds timeout);
  // Counts the sessions this connection has had (1, then one more per reconnect): state tied
  // to a session, as a LISTEN, must be set again when it changes.
  uint64_t sessions() const { return sessions_; }

  const std::string& what() const { return what_; }

 private:
  Connection(PGconn* conn, std::string what, std::string where)
      : conn_(conn), what_(std::move(what)), where_(std::move(where)) {}
  Result<Rows> Run(const char* sql, const Params& params, int result_format);
  // Unavailable, naming PostgreSQL, its host and port; detail names `what` and the cause.
  Status Unreachable(const std::string& detail) const;

  PGconn* conn_;
  std::string what_;
  std::string where_;  // DescribeConninfo's, for connection errors
  bool in_transaction_ = false;
  uint64_t sessions_ = 1;
};

}  // namespace gust::pg
