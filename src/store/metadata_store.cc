// SqliteMetadataStore: MetadataStore over one SQLite connection in WAL mode.
//
// Layout: `functions` holds the name and the next version number (so numbers
// are never reused after a delete); `versions` holds every version ($LATEST
// has version_num 0) with the full FunctionConfig as JSON, plus the columns we
// query or compare on; `aliases`, `settings` and `invocations` are what they
// say (see metadata_schema.h).
#include "store/metadata_store.h"

#include <cmath>
#include <iterator>
#include <limits>
#include <nlohmann/json.hpp>
#include <utility>

#include "common/clock.h"
#include "common/ids.h"
#include "common/json_read.h"
#include "common/mutex.h"
#include "common/thread_annotations.h"
#include "store/arn.h"
#include "store/metadata_rules.h"
#include "store/metadata_schema.h"
#include "store/sqlite_util.h"

namespace gust {
namespace {

using sqlite::Statement;
using json = nlohmann::json;

using sqlite_schema::kMigrations;
constexpr int kSchemaVersion = static_cast<int>(std::size(kMigrations));

constexpr const char* kVersionColumns =
    "SELECT version, code_sha256, revision_id, last_modified_ms, config FROM versions ";

constexpr const char* kEventInvokeColumns =
    "SELECT function, qualifier, max_retry_attempts, max_event_age_s, on_success, on_failure, "
    "last_modified_ms FROM event_invoke_configs ";

}  // namespace

namespace metadata_rules {

json ConfigToJson(const FunctionConfig& c) {
  return json{{"runtime", c.runtime},
              {"handler", c.handler},
              {"role", c.role},
              {"description", c.description},
              {"memory_mb", c.memory_mb},
              {"timeout_s", c.timeout_s},
              {"ephemeral_storage_mb", c.ephemeral_storage_mb},
              {"env", c.env},
              {"network", c.network},
              {"keep_alive_s", c.keep_alive_s},
              {"python", c.python},
              {"buckets", c.buckets},
              {"code_size", c.code_size}};
}

// The parts of a configuration that make a published version differ from
// $LATEST. Description is excluded: a version's description is given at
// publish time, so it differs from $LATEST's without the function changing.
json ComparableConfig(const FunctionConfig& c) {
  json j = ConfigToJson(c);
  j.erase("description");
  j["code_sha256"] = c.code_sha256;
  return j;
}

bool SameAsPublished(const FunctionConfig& published, const FunctionConfig& latest) {
  return ComparableConfig(published) == ComparableConfig(latest);
}

Status ConfigFromJson(const std::string& text, FunctionConfig* out) {
  FunctionConfig& c = *out;
  try {
    json j = json::parse(text);
    c.runtime = j.value("runtime", c.runtime);
    c.handler = j.value("handler", c.handler);
    c.role = j.value("role", c.role);
    c.description = j.value("description", c.description);
    c.memory_mb = j.value("memory_mb", c.memory_mb);
    c.timeout_s = j.value("timeout_s", c.timeout_s);
    c.ephemeral_storage_mb = j.value("ephemeral_storage_mb", c.ephemeral_storage_mb);
    c.env = j.value("env", c.env);
    c.network = j.value("network", c.network);
    c.keep_alive_s = j.value("keep_alive_s", c.keep_alive_s);
    c.python = j.value("python", c.python);
    c.buckets = j.value("buckets", c.buckets);
    c.code_size = j.value("code_size", c.code_size);
  } catch (const json::exception& e) {
    return Status::Internal("corrupt configuration of " + FunctionArn(c.name, c.version) + ": " +
                            e.what());
  }
  return Status::Ok();
}

Result<FunctionConfig> NextLatest(const FunctionConfig& old, const FunctionConfig& latest,
                                  const std::string& expected_revision) {
  if (!expected_revision.empty() && expected_revision != old.revision_id) {
    return RevisionMismatch();
  }
  FunctionConfig c = latest;
  StampUpdate(old, &c);
  return c;
}

FunctionConfig NewVersion(const FunctionConfig& latest, int64_t number,
                          const std::string& description) {
  FunctionConfig v = latest;
  v.version = std::to_string(number);
  if (!description.empty()) v.description = description;
  v.revision_id = NewRequestId();
  v.last_modified_ms = NowEpochMs();
  return v;
}

FunctionConfig FirstLatest(const FunctionConfig& latest) {
  FunctionConfig c = latest;
  c.version = kLatest;
  if (c.revision_id.empty()) c.revision_id = NewRequestId();
  if (c.last_modified_ms == 0) c.last_modified_ms = NowEpochMs();
  return c;
}

void StampUpdate(const FunctionConfig& old, FunctionConfig* c) {
  c->version = kLatest;
  if (c->revision_id.empty() || c->revision_id == old.revision_id) c->revision_id = NewRequestId();
  if (c->last_modified_ms <= old.last_modified_ms) c->last_modified_ms = NowEpochMs();
}

std::string NextAliasRevision(const AliasConfig& alias, const std::string& old_revision) {
  if (alias.revision_id.empty() || alias.revision_id == old_revision) return NewRequestId();
  return alias.revision_id;
}

ListMarker ParseListMarker(const std::string& marker, bool all_versions) {
  ListMarker m{marker, all_versions ? -1 : std::numeric_limits<int64_t>::max()};
  if (all_versions) {
    if (auto colon = marker.find(':'); colon != std::string::npos) {
      m.name = marker.substr(0, colon);
      m.version_num = std::strtoll(marker.c_str() + colon + 1, nullptr, 10);
    }
  }
  return m;
}

std::string FormatListMarker(const std::string& name, int64_t version_num, bool all_versions) {
  return all_versions ? name + ":" + std::to_string(version_num) : name;
}

Status FunctionNotFound(const std::string& name, const std::string& qualifier) {
  return Status::NotFound("Function not found: " + FunctionArn(name, qualifier));
}

Status FunctionExists(const std::string& name) {
  return Status::Conflict("Function already exist: " + name);
}

Status RevisionMismatch() {
  return Status::Conflict(
      "The Revision Id provided does not match the latest Revision Id. Call the "
      "GetFunction/GetAlias API to retrieve the latest Revision Id");
}

Status LatestNotDeletable() {
  return Status::InvalidArgument(
      "$LATEST version cannot be deleted without deleting the function.");
}

Status VersionHasAliases(const std::string& aliases) {
  return Status::Conflict("Unable to delete version because the following aliases reference it: [" +
                          aliases + "]");
}

Status AliasExists(const std::string& function, const std::string& name) {
  return Status::Conflict("Alias already exists: " + FunctionArn(function, name));
}

Status AliasNotFound(const std::string& function, const std::string& name) {
  return Status::NotFound("Alias not found: " + FunctionArn(function, name));
}

Status NoEventInvokeConfig(const std::string& function, const std::string& qualifier) {
  return Status::NotFound("The function " + FunctionArn(function, qualifier) +
                          " doesn't have an EventInvokeConfig");
}

}  // namespace metadata_rules

namespace {

using metadata_rules::ConfigToJson;
using metadata_rules::FunctionNotFound;

using metadata_rules::ReadEventInvokeConfig;
using metadata_rules::ReadVersionRow;

class SqliteMetadataStore : public MetadataStore {
 public:
  explicit SqliteMetadataStore(std::unique_ptr<sqlite::Database> db) : db_(std::move(db)) {}

