// FunctionFeed in process, over a FunctionChangeFeed whose faults the test sets (LevelDB's
// SpecialEnv way): changes reach `apply` in order and once, in batches; a notification is
// answered at once and a lost one by the probe; a database that fails for a while costs
// nothing once it is back (the changes made meanwhile are applied); a reader away past half
// of `keep` resets its caches; Stop is prompt.
#include "engine/function_feed.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace gust::engine {
namespace {

using namespace std::chrono_literals;

// The shared table and channel, with switches for faults.
struct FakeDatabase {
  Mutex mu;
  std::vector<FunctionChange> changes GUARDED_BY(mu);
  bool pending_notification GUARDED_BY(mu) = false;
  bool notify GUARDED_BY(mu) = true;  // false: commits are not notified (a lost session's)
  bool down GUARDED_BY(mu) = false;
  int reads GUARDED_BY(mu) = 0;
  int prunes GUARDED_BY(mu) = 0;

  void Commit(const std::string& function, FunctionChangeKind kind) {
    MutexLock lock(&mu);
    changes.push_back({static_cast<int64_t>(changes.size()) + 1, function, kind});
    if (notify) pending_notification = true;
  }
};

class FakeFeed : public FunctionChangeFeed {
 public:
  explicit FakeFeed(FakeDatabase& db) : db_(db) {}
  Result<int64_t> Head() override {
    MutexLock lock(&db_.mu);
    if (db_.down) return Status::Unavailable("database down");
    return static_cast<int64_t>(db_.changes.size());
  }
  Result<std::vector<FunctionChange>> Since(int64_t after, int limit) override {
    MutexLock lock(&db_.mu);
    ++db_.reads;
    if (db_.down) return Status::Unavailable("database down");
    std::vector<FunctionChange> out;
    for (const auto& c : db_.changes) {
      if (c.seq > after && static_cast<int>(out.size()) < limit) out.push_back(c);
    }
    return out;
  }
  Result<bool> Wait(std::chrono::milliseconds timeout) override {
    auto until = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      {
        MutexLock lock(&db_.mu);
        if (db_.down) return Status::Unavailable("database down");
        if (db_.pending_notification) {
          db_.pending_notification = false;
          return true;
        }
      }
      if (std::chrono::steady_clock::now() >= until) return false;
      std::this_thread::sleep_for(1ms);
    }
  }
  Status Prune(std::chrono::seconds) override {
    MutexLock lock(&db_.mu);
    ++db_.prunes;
    return Status::Ok();
  }

 private:
  FakeDatabase& db_;
};

// What `apply` and `reset` saw.
struct Applied {
  Mutex mu;
  std::vector<FunctionChange> changes GUARDED_BY(mu);
  int batches GUARDED_BY(mu) = 0;
  int resets GUARDED_BY(mu) = 0;

  size_t count() {
    MutexLock lock(&mu);
    return changes.size();
  }
  // Waits up to `limit` for n changes; how long it took.
  std::chrono::milliseconds WaitFor(size_t n, std::chrono::milliseconds limit = 5s) {
    auto start = std::chrono::steady_clock::now();
    while (count() < n && std::chrono::steady_clock::now() - start < limit) {
      std::this_thread::sleep_for(1ms);
    }
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 start);
  }
};

class FunctionFeedTest : public ::testing::Test {
 protected:
  std::unique_ptr<FunctionFeed> Make(FunctionFeed::Options options) {
    return std::make_unique<FunctionFeed>(
        std::make_unique<FakeFeed>(db_),
        [this](std::vector<FunctionChange> batch) {
          MutexLock lock(&applied_.mu);
          ++applied_.batches;
          for (auto& c : batch) applied_.changes.push_back(std::move(c));
        },
        [this] {
          MutexLock lock(&applied_.mu);
          ++applied_.resets;
        },
        options);
  }

  FakeDatabase db_;
  Applied applied_;
};

