#include "runtime/warm_pool.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

namespace gust::runtime {
namespace {

// A launcher that only counts kills: the pool never talks to sandboxes.
class CountingLauncher : public sandbox::SandboxLauncher {
 public:
  Status Start() override { return Status::Ok(); }
  void Shutdown() override {}
  void Spawn(const sandbox::SandboxSpec&, sandbox::SpawnCallback) override {}
  void Kill(const std::string&) override { ++kills; }
  void SetExitCallback(sandbox::ExitCallback) override {}
  uint64_t PeakMemoryBytes(const std::string&) override { return 0; }
  std::string IsolationSummary() const override { return "none"; }
  int LiveCount() const override { return 0; }
  int kills = 0;
};

class WarmPoolTest : public ::testing::Test {
 protected:
  std::shared_ptr<SandboxSession> NewSession(const std::string& id) {
    int sv[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    int pipefd[2];
    EXPECT_EQ(pipe2(pipefd, O_CLOEXEC | O_NONBLOCK), 0);
    peers_.push_back(sv[1]);
    peers_.push_back(pipefd[1]);
    sandbox::SandboxHandle h;
    h.id = id;
    h.control_fd = sv[0];
    h.log_fd = pipefd[0];
    return std::make_shared<SandboxSession>(io_, launcher_, h);
  }
  void TearDown() override {
    for (int fd : peers_) close(fd);
  }
  boost::asio::io_context io_;
  CountingLauncher launcher_;
  std::vector<int> peers_;
};

TEST_F(WarmPoolTest, ReusesMostRecentlyUsedFirst) {
  WarmPool pool;
  std::string key = PoolKey("f", "$LATEST", "r1");
  auto a = NewSession("a");
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  auto b = NewSession("b");
  pool.PutIdle(key, a);
  pool.PutIdle(key, b);
  EXPECT_EQ(pool.idle_count(), 2u);
  EXPECT_EQ(pool.TakeIdle(key)->id(), "b");
  EXPECT_EQ(pool.TakeIdle(key)->id(), "a");
  EXPECT_EQ(pool.TakeIdle(key), nullptr);
  EXPECT_EQ(pool.TakeIdle(PoolKey("f", "1", "r1")), nullptr);
}

TEST_F(WarmPoolTest, ExpiresOnlyIdlePastKeepAlive) {
  WarmPool pool;
  std::string fast = PoolKey("fast", "$LATEST", "r");
  std::string slow = PoolKey("slow", "$LATEST", "r");
  pool.PutIdle(fast, NewSession("f1"));
  pool.PutIdle(slow, NewSession("s1"));
  auto later = MonoClock::now() + std::chrono::seconds(5);
  auto expired = pool.TakeExpired(later, [&](const std::string& key) {
    return key == fast ? std::chrono::milliseconds(1000) : std::chrono::milliseconds(60000);
  });
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0]->id(), "f1");
  EXPECT_EQ(pool.idle_count(), 1u);
  EXPECT_EQ(pool.idle_count(slow), 1u);
}

TEST_F(WarmPoolTest, TakeFunctionAndForget) {
  WarmPool pool;
  pool.PutIdle(PoolKey("f", "$LATEST", "r1"), NewSession("a"));
  pool.PutIdle(PoolKey("f", "1", "r0"), NewSession("b"));
  pool.PutIdle(PoolKey("fg", "$LATEST", "r1"), NewSession("c"));  // prefix of another name
  pool.Forget(PoolKey("f", "1", "r0"), "b");
  EXPECT_EQ(pool.idle_count(), 2u);
  auto taken = pool.TakeFunction("f", "");
  ASSERT_EQ(taken.size(), 1u);
  EXPECT_EQ(taken[0]->id(), "a");
  EXPECT_EQ(pool.idle_count(), 1u);
  EXPECT_EQ(pool.TakeLeastRecentlyUsed()->id(), "c");
  EXPECT_EQ(pool.TakeLeastRecentlyUsed(), nullptr);
}

TEST_F(WarmPoolTest, TakeVersionLeavesOtherVersions) {
  WarmPool pool;
  pool.PutIdle(PoolKey("f", "$LATEST", "r1"), NewSession("a"));
  pool.PutIdle(PoolKey("f", "$LATEST", "r2"), NewSession("b"));
  pool.PutIdle(PoolKey("f", "1", "r0"), NewSession("c"));
  pool.PutIdle(PoolKey("f", "10", "r9"), NewSession("d"));
  auto latest = pool.TakeVersion("f", "$LATEST");
  EXPECT_EQ(latest.size(), 2u);
  auto one = pool.TakeVersion("f", "1");  // not version 10
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0]->id(), "c");
  EXPECT_EQ(pool.idle_count(), 1u);
}

}  // namespace
}  // namespace gust::runtime
