#include "sandbox/cgroups.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>

#include <gtest/gtest.h>

#include "sandbox/os_seam.h"

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

// cgroup v2 on a fake cgroupfs: this machine's cgroup2 mount has no memory
// controller (hybrid layout), so the kernel's side is simulated: mkdir makes
// the interface files a real cgroup2 dir has, rmdir removes them with it.
int FakeCgroupMkdir(const char* path, mode_t mode) {
  if (::mkdir(path, mode) != 0) return -1;
  for (const char* f : {"cgroup.procs", "cgroup.subtree_control", "memory.max", "memory.swap.max",
                        "memory.oom.group", "pids.max", "cpu.weight", "memory.events"}) {
    std::ofstream(std::string(path) + "/" + f) << "";
  }
  std::ofstream(std::string(path) + "/memory.peak") << "5242880\n";
  return 0;
}

int FakeCgroupRmdir(const char* path) {
  std::error_code ec;
  if (!fs::is_directory(path, ec)) {
    errno = ENOENT;
    return -1;
  }
  return fs::remove_all(path, ec) > 0 && !ec ? 0 : -1;
}

std::string Slurp(const std::string& path) { return ReadFile(path).value(); }

TEST(CgroupsTest, V2LimitsStatsAndRemovalOnAFakeHierarchy) {
  TempDir d;
  std::ofstream(d.path + "/cgroup.controllers") << "cpuset cpu io memory pids\n";
  std::ofstream(d.path + "/cgroup.subtree_control") << "";
  ScopedOsFault<int (*)(const char*, mode_t)> mk(&OsOps::mkdir, FakeCgroupMkdir);
  ScopedOsFault<int (*)(const char*)> rm(&OsOps::rmdir, FakeCgroupRmdir);
  auto c = Cgroups::Detect(d.path, "gust");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_TRUE(c->CreateParent().ok());
  EXPECT_EQ(Slurp(d.path + "/cgroup.subtree_control"), "+memory +pids +cpu");
  EXPECT_EQ(Slurp(d.path + "/gust/cgroup.subtree_control"), "+memory +pids +cpu");
  // The sandboxes together weigh as one process per CPU.
  long cpus = std::max(1L, ::sysconf(_SC_NPROCESSORS_ONLN));
  EXPECT_EQ(Slurp(d.path + "/gust/cpu.weight"), std::to_string(std::min(10000L, cpus * 100)));
  ASSERT_TRUE(c->Create("s1", {64, 10, 200}).ok());
  const std::string dir = d.path + "/gust/s1";
  EXPECT_EQ(Slurp(dir + "/memory.max"), "67108864");
  EXPECT_EQ(Slurp(dir + "/memory.swap.max"), "0");
  EXPECT_EQ(Slurp(dir + "/memory.oom.group"), "1");
  EXPECT_EQ(Slurp(dir + "/pids.max"), "10");
  EXPECT_EQ(Slurp(dir + "/cpu.weight"), "200");
  EXPECT_EQ(c->ListChildren(), std::vector<std::string>{"s1"});
  auto fds = c->OpenProcs("s1");
  ASSERT_TRUE(fds.ok()) << fds.status().ToString();
  EXPECT_EQ(fds->size(), 1u);
  EXPECT_EQ(c->PeakMemoryBytes("s1"), 5242880u);
  EXPECT_FALSE(c->Stats("s1").oom_killed);
  std::ofstream(dir + "/memory.events") << "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n";
  EXPECT_TRUE(c->Stats("s1").oom_killed);
  EXPECT_TRUE(c->Remove("s1").ok());
  EXPECT_FALSE(fs::exists(dir));
  EXPECT_TRUE(c->ListChildren().empty());
  // Beyond Lambda's 10240 MB and past 32 bits of bytes: set as asked, not clamped.
  ASSERT_TRUE(c->Create("s2", {20480, 10, 100}).ok());
  EXPECT_EQ(Slurp(d.path + "/gust/s2/memory.max"), "21474836480");
  EXPECT_TRUE(c->Remove("s2").ok());
}

