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

TEST(PoolSizer, RefillWaitsLongerWhileABurstIsShortOfChildren) {
  PoolSizer p(2, 64);
  EXPECT_EQ(p.RefillAt(100 * kMs), 100 * kMs + PoolSizer::kRefillQuietNs);
  p.OnMiss(100 * kMs);
  EXPECT_EQ(p.RefillAt(100 * kMs), 100 * kMs + PoolSizer::kBurstRefillQuietNs);
  EXPECT_GT(PoolSizer::kBurstRefillQuietNs, PoolSizer::kRefillQuietNs);
  p.OnHit();  // the refilled pool serves requests again
  EXPECT_EQ(p.RefillAt(900 * kMs), 900 * kMs + PoolSizer::kRefillQuietNs);
}

TEST(PoolSizer, MaxForMemoryKeepsAFullPoolWithinAnEighthOfFreeMemory) {
  constexpr uint64_t kGiB = uint64_t{1} << 30;
  // 24 GiB free: 3 GiB / 3 MiB = 1024 children, so the asked 1000 stand.
  EXPECT_EQ(PoolSizer::MaxForMemory(2, 1000, 24 * kGiB), 1000);
  // 2 GiB free: 256 MiB / 3 MiB = 85.
  EXPECT_EQ(PoolSizer::MaxForMemory(2, 1000, 2 * kGiB), 85);
  EXPECT_LE(85 * PoolSizer::kChildBytes, 2 * kGiB / 8);
  // Never below the pool at rest, whatever the memory.
  EXPECT_EQ(PoolSizer::MaxForMemory(8, 1000, 0), 8);
  EXPECT_EQ(PoolSizer::MaxForMemory(2, 0, 24 * kGiB), 2);
}

}  // namespace
}  // namespace gust::sandbox
