#include "store/pg_util.h"

#include <libpq-fe.h>
#include <poll.h>

#include <cerrno>
#include <charconv>
#include <cstring>

namespace gust::pg {
namespace {

// libpq's messages end with a newline; ours do not.
std::string Trimmed(const char* message) {
  std::string s = message != nullptr ? message : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// NOTICEs (CREATE TABLE IF NOT EXISTS's "already exists, skipping") would go to the engine's
// stderr by default; they say nothing a caller acts on.
void IgnoreNotice(void* /*arg*/, const PGresult* /*result*/) {}

Status StatusForSqlState(std::string_view state, std::string message) {
  if (state.size() == 5) {
    std::string_view cls = state.substr(0, 2);
    if (cls == "23" || cls == "40") return Status::Conflict(std::move(message));
    if (cls == "08" || cls == "53" || state.substr(0, 3) == "57P") {
      return Status::Unavailable(std::move(message));
    }
  }
  return Status::Internal(std::move(message));
}

}  // namespace

Params& Params::Add(std::string_view text) {
  values_.emplace_back(std::string(text));
  formats_.push_back(0);
  return *this;
}

Params& Params::Add(int64_t value) { return Add(std::string_view(std::to_string(value))); }

Params& Params::Add(double value) {
  char buf[64];
  // Shortest text that reads back as the same double.
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value);
  return Add(std::string_view(buf, ec == std::errc() ? static_cast<size_t>(end - buf) : 0));
}

Params& Params::Add(bool value) { return Add(std::string_view(value ? "true" : "false")); }

Params& Params::Add(std::optional<int> value) {
  return value.has_value() ? Add(static_cast<int64_t>(*value)) : AddNull();
}

Params& Params::AddNull() {
  values_.emplace_back(std::nullopt);
  formats_.push_back(0);
  return *this;
}

Params& Params::AddBytes(std::string_view bytes) {
  values_.emplace_back(std::string(bytes));
  formats_.push_back(1);
  return *this;
}

Rows& Rows::operator=(Rows&& other) noexcept {
  if (this != &other) {
    PQclear(result_);
    result_ = other.result_;
    other.result_ = nullptr;
  }
  return *this;
}

Rows::~Rows() { PQclear(result_); }

int Rows::size() const { return result_ != nullptr ? PQntuples(result_) : 0; }

int64_t Rows::affected() const {
  const char* n = result_ != nullptr ? PQcmdTuples(result_) : "";
  int64_t out = 0;
  std::from_chars(n, n + std::strlen(n), out);
  return out;
}

bool Rows::IsNull(int row, int col) const { return PQgetisnull(result_, row, col) != 0; }

std::string Rows::Text(int row, int col) const {
  return std::string(PQgetvalue(result_, row, col),
                     static_cast<size_t>(PQgetlength(result_, row, col)));
}

int64_t Rows::Int(int row, int col) const {
  const char* p = PQgetvalue(result_, row, col);
  int64_t out = 0;
  std::from_chars(p, p + PQgetlength(result_, row, col), out);
  return out;
}

double Rows::Double(int row, int col) const {
  const char* p = PQgetvalue(result_, row, col);
  double out = 0;
  std::from_chars(p, p + PQgetlength(result_, row, col), out);
  return out;
}

int64_t Row::Int(int col) const {
  std::string text = rows_.Text(i_, col);
  if (text == "t") return 1;
  if (text == "f") return 0;
  return rows_.Int(i_, col);
}

bool Rows::Bool(int row, int col) const { return PQgetvalue(result_, row, col)[0] == 't'; }

std::string Rows::Bytes(int row, int col) const { return Text(row, col); }

Status ResultError(const PGresult* result, PGconn* conn, std::string_view what) {
  std::string msg(what);
  msg += ": ";
  const char* state = result != nullptr ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  const char* primary =
      result != nullptr ? PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
  if (primary != nullptr) {
    msg += primary;
  } else {
    msg += Trimmed(conn != nullptr ? PQerrorMessage(conn) : "out of memory");
  }
  if (state != nullptr) {
    msg += " (SQLSTATE ";
    msg += state;
    msg += ")";
    return StatusForSqlState(state, std::move(msg));
  }
  // No SQLSTATE: libpq's own failure, nearly always a lost connection.
  if (conn == nullptr || PQstatus(conn) != CONNECTION_OK) return Status::Unavailable(msg);
  return Status::Internal(std::move(msg));
}

namespace {

// Calls fn(keyword, value) for each option conninfo sets (nothing when it does not parse).
template <typename Fn>
void ForEachConninfoOption(const std::string& conninfo, Fn&& fn) {
  char* err = nullptr;
  PQconninfoOption* options = PQconninfoParse(conninfo.c_str(), &err);
  PQfreemem(err);
  if (options == nullptr) return;
  for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    if (o->val != nullptr && o->val[0] != '\0') fn(std::string_view(o->keyword), o->val);
  }
  PQconninfoFree(options);
}

}  // namespace

