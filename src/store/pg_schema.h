// The PostgreSQL schema of gust's cluster-mode stores (docs/CLUSTER.md), as an append-only
// list of migrations, the same rule as metadata_schema.h: the version a database is at is
// recorded in its `schema_version` table; opening it applies the missing migrations in one
// transaction under the advisory lock kMigrationLock (two nodes opening at once do not both
// migrate), and a database newer than this list is refused. The engine (`gust up --cluster`)
// only checks the version (CheckPgClusterSchema, node_store.h); `gust cluster init` migrates.
//
// Internal to src/store. A released migration is never edited: change the schema by
// appending one. Names (functions, aliases, qualifiers) are COLLATE "C" so that their order,
// and so the ListFunctions markers, is bytewise as in SQLite, whatever the database's locale.
#pragma once

#include <cstdint>
#include <iterator>
#include <memory>
#include <string>

#include "store/pg_util.h"

namespace gust::pg_schema {

// pg_advisory_xact_lock's key for migrations: "gust" in ASCII.
inline constexpr int64_t kMigrationLock = 0x67757374;

// kMigrations[i] takes the schema from version i to version i + 1. Append only.
inline constexpr const char* kMigrations[] = {
    // 1: the MetadataStore (functions, versions, aliases, settings, async invoke settings,
    // invocation records); the tables of metadata_schema.h's versions 1 and 2.
    R"sql(
CREATE TABLE functions (
  name TEXT COLLATE "C" PRIMARY KEY,
  next_version BIGINT NOT NULL
);
CREATE TABLE versions (
  function TEXT COLLATE "C" NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
  version TEXT NOT NULL,
  version_num BIGINT NOT NULL,
  code_sha256 TEXT NOT NULL,
  revision_id TEXT NOT NULL,
  last_modified_ms BIGINT NOT NULL,
  config TEXT NOT NULL,
  PRIMARY KEY (function, version)
);
CREATE INDEX versions_by_num ON versions(function, version_num);
CREATE TABLE aliases (
  function TEXT COLLATE "C" NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
  name TEXT COLLATE "C" NOT NULL,
  version TEXT NOT NULL,
  description TEXT NOT NULL,
  revision_id TEXT NOT NULL,
  PRIMARY KEY (function, name)
);
CREATE TABLE settings (
  function TEXT COLLATE "C" PRIMARY KEY REFERENCES functions(name) ON DELETE CASCADE,
  reserved_concurrency INTEGER
);
CREATE TABLE event_invoke_configs (
  function TEXT COLLATE "C" NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
  qualifier TEXT COLLATE "C" NOT NULL,
  max_retry_attempts INTEGER,
  max_event_age_s INTEGER,
  on_success TEXT NOT NULL,
  on_failure TEXT NOT NULL,
  last_modified_ms BIGINT NOT NULL,
  PRIMARY KEY (function, qualifier)
);
CREATE TABLE invocations (
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  request_id TEXT NOT NULL,
  function TEXT COLLATE "C" NOT NULL,
  version TEXT NOT NULL,
  start_ms BIGINT NOT NULL,
  duration_ms DOUBLE PRECISION NOT NULL,
  billed_ms BIGINT NOT NULL,
  memory_mb INTEGER NOT NULL,
  max_memory_used_mb INTEGER NOT NULL,
  init_ms DOUBLE PRECISION NOT NULL,
  cold BOOLEAN NOT NULL,
  outcome TEXT NOT NULL,
  error_type TEXT NOT NULL,
  sandbox_id TEXT NOT NULL
);
CREATE INDEX invocations_by_function ON invocations(function, start_ms);
CREATE INDEX invocations_by_start ON invocations(start_ms);
)sql",
    // 2: the ScheduleStore (sqlite_schedule_store.cc's table).
    R"sql(
CREATE TABLE schedules (
  name TEXT COLLATE "C" PRIMARY KEY,
  grp TEXT COLLATE "C" NOT NULL,
  function TEXT NOT NULL,
  qualifier TEXT NOT NULL,
  expression TEXT NOT NULL,
  timezone TEXT NOT NULL,
  kind TEXT NOT NULL,
  enabled BOOLEAN NOT NULL,
  payload TEXT NOT NULL,
  anchor_ms BIGINT NOT NULL,
  created_ms BIGINT NOT NULL,
  updated_ms BIGINT NOT NULL,
  last_fire_ms BIGINT NOT NULL,
  last_error TEXT NOT NULL
);
CREATE INDEX schedules_by_group ON schedules(grp, name);
)sql",
    // 3: the BlobStore (code zips by sha256). EXTERNAL: stored out of line uncompressed, as
    // zips do not compress again.
    R"sql(
