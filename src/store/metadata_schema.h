// The SQLite schema of SqliteMetadataStore, as an append-only list of
// migrations. The version a database is at is recorded in its
// `schema_version` table; opening it applies the missing migrations in one
// transaction, and a database newer than this list is refused.
//
// Internal to src/store. A released migration is never edited: change the
// schema by appending one.
#pragma once

namespace gust::sqlite_schema {

// kMigrations[i] takes the schema from version i to version i + 1. Append
// only: a released migration is never edited.
inline constexpr const char* kMigrations[] = {
    R"sql(
CREATE TABLE functions (
  name TEXT PRIMARY KEY,
  next_version INTEGER NOT NULL
);
CREATE TABLE versions (
  function TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
  version TEXT NOT NULL,
  version_num INTEGER NOT NULL,
  code_sha256 TEXT NOT NULL,
  revision_id TEXT NOT NULL,
  last_modified_ms INTEGER NOT NULL,
  config TEXT NOT NULL,
  PRIMARY KEY (function, version)
);
CREATE INDEX versions_by_num ON versions(function, version_num);
CREATE TABLE aliases (
  function TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
  name TEXT NOT NULL,
  version TEXT NOT NULL,
  description TEXT NOT NULL,
  revision_id TEXT NOT NULL,
  PRIMARY KEY (function, name)
);
CREATE TABLE settings (
  function TEXT PRIMARY KEY REFERENCES functions(name) ON DELETE CASCADE,
  reserved_concurrency INTEGER
);
CREATE TABLE invocations (
  id INTEGER PRIMARY KEY,
  request_id TEXT NOT NULL,
  function TEXT NOT NULL,
  version TEXT NOT NULL,
  start_ms INTEGER NOT NULL,
  duration_ms REAL NOT NULL,
  billed_ms INTEGER NOT NULL,
  memory_mb INTEGER NOT NULL,
  max_memory_used_mb INTEGER NOT NULL,
  init_ms REAL NOT NULL,
  cold INTEGER NOT NULL,
  outcome TEXT NOT NULL,
  error_type TEXT NOT NULL,
  sandbox_id TEXT NOT NULL
);
CREATE INDEX invocations_by_function ON invocations(function, start_ms);
CREATE INDEX invocations_by_start ON invocations(start_ms);
)sql",
    // 2: asynchronous invocation settings per function and qualifier (issue 5).
    R"sql(
CREATE TABLE event_invoke_configs (
  function TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
  qualifier TEXT NOT NULL,
  max_retry_attempts INTEGER,
  max_event_age_s INTEGER,
  on_success TEXT NOT NULL,
  on_failure TEXT NOT NULL,
  last_modified_ms INTEGER NOT NULL,
  PRIMARY KEY (function, qualifier)
);
)sql",
};
}  // namespace gust::sqlite_schema
