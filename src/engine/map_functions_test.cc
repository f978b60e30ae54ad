// MapFunctions (map_functions.h) on the engine harness's real stores: one
// function per map configuration, and the sweep that collects the unused ones
// with their code.
#include "engine/map_functions.h"

#include <gtest/gtest.h>

#include <boost/asio/thread_pool.hpp>

#include <filesystem>
#include <fstream>

#include "common/clock.h"
#include "engine/testing/engine_harness.h"

namespace gust::engine {
namespace {

using testing::EngineHarness;

TEST(MapFunctionsTest, OneFunctionPerConfigurationCollectedWithItsCodeOnceUnused) {
  EngineHarness h;
  boost::asio::thread_pool workers(1);
  MapJobs jobs(h.io, *h.invoker);
  MapFunctions functions(h.io, workers, *h.store, *h.blobs, *h.bundles, *h.invoker, jobs,
                         /*ttl_s=*/60);
  std::string dir = h.state_dir() + "/code";
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/tasks.py") << "def f(x):\n    return x\n";
  auto zip = ZipDirectory(dir);
  ASSERT_TRUE(zip.ok()) << zip.status().ToString();
  auto code = h.blobs->Put(*zip);
  ASSERT_TRUE(code.ok()) << code.status().ToString();

  auto name = functions.Ensure({*code, 256, 300, false}, 8);
  ASSERT_TRUE(name.ok()) << name.status().ToString();
  EXPECT_TRUE(name->starts_with(kMapFunctionPrefix));
  auto again = functions.Ensure({*code, 256, 300, false}, 4);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *name) << "the same configuration maps to the same function";
  auto other = functions.Ensure({*code, 512, 300, false}, 1);
  ASSERT_TRUE(other.ok());
  EXPECT_NE(*other, *name) << "another memory size is another function";
  auto settings = h.store->GetSettings(*name);
  ASSERT_TRUE(settings.ok());
  EXPECT_EQ(settings->reserved_concurrency.value_or(0), 8) << "the widest job's concurrency";

  int64_t now = NowEpochMs();
  EXPECT_TRUE(functions.Collect({}, now + 59'000).empty()) << "used within the ttl";
  EXPECT_EQ(functions.Collect({*name}, now + 61'000), std::vector<std::string>{*other})
      << "a running job's function stays";
  EXPECT_TRUE(h.blobs->Contains(*code)) << "code a remaining function uses stays";
  EXPECT_EQ(functions.Collect({}, now + 61'000), std::vector<std::string>{*name});
  EXPECT_FALSE(h.store->GetFunction(*name, kLatest).ok());
  EXPECT_FALSE(h.blobs->Contains(*code));
  EXPECT_FALSE(h.bundles->Contains(*code));
  workers.join();
}

}  // namespace
}  // namespace gust::engine