CREATE TABLE blobs (
  digest TEXT COLLATE "C" PRIMARY KEY,
  bytes BYTEA NOT NULL
);
ALTER TABLE blobs ALTER COLUMN bytes SET STORAGE EXTERNAL;
)sql",
    // 4: the EventQueue (sqlite_event_queue.cc's table) with leases in place of `resident`:
    // an event is leased to lease_node (its lease_epoch) until lease_until (epoch ms);
    // lease_node '' is unleased.
    R"sql(
CREATE TABLE events (
  seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  function TEXT COLLATE "C" NOT NULL,
  qualifier TEXT NOT NULL,
  payload TEXT NOT NULL,
  source TEXT NOT NULL,
  enqueued_ms BIGINT NOT NULL,
  due_ms BIGINT NOT NULL,
  attempts INTEGER NOT NULL,
  status INTEGER NOT NULL,
  lease_node TEXT NOT NULL DEFAULT '',
  lease_epoch BIGINT NOT NULL DEFAULT 0,
  lease_until BIGINT NOT NULL DEFAULT 0,
  last_attempt_ms BIGINT NOT NULL DEFAULT 0,
  finished_ms BIGINT NOT NULL DEFAULT 0,
  condition TEXT NOT NULL DEFAULT '',
  response TEXT NOT NULL DEFAULT '',
  response_truncated BOOLEAN NOT NULL DEFAULT false,
  destination TEXT NOT NULL DEFAULT ''
);
CREATE INDEX events_ready ON events(due_ms, seq) WHERE status = 0;
CREATE INDEX events_leases ON events(lease_node) WHERE status = 0 AND lease_node <> '';
CREATE INDEX events_dead ON events(function, seq) WHERE status = 3;
CREATE INDEX events_finished ON events(finished_ms) WHERE status IN (1, 2);
)sql",
    // 5: node membership (node_store.h) and the cluster's credential. A node's times are the
    // database's clock (now()), so that nodes' clock skew does not decide who is alive; state
    // is 'up', 'draining' or 'stopped' ('dead' is an 'up' or 'draining' row past its deadline).
    R"sql(
CREATE TABLE nodes (
  name TEXT COLLATE "C" PRIMARY KEY,
  advertise TEXT NOT NULL,
  epoch BIGINT NOT NULL,
  state TEXT NOT NULL,
  version TEXT NOT NULL,
  started_at TIMESTAMPTZ NOT NULL,
  heartbeat_at TIMESTAMPTZ NOT NULL,
  deadline TIMESTAMPTZ NOT NULL,
  cores INTEGER NOT NULL,
  memory_mb BIGINT NOT NULL,
  memory_free_mb BIGINT NOT NULL,
  load1 DOUBLE PRECISION NOT NULL
);
CREATE TABLE cluster_credentials (
  access_key_id TEXT PRIMARY KEY,
  secret_access_key TEXT NOT NULL,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
)sql",
    // 6: what each node's heartbeat publishes for routing (cluster step 3): its warm, idle
    // sandboxes per function version as JSON ({"function": {"version": count}}; one column
    // rather than a node_warm table, so a heartbeat stays one UPDATE of one row) and how
    // many more invocations it could run now (free_slots).
    R"sql(
