// PgMetadataStore: MetadataStore over one PostgreSQL connection (cluster mode,
// docs/CLUSTER.md), with the SQLite store's semantics (metadata_rules.h holds what they share).
//
// Layout: pg_schema.h, the same tables as metadata_schema.h. Concurrency between nodes: every
// write that reads a function's rows before it changes them (UpdateLatest's revision check,
// PublishVersion's dedupe and counter, alias and settings writes, deletes) first locks the
// function's `functions` row (SELECT ... FOR UPDATE), so writes to one function are serial
// across every connection and each sees the one before it; CreateFunction relies on the
// primary key (INSERT ... ON CONFLICT DO NOTHING). Reads take no locks.
#include <limits>
#include <utility>

#include "common/clock.h"
#include "common/ids.h"
#include "common/json_read.h"
#include "common/mutex.h"
#include "common/thread_annotations.h"
#include "store/arn.h"
#include "store/metadata_rules.h"
#include "store/metadata_store.h"
#include "store/pg_schema.h"
#include "store/pg_util.h"

namespace gust {
namespace {

namespace rules = metadata_rules;
using pg::Params;
using pg::Rows;

constexpr const char* kVersionColumns =
    "SELECT version, code_sha256, revision_id, last_modified_ms, config FROM versions ";

constexpr const char* kEventInvokeColumns =
    "SELECT function, qualifier, max_retry_attempts, max_event_age_s, on_success, on_failure, "
    "last_modified_ms FROM event_invoke_configs ";

constexpr const char* kInvocationColumns =
    "SELECT request_id, function, version, start_ms, duration_ms, billed_ms, memory_mb, "
    "max_memory_used_mb, init_ms, cold, outcome, error_type, sandbox_id FROM invocations ";

// Row i of a result selected with kVersionColumns.
Result<FunctionConfig> ReadVersionRow(const Rows& rows, int i, const std::string& name) {
  return rules::ReadVersionRow(rows.at(i), name);
}

EventInvokeConfig ReadEventInvokeConfig(const Rows& rows, int i) {
  return rules::ReadEventInvokeConfig(rows.at(i));
}

std::string QualifierOrLatest(const std::string& qualifier) {
  return qualifier.empty() ? std::string(kLatest) : qualifier;
}

class PgMetadataStore : public MetadataStore {
 public:
  explicit PgMetadataStore(std::unique_ptr<pg::Connection> db) : db_(std::move(db)) {}

  Status CreateFunction(const FunctionConfig& latest) override {
    MutexLock lock(&mu_);
    return InTransaction([&]() REQUIRES(mu_) -> Status {
      GUST_ASSIGN_OR_RETURN(Rows ins, Exec("INSERT INTO functions(name, next_version) VALUES "
                                           "($1, 1) ON CONFLICT DO NOTHING",
                                           Params().Add(latest.name)));
      if (ins.affected() == 0) return rules::FunctionExists(latest.name);
      return WriteVersion(rules::FirstLatest(latest), 0);
    });
  }

  Result<FunctionConfig> GetFunction(const std::string& name, const std::string& version) override {
    MutexLock lock(&mu_);
    return LoadVersion(name, version.empty() ? kLatest : version);
  }

  Status UpdateLatest(const FunctionConfig& latest, const std::string& expected_revision) override {
    MutexLock lock(&mu_);
    return InTransaction([&]() REQUIRES(mu_) -> Status {
      GUST_RETURN_IF_ERROR(LockFunction(latest.name).status());
      GUST_ASSIGN_OR_RETURN(FunctionConfig old, LoadVersion(latest.name, kLatest));
      GUST_ASSIGN_OR_RETURN(FunctionConfig c, rules::NextLatest(old, latest, expected_revision));
      return WriteVersion(c, 0);
    });
  }

