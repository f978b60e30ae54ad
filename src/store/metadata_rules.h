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
