#include "sandbox/cgroups.h"

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

namespace gust::sandbox {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    char t[] = "/tmp/gust-cg-test-XXXXXX";
    path = ::mkdtemp(t);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string path;
};

TEST(CgroupsTest, DetectNamesTheMissingController) {
  TempDir d;
  fs::create_directories(d.path + "/memory");
  std::ofstream(d.path + "/memory/cgroup.procs") << "";
  auto c = Cgroups::Detect(d.path, "gust");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("cgroup pids controller not found at " + d.path + "/pids"),
            std::string::npos)
      << c.status().message();
}

TEST(CgroupsTest, DetectsV2) {
  TempDir d;
  std::ofstream(d.path + "/cgroup.controllers") << "cpuset cpu io memory pids\n";
  auto c = Cgroups::Detect(d.path, "gust");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(c->v2());
  EXPECT_EQ(c->Dirs("s1"), std::vector<std::string>{d.path + "/gust/s1"});
  std::ofstream(d.path + "/cgroup.controllers") << "cpu io memory\n";
  EXPECT_FALSE(Cgroups::Detect(d.path, "gust").ok());
}

// Against the real hierarchy (root only).
TEST(CgroupsTest, CreateLimitStatsRemove) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  auto c = Cgroups::Detect("/sys/fs/cgroup", "gust-unit-" + std::to_string(::getpid()));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_TRUE(c->CreateParent().ok());
  ASSERT_TRUE(c->Create("u1", {64, 10, 200}).ok());
  const std::string mem = c->Dirs("u1")[0];
  if (c->v2()) {
    EXPECT_EQ(ReadFile(mem + "/memory.max").value(), "67108864\n");
  } else {
    EXPECT_EQ(ReadFile(mem + "/memory.limit_in_bytes").value(), "67108864\n");
    EXPECT_EQ(ReadFile(c->Dirs("u1")[1] + "/pids.max").value(), "10\n");
    EXPECT_EQ(ReadFile(c->Dirs("u1")[2] + "/cpu.shares").value(), "2048\n");
  }
  EXPECT_EQ(c->ListChildren(), std::vector<std::string>{"u1"});
  auto fds = c->OpenProcs("u1");
  ASSERT_TRUE(fds.ok());
  EXPECT_EQ(fds->size(), c->v2() ? 1u : 3u);
  EXPECT_FALSE(c->Stats("u1").oom_killed);
  EXPECT_EQ(c->Create("u1", {64, 10, 200}).code(), Code::kIoError);  // exists
  EXPECT_TRUE(c->Remove("u1").ok());
  EXPECT_TRUE(c->Remove("u1").ok());  // already gone is fine
  c->RemoveParent();
}

TEST(CgroupsTest, FailedLimitRemovesWhatWasMade) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  auto c = Cgroups::Detect("/sys/fs/cgroup", "gust-unit-" + std::to_string(::getpid()));
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(c->CreateParent().ok());
  ScopedOsFault<ssize_t (*)(int, const void*, size_t)> fault(
      &OsOps::write, [](int, const void*, size_t) -> ssize_t {
        errno = EINVAL;
        return -1;
      });
  Status s = c->Create("u2", {64, 10, 100});
  EXPECT_EQ(s.code(), Code::kIoError);
  EXPECT_TRUE(c->ListChildren().empty());
  c->RemoveParent();
}

}  // namespace
}  // namespace gust::sandbox
