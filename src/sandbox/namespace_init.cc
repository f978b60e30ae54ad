#include "sandbox/namespace_init.h"

#include <poll.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include "sandbox/os_seam.h"

namespace gust::sandbox {
namespace {

// Exit code of an init that could not set itself up; nobody reads it (its
// death SIGKILLs the runtime, which the zygote reports), but it shows in traces.
constexpr int kInitSetupFailed = 126;

bool Forwarded(int sig) {
  for (int f : kForwardedSignals) {
    if (f == sig) return true;
  }
  return false;
}

bool DropPrivileges(const InitSpec& spec) {
  if (!spec.rootless) {
    // Leaving uid 0 clears the permitted and effective capabilities.
    if (Os().setgroups(0, nullptr) != 0) return false;
    if (Os().setresgid(spec.gid, spec.gid, spec.gid) != 0) return false;
    if (Os().setresuid(spec.uid, spec.uid, spec.uid) != 0) return false;
    // Credential changes clear the parent-death signal.
    if (Os().prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) return false;
  }
  // Rootless the uid stays (only 0 is mapped in the zygote's user namespace);
  // the capability sets are emptied in both modes (inheritable too).
  cap_t empty = cap_init();
  if (empty == nullptr) return false;
  bool ok = cap_set_proc(empty) == 0;
  cap_free(empty);
  if (!ok) return false;
  if (Os().prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return false;
  // Nothing in the sandbox may read its memory through /proc/1/mem.
  return Os().prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0;
}

}  // namespace

[[noreturn]] void RunNamespaceInit(const InitSpec& spec) {
  if (Os().prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) _exit(kInitSetupFailed);
  if (spec.zygote_pidfd >= 0) {
    pollfd p{spec.zygote_pidfd, POLLIN, 0};
    if (::poll(&p, 1, 0) != 0) _exit(kInitSetupFailed);  // the zygote is gone (or poll failed)
  }
  Os().prctl(PR_SET_NAME, reinterpret_cast<unsigned long>("gust-init"), 0, 0, 0);
  // Blocked first, so that no handler of the zygote's runs while they are reset.
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, nullptr);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) sigaction(sig, &dfl, nullptr);  // EINVAL for glibc's own
  }
  // Blocked signals are queued even for pid 1 (the kernel drops only those it
  // would ignore), so sigwaitinfo() sees them all.
  Os().close_range(0, ~0U, 0);
  if (!DropPrivileges(spec)) _exit(kInitSetupFailed);
  for (;;) {
    siginfo_t info;
    int sig = sigwaitinfo(&all, &info);
    if (sig == SIGCHLD) {
      // Standard signals coalesce: one SIGCHLD may stand for several exits.
      while (Os().waitpid(-1, nullptr, WNOHANG) > 0) {
      }
    } else if (sig > 0 && Forwarded(sig)) {
      Os().kill(kRuntimePid, sig);  // ESRCH before the runtime exists or after it exited
    }
  }
}

}  // namespace gust::sandbox
