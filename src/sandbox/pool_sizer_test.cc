#include "sandbox/pool_sizer.h"

#include <gtest/gtest.h>

namespace gust::sandbox {
namespace {

constexpr uint64_t kMs = 1000000;

TEST(PoolSizer, StaysAtPreforkUntilABurstEmptiesThePool) {
  PoolSizer p(2, 64);
  EXPECT_EQ(p.Target(), 2u);
  EXPECT_EQ(p.ForgetAt(0), UINT64_MAX);
  EXPECT_FALSE(p.Forget(PoolSizer::kPoolMemoryNs * 2, 0));
}

TEST(PoolSizer, GrowsByTheBurstsMissesUpToTheMax) {
  PoolSizer p(2, 64);
  for (int i = 0; i < 30; ++i) p.OnMiss(1000 * kMs + i * 10 * kMs);
  EXPECT_EQ(p.Target(), 32u);
  // A later, smaller burst does not shrink it; a bigger one is capped.
  for (int i = 0; i < 5; ++i) p.OnMiss(5000 * kMs + i * kMs);
  EXPECT_EQ(p.Target(), 32u);
  for (int i = 0; i < 500; ++i) p.OnMiss(9000 * kMs + i * kMs);
  EXPECT_EQ(p.Target(), 64u);
}

TEST(PoolSizer, MissesFarApartAreSeparateBursts) {
  PoolSizer p(2, 64);
  for (int i = 0; i < 10; ++i) p.OnMiss(i * 2000 * kMs);  // one every 2 s
  EXPECT_EQ(p.Target(), 3u);
}

TEST(PoolSizer, ForgetsAfterTenMinutesWithoutRequests) {
  PoolSizer p(2, 64);
  for (int i = 0; i < 20; ++i) p.OnMiss(1000 * kMs + i * kMs);
  uint64_t last_request = 1020 * kMs;
  EXPECT_EQ(p.ForgetAt(last_request), last_request + PoolSizer::kPoolMemoryNs);
  EXPECT_FALSE(p.Forget(last_request + PoolSizer::kPoolMemoryNs - 1, last_request));
  EXPECT_EQ(p.Target(), 22u);
  EXPECT_TRUE(p.Forget(last_request + PoolSizer::kPoolMemoryNs, last_request));
  EXPECT_EQ(p.Target(), 2u);
  EXPECT_EQ(p.ForgetAt(last_request), UINT64_MAX);
}

TEST(PoolSizer, MaxBelowPreforkMeansNoGrowth) {
  PoolSizer p(4, 2);
  p.OnMiss(1);
  EXPECT_EQ(p.Target(), 4u);
  PoolSizer off(0, 0);
  off.OnMiss(1);
  EXPECT_EQ(off.Target(), 0u);
}

}  // namespace
}  // namespace gust::sandbox
