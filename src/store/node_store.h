// NodeStore: cluster membership (docs/CLUSTER.md, "Membership and fencing"). Every engine of
// a cluster has one row in the shared database's `nodes` table: its name, the URL other nodes
// and clients reach it at, an epoch (one more at every start, so that what an earlier run of
// the same node wrote can be told from this run's), a state, and a heartbeat lease: the node
// renews `deadline = now() + lease` every few seconds with its cores, memory and load. A node
// whose deadline passed is dead to the others. Times are the database's clock, so that node
// clocks need not agree for membership.
//
// Also the cluster's credential (the key nodes will sign engine-to-engine requests with),
// created once by `gust cluster init` (InitPgCluster).
//
// Errors: as OpenPgMetadataStore's (metadata_store.h): Unavailable naming host and port when
// the database cannot be reached; Conflict when another engine holds this node's name (Join:
// a live node with another address; Heartbeat/Leave: a later start took the row over).
// Thread-safety: implementations are safe to call from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace gust {

// What a node publishes about itself: at Join and with every heartbeat.
struct NodeInfo {
  std::string name;
  std::string advertise_url;  // how other nodes and clients reach its API
  std::string version;        // gust's
  int cores = 0;
  int64_t memory_mb = 0;       // the machine's
  int64_t memory_free_mb = 0;  // available now
  double load1 = 0;            // the 1-minute load average
  // Warm, idle sandboxes per function version: what a call that finds none on its own node
  // is forwarded by (docs/CLUSTER.md, "Step 3 as built"). JSON text,
  // {"function": {"version": count}}; "{}" for none.
  std::string warm = "{}";
  int free_slots = 0;  // invocations it could start now (--max-sandboxes less the busy ones)
  // What still runs here (a drain waits for it to empty): JSON text, {"invocations": n,
  // "async_events": n, "map_jobs": n, "map_shares": n}; "{}" before the first measure.
  std::string activity = "{}";
};

// One row as seen now.
struct NodeRow {
  NodeInfo info;
  int64_t epoch = 0;
  // "up", "draining", "stopped" (left in order), or "dead" (up or draining, deadline passed).
  std::string state;
  int64_t started_ms = 0;        // database clock, epoch ms
  int64_t heartbeat_ms = 0;      // the last renewal
  int64_t heartbeat_age_ms = 0;  // now() - heartbeat_ms on the database's clock
  int64_t deadline_in_ms = 0;    // deadline - now(); negative once passed
};

class NodeStore {
 public:
  virtual ~NodeStore() = default;
  // Registers this node (info.name) as up with a fresh lease, inserting its row or taking
  // over its own earlier one with epoch + 1, and returns the new epoch. Conflict when the
  // name is held by a live node at another address (two engines given one name).
  virtual Result<int64_t> Join(const NodeInfo& info) = 0;
  // Renews the lease (deadline = now() + lease) and publishes info's figures. Conflict when
  // the row is no longer this start's (a later Join of the name took it over).
  virtual Status Heartbeat(const NodeInfo& info) = 0;
  // Heartbeat for a node whose lease lapsed by its own clock (docs/CLUSTER.md, "Membership
  // and fencing"): renews the lease as the next epoch, keeping the row's state, and returns
  // that epoch. What the node gave up while lapsed (event leases, map jobs it owned, chunks
  // it ran) is fenced by the old epoch and taken over as a dead start's. Conflict as
  // Heartbeat's.
  virtual Result<int64_t> Rejoin(const NodeInfo& info) = 0;
  // An orderly stop: the row becomes "stopped" (others need not wait for its deadline).
  virtual Status Leave() = 0;
  // Every node, by name.
  virtual Result<std::vector<NodeRow>> List() = 0;
  // `gust node drain NAME`, from any node: the row of node `name` becomes "draining" (the
  // node notices at its next heartbeat, takes no new work, finishes what runs and leaves).
  // Returns its row as it is now. Idempotent on a draining node. NotFound naming `name`
  // when the cluster has no such node; Conflict naming its state when it is stopped or
  // dead (there is nothing running to finish, and a restart joins as "up").
  virtual Result<NodeRow> Drain(const std::string& name) = 0;
  virtual int64_t epoch() const = 0;  // Join's or the last Rejoin's, 0 before
  // The cluster's credential (made by `gust cluster init`): the key nodes sign forwarded
  // requests with and accept them by. NotFound when the cluster has none.
  virtual Result<std::pair<std::string, std::string>> ClusterCredential() = 0;
};

// The membership of the cluster in conninfo's PostgreSQL database (its schema must be
// current: pg_schema::CheckVersion). lease_ms: how long a heartbeat keeps a node alive.
Result<std::unique_ptr<NodeStore>> OpenPgNodeStore(const std::string& conninfo,
                                                   int64_t lease_ms = 10'000);

// What `gust up --cluster` does before it opens any store: connects and checks, without
// applying anything, that the database's schema is this gust's (pg_schema.h). Migrations are
// `gust cluster init`'s: an upgrade is a step an operator takes once, not a side effect of
// whichever node starts first. Conflict naming both versions and what to run when the schema
// is missing, older or newer; Unavailable naming host and port when it cannot connect.
Status CheckPgClusterSchema(const std::string& conninfo);

struct ClusterInitResult {
  int schema_from = 0;  // the version found (0: a new database)
  int schema_to = 0;    // the version now
  bool created_credential = false;
  std::string access_key_id;           // the cluster's credential's key id (new or existing)
  bool conninfo_has_password = false;  // so that init does not print it back
};

// `gust cluster init`: brings conninfo's schema up to date (every migration under the
// advisory lock, pg_schema.h) and stores the credential given unless the cluster has one.
Result<ClusterInitResult> InitPgCluster(const std::string& conninfo,
                                        const std::string& new_access_key_id,
                                        const std::string& new_secret_access_key);

}  // namespace gust