  Status Init() {
    MutexLock lock(&mu_);
    GUST_RETURN_IF_ERROR(Exec("PRAGMA foreign_keys=ON"));
    return db_->Migrate(kMigrations, kSchemaVersion);
  }

  Status CreateFunction(const FunctionConfig& latest) override {
    MutexLock lock(&mu_);
    return InTransaction([&]() REQUIRES(mu_) -> Status {
      GUST_ASSIGN_OR_RETURN(bool exists, FunctionExists(latest.name));
      if (exists) return metadata_rules::FunctionExists(latest.name);
      GUST_ASSIGN_OR_RETURN(Statement st,
                            Prepare("INSERT INTO functions(name, next_version) VALUES (?, 1)"));
      GUST_RETURN_IF_ERROR(st.Bind(1, latest.name).Run());
      return WriteVersion(metadata_rules::FirstLatest(latest), 0);
    });
  }

  Result<FunctionConfig> GetFunction(const std::string& name, const std::string& version) override {
    MutexLock lock(&mu_);
    return LoadVersion(name, version.empty() ? kLatest : version);
  }

  Status UpdateLatest(const FunctionConfig& latest, const std::string& expected_revision) override {
    MutexLock lock(&mu_);
    return InTransaction([&]() REQUIRES(mu_) -> Status {
      GUST_ASSIGN_OR_RETURN(FunctionConfig old, LoadVersion(latest.name, kLatest));
      GUST_ASSIGN_OR_RETURN(FunctionConfig c,
                            metadata_rules::NextLatest(old, latest, expected_revision));
      return WriteVersion(c, 0);
    });
  }