std::string DescribeConninfo(const std::string& conninfo) {
  std::string host = "(default)";
  std::string port = "(default)";
  ForEachConninfoOption(conninfo, [&](std::string_view keyword, const char* value) {
    if (keyword == "host" || (keyword == "hostaddr" && host == "(default)")) {
      host = value;
    } else if (keyword == "port") {
      port = value;
    }
  });
  return "host " + host + " port " + port;
}

bool HasPassword(const std::string& conninfo) {
  bool found = false;
  ForEachConninfoOption(conninfo, [&](std::string_view keyword, const char*) {
    found = found || keyword == "password";
  });
  return found;
}

Result<std::unique_ptr<Connection>> Connection::Open(const std::string& conninfo,
                                                     const std::string& what,
                                                     const std::string& application_name) {
  char* err = nullptr;
  PQconninfoOption* options = PQconninfoParse(conninfo.c_str(), &err);
  if (options == nullptr) {
    // libpq's parse errors name the offending keyword or URI part, not values.
    std::string why = Trimmed(err != nullptr ? err : "out of memory");
    PQfreemem(err);
    return Status::InvalidArgument(what +
                                   ": the PostgreSQL connection string does not parse: " + why);
  }
  PQconninfoFree(options);
  std::string where = DescribeConninfo(conninfo);
  // Defaults first: the conninfo (expanded from dbname) overrides what it sets itself.
  const char* keywords[] = {"connect_timeout",
                            "keepalives_idle",
                            "keepalives_interval",
                            "keepalives_count",
                            "dbname",
                            "fallback_application_name",
                            nullptr};
  const char* values[] = {"5", "5", "2", "3", conninfo.c_str(), application_name.c_str(), nullptr};
  PGconn* conn = PQconnectdbParams(keywords, values, /*expand_dbname=*/1);
  if (conn == nullptr) return Status::Unavailable(what + ": out of memory connecting to " + where);
  if (PQstatus(conn) != CONNECTION_OK) {
    Status s = Status::Unavailable("cannot connect to the " + what + " at " + where + ": " +
                                   Trimmed(PQerrorMessage(conn)));
    PQfinish(conn);
    return s;
  }
  PQsetNoticeProcessor(conn, nullptr, nullptr);
  PQsetNoticeReceiver(conn, IgnoreNotice, nullptr);
  return std::unique_ptr<Connection>(new Connection(conn, what, std::move(where)));
}

Connection::~Connection() { PQfinish(conn_); }

Result<Rows> Connection::Exec(const char* sql, const Params& params) {
  return Run(sql, params, /*result_format=*/0);
}

Result<Rows> Connection::ExecBinary(const char* sql, const Params& params) {
  return Run(sql, params, /*result_format=*/1);
}