  Result<ListPage> ListFunctions(const std::string& marker, int max_items,
                                 bool all_versions) override {
    MutexLock lock(&mu_);
    if (max_items <= 0) max_items = 50;
    rules::ListMarker after = rules::ParseListMarker(marker, all_versions);
    // The same columns as kVersionColumns, plus the function name and version number.
    GUST_ASSIGN_OR_RETURN(
        Rows rows,
        Exec(all_versions
                 ? "SELECT version, code_sha256, revision_id, last_modified_ms, config, function, "
                   "version_num FROM versions WHERE function > $1 OR (function = $1 AND "
                   "version_num > $2) ORDER BY function, version_num LIMIT $3"
                 : "SELECT version, code_sha256, revision_id, last_modified_ms, config, function, "
                   "version_num FROM versions WHERE version_num = 0 AND (function > $1 OR "
                   "(function = $1 AND version_num > $2)) ORDER BY function LIMIT $3",
             Params().Add(after.name).Add(after.version_num).Add(max_items + 1)));
    ListPage page;
    for (int i = 0; i < rows.size(); ++i) {
      if (i == max_items) {
        page.next_marker =
            rules::FormatListMarker(page.functions.back().name, rows.Int(i - 1, 6), all_versions);
        break;
      }
      GUST_ASSIGN_OR_RETURN(FunctionConfig c, ReadVersionRow(rows, i, rows.Text(i, 5)));
      page.functions.push_back(std::move(c));
    }
    return page;
  }

  Status DeleteFunction(const std::string& name) override {
    MutexLock lock(&mu_);
    return InTransaction([&]() REQUIRES(mu_) -> Status {
      GUST_RETURN_IF_ERROR(LockFunction(name).status());
      // Versions, aliases, settings and async settings go by ON DELETE CASCADE.
      return Exec("DELETE FROM functions WHERE name = $1", Params().Add(name)).status();
    });
  }

  Status DeleteVersion(const std::string& name, const std::string& version) override {
    MutexLock lock(&mu_);
    if (version == kLatest) return rules::LatestNotDeletable();
    return InTransaction([&]() REQUIRES(mu_) -> Status {
      GUST_RETURN_IF_ERROR(LockFunction(name).status());
      GUST_RETURN_IF_ERROR(LoadVersion(name, version).status());
      GUST_ASSIGN_OR_RETURN(Rows refs, Exec("SELECT string_agg(name, ', ' ORDER BY name) FROM "
                                            "aliases WHERE function = $1 AND version = $2",
                                            Params().Add(name).Add(version)));
      if (!refs.IsNull(0, 0)) return rules::VersionHasAliases(refs.Text(0, 0));
      return Exec("DELETE FROM versions WHERE function = $1 AND version = $2",
                  Params().Add(name).Add(version))
          .status();
    });
  }

  Result<FunctionConfig> PublishVersion(const std::string& name,
                                        const std::string& description) override {
    MutexLock lock(&mu_);
    Result<FunctionConfig> out = Status::Internal("unreachable");
    Status s = InTransaction([&]() REQUIRES(mu_) -> Status {
      GUST_ASSIGN_OR_RETURN(int64_t number, LockFunction(name));
      GUST_ASSIGN_OR_RETURN(FunctionConfig latest, LoadVersion(name, kLatest));
      GUST_ASSIGN_OR_RETURN(Rows newest, Exec(std::string(kVersionColumns) +
                                                  "WHERE function = $1 AND version_num > 0 "
                                                  "ORDER BY version_num DESC LIMIT 1",
                                              Params().Add(name)));
      if (!newest.empty()) {
        GUST_ASSIGN_OR_RETURN(FunctionConfig last, ReadVersionRow(newest, 0, name));
        if (rules::SameAsPublished(last, latest)) {
          out = std::move(last);
          return Status::Ok();
        }
      }
      GUST_RETURN_IF_ERROR(Exec("UPDATE functions SET next_version = $2 WHERE name = $1",
                                Params().Add(name).Add(number + 1))
                               .status());
      FunctionConfig v = rules::NewVersion(latest, number, description);
      GUST_RETURN_IF_ERROR(WriteVersion(v, number));
      out = std::move(v);
      return Status::Ok();
    });
    if (!s.ok()) return s;
    return out;
  }

