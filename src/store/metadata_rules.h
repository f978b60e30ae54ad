// What the MetadataStore implementations (SQLite, PostgreSQL) share so that they behave alike:
// one serializer of a FunctionConfig (so a new field reaches both stores), the rule for when a
// published version equals $LATEST, the ListFunctions marker, the revision rules, and
// Lambda's wording of every error they return. Defined in metadata_store.cc.
//
// Internal to src/store. Errors: ConfigFromJson returns Internal naming the version's ARN
// when the stored JSON is corrupt. Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "common/status.h"
#include "store/metadata_store.h"

namespace gust::metadata_rules {

// The JSON the stores keep of a configuration: every field but the name, version, code
// digest, revision and time, which have columns of their own.
nlohmann::json ConfigToJson(const FunctionConfig& c);
// Fills c's JSON-held fields from `text` (ConfigToJson's output; missing keys keep c's
// defaults). c->name and c->version name the version in the error.
Status ConfigFromJson(const std::string& text, FunctionConfig* c);
// True when a published version has $LATEST's code and configuration (PublishVersion then
// returns it instead of making a new one). Description does not count: it is given at publish.
bool SameAsPublished(const FunctionConfig& published, const FunctionConfig& latest);

// Stamps a new $LATEST from `old`: a revision or timestamp carried over from a read must
// still change (callers usually read, modify and write back).
void StampUpdate(const FunctionConfig& old, FunctionConfig* c);
// CreateFunction's $LATEST: `latest` with a revision and a time if it has none.
FunctionConfig FirstLatest(const FunctionConfig& latest);
// PublishVersion's new version `number` of $LATEST (`latest`), with its own revision and time;
// description replaces $LATEST's unless empty.
FunctionConfig NewVersion(const FunctionConfig& latest, int64_t number,
                          const std::string& description);
// The alias's new revision: the caller's, unless empty or the one it read (old_revision).
std::string NextAliasRevision(const AliasConfig& alias, const std::string& old_revision);

// The ListFunctions marker: "name" or, listing every version, "name:version_num" (':'
// cannot appear in a function name). Rows after the marker are those with (function,
// version_num) > (name, version_num).
struct ListMarker {
  std::string name;
  int64_t version_num = 0;
};
ListMarker ParseListMarker(const std::string& marker, bool all_versions);
std::string FormatListMarker(const std::string& name, int64_t version_num, bool all_versions);

// Row readers for both stores' rows (sqlite::Statement or pg::Row: Text, Int, Double, IsNull
// by column), for the columns in the order the stores select them:
// version, code_sha256, revision_id, last_modified_ms, config (of function `name`).
template <typename Row>
Result<FunctionConfig> ReadVersionRow(const Row& row, const std::string& name) {
  FunctionConfig c;
  c.name = name;
  c.version = row.Text(0);
  GUST_RETURN_IF_ERROR(ConfigFromJson(row.Text(4), &c));
  c.code_sha256 = row.Text(1);
  c.revision_id = row.Text(2);
  c.last_modified_ms = row.Int(3);
  return c;
}

// function, qualifier, max_retry_attempts, max_event_age_s, on_success, on_failure,
// last_modified_ms.
template <typename Row>
EventInvokeConfig ReadEventInvokeConfig(const Row& row) {
  EventInvokeConfig c;
  c.function = row.Text(0);
  c.qualifier = row.Text(1);
  if (!row.IsNull(2)) c.max_retry_attempts = static_cast<int>(row.Int(2));
  if (!row.IsNull(3)) c.max_event_age_s = static_cast<int>(row.Int(3));
  c.on_success = row.Text(4);
  c.on_failure = row.Text(5);
  c.last_modified_ms = row.Int(6);
  return c;
}

// request_id, function, version, start_ms, duration_ms, billed_ms, memory_mb,
// max_memory_used_mb, init_ms, cold, outcome, error_type, sandbox_id.
template <typename Row>
InvocationRecord ReadInvocation(const Row& row) {
  InvocationRecord r;
  r.request_id = row.Text(0);
  r.function = row.Text(1);
  r.version = row.Text(2);
  r.start_ms = row.Int(3);
  r.duration_ms = row.Double(4);
  r.billed_ms = row.Int(5);
  r.memory_mb = static_cast<int>(row.Int(6));
  r.max_memory_used_mb = static_cast<int>(row.Int(7));
  r.init_ms = row.Double(8);
  r.cold = row.Int(9) != 0;
  r.outcome = row.Text(10);
  r.error_type = row.Text(11);
  r.sandbox_id = row.Text(12);
  return r;
}

// UpdateLatest's rule: Conflict (Lambda's wording) if expected_revision is given and is not
// old's; else `latest` stamped as the new $LATEST (StampUpdate).
Result<FunctionConfig> NextLatest(const FunctionConfig& old, const FunctionConfig& latest,
                                  const std::string& expected_revision);

// Lambda's wording.
Status FunctionNotFound(const std::string& name, const std::string& qualifier = "");
Status FunctionExists(const std::string& name);
Status RevisionMismatch();
Status LatestNotDeletable();
Status VersionHasAliases(const std::string& aliases);  // "beta, prod"
Status AliasExists(const std::string& function, const std::string& name);
Status AliasNotFound(const std::string& function, const std::string& name);
Status NoEventInvokeConfig(const std::string& function, const std::string& qualifier);

}  // namespace gust::metadata_rules