TEST(CgroupsTest, MachineMemoryIsMemTotalOrTheOwnCgroupsLimitIfLower) {
  const std::string meminfo = "MemTotal:       24684544 kB\nMemFree: 1 kB\n";  // 24106 MB
  std::map<std::string, std::string> files;
  auto read = [&files](const std::string& path) -> Result<std::string> {
    auto it = files.find(path);
    if (it == files.end()) return Status::NotFound(path);
    return it->second;
  };
  // No limit anywhere (v1 root's "unlimited", v2 "max"): MemTotal.
  files["/cg/memory/memory.limit_in_bytes"] = "9223372036854771712\n";
  files["/cg/a/b/memory.max"] = "max\n";
  EXPECT_EQ(MachineMemoryMbFrom(meminfo, "4:memory:/\n0::/\n", "/cg", read), 24106);
  // v1: a limit on an ancestor of the process's cgroup counts.
  files["/cg/memory/ctr/memory.limit_in_bytes"] = "8589934592\n";
  EXPECT_EQ(MachineMemoryMbFrom(meminfo, "5:pids:/ctr/x\n4:memory:/ctr/x\n", "/cg", read), 8192);
  // v2: the process's own cgroup's memory.max.
  files["/cg/a/b/memory.max"] = "4294967296\n";
  EXPECT_EQ(MachineMemoryMbFrom(meminfo, "0::/a/b\n", "/cg", read), 4096);
  // Nothing readable but MemTotal; no MemTotal: 0 (the caller's fallback).
  EXPECT_EQ(MachineMemoryMbFrom(meminfo, "", "/cg", read), 24106);
  EXPECT_EQ(MachineMemoryMbFrom("garbage", "0::/a/b\n", "/cg", read), 0);
  // The real machine: something, at most MemTotal.
  EXPECT_GT(MachineMemoryMb(), 0);
}

TEST(CgroupsTest, NoneDoesNothingAndSucceeds) {
  Cgroups none = Cgroups::None();
  EXPECT_EQ(none.Summary(), "no cgroups");
  EXPECT_TRUE(none.CreateParent().ok());
  EXPECT_TRUE(none.Create("x", {64, 10, 100}).ok());
  EXPECT_TRUE(none.OpenProcs("x")->empty());
  EXPECT_EQ(none.Stats("x").peak_memory_bytes, 0u);
  EXPECT_TRUE(none.ListChildren().empty());
  EXPECT_TRUE(none.Remove("x").ok());
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
    long cpus = std::max(1L, ::sysconf(_SC_NPROCESSORS_ONLN));
    std::string parent = fs::path(c->Dirs("u1")[2]).parent_path().string();
    EXPECT_EQ(ReadFile(parent + "/cpu.shares").value(), std::to_string(cpus * 1024) + "\n");
  }
  EXPECT_EQ(c->ListChildren(), std::vector<std::string>{"u1"});
  auto fds = c->OpenProcs("u1");
  ASSERT_TRUE(fds.ok());
  EXPECT_EQ(fds->size(), c->v2() ? 1u : 3u);
  EXPECT_FALSE(c->Stats("u1").oom_killed);
  {
    // The peak read through a held fd follows the cgroup as a fresh open does:
    // a child joins, touches 16 MB, and both readings see it.
    UniqueFd peak(c->OpenPeakMemory("u1"));
    ASSERT_TRUE(peak.valid());
    uint64_t before = Cgroups::ReadPeakMemory(peak.get());
    int ready[2];
    ASSERT_EQ(::pipe(ready), 0);
    pid_t child = ::fork();
    if (child == 0) {
      for (UniqueFd& fd : *fds) {
        if (::write(fd.get(), "0", 1) != 1) _exit(1);
      }
      std::vector<char> block(16 << 20, 1);
      if (::write(ready[1], block.data(), 1) != 1) _exit(1);
      ::pause();
      _exit(0);
    }
    char b;
    ASSERT_EQ(::read(ready[0], &b, 1), 1);
    uint64_t after = Cgroups::ReadPeakMemory(peak.get());
    EXPECT_GE(after, before + (16u << 20));
    EXPECT_EQ(after, c->PeakMemoryBytes("u1"));
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
    ::close(ready[0]);
    ::close(ready[1]);
  }
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
