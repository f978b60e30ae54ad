// MapFunctions (map_functions.h) on the engine harness's real stores: one
// function per map configuration, and the sweep that collects the unused ones
// with their code.
#include "engine/map_functions.h"

#include <gtest/gtest.h>

#include <boost/asio/thread_pool.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "common/clock.h"
#include "engine/testing/engine_harness.h"

namespace gust::engine {
namespace {

using testing::EngineHarness;

// MapFunctions on the harness's stores, and one uploaded code blob.
class MapFunctionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string dir = h.state_dir() + "/code";
    std::filesystem::create_directories(dir);
    std::ofstream(dir + "/tasks.py") << "def f(x):\n    return x\n";
    auto zip = ZipDirectory(dir);
    ASSERT_TRUE(zip.ok()) << zip.status().ToString();
    code = h.blobs->Put(*zip);
    ASSERT_TRUE(code.ok()) << code.status().ToString();
  }
  void TearDown() override { workers.join(); }

  EngineHarness h;
  boost::asio::thread_pool workers{1};
  MapJobs jobs{h.io, *h.invoker};
  MapFunctions functions{h.io,       workers,    *h.store, *h.blobs,
                         *h.bundles, *h.invoker, jobs,     /*ttl_s=*/60};
  Result<std::string> code = Status::Internal("not uploaded");
};

TEST_F(MapFunctionsTest, OneFunctionPerConfigurationCollectedWithItsCodeOnceUnused) {
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
}

TEST_F(MapFunctionsTest, EachPythonEnvironmentIsItsOwnFunction) {
  auto engines = functions.Ensure({*code, 256, 300, false, ""}, 1);
  auto venvs = functions.Ensure({*code, 256, 300, false, "/home/u/venv/bin/python"}, 1);
  ASSERT_TRUE(engines.ok() && venvs.ok());
  EXPECT_NE(*engines, *venvs) << "another environment is another function (own warm sandboxes)";
  EXPECT_EQ(h.store->GetFunction(*engines, kLatest)->python, "");
  EXPECT_EQ(h.store->GetFunction(*venvs, kLatest)->python, "/home/u/venv/bin/python");
}

TEST(MapPythonTest, EmptyForTheEnginesOwnInterpreterOnly) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("gust-mappython-" + std::to_string(::getpid()));
  fs::create_directories(dir / "venv/bin");
  std::ofstream(dir / "python3.11") << "";
  fs::create_symlink(dir / "python3.11", dir / "python3");
  fs::create_symlink(dir / "python3.11", dir / "venv/bin/python");
  std::string engine = (dir / "python3").string();
  // The engine's own path, or another name of the same file outside a venv.
  EXPECT_EQ(MapPython(engine, "/usr", "/usr", engine), "");
  EXPECT_EQ(MapPython((dir / "python3.11").string(), "/usr", "/usr", engine), "");
  // A venv over it links to the same file but has its own site-packages.
  std::string venv = (dir / "venv/bin/python").string();
  EXPECT_EQ(MapPython(venv, (dir / "venv").string(), "/usr", engine), venv);
  // Another interpreter (pyenv, conda), or one the engine cannot see: as sent.
  EXPECT_EQ(MapPython("/opt/py39/bin/python3", "/opt/py39", "/opt/py39", engine),
            "/opt/py39/bin/python3");
  fs::remove_all(dir);
}

}  // namespace
}  // namespace gust::engine