  Result<std::vector<FunctionConfig>> ListVersions(const std::string& name) override {
    MutexLock lock(&mu_);
    GUST_ASSIGN_OR_RETURN(
        Rows rows, Exec(std::string(kVersionColumns) + "WHERE function = $1 ORDER BY version_num",
                        Params().Add(name)));
    if (rows.empty()) return rules::FunctionNotFound(name);
    std::vector<FunctionConfig> out;
    for (int i = 0; i < rows.size(); ++i) {
      GUST_ASSIGN_OR_RETURN(FunctionConfig c, ReadVersionRow(rows, i, name));
      out.push_back(std::move(c));
    }
    return out;
  }

  Status CreateAlias(const AliasConfig& alias) override {
    MutexLock lock(&mu_);
    return InTransaction([&]() REQUIRES(mu_) -> Status {
      GUST_RETURN_IF_ERROR(LockFunction(alias.function).status());
      GUST_RETURN_IF_ERROR(CheckAliasTarget(alias));
      GUST_ASSIGN_OR_RETURN(
          Rows ins, Exec("INSERT INTO aliases(function, name, version, description, revision_id) "
                         "VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                         AliasParams(alias, "")));
      if (ins.affected() == 0) return rules::AliasExists(alias.function, alias.name);
      return Status::Ok();
    });
  }

  Result<AliasConfig> GetAlias(const std::string& function, const std::string& name) override {
    MutexLock lock(&mu_);
    GUST_ASSIGN_OR_RETURN(Rows rows, Exec("SELECT version, description, revision_id FROM aliases "
                                          "WHERE function = $1 AND name = $2",
                                          Params().Add(function).Add(name)));
    if (rows.empty()) return AliasNotFound(function, name);
    return AliasConfig{function, name, rows.Text(0, 0), rows.Text(0, 1), rows.Text(0, 2)};
  }

  Status UpdateAlias(const AliasConfig& alias) override {
    MutexLock lock(&mu_);
    return InTransaction([&]() REQUIRES(mu_) -> Status {
      GUST_RETURN_IF_ERROR(LockFunction(alias.function).status());
      GUST_ASSIGN_OR_RETURN(Rows old, Exec("SELECT revision_id FROM aliases WHERE function = $1 "
                                           "AND name = $2",
                                           Params().Add(alias.function).Add(alias.name)));
      if (old.empty()) return rules::AliasNotFound(alias.function, alias.name);
      GUST_RETURN_IF_ERROR(CheckAliasTarget(alias));
      return Exec(
                 "UPDATE aliases SET version = $3, description = $4, revision_id = $5 "
                 "WHERE function = $1 AND name = $2",
                 AliasParams(alias, old.Text(0, 0)))
          .status();
    });
  }

  Status DeleteAlias(const std::string& function, const std::string& name) override {
    MutexLock lock(&mu_);
    GUST_ASSIGN_OR_RETURN(Rows del, Exec("DELETE FROM aliases WHERE function = $1 AND name = $2",
                                         Params().Add(function).Add(name)));
    if (del.affected() == 0) return AliasNotFound(function, name);
    return Status::Ok();
  }

  Result<std::vector<AliasConfig>> ListAliases(const std::string& function) override {
    MutexLock lock(&mu_);
    GUST_RETURN_IF_ERROR(CheckFunction(function));
    GUST_ASSIGN_OR_RETURN(Rows rows, Exec("SELECT name, version, description, revision_id FROM "
                                          "aliases WHERE function = $1 ORDER BY name",
                                          Params().Add(function)));
    std::vector<AliasConfig> out;
    for (int i = 0; i < rows.size(); ++i) {
      out.push_back(AliasConfig{function, rows.Text(i, 0), rows.Text(i, 1), rows.Text(i, 2),
                                rows.Text(i, 3)});
    }
    return out;
  }

  Result<FunctionSettings> GetSettings(const std::string& function) override {
    MutexLock lock(&mu_);
    GUST_RETURN_IF_ERROR(CheckFunction(function));
    GUST_ASSIGN_OR_RETURN(Rows rows,
                          Exec("SELECT reserved_concurrency FROM settings WHERE function = $1",
                               Params().Add(function)));
    FunctionSettings settings;
    if (!rows.empty() && !rows.IsNull(0, 0)) {
      settings.reserved_concurrency = static_cast<int>(rows.Int(0, 0));
    }
    return settings;
  }

  Status PutSettings(const std::string& function, const FunctionSettings& settings) override {
    MutexLock lock(&mu_);
    return InTransaction([&]() REQUIRES(mu_) -> Status {
      GUST_RETURN_IF_ERROR(LockFunction(function).status());
      return Exec(
                 "INSERT INTO settings(function, reserved_concurrency) VALUES ($1, $2) "
                 "ON CONFLICT (function) DO UPDATE SET "
                 "reserved_concurrency = excluded.reserved_concurrency",
                 Params().Add(function).Add(settings.reserved_concurrency))
          .status();
    });
  }

  Status PutEventInvokeConfig(const EventInvokeConfig& config) override {
    MutexLock lock(&mu_);
    return InTransaction([&]() REQUIRES(mu_) -> Status {
      GUST_RETURN_IF_ERROR(LockFunction(config.function).status());
      return Exec(
                 "INSERT INTO event_invoke_configs(function, qualifier, max_retry_attempts, "
                 "max_event_age_s, on_success, on_failure, last_modified_ms) VALUES "
                 "($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (function, qualifier) DO UPDATE SET "
                 "max_retry_attempts = excluded.max_retry_attempts, "
                 "max_event_age_s = excluded.max_event_age_s, on_success = excluded.on_success, "
                 "on_failure = excluded.on_failure, last_modified_ms = excluded.last_modified_ms",
                 Params()
                     .Add(config.function)
                     .Add(QualifierOrLatest(config.qualifier))
                     .Add(config.max_retry_attempts)
                     .Add(config.max_event_age_s)
                     .Add(config.on_success)
                     .Add(config.on_failure)
                     .Add(config.last_modified_ms ? config.last_modified_ms : NowEpochMs()))
          .status();
    });
  }

  Result<EventInvokeConfig> GetEventInvokeConfig(const std::string& function,
                                                 const std::string& qualifier) override {
    MutexLock lock(&mu_);
    std::string q = QualifierOrLatest(qualifier);
    GUST_ASSIGN_OR_RETURN(
        Rows rows, Exec(std::string(kEventInvokeColumns) + "WHERE function = $1 AND qualifier = $2",
                        Params().Add(function).Add(q)));
    if (rows.empty()) return rules::NoEventInvokeConfig(function, q);
    return ReadEventInvokeConfig(rows, 0);
  }

  Status DeleteEventInvokeConfig(const std::string& function,
                                 const std::string& qualifier) override {
    MutexLock lock(&mu_);
    std::string q = QualifierOrLatest(qualifier);
    GUST_ASSIGN_OR_RETURN(
        Rows del, Exec("DELETE FROM event_invoke_configs WHERE function = $1 AND qualifier = $2",
                       Params().Add(function).Add(q)));
    if (del.affected() == 0) return rules::NoEventInvokeConfig(function, q);
    return Status::Ok();
  }

  Result<std::vector<EventInvokeConfig>> ListEventInvokeConfigs(
      const std::string& function) override {
    MutexLock lock(&mu_);
    GUST_RETURN_IF_ERROR(CheckFunction(function));
    GUST_ASSIGN_OR_RETURN(
        Rows rows, Exec(std::string(kEventInvokeColumns) + "WHERE function = $1 ORDER BY qualifier",
                        Params().Add(function)));
    std::vector<EventInvokeConfig> out;
    for (int i = 0; i < rows.size(); ++i) out.push_back(ReadEventInvokeConfig(rows, i));
    return out;
  }

  Status RecordInvocations(const std::vector<InvocationRecord>& records) override {
    if (records.empty()) return Status::Ok();
    MutexLock lock(&mu_);
    // One multi-row INSERT per chunk: a round trip per chunk, not per record. 13 parameters a
    // row; PostgreSQL allows 65535 a statement.
    constexpr size_t kChunk = 1000;
    return InTransaction([&]() REQUIRES(mu_) -> Status {
      for (size_t begin = 0; begin < records.size(); begin += kChunk) {
        size_t end = std::min(records.size(), begin + kChunk);
        std::string sql =
            "INSERT INTO invocations(request_id, function, version, start_ms, duration_ms, "
            "billed_ms, memory_mb, max_memory_used_mb, init_ms, cold, outcome, error_type, "
            "sandbox_id) VALUES ";
        Params params;
        for (size_t i = begin; i < end; ++i) {
          const InvocationRecord& r = records[i];
          int base = params.size();
          sql += i == begin ? "(" : ", (";
          for (int k = 1; k <= 13; ++k) {
            sql += (k == 1 ? "$" : ", $") + std::to_string(base + k);
          }
          sql += ")";
          params.Add(r.request_id).Add(r.function).Add(r.version).Add(r.start_ms);
          params.Add(r.duration_ms).Add(r.billed_ms).Add(r.memory_mb).Add(r.max_memory_used_mb);
          params.Add(r.init_ms).Add(r.cold).Add(r.outcome).Add(r.error_type).Add(r.sandbox_id);
        }
        GUST_RETURN_IF_ERROR(Exec(sql, params).status());
      }
      return Status::Ok();
    });
  }

  Result<std::vector<InvocationRecord>> QueryInvocations(const std::string& function,
                                                         int64_t since_ms, int limit) override {
    MutexLock lock(&mu_);
    Params params;
    params.Add(since_ms);
    if (limit > 0) {
      params.Add(limit);
    } else {
      params.AddNull();  // LIMIT NULL: no limit
    }
    if (!function.empty()) params.Add(function);
    GUST_ASSIGN_OR_RETURN(Rows rows,
                          Exec(std::string(kInvocationColumns) +
                                   (function.empty() ? "WHERE start_ms >= $1 "
                                                     : "WHERE function = $3 AND start_ms >= $1 ") +
                                   "ORDER BY start_ms DESC, id DESC LIMIT $2",
                               params));
    std::vector<InvocationRecord> out;
    out.reserve(static_cast<size_t>(rows.size()));
    for (int i = 0; i < rows.size(); ++i) {
      out.push_back(rules::ReadInvocation(rows.at(i)));
    }
    return out;
  }

  Result<InvocationSummary> SummarizeInvocations(const std::string& function,
                                                 int64_t since_ms) override {
    MutexLock lock(&mu_);
    // percentile_disc is the nearest rank (the value at rank ceil(p * n)), as the SQLite
    // store computes it; NULL (read as 0) when there are no records.
    GUST_ASSIGN_OR_RETURN(Rows rows,
                          Exec("SELECT COUNT(*), COUNT(*) FILTER (WHERE outcome <> 'Success'), "
                               "COUNT(*) FILTER (WHERE cold), COALESCE(MAX(start_ms), 0), "
                               "percentile_disc(0.5) WITHIN GROUP (ORDER BY duration_ms), "
                               "percentile_disc(0.99) WITHIN GROUP (ORDER BY duration_ms) "
                               "FROM invocations WHERE function = $1 AND start_ms >= $2",
                               Params().Add(function).Add(since_ms)));
    InvocationSummary out;
    out.invocations = rows.Int(0, 0);
    out.errors = rows.Int(0, 1);
    out.cold_starts = rows.Int(0, 2);
    out.last_start_ms = rows.Int(0, 3);
    out.p50_ms = rows.Double(0, 4);
    out.p99_ms = rows.Double(0, 5);
    return out;
  }

 private:
  Result<Rows> Exec(const std::string& sql, const Params& params = Params()) REQUIRES(mu_) {
    return db_->Exec(sql.c_str(), params);
  }
  template <typename Body>
  Status InTransaction(Body&& body) REQUIRES(mu_) {
    return db_->InTransaction(std::forward<Body>(body));
  }

  // Locks the function's row until the transaction ends (see the file comment) and returns
  // its next version number; NotFound names the function.
  Result<int64_t> LockFunction(const std::string& name) REQUIRES(mu_) {
    GUST_ASSIGN_OR_RETURN(Rows rows, Exec("SELECT next_version FROM functions WHERE name = $1 "
                                          "FOR UPDATE",
                                          Params().Add(name)));
    if (rows.empty()) return rules::FunctionNotFound(name);
    return rows.Int(0, 0);
  }

  Status CheckFunction(const std::string& name) REQUIRES(mu_) {
    GUST_ASSIGN_OR_RETURN(Rows rows,
                          Exec("SELECT 1 FROM functions WHERE name = $1", Params().Add(name)));
    if (rows.empty()) return rules::FunctionNotFound(name);
    return Status::Ok();
  }

  Status AliasNotFound(const std::string& function, const std::string& name) REQUIRES(mu_) {
    GUST_RETURN_IF_ERROR(CheckFunction(function));
    return rules::AliasNotFound(function, name);
  }

  // NotFound names the function when it is missing, else the missing version.
  Result<FunctionConfig> LoadVersion(const std::string& name, const std::string& version)
      REQUIRES(mu_) {
    GUST_ASSIGN_OR_RETURN(
        Rows rows, Exec(std::string(kVersionColumns) + "WHERE function = $1 AND version = $2",
                        Params().Add(name).Add(version)));
    if (!rows.empty()) return ReadVersionRow(rows, 0, name);
    GUST_RETURN_IF_ERROR(CheckFunction(name));
    return rules::FunctionNotFound(name, version);
  }

  Status WriteVersion(const FunctionConfig& c, int64_t version_num) REQUIRES(mu_) {
    return Exec(
               "INSERT INTO versions(function, version, version_num, code_sha256, revision_id, "
               "last_modified_ms, config) VALUES ($1, $2, $3, $4, $5, $6, $7) "
               "ON CONFLICT (function, version) DO UPDATE SET version_num = "
               "excluded.version_num, code_sha256 = excluded.code_sha256, revision_id = "
               "excluded.revision_id, last_modified_ms = excluded.last_modified_ms, config = "
               "excluded.config",
               Params()
                   .Add(c.name)
                   .Add(c.version)
                   .Add(version_num)
                   .Add(c.code_sha256)
                   .Add(c.revision_id)
                   .Add(c.last_modified_ms)
                   .Add(JsonDump(rules::ConfigToJson(c))))
        .status();
  }

  // The alias's function must exist and its target be $LATEST or a published version.
  Status CheckAliasTarget(const AliasConfig& alias) REQUIRES(mu_) {
    return LoadVersion(alias.function, QualifierOrLatest(alias.version)).status();
  }

  // $1 function, $2 name, $3 version, $4 description, $5 the new revision.
  static Params AliasParams(const AliasConfig& alias, const std::string& old_revision) {
    return Params()
        .Add(alias.function)
        .Add(alias.name)
        .Add(QualifierOrLatest(alias.version))
        .Add(alias.description)
        .Add(rules::NextAliasRevision(alias, old_revision));
  }

  Mutex mu_;
  std::unique_ptr<pg::Connection> db_ GUARDED_BY(mu_);
};

}  // namespace

Result<std::unique_ptr<MetadataStore>> OpenPgMetadataStore(const std::string& conninfo) {
  GUST_ASSIGN_OR_RETURN(auto db, pg_schema::Connect(conninfo, "metadata database"));
  return std::unique_ptr<MetadataStore>(std::make_unique<PgMetadataStore>(std::move(db)));
}

}  // namespace gust