  Result<ListPage> ListFunctions(const std::string& marker, int max_items,
                                 bool all_versions) override {
    MutexLock lock(&mu_);
    if (max_items <= 0) max_items = 50;
    metadata_rules::ListMarker after = metadata_rules::ParseListMarker(marker, all_versions);
    // The same columns as kVersionColumns, plus the function name.
    GUST_ASSIGN_OR_RETURN(
        Statement q,
        Prepare(all_versions
                    ? "SELECT version, code_sha256, revision_id, last_modified_ms, config, "
                      "function, version_num FROM versions WHERE function > ? OR (function = ? "
                      "AND version_num > ?) ORDER BY function, version_num LIMIT ?"
                    : "SELECT version, code_sha256, revision_id, last_modified_ms, config, "
                      "function, version_num FROM versions WHERE version_num = 0 AND (function "
                      "> ? OR (function = ? AND version_num > ?)) ORDER BY function LIMIT ?"));
    q.Bind(1, after.name).Bind(2, after.name).Bind(3, after.version_num);
    q.Bind(4, static_cast<int64_t>(max_items) + 1);
    ListPage page;
    int64_t last_version_num = 0;
    while (true) {
      GUST_ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) break;
      if (static_cast<int>(page.functions.size()) == max_items) {
        page.next_marker = metadata_rules::FormatListMarker(page.functions.back().name,
                                                            last_version_num, all_versions);
        break;
      }
      GUST_ASSIGN_OR_RETURN(FunctionConfig c, ReadVersionRow(q, q.Text(5)));
      last_version_num = q.Int(6);
      page.functions.push_back(std::move(c));
    }
    return page;
  }

  Status DeleteFunction(const std::string& name) override {
    MutexLock lock(&mu_);
    return InTransaction([&]() REQUIRES(mu_) -> Status {
      GUST_ASSIGN_OR_RETURN(bool exists, FunctionExists(name));
      if (!exists) return FunctionNotFound(name);
      // Explicit deletes, so the result does not depend on foreign_keys being on.
      for (const char* sql :
           {"DELETE FROM aliases WHERE function = ?", "DELETE FROM settings WHERE function = ?",
            "DELETE FROM event_invoke_configs WHERE function = ?",
            "DELETE FROM versions WHERE function = ?", "DELETE FROM functions WHERE name = ?"}) {
        GUST_ASSIGN_OR_RETURN(Statement st, Prepare(sql));
        GUST_RETURN_IF_ERROR(st.Bind(1, name).Run());
      }
      return Status::Ok();
    });
  }

