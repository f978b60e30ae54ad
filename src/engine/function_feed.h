// FunctionFeed: keeps this node's caches of functions in step with changes made through other
// nodes of the cluster (docs/CLUSTER.md, "Function changes across nodes"), in cluster mode
// only. Every node caches what a function resolves to and keeps warm sandboxes of its code;
// without this, an UpdateFunctionCode through n1 would leave n2 serving the old code.
//
// A thread of its own reads the shared change feed (store/function_changes.h): it waits for a
// notification in short slices (so Stop is prompt), and reads the changes after the last one
// it applied when notified, and at least every `probe` anyway (a notification sent while its
// session was down is lost; the table is not). It hands each batch, in order, to `apply`, on
// this thread (the caller posts to its own; the engine posts to the engine thread). The
// node's own changes come back too and are applied twice; applying a change is idempotent.
//
// Failures: a database that cannot be read is logged once per outage (OutageLog) and retried;
// on recovery the changes committed meanwhile are read from the table. A reader that could
// not read for longer than half of `keep` (the age past which changes are pruned) may have
// missed changes: it calls `reset` (drop everything cached) before applying what is left.
// Every node prunes changes older than `keep` once a minute.
//
// Thread-safety: Start and Stop from one thread (the composition root); apply and reset run
// on the feed's thread.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/mutex.h"
#include "common/thread_annotations.h"
#include "engine/async_invoker.h"
#include "engine/invoker.h"
#include "engine/outage_log.h"
#include "store/function_changes.h"

namespace gust::engine {

// What `apply` does in the engine: each change drops what the invoker and the async
// dispatcher cache of the function (a function changed twice in a batch, once), except what
// a resolution read after the change already reflects: a $LATEST resolution with the
// revision a $LATEST change of the batch made keeps that change and the routing changes
// before it from dropping it (the other resolutions of the function go). Engine thread
// only (the Invoker's rule).
void ApplyFunctionChanges(const std::vector<FunctionChange>& changes, Invoker& invoker,
                          AsyncInvoker& async);
// What `reset` does in the engine: drops every function's cached configuration and idle
// sandboxes. Engine thread only.
void DropCachedFunctions(Invoker& invoker, AsyncInvoker& async);

class FunctionFeed {
 public:
  using Apply = std::function<void(std::vector<FunctionChange>)>;
  using Reset = std::function<void()>;
  struct Options {
    std::chrono::milliseconds probe{2000};      // read at least this often
    std::chrono::milliseconds wait_slice{250};  // longest wait before Stop is noticed
    std::chrono::milliseconds retry{1000};      // after a failed read
    std::chrono::seconds keep{3600};            // changes older are pruned
    std::chrono::milliseconds prune_every{60'000};
    int batch = 1000;  // changes per read
  };

  FunctionFeed(std::unique_ptr<FunctionChangeFeed> feed, Apply apply, Reset reset, Options options);
  FunctionFeed(std::unique_ptr<FunctionChangeFeed> feed, Apply apply, Reset reset)
      : FunctionFeed(std::move(feed), std::move(apply), std::move(reset), Options()) {}
  ~FunctionFeed();  // Stop()
  FunctionFeed(const FunctionFeed&) = delete;
  FunctionFeed& operator=(const FunctionFeed&) = delete;

  // Reads where the feed is now (changes before it are already in what this node will read
  // from the stores) and starts the thread. The database's error when it cannot be read.
  Status Start();
  void Stop();  // idempotent

 private:
  void Loop();
  // Reads and applies every change after last_; false when a read failed.
  bool CatchUp();
  // Sleeps for d unless stopped; false when stopped.
  bool Sleep(std::chrono::milliseconds d);

  std::unique_ptr<FunctionChangeFeed> feed_;
  Apply apply_;
  Reset reset_;
  const Options options_;
  // The thread's own, after Start:
  int64_t last_ = 0;
  MonoTime last_read_;
  MonoTime last_prune_;
  OutageLog reads_;
  Mutex mu_;
  CondVar wake_;
  bool stopping_ GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace gust::engine
