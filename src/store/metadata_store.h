// MetadataStore: the durable record of functions, their versions and aliases,
// and of every invocation. One interface; SqliteMetadataStore (SQLite in WAL
// mode) is the single-machine implementation, PgMetadataStore (PostgreSQL) the
// cluster's (docs/CLUSTER.md): the same semantics, errors and wording.
//
// Thread-safety: implementations are safe to call from any thread. Several
// PostgreSQL stores (one per node) may share one database: a function's writes
// are serialised across them, so of racing CreateFunction calls or UpdateLatest
// calls with the same expected_revision exactly one succeeds, and racing
// PublishVersion calls make one version.
// Invariants:
//  - a function always has a "$LATEST" version; published versions are
//    immutable snapshots numbered 1, 2, 3... and never renumbered, even after
//    deletes (the counter lives with the function);
//  - an alias points at "$LATEST" or an existing published version of the
//    same function;
//  - each mutating call is one transaction: it happens whole or not at all;
//  - revision ids change on every write: Create* fill in an empty one,
//    Update* make a new one unless the caller passed a different non-empty
//    one, PublishVersion always makes one. last_modified_ms is set to now when
//    left 0 (create) or not advanced (update).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace gust {

inline constexpr const char* kLatest = "$LATEST";

// The configuration of one version of a function ($LATEST or published).
struct FunctionConfig {
  std::string name;
  std::string version = kLatest;
  std::string runtime = "python3.11";
  std::string handler;  // "module.function"
  std::string role;
  std::string description;
  int memory_mb = 128;
  int timeout_s = 3;
  int ephemeral_storage_mb = 512;  // size of the sandbox's private /tmp
  std::map<std::string, std::string> env;
  bool network = false;     // false: the sandbox gets its own empty net namespace
  int keep_alive_s = -1;    // idle seconds before a warm sandbox is destroyed; -1: engine default
  std::string code_sha256;  // hex digest of the code zip in the BlobStore
  int64_t code_size = 0;    // bytes of the zip
  std::string revision_id;  // changes on every update (Lambda's RevisionId)
  int64_t last_modified_ms = 0;  // epoch ms
  // The Python environment it runs in: an interpreter's absolute path as its
  // user runs it (a venv's bin/python); "": the engine's own (Lambda's model).
  // Stored in the configuration JSON: a database from before it reads "".
  std::string python;
  // The buckets its sandboxes may use through the sandbox channel, as
  // "NAME" or "NAME:ro" (store/bucket_grants.h), merged and sorted; empty:
  // none. Stored in the configuration JSON: a database from before it reads
  // none.
  std::vector<std::string> buckets;
};

struct AliasConfig {
  std::string function;
  std::string name;
  std::string version;  // "$LATEST" or "N"
  std::string description;
  std::string revision_id;
};

// Function-level settings that are not versioned.
struct FunctionSettings {
  std::optional<int> reserved_concurrency;  // PutFunctionConcurrency
};

// One invocation, as recorded for logs, status and cost reports.
struct InvocationRecord {
  std::string request_id;
  std::string function;
  std::string version;
  int64_t start_ms = 0;        // epoch ms
  double duration_ms = 0;      // handler time
  int64_t billed_ms = 0;       // ceil(duration (+ init on cold starts)), 1 ms granularity
  int memory_mb = 0;           // configured
  int max_memory_used_mb = 0;  // cgroup peak
  double init_ms = 0;          // > 0 only on cold starts
  bool cold = false;
  std::string outcome;     // "Success", "Unhandled", "Timeout", "OutOfMemory", "ExitError", ...
  std::string error_type;  // e.g. "ValueError", "Sandbox.Timedout"; empty on success
  std::string sandbox_id;
};

// Asynchronous invocation settings of a function or one of its qualifiers
// (PutFunctionEventInvokeConfig). Destinations are ARNs; gust delivers to
// Lambda function ARNs, and keeps failures without one in its dead-letter store.
struct EventInvokeConfig {
  std::string function;
  std::string qualifier = kLatest;        // "$LATEST", a version or an alias
  std::optional<int> max_retry_attempts;  // 0-2; Lambda's default 2 when unset
  std::optional<int> max_event_age_s;     // 60-21600; default 21600 when unset
  std::string on_success;                 // destination ARN, "" none
  std::string on_failure;
  int64_t last_modified_ms = 0;
};

// Aggregate of a function's invocation records over a time window (`gust status`).
struct InvocationSummary {
  int64_t invocations = 0;
  int64_t errors = 0;  // outcome other than Success
  int64_t cold_starts = 0;
  double p50_ms = 0;  // handler duration percentiles (0 when there are no records)
  double p99_ms = 0;
  int64_t last_start_ms = 0;  // newest record's start (0 if none)
};