  Status DeleteVersion(const std::string& name, const std::string& version) override {
    MutexLock lock(&mu_);
    if (version == kLatest) return metadata_rules::LatestNotDeletable();
    return InTransaction([&]() REQUIRES(mu_) -> Status {
      GUST_RETURN_IF_ERROR(LoadVersion(name, version).status());
      GUST_ASSIGN_OR_RETURN(
          Statement q,
          Prepare("SELECT name FROM aliases WHERE function = ? AND version = ? ORDER BY name"));
      q.Bind(1, name).Bind(2, version);
      std::string referencing;
      while (true) {
        GUST_ASSIGN_OR_RETURN(bool row, q.Step());
        if (!row) break;
        if (!referencing.empty()) referencing += ", ";
        referencing += q.Text(0);
      }
      if (!referencing.empty()) return metadata_rules::VersionHasAliases(referencing);
      GUST_ASSIGN_OR_RETURN(Statement del,
                            Prepare("DELETE FROM versions WHERE function = ? AND version = ?"));
      return del.Bind(1, name).Bind(2, version).Run();
    });
  }

  Result<FunctionConfig> PublishVersion(const std::string& name,
                                        const std::string& description) override {
    MutexLock lock(&mu_);
    Result<FunctionConfig> out = Status::Internal("unreachable");
    Status s = InTransaction([&]() REQUIRES(mu_) -> Status {
      GUST_ASSIGN_OR_RETURN(FunctionConfig latest, LoadVersion(name, kLatest));
      GUST_ASSIGN_OR_RETURN(Statement newest, Prepare(std::string(kVersionColumns) +
                                                      "WHERE function = ? AND version_num > 0 "
                                                      "ORDER BY version_num DESC LIMIT 1"));
      newest.Bind(1, name);
      GUST_ASSIGN_OR_RETURN(bool have_newest, newest.Step());
      if (have_newest) {
        GUST_ASSIGN_OR_RETURN(FunctionConfig last, ReadVersionRow(newest, name));
        if (metadata_rules::SameAsPublished(last, latest)) {
          out = std::move(last);
          return Status::Ok();
        }
      }
      GUST_ASSIGN_OR_RETURN(Statement next,
                            Prepare("SELECT next_version FROM functions WHERE name = ?"));
      GUST_ASSIGN_OR_RETURN(bool found, next.Bind(1, name).Step());
      if (!found) return Status::Internal("function row missing for " + FunctionArn(name));
      int64_t number = next.Int(0);
      GUST_ASSIGN_OR_RETURN(Statement bump,
                            Prepare("UPDATE functions SET next_version = ? WHERE name = ?"));
      GUST_RETURN_IF_ERROR(bump.Bind(1, number + 1).Bind(2, name).Run());
      FunctionConfig v = metadata_rules::NewVersion(latest, number, description);
      GUST_RETURN_IF_ERROR(WriteVersion(v, number));
      out = std::move(v);
      return Status::Ok();
    });
    if (!s.ok()) return s;
    return out;
  }

  Result<std::vector<FunctionConfig>> ListVersions(const std::string& name) override {
    MutexLock lock(&mu_);
    GUST_ASSIGN_OR_RETURN(Statement q, Prepare(std::string(kVersionColumns) +
                                               "WHERE function = ? ORDER BY version_num"));
    q.Bind(1, name);
    std::vector<FunctionConfig> out;
    while (true) {
      GUST_ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) break;
      GUST_ASSIGN_OR_RETURN(FunctionConfig c, ReadVersionRow(q, name));
      out.push_back(std::move(c));
    }
    if (out.empty()) return FunctionNotFound(name);
    return out;
  }

  Status CreateAlias(const AliasConfig& alias) override {
    MutexLock lock(&mu_);
    return InTransaction([&]() REQUIRES(mu_) -> Status {
      GUST_RETURN_IF_ERROR(CheckAliasTarget(alias));
      GUST_ASSIGN_OR_RETURN(bool exists, AliasExists(alias.function, alias.name));
      if (exists) return metadata_rules::AliasExists(alias.function, alias.name);
      return WriteAlias(alias, "",
                        "INSERT INTO aliases(version, description, revision_id, function, name) "
                        "VALUES (?, ?, ?, ?, ?)");
    });
  }

