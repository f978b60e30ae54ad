#include "sandbox/seccomp_filter.h"

#include <gtest/gtest.h>

namespace gust::sandbox {
namespace {

TEST(SeccompFilterTest, CompilesToBpf) {
  auto prog = BuildSandboxFilter();
  ASSERT_TRUE(prog.ok()) << prog.status().ToString();
  // Arch check + one comparison per denied syscall at least.
  EXPECT_GT(prog->size(), DeniedSyscalls().size());
}

TEST(SeccompFilterTest, DeniesTheEssentials) {
  const auto& d = DeniedSyscalls();
  for (const char* must :
       {"mount", "ptrace", "unshare", "setns", "bpf", "kexec_load", "fsopen", "io_uring_setup"}) {
    EXPECT_NE(
        std::find_if(d.begin(), d.end(), [&](const char* s) { return std::string(s) == must; }),
        d.end())
        << must;
  }
}

}  // namespace
}  // namespace gust::sandbox
