#include "sandbox/child_isolation.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <sys/capability.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "sandbox/cgroups.h"
#include "sandbox/os_seam.h"
#include "sandbox/rootfs.h"
#include "sandbox/seccomp_filter.h"

namespace gust::sandbox {
namespace {

Status Errno(const char* step, int err) { return Status::FromErrno(step, err); }

constexpr char kHostname[] = "sandbox";

Status JoinCgroups(const ChildSpec& spec) {
  for (int fd : spec.cgroup_procs_fds) {
    // "0" means the writer itself, which avoids translating our pid (we are
    // pid 2 in a namespace the cgroup file does not know about).
    if (Os().write(fd, "0", 1) != 1) return Errno("join cgroup", errno);
  }
  return Status::Ok();
}

Status LoopbackUp() {
  int fd = Os().socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno("socket for lo", errno);
  ifreq req{};
  std::strncpy(req.ifr_name, "lo", IFNAMSIZ - 1);
  Status s;
  if (Os().ioctl(fd, SIOCGIFFLAGS, &req) != 0) {
    s = Errno("SIOCGIFFLAGS lo", errno);
  } else {
    req.ifr_flags = static_cast<short>(req.ifr_flags | IFF_UP | IFF_RUNNING);
    if (Os().ioctl(fd, SIOCSIFFLAGS, &req) != 0) s = Errno("SIOCSIFFLAGS lo", errno);
  }
  Os().close(fd);
  return s;
}

// VmData of this process in bytes (what a forked zygote child already holds).
Result<uint64_t> DataBytes() {
  auto text = ReadFile("/proc/self/status");
  if (!text.ok()) return text.status();
  size_t pos = text->find("\nVmData:");
  if (pos == std::string::npos) return Status::Internal("no VmData in /proc/self/status");
  return std::strtoull(text->c_str() + pos + 8, nullptr, 10) * 1024;
}

Status SetRlimits(const ChildSpec& spec) {
  rlimit nofile{1024, 1024};
  if (Os().setrlimit(RLIMIT_NOFILE, &nofile) != 0) return Errno("setrlimit NOFILE", errno);
  rlimit core{0, 0};
  if (Os().setrlimit(RLIMIT_CORE, &core) != 0) return Errno("setrlimit CORE", errno);
  if (!spec.rootless) return Status::Ok();
  // Counted per (user namespace, uid): this sandbox's processes only.
  rlimit nproc{static_cast<rlim_t>(spec.pids_max), static_cast<rlim_t>(spec.pids_max)};
  if (Os().setrlimit(RLIMIT_NPROC, &nproc) != 0) return Errno("setrlimit NPROC", errno);
  // The pages inherited from the zygote count towards VmData but are shared,
  // so the function's memory is granted on top of them.
  GUST_ASSIGN_OR_RETURN(uint64_t inherited, DataBytes());
  rlim_t data = static_cast<rlim_t>(inherited + (static_cast<uint64_t>(spec.memory_mb) << 20));
  rlimit data_limit{data, data};
  if (Os().setrlimit(RLIMIT_DATA, &data_limit) != 0) return Errno("setrlimit DATA", errno);
  return Status::Ok();
}

// Rootless: the child is uid 0 of the zygote's user namespace; a nested one
// in which only spec.uid/gid exist (mapped to that 0) makes it unprivileged
// there once its capabilities are dropped.
Status EnterSandboxUserNamespace(const ChildSpec& spec) {
  if (Os().unshare(CLONE_NEWUSER) != 0) return Errno("unshare(CLONE_NEWUSER)", errno);
  GUST_RETURN_IF_ERROR(WriteFile("/proc/self/setgroups", "deny"));
  GUST_RETURN_IF_ERROR(WriteFile("/proc/self/uid_map", std::to_string(spec.uid) + " 0 1"));
  return WriteFile("/proc/self/gid_map", std::to_string(spec.gid) + " 0 1");
}

Status DropPrivileges(const ChildSpec& spec) {
  if (!spec.bounding_set_dropped) GUST_RETURN_IF_ERROR(DropBoundingSet());
  if (Os().prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) {
    return Errno("PR_CAP_AMBIENT_CLEAR_ALL", errno);
  }
  // In a user namespace setgroups is denied (the price of an unprivileged
  // gid_map); the supplementary groups are the engine user's.
  if (!spec.rootless && Os().setgroups(0, nullptr) != 0) return Errno("setgroups", errno);
  if (Os().setresgid(spec.gid, spec.gid, spec.gid) != 0) return Errno("setresgid", errno);
  if (Os().setresuid(spec.uid, spec.uid, spec.uid) != 0) return Errno("setresuid", errno);
  // Credential changes clear the parent-death signal.
  if (Os().prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) return Errno("PR_SET_PDEATHSIG", errno);
  if (Os().prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return Errno("PR_SET_NO_NEW_PRIVS", errno);
  // Leaving uid 0 clears permitted and effective; inheritable is cleared
  // here, and then all three are checked rather than assumed.
  cap_t empty = cap_init();
  if (empty == nullptr) return Errno("cap_init", errno);
  int rc = cap_set_proc(empty);
  int err = errno;
  cap_t now = cap_get_proc();
  bool same = now != nullptr && cap_compare(now, empty) == 0;
  cap_free(now);
  cap_free(empty);
  if (rc != 0) return Errno("cap_set_proc", err);
  if (!same) return Status::Internal("capabilities still present after dropping privileges");
  return Status::Ok();
}

Status ArrangeFds(const ChildSpec& spec) {
  int devnull = Os().open("/dev/null", O_RDWR | O_CLOEXEC, 0);
  if (devnull < 0) return Errno("open /dev/null", errno);
  // The sources are all >= 4 (0-3 are taken in the zygote), so no dup2 below
  // overwrites a source that a later dup2 still needs.
  if (spec.control_fd < 4 || spec.log_fd < 4 || devnull < 4) {
    return Status::Internal("unexpected low fd number in sandbox child");
  }
  if (Os().dup2(spec.control_fd, 3) < 0) return Errno("dup2 control", errno);
  if (Os().dup2(spec.log_fd, 1) < 0) return Errno("dup2 stdout", errno);
  if (Os().dup2(spec.log_fd, 2) < 0) return Errno("dup2 stderr", errno);
  if (Os().dup2(devnull, 0) < 0) return Errno("dup2 stdin", errno);
  if (Os().close_range(4, ~0U, 0) != 0) return Errno("close_range", errno);
  return Status::Ok();
}

}  // namespace

uint64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

void StepTimes::Mark(const char* name) {
  if (count >= kMax) return;
  names[count] = name;
  ns[count] = MonotonicNs();
  ++count;
}

std::string StepTimes::Format(uint64_t start_ns) const {
  std::string out;
  uint64_t prev = start_ns;
  for (int i = 0; i < count; ++i) {
    if (!out.empty()) out += ' ';
    out += names[i];
    out += '=';
    out += std::to_string((ns[i] - prev) / 1000);
    prev = ns[i];
  }
  return out;
}

Status DropBoundingSet() {
  // The bounding set can only shrink while we still hold CAP_SETPCAP.
  for (unsigned long cap = 0; cap < 64; ++cap) {
    if (Os().prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) {
      if (errno == EINVAL) break;  // past the last capability this kernel knows
      return Errno("PR_CAPBSET_DROP", errno);
    }
  }
  return Status::Ok();
}

Status PrepareNamespaces() {
  if (Os().unshare(CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET) != 0) {
    return Errno("unshare", errno);
  }
  if (Os().sethostname(kHostname, sizeof(kHostname) - 1) != 0) return Errno("sethostname", errno);
  return LoopbackUp();
}

Status IsolateChild(const ChildSpec& spec, StepTimes* times) {
  auto step = [&](const char* name, Status s) -> Status {
    if (s.ok() && spec.fail_step == name) s = Status::FromErrno("injected failure", EIO);
    if (!s.ok()) return s.WithContext(std::string("sandbox isolation step '") + name + "'");
    times->Mark(name);
    return s;
  };
  GUST_RETURN_IF_ERROR(step("cgroup", JoinCgroups(spec)));
  if (!spec.namespaces_ready) {
    int ns_flags = CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | (spec.network ? 0 : CLONE_NEWNET);
    GUST_RETURN_IF_ERROR(
        step("unshare", Os().unshare(ns_flags) == 0 ? Status::Ok() : Errno("unshare", errno)));
  }
  GUST_RETURN_IF_ERROR(
      step("mounts", SetUpChildMounts(spec.bundle_rel, spec.tmp_mb, spec.premounted_tmp_mb)));
  if (!spec.namespaces_ready) {
    GUST_RETURN_IF_ERROR(step("hostname", Os().sethostname(kHostname, sizeof(kHostname) - 1) == 0
                                              ? Status::Ok()
                                              : Errno("sethostname", errno)));
    if (!spec.network) GUST_RETURN_IF_ERROR(step("loopback", LoopbackUp()));
  }
  if (spec.rootless) GUST_RETURN_IF_ERROR(step("userns", EnterSandboxUserNamespace(spec)));
  GUST_RETURN_IF_ERROR(step("rlimits", SetRlimits(spec)));
  GUST_RETURN_IF_ERROR(step("creds", DropPrivileges(spec)));
  if (spec.seccomp == nullptr) return Status::Internal("no seccomp program");
  int err = InstallSandboxFilter(*spec.seccomp);
  GUST_RETURN_IF_ERROR(step("seccomp", err == 0 ? Status::Ok() : Errno("seccomp", err)));
  if (Os().chdir("/var/task") != 0) return step("fds", Errno("chdir /var/task", errno));
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  return step("fds", ArrangeFds(spec));
}

}  // namespace gust::sandbox