  Result<AliasConfig> GetAlias(const std::string& function, const std::string& name) override {
    MutexLock lock(&mu_);
    GUST_ASSIGN_OR_RETURN(Statement q,
                          Prepare("SELECT version, description, revision_id FROM aliases "
                                  "WHERE function = ? AND name = ?"));
    GUST_ASSIGN_OR_RETURN(bool row, q.Bind(1, function).Bind(2, name).Step());
    if (!row) return AliasNotFound(function, name);
    return AliasConfig{function, name, q.Text(0), q.Text(1), q.Text(2)};
  }

  Status UpdateAlias(const AliasConfig& alias) override {
    MutexLock lock(&mu_);
    return InTransaction([&]() REQUIRES(mu_) -> Status {
      GUST_ASSIGN_OR_RETURN(
          Statement q, Prepare("SELECT revision_id FROM aliases WHERE function = ? AND name = ?"));
      GUST_ASSIGN_OR_RETURN(bool exists, q.Bind(1, alias.function).Bind(2, alias.name).Step());
      if (!exists) return AliasNotFound(alias.function, alias.name);
      std::string old_revision = q.Text(0);
      GUST_RETURN_IF_ERROR(CheckAliasTarget(alias));
      return WriteAlias(alias, old_revision,
                        "UPDATE aliases SET version = ?, description = ?, revision_id = ? "
                        "WHERE function = ? AND name = ?");
    });
  }

  Status DeleteAlias(const std::string& function, const std::string& name) override {
    MutexLock lock(&mu_);
    return InTransaction([&]() REQUIRES(mu_) -> Status {
      GUST_ASSIGN_OR_RETURN(bool exists, AliasExists(function, name));
      if (!exists) return AliasNotFound(function, name);
      GUST_ASSIGN_OR_RETURN(Statement del,
                            Prepare("DELETE FROM aliases WHERE function = ? AND name = ?"));
      return del.Bind(1, function).Bind(2, name).Run();
    });
  }