TEST_F(FunctionFeedTest, AppliesChangesAfterStartInOrderOnceInBatches) {
  db_.Commit("before", FunctionChangeKind::kLatest);  // already in what the node reads
  FunctionFeed::Options options;
  options.batch = 2;
  auto feed = Make(options);
  ASSERT_TRUE(feed->Start().ok());
  for (int i = 0; i < 5; ++i) db_.Commit("f" + std::to_string(i), FunctionChangeKind::kRouting);
  auto took = applied_.WaitFor(5);
  EXPECT_LT(took, 1500ms);  // notified, not waiting for the 2 s probe
  feed->Stop();
  MutexLock lock(&applied_.mu);
  ASSERT_EQ(applied_.changes.size(), size_t{5});
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(applied_.changes[static_cast<size_t>(i)].function, "f" + std::to_string(i));
    EXPECT_EQ(applied_.changes[static_cast<size_t>(i)].seq, i + 2);
  }
  EXPECT_GE(applied_.batches, 3);  // at most two a batch
  EXPECT_EQ(applied_.resets, 0);
}

TEST_F(FunctionFeedTest, ALostNotificationIsMadeUpForByTheProbe) {
  FunctionFeed::Options options;
  options.probe = 300ms;
  auto feed = Make(options);
  ASSERT_TRUE(feed->Start().ok());
  {
    MutexLock lock(&db_.mu);
    db_.notify = false;
  }
  db_.Commit("quiet", FunctionChangeKind::kDeleted);
  auto took = applied_.WaitFor(1);
  EXPECT_EQ(applied_.count(), size_t{1});
  EXPECT_GE(took, 50ms);    // not at once: nothing told it
  EXPECT_LT(took, 1500ms);  // but within a probe or so
}

TEST_F(FunctionFeedTest, AnOutageCostsNothingOnceTheDatabaseIsBack) {
  FunctionFeed::Options options;
  options.retry = 50ms;
  options.probe = 200ms;
  auto feed = Make(options);
  ASSERT_TRUE(feed->Start().ok());
  {
    MutexLock lock(&db_.mu);
    db_.down = true;
  }
  // Changes committed through another node's session while this one cannot read.
  {
    MutexLock lock(&db_.mu);
    db_.changes.push_back({1, "during", FunctionChangeKind::kLatest});
    db_.changes.push_back({2, "outage", FunctionChangeKind::kRouting});
  }
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(applied_.count(), size_t{0});
  {
    MutexLock lock(&db_.mu);
    db_.down = false;
  }
  applied_.WaitFor(2);
  feed->Stop();
  MutexLock lock(&applied_.mu);
  ASSERT_EQ(applied_.changes.size(), size_t{2});
  EXPECT_EQ(applied_.changes[0].function, "during");
  EXPECT_EQ(applied_.changes[1].function, "outage");
  EXPECT_EQ(applied_.resets, 0);  // away for less than keep / 2
}

TEST_F(FunctionFeedTest, AReaderAwayLongerThanHalfOfKeepResetsItsCaches) {
  FunctionFeed::Options options;
  options.retry = 50ms;
  options.keep = std::chrono::seconds(1);
  auto feed = Make(options);
  ASSERT_TRUE(feed->Start().ok());
  {
    MutexLock lock(&db_.mu);
    db_.down = true;
  }
  std::this_thread::sleep_for(700ms);  // past keep / 2: what it missed may be pruned
  {
    MutexLock lock(&db_.mu);
    db_.down = false;
  }
  db_.Commit("after", FunctionChangeKind::kLatest);
  applied_.WaitFor(1);
  feed->Stop();
  MutexLock lock(&applied_.mu);
  EXPECT_EQ(applied_.resets, 1);
  ASSERT_EQ(applied_.changes.size(), size_t{1});
  EXPECT_EQ(applied_.changes[0].function, "after");
}

TEST_F(FunctionFeedTest, StartFailsWhenTheDatabaseCannotBeReadAndStopIsPrompt) {
  {
    MutexLock lock(&db_.mu);
    db_.down = true;
  }
  auto failed = Make(FunctionFeed::Options());
  EXPECT_EQ(failed->Start().code(), Code::kUnavailable);
  {
    MutexLock lock(&db_.mu);
    db_.down = false;
  }
  auto feed = Make(FunctionFeed::Options());
  ASSERT_TRUE(feed->Start().ok());
  std::this_thread::sleep_for(100ms);  // its first loop prunes
  auto start = std::chrono::steady_clock::now();
  feed->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);  // a wait slice, not a probe
  MutexLock lock(&db_.mu);
  EXPECT_GE(db_.prunes, 1);
}

}  // namespace
}  // namespace gust::engine
