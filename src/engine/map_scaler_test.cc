#include "engine/map_scaler.h"

#include <gtest/gtest.h>
#include <unistd.h>

namespace gust::engine {
namespace {

ScaleInputs Measured(double task_ms, double cpu_share, size_t sessions, size_t pending) {
  ScaleInputs in;
  in.cores = 2;
  in.concurrency = 1000;
  in.sessions = sessions;
  in.running_sessions = sessions;
  in.pending_tasks = pending;
  in.task_ms = task_ms;
  in.cpu_share = cpu_share;
  in.cold_start_ms = 10;
  return in;
}

TEST(MapScaler, StartsAtTheCoreCountUntilSomethingIsMeasured) {
  ScaleInputs in;
  in.cores = 2;
  in.concurrency = 1000;
  in.pending_tasks = 1000;
  EXPECT_EQ(TargetSessions(in), 2u);
  in.concurrency = 1;
  EXPECT_EQ(TargetSessions(in), 1u);
  in.concurrency = 1000;
  in.pending_tasks = 0;
  in.sessions = 0;
  EXPECT_EQ(TargetSessions(in), 1u);  // never zero
  in.sessions = 2;
  in.running_sessions = 2;
  in.pending_tasks = 500;
  in.task_ms = 1000;  // a time but no CPU reading yet: no guess
  EXPECT_EQ(TargetSessions(in), 2u);
}

TEST(MapScaler, IoBoundMapsGoWide) {
  // 1,000 tasks sleeping 1 s, hardly any CPU: every task gets a sandbox.
  EXPECT_EQ(TargetSessions(Measured(1000, 0.001, 2, 998)), 1000u);
  // Bounded by the concurrency.
  ScaleInputs in = Measured(1000, 0.001, 2, 998);
  in.concurrency = 100;
  EXPECT_EQ(TargetSessions(in), 100u);
  // And by memory: no growth while the host is short.
  in.memory_short = true;
  EXPECT_EQ(TargetSessions(in), 2u);
}

TEST(MapScaler, CpuBoundMapsStayNearTheCores) {
  EXPECT_EQ(TargetSessions(Measured(5, 1.0, 2, 998)), 2u);
  EXPECT_EQ(TargetSessions(Measured(5, 0.9, 2, 998)), 2u);
  // Half the time waiting: twice the cores.
  EXPECT_EQ(TargetSessions(Measured(5, 0.5, 2, 998)), 4u);
  // Too wide for a CPU-bound map: shrink back.
  EXPECT_EQ(TargetSessions(Measured(5, 1.0, 94, 500)), 2u);
}

TEST(MapScaler, NoGrowthWhenTheQueueDrainsBeforeAColdStart) {
  // 10 tasks of 0.1 ms left on 2 sandboxes: 0.5 ms of work, a cold start is 10 ms.
  EXPECT_EQ(TargetSessions(Measured(0.1, 0.01, 2, 10)), 2u);
  // The same tasks, many of them: worth more sandboxes.
  EXPECT_GT(TargetSessions(Measured(0.1, 0.01, 2, 100000)), 2u);
}

TEST(MapScaler, AFewTasksQueuedBehindLongOnesGetSandboxes) {
  // 100 tasks of 1 s: 95 sandboxes started within 0.4 s, 5 tasks queued. Their
  // share of the running tasks' time (5 x 400 ms / 95 = 21 ms) is under a
  // cold start, but no sandbox frees up for another ~0.4 s.
  ScaleInputs in = Measured(400, 0.001, 95, 5);
  in.cold_start_ms = 54;
  EXPECT_EQ(TargetSessions(in), 95u);  // without knowing when one frees up
  in.first_free_ms = ExpectedFreeInMs(-1, 400, 1, 380);
  EXPECT_EQ(TargetSessions(in), 100u);
  // Nearly done (the tasks' time is known): the queue waits for them.
  in.first_free_ms = ExpectedFreeInMs(1000, 1000, 1, 990);
  EXPECT_EQ(TargetSessions(in), 95u);
}

TEST(MapScaler, ExpectedFreeIn) {
  EXPECT_DOUBLE_EQ(ExpectedFreeInMs(100, 100, 3, 50), 250);  // 3 tasks of 100 ms, 50 in
  EXPECT_DOUBLE_EQ(ExpectedFreeInMs(100, 100, 1, 150), 0);   // overdue: any moment
  // Nothing finished yet: twice the longest seen so far.
  EXPECT_DOUBLE_EQ(ExpectedFreeInMs(-1, 400, 1, 100), 700);
  EXPECT_DOUBLE_EQ(ExpectedFreeInMs(-1, 400, 0, 100), 700);  // an empty chunk counts as one
}

TEST(MapScaler, AMapRunAgainStartsWhereItsPreviousJobLeft) {
  // Nothing of this job measured, nothing running: the core count...
  ScaleInputs in;
  in.cores = 2;
  in.concurrency = 1000;
  in.pending_tasks = 1000;
  EXPECT_EQ(TargetSessions(in), 2u);
  // ...unless the function's last job measured sleeping tasks: wide at once.
  in.cpu_share = 0.002;
  in.task_ms = 1000;
  in.from_history = true;
  EXPECT_EQ(TargetSessions(in), 1000u);
  // A CPU-bound history keeps it at the cores.
  in.cpu_share = 1.0;
  in.task_ms = 5;
  EXPECT_EQ(TargetSessions(in), 2u);
}

TEST(MapScaler, NoMoreSandboxesThanTasks) {
  EXPECT_EQ(TargetSessions(Measured(1000, 0.001, 2, 8)), 10u);
}

TEST(MapScaler, AutoChunksCarryAFewMillisecondsOfWork) {
  EXPECT_EQ(AutoChunkTasks(-1, 10000, 2), 1);         // unknown: one, then measured
  EXPECT_EQ(AutoChunkTasks(5, 1000, 2), 4);           // 4 x 5 ms per round trip
  EXPECT_EQ(AutoChunkTasks(50, 1000, 2), 1);          // longer tasks: one each
  EXPECT_EQ(AutoChunkTasks(0.5, 10000, 2), 40);       // 40 x 0.5 ms
  EXPECT_EQ(AutoChunkTasks(0.001, 100000, 2), 1000);  // capped
  EXPECT_EQ(AutoChunkTasks(0.001, 100, 2), 25);       // leaves each sandbox >= 2 chunks
  EXPECT_EQ(AutoChunkTasks(0.001, 1, 2), 1);
}

// The measurements both a job's owner and a node's share keep (TaskMeasures).
TEST(MapScaler, TaskMeasuresKeepRecentTimesTheLargestShareAndSmoothedColdStarts) {
  TaskMeasures m;
  EXPECT_LT(m.MedianTaskMs(), 0);
  EXPECT_LT(m.cpu_share(), 0);
  EXPECT_EQ(m.cold_start_ms(), 10);
  for (int i = 0; i < 300; ++i) m.AddTaskTime(i < 290 ? 1000 : 1);  // ten fast ones last
  EXPECT_EQ(m.task_count(), 300u);
  EXPECT_EQ(m.MedianTaskMs(), 1000);    // the ring's 256 latest
  EXPECT_EQ(m.MedianTaskMs(8), 1);      // the 8 latest
  EXPECT_EQ(m.MedianTaskMs(21), 1000);  // 10 fast of 21
  m.AddCpuShare(0.2);
  m.AddCpuShare(0.9);
  m.AddCpuShare(0.1);
  EXPECT_EQ(m.cpu_share(), 0.9);  // the largest recent window
  for (int i = 0; i < 5; ++i) m.AddCpuShare(0.3);
  EXPECT_EQ(m.cpu_share(), 0.3);  // 0.9 left the 5 kept
  m.AddColdStart(110);
  EXPECT_EQ(m.cold_start_ms(), 60);
  m.AddColdStart(60);
  EXPECT_EQ(m.cold_start_ms(), 60);
}

// From the sessions a width counts to ScaleInputs: a task takes at least as
// long as the oldest running chunk's tasks have been at it; the first
// sandbox to free up is the one nearest the end of its chunk.
TEST(MapScaler, MeasureSessionsFillsTheInputsFromRunningChunks) {
  ScaleInputs in;
  in.pending_tasks = 10;
  MeasureSessions({{false, 0, 0}, {true, 4, 400}, {true, 1, 50}}, /*median_task_ms=*/-1, &in);
  EXPECT_EQ(in.sessions, 3u);
  EXPECT_EQ(in.running_sessions, 2u);
  EXPECT_EQ(in.task_ms, 100);  // 400 ms into a chunk of 4
  // No task finished: twice the lower bound. 4 x 200 - 400 and 1 x 200 - 50.
  EXPECT_EQ(in.first_free_ms, 150);
  MeasureSessions({{true, 4, 400}, {true, 1, 50}}, /*median_task_ms=*/300, &in);
  EXPECT_EQ(in.task_ms, 300);
  EXPECT_EQ(in.first_free_ms, 250);  // 1 x 300 - 50
  ScaleInputs idle;
  MeasureSessions({{true, 2, 10}}, 5, &idle);  // nothing pending: no wait to estimate
  EXPECT_EQ(idle.first_free_ms, 0);
  EXPECT_EQ(idle.task_ms, 5);
}

TEST(MapScaler, ReadsProcFiles) {
  // Some CPU, then a sleep: the kernel folds the run time in when we stop.
  volatile uint64_t sink = 0;
  for (uint64_t i = 0; i < 20'000'000; ++i) sink = sink + i;
  ::usleep(2000);
  auto cpu = ProcessCpuDemandNs(::getpid());
  ASSERT_TRUE(cpu.has_value());
  EXPECT_GT(*cpu, 0u);
  EXPECT_FALSE(ProcessCpuDemandNs(-1).has_value());
  auto mem = ReadHostMemory();
  ASSERT_TRUE(mem.has_value());
  EXPECT_GT(mem->total, 0u);
  EXPECT_LE(mem->available, mem->total);
  EXPECT_TRUE(MemoryShort({uint64_t{100} << 20, uint64_t{24} << 30}));
  EXPECT_FALSE(MemoryShort({uint64_t{20} << 30, uint64_t{24} << 30}));
  EXPECT_TRUE(MemoryShort({uint64_t{900} << 20, uint64_t{2} << 30}));  // 1 GiB floor
}

}  // namespace
}  // namespace gust::engine