  Result<std::vector<AliasConfig>> ListAliases(const std::string& function) override {
    MutexLock lock(&mu_);
    GUST_ASSIGN_OR_RETURN(bool exists, FunctionExists(function));
    if (!exists) return FunctionNotFound(function);
    GUST_ASSIGN_OR_RETURN(Statement q,
                          Prepare("SELECT name, version, description, revision_id FROM aliases "
                                  "WHERE function = ? ORDER BY name"));
    q.Bind(1, function);
    std::vector<AliasConfig> out;
    while (true) {
      GUST_ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) break;
      out.push_back(AliasConfig{function, q.Text(0), q.Text(1), q.Text(2), q.Text(3)});
    }
    return out;
  }

  Result<FunctionSettings> GetSettings(const std::string& function) override {
    MutexLock lock(&mu_);
    GUST_ASSIGN_OR_RETURN(bool exists, FunctionExists(function));
    if (!exists) return FunctionNotFound(function);
    GUST_ASSIGN_OR_RETURN(Statement q,
                          Prepare("SELECT reserved_concurrency FROM settings WHERE function = ?"));
    GUST_ASSIGN_OR_RETURN(bool row, q.Bind(1, function).Step());
    FunctionSettings settings;
    if (row && !q.IsNull(0)) settings.reserved_concurrency = static_cast<int>(q.Int(0));
    return settings;
  }

  Status PutSettings(const std::string& function, const FunctionSettings& settings) override {
    MutexLock lock(&mu_);
    return InTransaction([&]() REQUIRES(mu_) -> Status {
      GUST_ASSIGN_OR_RETURN(bool exists, FunctionExists(function));
      if (!exists) return FunctionNotFound(function);
      GUST_ASSIGN_OR_RETURN(
          Statement st,
          Prepare("INSERT INTO settings(function, reserved_concurrency) VALUES (?, ?) "
                  "ON CONFLICT(function) DO UPDATE SET "
                  "reserved_concurrency = excluded.reserved_concurrency"));
      return st.Bind(1, function).Bind(2, settings.reserved_concurrency).Run();
    });
  }

  Status PutEventInvokeConfig(const EventInvokeConfig& config) override {
    MutexLock lock(&mu_);
    return InTransaction([&]() REQUIRES(mu_) -> Status {
      GUST_ASSIGN_OR_RETURN(bool exists, FunctionExists(config.function));
      if (!exists) return FunctionNotFound(config.function);
      GUST_ASSIGN_OR_RETURN(
          Statement st,
          Prepare("INSERT OR REPLACE INTO event_invoke_configs(function, qualifier, "
                  "max_retry_attempts, max_event_age_s, on_success, on_failure, last_modified_ms) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?)"));
      return st.Bind(1, config.function)
          .Bind(2, config.qualifier.empty() ? std::string(kLatest) : config.qualifier)
          .Bind(3, config.max_retry_attempts)
          .Bind(4, config.max_event_age_s)
          .Bind(5, config.on_success)
          .Bind(6, config.on_failure)
          .Bind(7, config.last_modified_ms ? config.last_modified_ms : NowEpochMs())
          .Run();
    });
  }

  Result<EventInvokeConfig> GetEventInvokeConfig(const std::string& function,
                                                 const std::string& qualifier) override {
    MutexLock lock(&mu_);
    std::string q = qualifier.empty() ? std::string(kLatest) : qualifier;
    GUST_ASSIGN_OR_RETURN(Statement st, Prepare(std::string(kEventInvokeColumns) +
                                                "WHERE function = ? AND qualifier = ?"));
    GUST_ASSIGN_OR_RETURN(bool row, st.Bind(1, function).Bind(2, q).Step());
    if (!row) {
      return metadata_rules::NoEventInvokeConfig(function, q);
    }
    return ReadEventInvokeConfig(st);
  }

  Status DeleteEventInvokeConfig(const std::string& function,
                                 const std::string& qualifier) override {
    MutexLock lock(&mu_);
    std::string q = qualifier.empty() ? std::string(kLatest) : qualifier;
    GUST_ASSIGN_OR_RETURN(
        Statement st,
        Prepare("DELETE FROM event_invoke_configs WHERE function = ? AND qualifier = ?"));
    GUST_RETURN_IF_ERROR(st.Bind(1, function).Bind(2, q).Run());
    if (sqlite3_changes(db_->handle()) == 0) {
      return metadata_rules::NoEventInvokeConfig(function, q);
    }
    return Status::Ok();
  }

  Result<std::vector<EventInvokeConfig>> ListEventInvokeConfigs(
      const std::string& function) override {
    MutexLock lock(&mu_);
    GUST_ASSIGN_OR_RETURN(bool exists, FunctionExists(function));
    if (!exists) return FunctionNotFound(function);
    GUST_ASSIGN_OR_RETURN(Statement st, Prepare(std::string(kEventInvokeColumns) +
                                                "WHERE function = ? ORDER BY qualifier"));
    st.Bind(1, function);
    std::vector<EventInvokeConfig> out;
    while (true) {
      GUST_ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) break;
      out.push_back(ReadEventInvokeConfig(st));
    }
    return out;
  }

  Status RecordInvocations(const std::vector<InvocationRecord>& records) override {
    if (records.empty()) return Status::Ok();
    MutexLock lock(&mu_);
    return InTransaction([&]() REQUIRES(mu_) -> Status {
      GUST_ASSIGN_OR_RETURN(
          Statement st,
          Prepare("INSERT INTO invocations(request_id, function, version, start_ms, duration_ms, "
                  "billed_ms, memory_mb, max_memory_used_mb, init_ms, cold, outcome, error_type, "
                  "sandbox_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
      for (const InvocationRecord& r : records) {
        st.Bind(1, r.request_id).Bind(2, r.function).Bind(3, r.version).Bind(4, r.start_ms);
        st.Bind(5, r.duration_ms).Bind(6, r.billed_ms).Bind(7, r.memory_mb);
        st.Bind(8, r.max_memory_used_mb).Bind(9, r.init_ms).Bind(10, r.cold ? 1 : 0);
        st.Bind(11, r.outcome).Bind(12, r.error_type).Bind(13, r.sandbox_id);
        GUST_RETURN_IF_ERROR(st.Run());
        st.Reset();
      }
      return Status::Ok();
    });
  }

  Result<InvocationSummary> SummarizeInvocations(const std::string& function,
                                                 int64_t since_ms) override {
    MutexLock lock(&mu_);
    InvocationSummary out;
    {
      GUST_ASSIGN_OR_RETURN(Statement q,
                            Prepare("SELECT COUNT(*), COALESCE(SUM(outcome != 'Success'), 0), "
                                    "COALESCE(SUM(cold), 0), COALESCE(MAX(start_ms), 0) "
                                    "FROM invocations WHERE function = ?1 AND start_ms >= ?2"));
      q.Bind(1, function).Bind(2, since_ms);
      GUST_ASSIGN_OR_RETURN(bool row, q.Step());
      if (row) {
        out.invocations = q.Int(0);
        out.errors = q.Int(1);
        out.cold_starts = q.Int(2);
        out.last_start_ms = q.Int(3);
      }
    }
    if (out.invocations == 0) return out;
    // Nearest-rank percentiles: the value at rank ceil(p * n), by an ordered offset.
    GUST_ASSIGN_OR_RETURN(Statement q,
                          Prepare("SELECT duration_ms FROM invocations WHERE function = ?1 AND "
                                  "start_ms >= ?2 ORDER BY duration_ms LIMIT 1 OFFSET ?3"));
    auto at_rank = [&](double p) -> Result<double> {
      int64_t rank = static_cast<int64_t>(std::ceil(p * static_cast<double>(out.invocations)));
      q.Reset();
      q.Bind(1, function).Bind(2, since_ms).Bind(3, std::max<int64_t>(rank, 1) - 1);
      GUST_ASSIGN_OR_RETURN(bool row, q.Step());
      return row ? q.Double(0) : 0.0;
    };
    GUST_ASSIGN_OR_RETURN(out.p50_ms, at_rank(0.50));
    GUST_ASSIGN_OR_RETURN(out.p99_ms, at_rank(0.99));
    return out;
  }

  Result<std::vector<InvocationRecord>> QueryInvocations(const std::string& function,
                                                         int64_t since_ms, int limit) override {
    MutexLock lock(&mu_);
    constexpr const char* kColumns =
        "SELECT request_id, function, version, start_ms, duration_ms, billed_ms, memory_mb, "
        "max_memory_used_mb, init_ms, cold, outcome, error_type, sandbox_id FROM invocations ";
    Result<Statement> prepared =
        function.empty() ? Prepare(std::string(kColumns) +
                                   "WHERE start_ms >= ?1 ORDER BY start_ms DESC, id DESC LIMIT ?2")
                         : Prepare(std::string(kColumns) +
                                   "WHERE function = ?3 AND start_ms >= ?1 "
                                   "ORDER BY start_ms DESC, id DESC LIMIT ?2");
    if (!prepared.ok()) return prepared.status();
    Statement q = std::move(prepared).value();
    q.Bind(1, since_ms).Bind(2, static_cast<int64_t>(limit > 0 ? limit : -1));
    if (!function.empty()) q.Bind(3, function);
    std::vector<InvocationRecord> out;
    while (true) {
      GUST_ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) break;
      out.push_back(metadata_rules::ReadInvocation(q));
    }
    return out;
  }

 private:
  Status Exec(const char* sql) REQUIRES(mu_) { return db_->Exec(sql); }
  // Statements are prepared once and kept for the life of the connection.
  Result<Statement> Prepare(const std::string& sql) REQUIRES(mu_) { return db_->Prepare(sql); }
  template <typename Body>
  Status InTransaction(Body&& body) REQUIRES(mu_) {
    return db_->InTransaction(std::forward<Body>(body));
  }

  Result<bool> FunctionExists(const std::string& name) REQUIRES(mu_) {
    GUST_ASSIGN_OR_RETURN(Statement q, Prepare("SELECT 1 FROM functions WHERE name = ?"));
    return q.Bind(1, name).Step();
  }

  Result<bool> AliasExists(const std::string& function, const std::string& name) REQUIRES(mu_) {
    GUST_ASSIGN_OR_RETURN(Statement q,
                          Prepare("SELECT 1 FROM aliases WHERE function = ? AND name = ?"));
    return q.Bind(1, function).Bind(2, name).Step();
  }

  Status AliasNotFound(const std::string& function, const std::string& name) REQUIRES(mu_) {
    GUST_ASSIGN_OR_RETURN(bool exists, FunctionExists(function));
    if (!exists) return FunctionNotFound(function);
    return metadata_rules::AliasNotFound(function, name);
  }

  // NotFound names the function when it is missing, else the missing version.
  Result<FunctionConfig> LoadVersion(const std::string& name, const std::string& version)
      REQUIRES(mu_) {
    GUST_ASSIGN_OR_RETURN(
        Statement q, Prepare(std::string(kVersionColumns) + "WHERE function = ? AND version = ?"));
    GUST_ASSIGN_OR_RETURN(bool row, q.Bind(1, name).Bind(2, version).Step());
    if (row) return ReadVersionRow(q, name);
    GUST_ASSIGN_OR_RETURN(bool exists, FunctionExists(name));
    if (!exists) return FunctionNotFound(name);
    return FunctionNotFound(name, version);
  }

  Status WriteVersion(const FunctionConfig& c, int64_t version_num) REQUIRES(mu_) {
    GUST_ASSIGN_OR_RETURN(
        Statement st,
        Prepare("INSERT OR REPLACE INTO versions(function, version, version_num, code_sha256, "
                "revision_id, last_modified_ms, config) VALUES (?, ?, ?, ?, ?, ?, ?)"));
    st.Bind(1, c.name).Bind(2, c.version).Bind(3, version_num).Bind(4, c.code_sha256);
    st.Bind(5, c.revision_id).Bind(6, c.last_modified_ms).Bind(7, JsonDump(ConfigToJson(c)));
    return st.Run();
  }

  // The alias's function must exist and its target be $LATEST or a published version.
  Status CheckAliasTarget(const AliasConfig& alias) REQUIRES(mu_) {
    return LoadVersion(alias.function, alias.version.empty() ? kLatest : alias.version).status();
  }

  // The revision changes on every write, even when the caller passes back the
  // one it read (old_revision).
  Status WriteAlias(const AliasConfig& alias, const std::string& old_revision, const char* sql)
      REQUIRES(mu_) {
    GUST_ASSIGN_OR_RETURN(Statement st, Prepare(sql));
    st.Bind(1, alias.version.empty() ? std::string(kLatest) : alias.version);
    st.Bind(2, alias.description)
        .Bind(3, metadata_rules::NextAliasRevision(alias, old_revision))
        .Bind(4, alias.function)
        .Bind(5, alias.name);
    return st.Run();
  }

  Mutex mu_;
  std::unique_ptr<sqlite::Database> db_ GUARDED_BY(mu_);
};

}  // namespace

Result<std::unique_ptr<MetadataStore>> OpenSqliteMetadataStore(const std::string& path) {
  GUST_ASSIGN_OR_RETURN(std::unique_ptr<sqlite::Database> db,
                        sqlite::Database::Open(path, "metadata database", /*fsync_commits=*/false));
  auto store = std::make_unique<SqliteMetadataStore>(std::move(db));
  GUST_RETURN_IF_ERROR(store->Init().WithContext("open metadata database " + path));
  return std::unique_ptr<MetadataStore>(std::move(store));
}

}  // namespace gust
