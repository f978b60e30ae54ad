// The Scheduler (schedule/scheduler.h) firing rate() schedules in fake time:
// invoke schedules become asynchronous invocations with EventBridge's
// Scheduled Event, keep-warm schedules spawn a sandbox without invoking it,
// and ticks missed while the engine was down fire once at start.
#include "schedule/scheduler.h"

#include <gtest/gtest.h>

#include <boost/asio/thread_pool.hpp>

#include <nlohmann/json.hpp>

#include "engine/testing/engine_harness.h"

namespace gust::schedule {
namespace {

using namespace std::chrono_literals;
using engine::testing::EngineHarness;
using engine::testing::InvokeSeen;

class SchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto queue = OpenSqliteEventQueue(h_.state_dir() + "/queue.db", false);
    ASSERT_TRUE(queue.ok());
    queue_ = std::move(queue).value();
    auto schedules = OpenSqliteScheduleStore(h_.state_dir() + "/schedules.db");
    ASSERT_TRUE(schedules.ok());
    schedules_ = std::move(schedules).value();
    async_ =
        std::make_unique<engine::AsyncInvoker>(h_.io, h_.config(), *h_.invoker, *queue_, *h_.store);
    ASSERT_TRUE(async_->Start().ok());
    scheduler_ = std::make_unique<Scheduler>(h_.io, workers_, *schedules_, *h_.invoker, *async_);
  }
  void TearDown() override {
    scheduler_->Shutdown();
    async_->Shutdown();
    h_.Settle();
    workers_.join();
  }
  Schedule Rate(const std::string& name, const std::string& function, int64_t anchor_ms) {
    Schedule s;
    s.name = name;
    s.function = function;
    s.expression = "rate(1 minute)";
    s.anchor_ms = anchor_ms;
    s.created_ms = s.updated_ms = anchor_ms;
    return s;
  }
  std::vector<InvokeSeen> CallsOf(const std::string& function) {
    std::vector<InvokeSeen> calls;
    for (const InvokeSeen& seen : h_.launcher.invocations())
      if (seen.function == function) calls.push_back(seen);
    return calls;
  }

  EngineHarness h_;
  std::unique_ptr<EventQueue> queue_;
  std::unique_ptr<ScheduleStore> schedules_;
  std::unique_ptr<engine::AsyncInvoker> async_;
  std::unique_ptr<Scheduler> scheduler_;
  boost::asio::thread_pool workers_{1};  // declared last: joined before what its tasks use
};

TEST_F(SchedulerTest, RateScheduleInvokesOnEachTick) {
  h_.CreateFunction("f");
  ASSERT_TRUE(scheduler_->Start().ok());
  int64_t anchor = NowEpochMs();
  Schedule s = Rate("tick", "f", anchor);
  ASSERT_TRUE(schedules_->Put(s).ok());
  scheduler_->Upsert(s);
  EXPECT_EQ(scheduler_->NextFire("tick"), anchor + 60'000);
  h_.Advance(59'999ms);
  EXPECT_TRUE(CallsOf("f").empty()) << "fired early";
  h_.Advance(1ms);
  ASSERT_TRUE(h_.RunUntil([&] { return CallsOf("f").size() == 1; }));
  auto event = nlohmann::json::parse(CallsOf("f")[0].payload, nullptr, false);
  ASSERT_TRUE(event.is_object());
  EXPECT_EQ(event["detail-type"], "Scheduled Event");
  EXPECT_EQ(event["id"], TickId("tick", anchor + 60'000));
  EXPECT_EQ(CallsOf("f")[0].request_id, TickId("tick", anchor + 60'000));

  h_.Advance(60'000ms);
  ASSERT_TRUE(h_.RunUntil([&] { return CallsOf("f").size() == 2; }));
  EXPECT_EQ(CallsOf("f")[1].request_id, TickId("tick", anchor + 120'000));
  EXPECT_EQ(scheduler_->stats().fires, 2u);
  EXPECT_EQ(h_.launcher.spawns(), 1) << "the second tick ran warm";
}

TEST_F(SchedulerTest, KeepWarmSpawnsWithoutInvoking) {
  h_.CreateFunction("g");
  ASSERT_TRUE(scheduler_->Start().ok());
  Schedule s = Rate("warm", "g", NowEpochMs());
  s.kind = "keep_warm";
  ASSERT_TRUE(schedules_->Put(s).ok());
  scheduler_->Upsert(s);
  h_.Advance(60'000ms);
  ASSERT_TRUE(h_.RunUntil([&] { return h_.invoker->stats().idle_sandboxes == 1; }));
  EXPECT_EQ(h_.launcher.spawns(), 1);
  EXPECT_TRUE(h_.launcher.invocations().empty()) << "keep-warm never calls the handler";
  h_.Advance(60'000ms);
  h_.Settle();
  EXPECT_EQ(h_.launcher.spawns(), 1) << "the warm sandbox is reused";
  EXPECT_EQ(scheduler_->stats().fires, 2u);
}

TEST_F(SchedulerTest, MissedTicksFireOnceAtStart) {
  h_.CreateFunction("f");
  // Stored ten minutes ago and never fired: ten ticks were missed.
  Schedule s = Rate("tick", "f", NowEpochMs() - 600'000);
  ASSERT_TRUE(schedules_->Put(s).ok());
  ASSERT_TRUE(scheduler_->Start().ok());
  ASSERT_TRUE(h_.RunUntil([&] { return CallsOf("f").size() == 1; }));
  h_.Settle();
  EXPECT_EQ(CallsOf("f").size(), 1u) << "one catch-up, never a burst";
  EXPECT_EQ(scheduler_->stats().catch_ups, 1u);
  EXPECT_EQ(CallsOf("f")[0].request_id, TickId("tick", s.anchor_ms + 600'000));
}

}  // namespace
}  // namespace gust::schedule