struct ListPage {
  std::vector<FunctionConfig> functions;
  std::string next_marker;  // empty when there are no more
};

class MetadataStore {
 public:
  virtual ~MetadataStore() = default;

  // Creates the function with its $LATEST version. Conflict if the name exists.
  virtual Status CreateFunction(const FunctionConfig& latest) = 0;
  // version: "$LATEST" or a published version number. NotFound names what is missing.
  virtual Result<FunctionConfig> GetFunction(const std::string& name,
                                             const std::string& version) = 0;
  // Replaces $LATEST (code or configuration). NotFound if the function does not exist.
  // If expected_revision is non-empty and differs from the stored one: Conflict.
  virtual Status UpdateLatest(const FunctionConfig& latest,
                              const std::string& expected_revision) = 0;
  // $LATEST of each function by name; with all_versions, every version too
  // (ListFunctions FunctionVersion=ALL), ordered by name then version.
  // next_marker is opaque: pass it back as marker.
  virtual Result<ListPage> ListFunctions(const std::string& marker, int max_items,
                                         bool all_versions = false) = 0;
  // Deletes the function with all versions, aliases and settings (not invocation records).
  virtual Status DeleteFunction(const std::string& name) = 0;
  // Deletes one published version. Conflict if an alias points at it.
  virtual Status DeleteVersion(const std::string& name, const std::string& version) = 0;

  // Snapshots $LATEST as the next version number. If the newest published
  // version already has $LATEST's code_sha256 and configuration, returns it
  // instead (as Lambda does).
  virtual Result<FunctionConfig> PublishVersion(const std::string& name,
                                                const std::string& description) = 0;
  // $LATEST first, then published versions ascending.
  virtual Result<std::vector<FunctionConfig>> ListVersions(const std::string& name) = 0;

  virtual Status CreateAlias(const AliasConfig& alias) = 0;  // Conflict if it exists
  virtual Result<AliasConfig> GetAlias(const std::string& function, const std::string& name) = 0;
  virtual Status UpdateAlias(const AliasConfig& alias) = 0;  // NotFound if missing
  virtual Status DeleteAlias(const std::string& function, const std::string& name) = 0;
  virtual Result<std::vector<AliasConfig>> ListAliases(const std::string& function) = 0;

  virtual Result<FunctionSettings> GetSettings(const std::string& function) = 0;
  virtual Status PutSettings(const std::string& function, const FunctionSettings& settings) = 0;

  // Creates or replaces. NotFound if the function does not exist.
  virtual Status PutEventInvokeConfig(const EventInvokeConfig& config) = 0;
  // NotFound (Lambda's wording) if none is configured for that qualifier.
  virtual Result<EventInvokeConfig> GetEventInvokeConfig(const std::string& function,
                                                         const std::string& qualifier) = 0;
  virtual Status DeleteEventInvokeConfig(const std::string& function,
                                         const std::string& qualifier) = 0;
  // Every qualifier's config of the function (NotFound if the function does not exist).
  virtual Result<std::vector<EventInvokeConfig>> ListEventInvokeConfigs(
      const std::string& function) = 0;

  // Appends invocation records in one transaction (callers batch them).
  virtual Status RecordInvocations(const std::vector<InvocationRecord>& records) = 0;
  // Records of a function (all functions if empty) started at or after since_ms, newest first.
  virtual Result<std::vector<InvocationRecord>> QueryInvocations(const std::string& function,
                                                                 int64_t since_ms, int limit) = 0;
  // Counts and duration percentiles of a function's records started at or after since_ms.
  virtual Result<InvocationSummary> SummarizeInvocations(const std::string& function,
                                                         int64_t since_ms) = 0;
};

// Resolves a qualifier ("" or "$LATEST", a version number, or an alias) to
// that version's configuration. NotFound reads "Function not found: <ARN with
// the qualifier as given>", Lambda's wording for invoke and get alike.
Result<FunctionConfig> GetFunctionByQualifier(MetadataStore& store, const std::string& name,
                                              const std::string& qualifier);

// Opens (creating if needed) the SQLite database at `path` in WAL mode.
Result<std::unique_ptr<MetadataStore>> OpenSqliteMetadataStore(const std::string& path);

// Connects to the PostgreSQL database of `conninfo` (libpq's syntax: a URI or key=value
// pairs, multi-host allowed) and brings its schema up to date (pg_schema.h; two nodes opening
// at once migrate once). Unavailable naming the host and port (never the password) when it
// cannot connect; InvalidArgument when conninfo does not parse; Internal when the database's
// schema is newer than this gust. A lost connection is re-established on the next call.
Result<std::unique_ptr<MetadataStore>> OpenPgMetadataStore(const std::string& conninfo);

}  // namespace gust
