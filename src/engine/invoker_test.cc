// The Invoker against the fake launcher (engine/testing/): admission, cold
// and warm dispatch, timeouts, crashes, throttles and the reaper, in fake time.
#include "engine/invoker.h"

#include <gtest/gtest.h>

#include <csignal>

#include "engine/testing/engine_harness.h"

namespace gust::engine {
namespace {

using namespace std::chrono_literals;
using testing::EngineHarness;
using testing::InvokeSeen;
using testing::Reply;
using testing::Request;
using testing::Script;

TEST(InvokerTest, ColdStartThenWarmReuse) {
  EngineHarness h;
  h.CreateFunction("f");
  InvokeResponse first = h.InvokeAndWait(Request("f", R"({"x": 1})"));
  ASSERT_TRUE(first.status.ok()) << first.status.ToString();
  EXPECT_EQ(first.payload, R"({"x": 1})");
  EXPECT_FALSE(first.function_error);
  EXPECT_TRUE(first.cold);
  InvokeResponse second = h.InvokeAndWait(Request("f", "2"));
  EXPECT_EQ(second.payload, "2");
  EXPECT_FALSE(second.cold);
  EXPECT_EQ(second.sandbox_id, first.sandbox_id);
  EXPECT_EQ(h.launcher.spawns(), 1);
  ASSERT_EQ(h.launcher.invocations().size(), 2u);
  EXPECT_EQ(h.launcher.invocations()[0].request_id, first.request_id);
  EXPECT_EQ(h.launcher.specs()[0].handler, "app.handler");
}

TEST(InvokerTest, SpawnDelayIsTheColdStartsInitDuration) {
  EngineHarness h;
  h.CreateFunction("f");
  Script slow;
  slow.spawn_delay = 250ms;
  h.launcher.SetScript("f", slow);
  auto slot = h.Invoke(Request("f"));
  h.Settle();
  EXPECT_FALSE(slot->has_value()) << "answered before the sandbox existed";
  h.Advance(250ms);
  ASSERT_TRUE(h.RunUntil([&] { return slot->has_value(); }));
  EXPECT_TRUE((*slot)->cold);
  EXPECT_NE(h.Log("f").find("Init Duration: 250.00 ms"), std::string::npos) << h.Log("f");
}

TEST(InvokerTest, TimeoutKillsTheSandboxAndAnswersLambdasError) {
  EngineHarness h;
  h.CreateFunction("f", [](FunctionConfig& c) { c.timeout_s = 3; });
  int calls = 0;
  h.launcher.SetHandler("f", [&](const InvokeSeen&) {
    return ++calls == 1 ? Reply::Hold() : Reply::Result("\"ok\"");
  });
  int64_t started = NowEpochMs();
  auto slot = h.Invoke(Request("f"));
  ASSERT_TRUE(h.RunUntil([&] { return h.launcher.Holding().size() == 1; }));
  EXPECT_EQ(h.launcher.invocations()[0].deadline_ms, started + 3000);
  h.Advance(2999ms);
  EXPECT_FALSE(slot->has_value()) << "timed out early";
  EXPECT_EQ(h.launcher.kills(), 0);
  h.Advance(1ms);
  ASSERT_TRUE(h.RunUntil([&] { return slot->has_value(); }));
  const InvokeResponse& r = **slot;
  ASSERT_TRUE(r.status.ok());
  EXPECT_TRUE(r.function_error);
  EXPECT_EQ(r.error_type, "Sandbox.Timedout");
  EXPECT_NE(r.payload.find("Task timed out after 3.00 seconds"), std::string::npos) << r.payload;
  EXPECT_EQ(h.launcher.kills(), 1);
  ASSERT_EQ(h.launcher.exits().size(), 1u);
  EXPECT_EQ(h.launcher.exits()[0].second.signal, SIGKILL);
  EXPECT_NE(h.Log("f").find("Status: timeout"), std::string::npos);

  InvokeResponse next = h.InvokeAndWait(Request("f"));
  EXPECT_EQ(next.payload, "\"ok\"");
  EXPECT_TRUE(next.cold);
  EXPECT_NE(next.sandbox_id, r.sandbox_id);
  EXPECT_EQ(h.launcher.spawns(), 2);
}

TEST(InvokerTest, CrashMidInvocationIsExitErrorAndTheNextCallStartsFresh) {
  EngineHarness h;
  h.CreateFunction("f");
  int calls = 0;
  h.launcher.SetHandler("f", [&](const InvokeSeen& seen) {
    if (++calls == 1) {
      Reply crash = Reply::Crash(SIGSEGV);
      crash.output = "about to crash\n";
      return crash;
    }
    return Reply::Result(seen.payload);
  });
  InvokeResponse crashed = h.InvokeAndWait(Request("f"));
  ASSERT_TRUE(crashed.status.ok());
  EXPECT_TRUE(crashed.function_error);
  EXPECT_EQ(crashed.error_type, "Runtime.ExitError");
  EXPECT_NE(crashed.payload.find("Runtime exited with error: signal: segmentation fault"),
            std::string::npos)
      << crashed.payload;
  EXPECT_EQ(h.launcher.kills(), 0) << "a crashed sandbox is not killed again";
  std::string log = h.Log("f");
  EXPECT_NE(log.find("about to crash"), std::string::npos) << log;

  InvokeResponse next = h.InvokeAndWait(Request("f", "7"));
  EXPECT_EQ(next.payload, "7");
  EXPECT_TRUE(next.cold);
  EXPECT_NE(next.sandbox_id, crashed.sandbox_id);
  EXPECT_EQ(h.launcher.spawns(), 2);
  EXPECT_EQ(h.invoker->stats().live_sandboxes, 1u);
}

TEST(InvokerTest, OomKillIsOutOfMemory) {
  EngineHarness h;
  h.CreateFunction("f");
  h.launcher.SetHandler("f", [](const InvokeSeen&) { return Reply::Crash(SIGKILL, true); });
  InvokeResponse r = h.InvokeAndWait(Request("f"));
  EXPECT_TRUE(r.function_error);
  EXPECT_EQ(r.error_type, "Runtime.OutOfMemory");
}

TEST(InvokerTest, HandlerErrorKeepsTheSandbox) {
  EngineHarness h;
  h.CreateFunction("f");
  h.launcher.SetHandler("f", [](const InvokeSeen&) { return Reply::Error("ValueError", "boom"); });
  InvokeResponse r = h.InvokeAndWait(Request("f"));
  EXPECT_TRUE(r.function_error);
  EXPECT_EQ(r.error_type, "ValueError");
  EXPECT_NE(h.Log("f").find("[ERROR] ValueError: boom"), std::string::npos);
  InvokeResponse again = h.InvokeAndWait(Request("f"));
  EXPECT_FALSE(again.cold);
  EXPECT_EQ(h.launcher.spawns(), 1);
}

TEST(InvokerTest, ReservedConcurrencyThrottles) {
  EngineHarness h;
  h.CreateFunction("f");
  h.SetReservedConcurrency("f", 1);
  h.launcher.SetHandler("f", [](const InvokeSeen&) { return Reply::Hold(); });
  auto first = h.Invoke(Request("f"));
  ASSERT_TRUE(h.RunUntil([&] { return h.launcher.Holding().size() == 1; }));
  InvokeResponse second = h.InvokeAndWait(Request("f"));
  EXPECT_EQ(second.status.code(), Code::kTooManyRequests);
  EXPECT_EQ(second.throttle_reason, "ReservedFunctionConcurrentInvocationLimitExceeded");
  EXPECT_EQ(h.invoker->stats().throttles, 1u);
  ASSERT_TRUE(h.launcher.Answer(h.launcher.Holding()[0], Reply::Result("1")));
  ASSERT_TRUE(h.RunUntil([&] { return first->has_value(); }));
  EXPECT_EQ((*first)->payload, "1");
}

TEST(InvokerTest, EngineWideSandboxCapThrottlesThenEvictsIdle) {
  EngineConfig config;
  config.max_sandboxes = 1;
  EngineHarness h(config);
  h.CreateFunction("f");
  h.CreateFunction("g");
  h.launcher.SetHandler("f", [](const InvokeSeen&) { return Reply::Hold(); });
  auto busy = h.Invoke(Request("f"));
  ASSERT_TRUE(h.RunUntil([&] { return h.launcher.Holding().size() == 1; }));
  InvokeResponse refused = h.InvokeAndWait(Request("g"));
  EXPECT_EQ(refused.status.code(), Code::kTooManyRequests);
  EXPECT_EQ(refused.throttle_reason, "ConcurrentInvocationLimitExceeded");
  EXPECT_EQ(h.launcher.spawns(), 1);

  // Once f's sandbox is idle it yields its place to g.
  ASSERT_TRUE(h.launcher.Answer(h.launcher.Holding()[0], Reply::Result("1")));
  ASSERT_TRUE(h.RunUntil([&] { return busy->has_value(); }));
  InvokeResponse g = h.InvokeAndWait(Request("g", "\"g\""));
  ASSERT_TRUE(g.status.ok()) << g.status.ToString();
  EXPECT_EQ(g.payload, "\"g\"");
  EXPECT_EQ(h.launcher.kills(), 1);
  EXPECT_EQ(h.launcher.spawns(), 2);
}

TEST(InvokerTest, QueuedInvocationTakesTheFreedSlotOrTimesOutWith429) {
  EngineHarness h;
  h.CreateFunction("f");
  h.SetReservedConcurrency("f", 1);
  h.launcher.SetHandler("f", [](const InvokeSeen& seen) {
    return seen.payload == "\"hold\"" ? Reply::Hold() : Reply::Result(seen.payload);
  });
  auto first = h.Invoke(Request("f", "\"hold\""));
  ASSERT_TRUE(h.RunUntil([&] { return h.launcher.Holding().size() == 1; }));
  InvokeRequest waiting = Request("f", "\"queued\"");
  waiting.max_queue_ms = 500;
  auto queued = h.Invoke(waiting);
  h.Advance(400ms);
  EXPECT_FALSE(queued->has_value());
  ASSERT_TRUE(h.launcher.Answer(h.launcher.Holding()[0], Reply::Result("1")));
  ASSERT_TRUE(h.RunUntil([&] { return queued->has_value(); }));
  EXPECT_EQ((*queued)->payload, "\"queued\"");
  EXPECT_EQ((*queued)->sandbox_id, (*first)->sandbox_id) << "ran on the sandbox just freed";

  // Waiting past max_queue_ms: 429 when the reaper (every second) notices.
  auto holder = h.Invoke(Request("f", "\"hold\""));
  ASSERT_TRUE(h.RunUntil([&] { return h.launcher.Holding().size() == 1; }));
  auto expires = h.Invoke(waiting);
  h.Advance(499ms);
  EXPECT_FALSE(expires->has_value());
  h.Advance(1000ms);
  ASSERT_TRUE(h.RunUntil([&] { return expires->has_value(); }));
  EXPECT_EQ((*expires)->status.code(), Code::kTooManyRequests);
  EXPECT_FALSE(holder->has_value());
  // Finished, not abandoned: a held invocation pins its session until it ends.
  ASSERT_TRUE(h.launcher.Answer(h.launcher.Holding()[0], Reply::Result("2")));
  ASSERT_TRUE(h.RunUntil([&] { return holder->has_value(); }));
}

TEST(InvokerTest, ReaperStopsSandboxesIdlePastKeepAlive) {
  EngineConfig config;
  config.keep_alive_s = 60;
  EngineHarness h(config);
  h.CreateFunction("f");
  h.CreateFunction("short", [](FunctionConfig& c) { c.keep_alive_s = 5; });
  ASSERT_TRUE(h.InvokeAndWait(Request("f")).status.ok());
  ASSERT_TRUE(h.InvokeAndWait(Request("short")).status.ok());
  EXPECT_EQ(h.invoker->stats().idle_sandboxes, 2u);
  h.Advance(5000ms);
  ASSERT_TRUE(h.RunUntil([&] { return h.invoker->stats().live_sandboxes == 1; }));
  EXPECT_EQ(h.launcher.kills(), 1);
  h.Advance(54000ms);
  EXPECT_EQ(h.invoker->stats().idle_sandboxes, 1u) << "f is within its keep-alive";
  h.Advance(2000ms);
  ASSERT_TRUE(h.RunUntil([&] { return h.invoker->stats().live_sandboxes == 0; }));
  EXPECT_EQ(h.launcher.kills(), 2);
  EXPECT_EQ(h.launcher.LiveCount(), 0);
  InvokeResponse again = h.InvokeAndWait(Request("f"));
  EXPECT_TRUE(again.cold);
}

TEST(InvokerTest, SpawnFailureIsUnavailable) {
  EngineHarness h;
  h.CreateFunction("f");
  Script broken;
  broken.spawn_error = Status::Internal("zygote gone");
  h.launcher.SetScript("f", broken);
  InvokeResponse r = h.InvokeAndWait(Request("f"));
  EXPECT_EQ(r.status.code(), Code::kUnavailable);
  EXPECT_NE(r.status.message().find("could not start a sandbox: zygote gone"), std::string::npos);
  EXPECT_EQ(h.invoker->stats().spawning, 0u);
  h.launcher.SetScript("f", Script{});
  EXPECT_TRUE(h.InvokeAndWait(Request("f")).status.ok()) << "the concurrency slot was released";
}

TEST(InvokerTest, InitErrorAndInitTimeout) {
  EngineHarness h;
  h.CreateFunction("bad");
  h.CreateFunction("slow");
  Script bad;
  bad.init = Script::Init::kInitError;
  bad.init_error = R"({"errorType": "Runtime.ImportModuleError", "errorMessage": "no app"})";
  h.launcher.SetScript("bad", bad);
  InvokeResponse r = h.InvokeAndWait(Request("bad"));
  EXPECT_TRUE(r.function_error);
  EXPECT_EQ(r.error_type, "Runtime.ImportModuleError");
  ASSERT_TRUE(h.RunUntil([&] { return h.launcher.LiveCount() == 0; }))
      << "the failed sandbox is killed";

  Script hang;
  hang.init = Script::Init::kHang;
  h.launcher.SetScript("slow", hang);
  auto slot = h.Invoke(Request("slow"));
  // The init timeout runs from the spawn's completion.
  ASSERT_TRUE(h.RunUntil([&] { return h.invoker->stats().live_sandboxes == 1; }));
  h.Advance(9999ms);
  EXPECT_FALSE(slot->has_value());
  h.Advance(1ms);
  ASSERT_TRUE(h.RunUntil([&] { return slot->has_value(); }));
  EXPECT_EQ((*slot)->error_type, "Sandbox.Timedout");
  EXPECT_NE((*slot)->payload.find("Init timed out after 10.00 seconds"), std::string::npos);
}

TEST(InvokerTest, CrashBeforeReadyIsExitError) {
  EngineHarness h;
  h.CreateFunction("f");
  Script crash;
  crash.init = Script::Init::kCrash;
  h.launcher.SetScript("f", crash);
  InvokeResponse r = h.InvokeAndWait(Request("f"));
  EXPECT_TRUE(r.function_error);
  EXPECT_EQ(r.error_type, "Runtime.ExitError");
  EXPECT_TRUE(h.launcher.invocations().empty());
}

}  // namespace
}  // namespace gust::engine
