#include "engine/function_feed.h"

#include <spdlog/spdlog.h>

#include <map>
#include <set>
#include <tuple>
#include <utility>

namespace gust::engine {

void ApplyFunctionChanges(const std::vector<FunctionChange>& changes, Invoker& invoker,
                          AsyncInvoker& async) {
  // The revisions cached before any change of the batch is applied, and per function the
  // last change of the batch that made the revision its $LATEST resolution has: that
  // resolution was read after the change committed (the feed trails the database by
  // milliseconds, a call can come first), so it already reflects every change up to it
  // (seqs are in commit order).
  std::map<std::string, std::string> resolved;
  for (const FunctionChange& c : changes) {
    resolved.emplace(c.function, invoker.CachedRevision(c.function, kLatest));
  }
  std::map<std::string, size_t> seen_upto;
  for (size_t i = 0; i < changes.size(); ++i) {
    const FunctionChange& c = changes[i];
    if (c.kind == FunctionChangeKind::kLatest && !c.revision.empty() &&
        resolved[c.function] == c.revision) {
      seen_upto[c.function] = i;
    }
  }
  std::set<std::tuple<std::string, FunctionChangeKind, bool>> done;
  for (size_t i = 0; i < changes.size(); ++i) {
    const FunctionChange& c = changes[i];
    auto seen = seen_upto.find(c.function);
    bool before_seen = seen != seen_upto.end() && i <= seen->second;
    // The $LATEST change the resolution already has: dropping it would only cost a cold
    // start.
    if (c.kind == FunctionChangeKind::kLatest && before_seen &&
        c.revision == resolved[c.function]) {
      continue;
    }
    // A routing change before it (a new function's row, in the same commit as its first
    // $LATEST) still drops the other resolutions (aliases, versions), not $LATEST's: else
    // a node that served a call right after a deploy needs the database for the next one.
    bool keep_latest = c.kind == FunctionChangeKind::kRouting && before_seen;
    if (!done.emplace(c.function, c.kind, keep_latest).second) continue;
    Invoker::Change change = c.kind == FunctionChangeKind::kLatest    ? Invoker::Change::kLatest
                             : c.kind == FunctionChangeKind::kRouting ? Invoker::Change::kRouting
                                                                      : Invoker::Change::kDeleted;
    invoker.FunctionChanged(c.function, change, keep_latest ? resolved[c.function] : std::string());
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
