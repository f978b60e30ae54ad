// MapJobStore: the durable half of a map job in cluster mode (docs/CLUSTER.md, "Step 5b as
// built"), so that a job outlives the node that owns it. The owner keeps the job hot in its
// memory (engine/map_jobs.h) and writes here: the job's row (function, options, owner and the
// owner's membership epoch, state) and its inputs once, at submission, then its results in
// batches (one statement and one row per batch of finished tasks, never one per task), each
// result numbered by its seq as the client reads them. When the owner is dead another node takes
// the job over with TakeOver, a compare-and-set of (owner, owner_epoch) so that exactly one
// contender wins, reads the inputs and the stored results back and runs the tasks without a result.
//
// Fencing: AppendResults and Finish name the writer's (owner, epoch); once the job was taken
// over they change nothing and return Conflict. An append is one statement that updates the
// job's row (its stored count) only while (owner, epoch) own it and inserts the batch in the
// same breath, so a takeover (an update of that row) and an append are ordered: the takeover
// sees every batch appended before it and none after.
//
// Embedded mode has no MapJobStore (a map job lives and dies with its engine, as before).
//
// Errors: NotFound naming the job; Conflict for a fenced write or a job id that exists;
// Unavailable naming host and port when PostgreSQL cannot be reached (pg_util.h).
// Thread-safety: implementations are safe to call from any thread (one connection under a
// mutex); calls block on PostgreSQL, so the engine makes them on its worker pool.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace gust {

struct MapJobRow {
  std::string id;
  std::string function;  // the map function's name
  // The job's other settings (MapJobSpec less the function) as JSON text, so that a node
  // taking the job over runs it as submitted; the store does not read it.
  std::string options = "{}";
  std::string owner;              // the owning node's name
  int64_t owner_epoch = 0;        // its membership epoch (node_store.h) when it took the job
  std::string state = "running";  // "running" or "done"
  int64_t tasks = 0;
  int64_t stored = 0;  // results stored so far: seqs 1..stored
  int64_t created_ms = 0;
  int64_t finished_ms = 0;  // 0 while running
  int64_t ttl_ms = 0;       // results are kept this long after finished_ms
};

// One finished task's result: its seq (1, 2, ... in the order the client reads them), its
// task index and its encoded bytes (engine/map_framing.h's result; opaque here).
struct MapResultRow {
  uint64_t seq = 0;
  uint32_t task = 0;
  std::string body;
};

class MapJobStore {
 public:
  virtual ~MapJobStore() = default;
  // Records a new job and its inputs (tasks[i] is task i's payload), in one transaction.
  // Conflict when the id exists.
  virtual Status Create(const MapJobRow& job, const std::vector<std::string>& tasks) = 0;
  // The job's row; NotFound when there is none (never created, deleted or expired).
  virtual Result<MapJobRow> Get(const std::string& id) = 0;
  // Its inputs, in task order.
  virtual Result<std::vector<std::string>> Inputs(const std::string& id) = 0;
  // Appends results (seqs consecutive, the first right after the stored ones) if the job is
  // still owned by (owner, epoch): one statement, one row. Conflict, nothing written, when it
  // was taken over or the first seq does not follow the stored ones; InvalidArgument when the
  // seqs are not consecutive.
  virtual Status AppendResults(const std::string& id, const std::string& owner, int64_t epoch,
                               const std::vector<MapResultRow>& results) = 0;
  // Stored results with seq > after, in seq order, at most max_bytes of bodies (but at least
  // one result when there is one).
  virtual Result<std::vector<MapResultRow>> Results(const std::string& id, uint64_t after,
                                                    size_t max_bytes) = 0;
  // Marks the job done at finished_ms if (owner, epoch) still own it; Conflict otherwise.
  virtual Status Finish(const std::string& id, const std::string& owner, int64_t epoch,
                        int64_t finished_ms) = 0;
  // Makes (owner, epoch) the job's owner if it is still (seen_owner, seen_epoch)'s: true
  // when this call won, false when the row had changed (another node took it first).
  // NotFound when there is no such job.
  virtual Result<bool> TakeOver(const std::string& id, const std::string& seen_owner,
                                int64_t seen_epoch, const std::string& owner, int64_t epoch) = 0;
  // Every job not done, with its owner: what a node's takeover sweep compares with the
  // membership it sees.
  virtual Result<std::vector<MapJobRow>> Running() = 0;
  // Removes the job, its inputs and results (nothing when there is none).
  virtual Status Delete(const std::string& id) = 0;
  // Removes the done jobs whose ttl ran out by now_ms; returns how many.
  virtual Result<int64_t> DeleteExpired(int64_t now_ms) = 0;
};

// The map jobs of the cluster in conninfo's PostgreSQL database (its schema must be current:
// CheckPgClusterSchema, node_store.h).
Result<std::unique_ptr<MapJobStore>> OpenPgMapJobStore(const std::string& conninfo);

}  // namespace gust
