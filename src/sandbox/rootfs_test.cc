#include "sandbox/rootfs.h"

#include <gtest/gtest.h>

#include "sandbox/os_seam.h"

namespace gust::sandbox {
namespace {

TEST(RootfsTest, BundlePathsStayUnderTheRoot) {
  EXPECT_TRUE(ValidateBundleRelPath("fn/v1").ok());
  EXPECT_TRUE(ValidateBundleRelPath("abc").ok());
  for (const char* bad : {"", "/etc", "..", "a/../../etc", "a//b", "./a", "a/", "a/."}) {
    EXPECT_FALSE(ValidateBundleRelPath(bad).ok()) << bad;
  }
}

TEST(RootfsTest, ChildMountFailureNamesTheStep) {
  ScopedOsFault<int (*)(const char*, const char*, const char*, unsigned long, const void*)> fault(
      &OsOps::mount, [](const char*, const char*, const char*, unsigned long, const void*) {
        errno = EACCES;
        return -1;
      });
  Status s = SetUpChildMounts("fn/v1", 16);
  EXPECT_EQ(s.code(), Code::kIoError);
  EXPECT_NE(s.message().find("/var/task"), std::string::npos) << s.message();
}

TEST(RootfsTest, ZygoteRootStopsAtTheFirstFailure) {
  ScopedOsFault<int (*)(int)> fault(&OsOps::unshare, [](int) {
    errno = EPERM;
    return -1;
  });
  Status s = BuildZygoteRoot({"/nonexistent/root", "/nonexistent", "/nonexistent"});
  EXPECT_NE(s.message().find("unshare(CLONE_NEWNS)"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace gust::sandbox
