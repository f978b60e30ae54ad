#include "engine/function_feed.h"

#include <spdlog/spdlog.h>

#include <map>
#include <set>
#include <utility>

namespace gust::engine {

void ApplyFunctionChanges(const std::vector<FunctionChange>& changes, Invoker& invoker,
                          AsyncInvoker& async) {
  // The revisions cached before any change of the batch is applied: a routing change of the
  // same commit (a new function's row) drops the cached resolution first.
  std::map<std::string, std::string> resolved;
  for (const FunctionChange& c : changes) {
    resolved.emplace(c.function, invoker.CachedRevision(c.function, kLatest));
  }
  std::set<std::pair<std::string, FunctionChangeKind>> done;
  for (const FunctionChange& c : changes) {
    // A node that resolved $LATEST after the change committed (the feed trails the database
    // by milliseconds) already runs what it says: dropping it would only cost a cold start.
    if (c.kind == FunctionChangeKind::kLatest && !c.revision.empty() &&
        resolved[c.function] == c.revision) {
      continue;
    }
    if (!done.emplace(c.function, c.kind).second) continue;
    Invoker::Change change = c.kind == FunctionChangeKind::kLatest    ? Invoker::Change::kLatest
                             : c.kind == FunctionChangeKind::kRouting ? Invoker::Change::kRouting
                                                                      : Invoker::Change::kDeleted;
    invoker.FunctionChanged(c.function, change);
    async.ConfigChanged(c.function);
  }
}

void DropCachedFunctions(Invoker& invoker, AsyncInvoker& async) {
  std::set<std::string> names;
  for (std::string& name : invoker.CachedFunctions()) names.insert(std::move(name));
  for (std::string& name : async.CachedFunctions()) names.insert(std::move(name));
  for (const std::string& name : names) {
    invoker.FunctionChanged(name, Invoker::Change::kDeleted);
    async.ConfigChanged(name);
  }
}

FunctionFeed::FunctionFeed(std::unique_ptr<FunctionChangeFeed> feed, Apply apply, Reset reset,
                           Options options)
    : feed_(std::move(feed)),
      apply_(std::move(apply)),
      reset_(std::move(reset)),
      options_(options),
      reads_("cluster: reading function changes",
             "retried every " + std::to_string(options.retry.count()) + " ms") {}

FunctionFeed::~FunctionFeed() { Stop(); }

Status FunctionFeed::Start() {
  GUST_ASSIGN_OR_RETURN(last_, feed_->Head());
  // Listening before the thread starts: a change committed from here on is notified.
  GUST_RETURN_IF_ERROR(feed_->Wait(std::chrono::milliseconds(0)).status());
  last_read_ = MonoClock::now();
  last_prune_ = MonoTime{};
  thread_ = std::thread([this] { Loop(); });
  return Status::Ok();
}

void FunctionFeed::Stop() {
  {
    MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake_.SignalAll();
  if (thread_.joinable()) thread_.join();
}

bool FunctionFeed::Sleep(std::chrono::milliseconds d) {
  auto until = std::chrono::steady_clock::now() + d;
  MutexLock lock(&mu_);
  while (!stopping_ && wake_.WaitUntil(&mu_, until)) {
  }
  return !stopping_;
}

bool FunctionFeed::CatchUp() {
  for (;;) {
    auto changes = feed_->Since(last_, options_.batch);
    reads_.Note(changes.status());
    if (!changes.ok()) return false;
    MonoTime now = MonoClock::now();
    if (now - last_read_ > options_.keep / 2) {
      // Changes this node did not read may have been pruned meanwhile.
      spdlog::warn(
          "cluster: function changes were not read for {:.1f} s: dropping every cached "
          "function configuration and idle sandbox",
          std::chrono::duration<double>(now - last_read_).count());
      reset_();
    }
    last_read_ = now;
    if (changes->empty()) return true;
    last_ = changes->back().seq;
    bool more = static_cast<int>(changes->size()) == options_.batch;
    apply_(std::move(changes).value());
    if (!more) return true;
  }
}

void FunctionFeed::Loop() {
  bool read_failed = false;
  for (;;) {
    {
      MutexLock lock(&mu_);
      if (stopping_) return;
    }
    auto notified = feed_->Wait(options_.wait_slice);
    if (!notified.ok()) {
      // The session is gone; the next read reconnects (and reads what was missed).
      reads_.Note(notified.status());
      if (!Sleep(options_.retry)) return;
      read_failed = true;
    }
    MonoTime now = MonoClock::now();
    bool due = notified.ok() && *notified;
    if (read_failed || due || now - last_read_ >= options_.probe) {
      read_failed = !CatchUp();
      if (read_failed && !Sleep(options_.retry)) return;
    }
    if (now - last_prune_ >= options_.prune_every) {
      last_prune_ = now;
      Status pruned = feed_->Prune(options_.keep);
      if (!pruned.ok()) spdlog::debug("cluster: pruning function changes: {}", pruned.ToString());
    }
  }
}

}  // namespace gust::engine
