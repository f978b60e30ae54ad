// ClusterNode's lapse and rejoin (docs/CLUSTER.md, "Membership and fencing"), with the
// membership store's failures injected: a node whose heartbeats fail reads itself lapsed a
// margin before its lease ends, stays lapsed until a heartbeat reaches the store again, and
// then rejoins as the next epoch (the OnRejoin users switched before it reads live), never
// carries on at the old one. The event queue is the real SQLite one.
#include "engine/cluster_node.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "common/mutex.h"
#include "store/test_util.h"

namespace gust::engine {
namespace {

using std::chrono::milliseconds;

// A membership of one node, in memory, whose writes fail while `cut` is set (the node cut
// off from PostgreSQL).
class CutNodeStore : public NodeStore {
 public:
  std::atomic<bool> cut{false};
  std::atomic<int> heartbeats{0};
  std::atomic<int> rejoins{0};
  std::atomic<int> rejoin_ms{0};  // how long a Rejoin takes (one that waited for a connection)

  Result<int64_t> Join(const NodeInfo&) override { return ++epoch_; }
  Status Heartbeat(const NodeInfo&) override {
    if (cut) return Status::Unavailable("cut off");
    ++heartbeats;
    return Status::Ok();
  }
  Result<int64_t> Rejoin(const NodeInfo&) override {
    if (cut) return Status::Unavailable("cut off");
    std::this_thread::sleep_for(milliseconds(rejoin_ms.load()));
    ++rejoins;
    return ++epoch_;
  }
  Status Leave() override { return Status::Ok(); }
  Result<std::vector<NodeRow>> List() override {
    if (cut) return Status::Unavailable("cut off");
    return std::vector<NodeRow>{};
  }
  Result<NodeRow> Drain(const std::string&) override { return Status::NotFound("no"); }
  int64_t epoch() const override { return epoch_; }
  Result<std::pair<std::string, std::string>> ClusterCredential() override {
    return Status::NotFound("none");
  }

 private:
  std::atomic<int64_t> epoch_{0};
};

// The real SQLite queue, whose next `fail_renewals` RenewLeases fail (the PostgreSQL queue's
// broken connection fails its first statement after an outage).
class RenewFailingQueue : public EventQueue {
 public:
  explicit RenewFailingQueue(std::unique_ptr<EventQueue> q) : q_(std::move(q)) {}
  std::atomic<int> fail_renewals{0};
  std::atomic<int64_t> epoch{0};

  Status Commit(const std::vector<EventWrite>& w, std::vector<std::string>* f) override {
    return q_->Commit(w, f);
  }
  Result<LeasedPage> Lease(int64_t now_ms, size_t n, size_t bytes,
                           const std::vector<std::string>& skip) override {
    return q_->Lease(now_ms, n, bytes, skip);
  }
  Status ReleaseAll() override { return q_->ReleaseAll(); }
  Result<int> RenewLeases(int64_t now_ms) override {
    if (fail_renewals > 0) {
      --fail_renewals;
      return Status::Unavailable("a broken connection");
    }
    return q_->RenewLeases(now_ms);
  }
  Result<EventRecord> Get(const std::string& id) override { return q_->Get(id); }
  Result<std::vector<EventRecord>> DeadLetters(const std::string& fn, int limit) override {
    return q_->DeadLetters(fn, limit);
  }
  Result<int> Redrive(const std::string& fn, const std::vector<std::string>& ids,
                      int64_t now_ms) override {
    return q_->Redrive(fn, ids, now_ms);
  }
  Result<int> PurgeFinished(int64_t before_ms) override { return q_->PurgeFinished(before_ms); }
  Result<QueueCounts> Counts() override { return q_->Counts(); }
  void SetEpoch(int64_t e) override { epoch = e; }

 private:
  std::unique_ptr<EventQueue> q_;
};

template <typename F>
bool WaitFor(F done, milliseconds limit = milliseconds(3000)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(milliseconds(5));
  }
  return done();
}

class ClusterNodeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto queue = OpenSqliteEventQueue(dir_ / "events.db");
    ASSERT_TRUE(queue.ok()) << queue.status().ToString();
    queue_ = std::make_unique<RenewFailingQueue>(std::move(queue).value());
    ASSERT_EQ(*nodes_.Join(NodeInfo{}), 1);
  }

  store_testing::TempDir dir_;
  CutNodeStore nodes_;
  std::unique_ptr<RenewFailingQueue> queue_;
  static constexpr milliseconds kInterval{20};
  static constexpr milliseconds kLease{400};
};