ALTER TABLE nodes ADD COLUMN warm TEXT NOT NULL DEFAULT '{}';
ALTER TABLE nodes ADD COLUMN free_slots INTEGER NOT NULL DEFAULT 0;
)sql",
    // 7: what changed in which function, for the other nodes' caches (function_changes.h):
    // every write to the function tables appends a row here, by trigger, in the writer's own
    // transaction, and notifies the schema's channel (gust_fc_ and 16 hex digits of the md5
    // of its name) at its commit. Kinds: 0 $LATEST's
    // code or configuration (with the revision it now has), 1 routing (a new function,
    // aliases, versions published, concurrency, async settings), 2 a function or version
    // deleted. A trigger rather than
    // each store method: no write path can forget it. The trigger's transaction-level advisory
    // lock (0x6775737B, "gust" + 7) serialises such writers from their first change to their
    // commit, so seqs become visible in order and a reader's "after the last seq I applied"
    // misses nothing; function writes are deploys, rare enough to take turns.
    R"sql(
CREATE TABLE function_changes (
  seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  function TEXT COLLATE "C" NOT NULL,
  kind SMALLINT NOT NULL,
  revision TEXT NOT NULL DEFAULT '',
  at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX function_changes_by_time ON function_changes(at);
CREATE FUNCTION gust_note_function_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  r JSONB;
  k SMALLINT;
BEGIN
  -- Held to commit: seqs are taken, and so become visible, in commit order.
  PERFORM pg_advisory_xact_lock(1735750523);
  IF TG_OP = 'DELETE' THEN r := to_jsonb(OLD); ELSE r := to_jsonb(NEW); END IF;
  IF TG_OP = 'DELETE' AND TG_TABLE_NAME IN ('functions', 'versions') THEN
    k := 2;
  ELSIF TG_TABLE_NAME = 'versions' AND r->>'version' = '$LATEST' THEN
    k := 0;
  ELSE
    k := 1;
  END IF;
  INSERT INTO function_changes(function, kind, revision)
    VALUES (r->>TG_ARGV[0], k, CASE WHEN k = 0 THEN COALESCE(r->>'revision_id', '') ELSE '' END);
  -- A channel per schema: clusters sharing a database (in schemas of their own) do not
  -- wake each other's readers.
  PERFORM pg_notify('gust_fc_' || left(md5(TG_TABLE_SCHEMA), 16), '');
  RETURN NULL;
END;
$$;
CREATE TRIGGER functions_changed AFTER INSERT OR UPDATE OR DELETE ON functions
  FOR EACH ROW EXECUTE FUNCTION gust_note_function_change('name');
CREATE TRIGGER versions_changed AFTER INSERT OR UPDATE OR DELETE ON versions
  FOR EACH ROW EXECUTE FUNCTION gust_note_function_change('function');
CREATE TRIGGER aliases_changed AFTER INSERT OR UPDATE OR DELETE ON aliases
  FOR EACH ROW EXECUTE FUNCTION gust_note_function_change('function');
CREATE TRIGGER settings_changed AFTER INSERT OR UPDATE OR DELETE ON settings
  FOR EACH ROW EXECUTE FUNCTION gust_note_function_change('function');
CREATE TRIGGER event_invoke_configs_changed AFTER INSERT OR UPDATE OR DELETE
  ON event_invoke_configs
  FOR EACH ROW EXECUTE FUNCTION gust_note_function_change('function');
)sql",
    // 8: map jobs that survive their owner (map_job_store.h, docs/CLUSTER.md "Step 5b as
    // built"): the job's row with its owner and the owner's membership epoch (a takeover is a
    // compare-and-set of both), its inputs as submitted in pieces of many tasks (u32 length
    // and bytes per task), and its results, one row per finished task, written in batches.
    R"sql(
