// The sandbox's seccomp filter: default allow; EPERM for the calls that could
// break out of or reconfigure the isolation (mount and the new mount API,
// pivot_root/chroot, ptrace and process_vm_*, kexec, bpf, keyrings, module
// loading, unshare/setns and clone with any CLONE_NEW* flag, reboot, swap,
// syslog, acct, clock setting, perf_event_open, userfaultfd, handle-based
// opens, quotactl, iopl/ioperm); clone3 -> ENOSYS so glibc falls back to clone,
// whose flags the filter can inspect. Foreign architectures (i386/x32 entry
// points on x86_64) are killed by libseccomp's arch check.
//
// The filter is compiled once (in the zygote, with libseccomp) into classic
// BPF; each sandbox child then installs the ready program with one seccomp(2)
// call, which allocates nothing and costs microseconds.
//
// Failures: BuildSandboxFilter returns an error Status (libseccomp's errno);
// InstallSandboxFilter returns the errno (0 on success) and never allocates, so
// it is safe between clone() and exec/_exit. No crash paths.
//
// Thread-safety: reentrant.
#pragma once

#include <linux/filter.h>

#include <vector>

#include "common/status.h"

namespace gust::sandbox {

Result<std::vector<sock_filter>> BuildSandboxFilter();

// Requires PR_SET_NO_NEW_PRIVS (or CAP_SYS_ADMIN). Returns 0 or an errno.
int InstallSandboxFilter(const std::vector<sock_filter>& program);

// Names of the syscalls answered with EPERM (for docs/tests).
const std::vector<const char*>& DeniedSyscalls();

}  // namespace gust::sandbox