TEST_F(ClusterNodeTest, ALapseIsFinalForItsEpochAndTheNodeRejoinsAsTheNext) {
  ClusterNode node(nodes_, *queue_, NodeInfo{.name = "n1"}, kInterval, kLease);
  std::atomic<int64_t> rejoined{0};
  std::atomic<bool> live_at_rejoin{true};
  node.OnRejoin([&](int64_t epoch) {
    live_at_rejoin = node.Live();
    rejoined = epoch;
  });
  node.Start();
  ASSERT_TRUE(WaitFor([&] { return nodes_.heartbeats >= 2; }));
  EXPECT_TRUE(node.Live());

  nodes_.cut = true;
  auto cut = std::chrono::steady_clock::now();
  ASSERT_TRUE(WaitFor([&] { return !node.Live(); }));
  // Lapsed before its lease (from the start of its last good beat, before the cut) ran out.
  EXPECT_LT(std::chrono::steady_clock::now() - cut, kLease);
  EXPECT_EQ(nodes_.rejoins, 0);

  // Back: the rejoin goes through but the rest of its beat fails; the next beat is a
  // heartbeat of the new epoch, not a second rejoin.
  queue_->fail_renewals = 1;
  nodes_.cut = false;
  ASSERT_TRUE(WaitFor([&] { return node.Live(); }));
  EXPECT_EQ(nodes_.rejoins, 1);
  EXPECT_EQ(rejoined, 2);
  EXPECT_EQ(nodes_.epoch(), 2);
  EXPECT_EQ(queue_->epoch, 2);
  EXPECT_FALSE(live_at_rejoin) << "the rejoin's users must switch epochs before it reads live";
  // Then plain heartbeats again, at the new epoch.
  int beats = nodes_.heartbeats;
  ASSERT_TRUE(WaitFor([&] { return nodes_.heartbeats >= beats + 2; }));
  EXPECT_EQ(nodes_.rejoins, 1);
  EXPECT_TRUE(node.Live());
  node.Stop();
}

TEST_F(ClusterNodeTest, FailedBeatsShorterThanTheLeaseLessTheMarginKeepTheEpoch) {
  ClusterNode node(nodes_, *queue_, NodeInfo{.name = "n1"}, kInterval, kLease);
  node.Start();
  ASSERT_TRUE(WaitFor([&] { return nodes_.heartbeats >= 2; }));
  nodes_.cut = true;
  std::this_thread::sleep_for(milliseconds(60));  // three failed beats; the lease holds
  EXPECT_TRUE(node.Live());
  nodes_.cut = false;
  int beats = nodes_.heartbeats;
  ASSERT_TRUE(WaitFor([&] { return nodes_.heartbeats >= beats + 2; }));
  EXPECT_TRUE(node.Live());
  EXPECT_EQ(nodes_.rejoins, 0);
  EXPECT_EQ(nodes_.epoch(), 1);
  node.Stop();
}

TEST_F(ClusterNodeTest, ARejoinSlowerThanTheLeaseIsRenewedNotTakenAgain) {
  ClusterNode node(nodes_, *queue_, NodeInfo{.name = "n1"}, kInterval, kLease);
  node.Start();
  ASSERT_TRUE(WaitFor([&] { return nodes_.heartbeats >= 2; }));
  nodes_.cut = true;
  ASSERT_TRUE(WaitFor([&] { return !node.Live(); }));
  // Its beat starts more than a lease before the rejoin returns: lapsed again at once, at an
  // epoch it was never live at, which the next beat renews.
  nodes_.rejoin_ms = static_cast<int>(kLease.count()) + 50;
  nodes_.cut = false;
  ASSERT_TRUE(WaitFor([&] { return node.Live(); }));
  EXPECT_EQ(nodes_.rejoins, 1);
  EXPECT_EQ(nodes_.epoch(), 2);
  node.Stop();
}

TEST(ClusterNodeMarginTest, ATenthOfTheLeaseAtLeastTheMinimum) {
  EXPECT_EQ(ClusterNode::LapseMargin(milliseconds(10'000)), milliseconds(1000));
  EXPECT_EQ(ClusterNode::LapseMargin(milliseconds(3000)), milliseconds(300));
  EXPECT_EQ(ClusterNode::LapseMargin(milliseconds(400)), ClusterNode::kMinLapseMargin);
}

}  // namespace
}  // namespace gust::engine
