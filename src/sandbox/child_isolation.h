// The isolation a freshly forked sandbox child applies to itself, in order,
// before any user code runs (see sandbox.h for the resulting environment):
//   cgroup    write "0" to each cgroup.procs fd (joins the sandbox cgroups
//             first, so everything after is charged to the sandbox)
//   unshare   mount, ipc, uts and (unless network) net namespaces; the pid
//             namespace was set up by the zygote before fork()
//   mounts    bundle at /var/task (ro), /.bundles detached, /tmp, /dev/shm, /proc
//             (a pre-forked child mounts the last three before its assignment)
//   hostname  "sandbox"
//   loopback  lo up (new net namespace only)
//   userns    rootless only: a nested user namespace mapping uid/gid to the
//             zygote namespace's 0 (setgroups denied)
//   rlimits   RLIMIT_NOFILE 1024, RLIMIT_CORE 0; rootless also RLIMIT_NPROC =
//             pids_max and RLIMIT_DATA = the inherited data size + memory_mb
//   creds     bounding set dropped, setgroups(0) (not rootless), setresgid, setresuid,
//             PR_SET_PDEATHSIG again, no_new_privs, all capability sets empty
//             (a pre-forked child empties the bounding set before assignment)
//   seccomp   the precompiled filter (seccomp_filter.h)
//   fds       control socket -> 3, log pipe -> 1 and 2, /dev/null -> 0,
//             everything from 4 up closed, cwd /var/task, signal mask cleared
//
// Failures: IsolateChild stops at the first failing step and returns a Status
// naming it; the caller writes it to the log pipe and _exit(127)s. It never
// crashes and never returns OK with a step skipped.
//
// Thread-safety: changes the calling process; call only in the forked child.
#pragma once

#include <linux/filter.h>
#include <stdint.h>

#include <string>
#include <vector>

#include "common/status.h"

namespace gust::sandbox {

struct ChildSpec {
  std::string bundle_rel;  // relative to the bundle root
  int tmp_mb = 512;
  bool network = false;
  uint32_t uid = 993;
  uint32_t gid = 993;
  int control_fd = -1;
  int log_fd = -1;
  std::vector<int> cgroup_procs_fds;
  const std::vector<sock_filter>* seccomp = nullptr;
  // Test hook: the named step fails with EIO (see zygote_server.h).
  std::string fail_step;
  // A pre-forked child already did PrepareNamespaces(): skip those steps.
  bool namespaces_ready = false;
  // Rootless mode (sandbox.h): no cgroups, so these limits become rlimits.
  bool rootless = false;
  int memory_mb = 128;
  int pids_max = 1024;
  // > 0: a pre-forked child already mounted /tmp (of this size), /dev/shm, /proc.
  int premounted_tmp_mb = 0;
  // A pre-forked child already ran DropBoundingSet() (never when rootless:
  // the sandbox's own user namespace starts with a full bounding set).
  bool bounding_set_dropped = false;
};

// Monotonic timestamps (ns) taken after each step, for the cost breakdown.
struct StepTimes {
  static constexpr int kMax = 16;
  const char* names[kMax];
  uint64_t ns[kMax];
  int count = 0;
  void Mark(const char* name);
  // "fork=120 cgroup=900 ..." in microseconds since start_ns.
  std::string Format(uint64_t start_ns) const;
};

uint64_t MonotonicNs();

Status IsolateChild(const ChildSpec& spec, StepTimes* times);

// The request-independent part of isolation for a network=false sandbox:
// new mount, ipc, uts and net namespaces, hostname, loopback up. A pre-forked
// child runs it before it is assigned.
Status PrepareNamespaces();
// Empties the capability bounding set (41 prctl calls). It only limits what an
// execve could gain: the effective capabilities stay until "creds", so a
// pre-forked child runs it before its assignment.
Status DropBoundingSet();

}  // namespace gust::sandbox