Result<Rows> Connection::Run(const char* sql, const Params& params, int result_format) {
  if (PQstatus(conn_) != CONNECTION_OK) {
    // Reconnect only between transactions: inside one, the statements before this one died
    // with the old session, and running the rest outside it would break its atomicity.
    if (in_transaction_) return Unreachable(what_ + ": the connection was lost in a transaction");
    PQreset(conn_);
    ++sessions_;
    if (PQstatus(conn_) != CONNECTION_OK) {
      return Unreachable(what_ + ": cannot reconnect: " + Trimmed(PQerrorMessage(conn_)));
    }
  }
  PGresult* result;
  if (params.size() == 0 && result_format == 0) {
    // PQexec, unlike PQexecParams, runs several ;-separated statements (migrations).
    result = PQexec(conn_, sql);
  } else {
    std::vector<const char*> values;
    std::vector<int> lengths;
    values.reserve(params.values_.size());
    for (const auto& v : params.values_) {
      values.push_back(v.has_value() ? v->data() : nullptr);
      lengths.push_back(v.has_value() ? static_cast<int>(v->size()) : 0);
    }
    result = PQexecParams(conn_, sql, params.size(), /*paramTypes=*/nullptr, values.data(),
                          lengths.data(), params.formats_.data(), result_format);
  }
  Rows rows(result);
  ExecStatusType st = result != nullptr ? PQresultStatus(result) : PGRES_FATAL_ERROR;
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return rows;
  std::string_view head(sql, std::min<size_t>(std::strlen(sql), 80));
  Status error = ResultError(result, conn_, what_ + ": " + std::string(head));
  return error.code() == Code::kUnavailable ? Unreachable(error.message()) : error;
}

Result<bool> Connection::WaitForNotification(std::chrono::milliseconds timeout) {
  auto consume = [this]() -> Result<bool> {
    if (PQconsumeInput(conn_) == 0) {
      return Unreachable(what_ + ": waiting for notifications: " + Trimmed(PQerrorMessage(conn_)));
    }
    bool got = false;
    while (PGnotify* n = PQnotifies(conn_)) {
      got = true;
      PQfreemem(n);
    }
    return got;
  };
  if (PQstatus(conn_) != CONNECTION_OK) {
    return Unreachable(what_ + ": the connection was lost");
  }
  // Notifications that arrived with an earlier statement's result are already buffered.
  GUST_ASSIGN_OR_RETURN(bool buffered, consume());
  if (buffered) return true;
  pollfd fd{PQsocket(conn_), POLLIN, 0};
  if (fd.fd < 0) return Unreachable(what_ + ": the connection has no socket");
  int ready = poll(&fd, 1, static_cast<int>(timeout.count()));
  if (ready < 0 && errno != EINTR) {
    return Status::Internal(what_ + ": poll: " + std::string(std::strerror(errno)));
  }
  if (ready <= 0) return false;
  return consume();
}

Status Connection::Unreachable(const std::string& detail) const {
  // Said the same way by every store: these messages reach clients as 503s (a deploy or an
  // async accept during an outage), and the operator must see at once which server is down.
  return Status::Unavailable("the cluster's PostgreSQL database at " + where_ +
                             " is unavailable (" + detail + ")");
}

Result<int> Connection::SchemaVersion() {
  GUST_ASSIGN_OR_RETURN(Rows exists, Exec("SELECT to_regclass('schema_version') IS NOT NULL"));
  if (exists.empty() || !exists.Bool(0, 0)) return 0;
  GUST_ASSIGN_OR_RETURN(Rows v, Exec("SELECT COALESCE(MAX(version), 0) FROM schema_version"));
  return static_cast<int>(v.Int(0, 0));
}

Status Connection::Migrate(const char* const* migrations, int count, int64_t lock_key) {
  return InTransaction([&]() -> Status {
    GUST_RETURN_IF_ERROR(Exec("SELECT pg_advisory_xact_lock($1)", Params().Add(lock_key)).status());
    GUST_RETURN_IF_ERROR(
        Exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)").status());
    GUST_ASSIGN_OR_RETURN(int current, SchemaVersion());
    if (current > count) {
      return Status::Internal(what_ + " has schema version " + std::to_string(current) +
                              ", newer than this gust (" + std::to_string(count) + ")");
    }
    for (int v = current; v < count; ++v) {
      GUST_RETURN_IF_ERROR(Exec(migrations[v]).status());
      GUST_RETURN_IF_ERROR(
          Exec("INSERT INTO schema_version(version) VALUES ($1)", Params().Add(v + 1)).status());
    }
    return Status::Ok();
  });
}

}  // namespace gust::pg
