// FunctionChangeFeed: what changed in which function, for the caches of a cluster's other
// nodes (docs/CLUSTER.md, "Function changes across nodes"). Every node caches what a function
// resolves to (its configuration, aliases, concurrency) and keeps warm sandboxes of its code;
// a change made through one node must reach the others. In the shared PostgreSQL database
// every write to the function tables appends a change (by trigger, in the writer's own
// transaction, so no committed change is missed and no uncommitted one is seen) and notifies
// the channel at commit (pg_schema.h, migration 7). A node reads the changes after the last
// one it applied (Since), waits for the next notification (Wait), and, as notifications are
// lost with a session, reads again on a timer: the table, not the notification, is the truth.
//
// Changes older than Prune's age are deleted; a reader away longer than that (its last Since
// older than the age) cannot know what it missed and must drop everything it caches.
//
// Errors: Unavailable (naming the database's host and port) while PostgreSQL cannot be
// reached; the next call reconnects and listens again. Thread-safety: none; one reader thread
// owns a feed (it holds its own connection, apart from the stores').
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace gust {

enum class FunctionChangeKind {
  kLatest = 0,   // $LATEST's code or configuration changed (or was created)
  kRouting = 1,  // a new function, aliases, published versions, concurrency, async settings
  kDeleted = 2,  // the function or one of its versions was deleted
};

struct FunctionChange {
  int64_t seq = 0;  // increasing in commit order (pg_schema.h, migration 7)
  std::string function;
  FunctionChangeKind kind = FunctionChangeKind::kRouting;
  // kLatest: the revision $LATEST has after the change (a node that already resolved it
  // has nothing to drop); "" otherwise.
  std::string revision;
};

class FunctionChangeFeed {
 public:
  virtual ~FunctionChangeFeed() = default;
  // The last change's seq (0 when there is none): where a new reader starts.
  virtual Result<int64_t> Head() = 0;
  // Changes with seq > after, oldest first, at most `limit`. Seqs are taken under a lock
  // held until commit, so a change never becomes visible behind one with a higher seq: a
  // reader need only remember the last seq it applied.
  virtual Result<std::vector<FunctionChange>> Since(int64_t after, int limit) = 0;
  // Waits up to `timeout` for a notification of a new change (listening first if this
  // session does not yet); true when one came. A false is not "nothing changed": notifications
  // sent while the session was down are gone, hence Since on a timer.
  virtual Result<bool> Wait(std::chrono::milliseconds timeout) = 0;
  // Deletes changes older than max_age (the database's clock).
  virtual Status Prune(std::chrono::seconds max_age) = 0;
};

// The feed of conninfo's cluster database (its schema current: CheckPgClusterSchema).
Result<std::unique_ptr<FunctionChangeFeed>> OpenPgFunctionChangeFeed(const std::string& conninfo);

}  // namespace gust