CREATE TABLE map_jobs (
  id TEXT COLLATE "C" PRIMARY KEY,
  function TEXT NOT NULL,
  options TEXT NOT NULL,
  owner TEXT NOT NULL,
  owner_epoch BIGINT NOT NULL,
  state TEXT NOT NULL,
  tasks BIGINT NOT NULL,
  created_ms BIGINT NOT NULL,
  finished_ms BIGINT NOT NULL DEFAULT 0,
  ttl_ms BIGINT NOT NULL
);
CREATE INDEX map_jobs_running ON map_jobs(owner) WHERE state = 'running';
CREATE INDEX map_jobs_finished ON map_jobs(finished_ms) WHERE state = 'done';
CREATE TABLE map_job_inputs (
  job TEXT COLLATE "C" NOT NULL REFERENCES map_jobs(id) ON DELETE CASCADE,
  piece INTEGER NOT NULL,
  first_task INTEGER NOT NULL,
  payloads BYTEA NOT NULL,
  PRIMARY KEY (job, piece)
);
CREATE TABLE map_job_results (
  job TEXT COLLATE "C" NOT NULL REFERENCES map_jobs(id) ON DELETE CASCADE,
  seq BIGINT NOT NULL,
  task INTEGER NOT NULL,
  body BYTEA NOT NULL,
  PRIMARY KEY (job, seq)
);
)sql",
    // 9: what still runs on each node (`gust node drain --wait` prints it, `gust cluster
    // status --json` shows it), published by every heartbeat as JSON: {"invocations": n,
    // "async_events": n, "map_jobs": n, "map_shares": n}. One column of the row the beat
    // already writes, so a drain's progress costs no statement of its own.
    R"sql(
ALTER TABLE nodes ADD COLUMN activity TEXT NOT NULL DEFAULT '{}';
)sql",
    // 10: a map job's results one row per stored batch rather than one per result (the
    // append of a batch is one row and one index entry, whatever its size: bench/RESULTS.md,
    // "cluster of one"), and the count stored on the job's row, so that an append is a single
    // statement that checks the owner, the epoch and the next seq at once (map_job_store.h).
    // A batch's bodies: per result, its task index and its length as 4-byte big-endian
    // integers (int4send's order, so that this migration can convert the rows of migration
    // 8's table), then its bytes.
    R"sql(
ALTER TABLE map_jobs ADD COLUMN stored BIGINT NOT NULL DEFAULT 0;
CREATE TABLE map_job_result_batches (
  job TEXT COLLATE "C" NOT NULL REFERENCES map_jobs(id) ON DELETE CASCADE,
  first_seq BIGINT NOT NULL,
  last_seq BIGINT NOT NULL,
  bodies BYTEA NOT NULL,
  PRIMARY KEY (job, first_seq)
);
INSERT INTO map_job_result_batches (job, first_seq, last_seq, bodies)
  SELECT job, seq, seq, int4send(task) || int4send(length(body)) || body FROM map_job_results;
UPDATE map_jobs j SET stored = r.last FROM
  (SELECT job, MAX(seq) AS last FROM map_job_results GROUP BY job) r WHERE r.job = j.id;
DROP TABLE map_job_results;
-- Stored out of line but not compressed: pickled inputs and results compress little, and
-- pglz on a batch of megabytes is CPU the node's map shares (bench/RESULTS.md, "cluster of
-- one").
ALTER TABLE map_job_result_batches ALTER COLUMN bodies SET STORAGE EXTERNAL;
ALTER TABLE map_job_inputs ALTER COLUMN payloads SET STORAGE EXTERNAL;
)sql",
};

inline constexpr int kSchemaVersion = static_cast<int>(std::size(kMigrations));

// Connects to conninfo and brings its schema up to date: what opening every PostgreSQL store
// does. `what` names the store in errors ("metadata database").
inline Result<std::unique_ptr<pg::Connection>> Connect(const std::string& conninfo,
                                                       const std::string& what) {
  GUST_ASSIGN_OR_RETURN(std::unique_ptr<pg::Connection> db, pg::Connection::Open(conninfo, what));
  GUST_RETURN_IF_ERROR(db->Migrate(kMigrations, kSchemaVersion, kMigrationLock)
                           .WithContext("open " + what + " at " + pg::DescribeConninfo(conninfo)));
  return db;
}

}  // namespace gust::pg_schema
