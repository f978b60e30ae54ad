// ZygoteLauncher, part two: bringing the zygote process up (checks of what
// the machine allows, cgroups, the spawn of python3 + _gust_zygote or of
// gust-sandbox-init) and describing the isolation in force. The sandbox
// traffic itself is in zygote_launcher.cc.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <spdlog/spdlog.h>
#include <algorithm>
#include <boost/asio/post.hpp>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "sandbox/fd_limits.h"
#include "sandbox/loopback_guard.h"
#include "sandbox/seccomp_filter.h"
#include "sandbox/zygote_launcher.h"
#include "sandbox/zygote_server.h"

extern char** environ;

namespace gust::sandbox {

namespace asio = boost::asio;

Status ZygoteLauncher::Start() { return StartZygote(/*wait_ready=*/true); }

Status ZygoteLauncher::StartAsync() { return StartZygote(/*wait_ready=*/false); }

Status ZygoteLauncher::StartZygote(bool wait_ready) {
  if (started_) return Status::Ok();
  GUST_RETURN_IF_ERROR(Prepare());
  Status s = LaunchZygote();
  if (s.ok() && wait_ready) s = WaitReadyBlocking();
  if (!s.ok()) {
    Unprepare();
    return s;
  }
  started_ = true;
  shutting_down_ = false;
  StartReading();
  if (wait_ready) return Status::Ok();
  // Spawns queue in outbox_ until "ready"; one that never comes must not
  // leave them waiting forever.
  ready_timer_ = std::make_unique<asio::steady_timer>(io_);
  ready_timer_->expires_after(std::chrono::milliseconds(options_.start_timeout_ms));
  std::weak_ptr<int> alive = alive_;
  uint64_t gen = generation_;
  ready_timer_->async_wait([this, alive, gen](const boost::system::error_code& err) {
    if (err || alive.expired() || gen != generation_ || state_ != ZygoteState::kStarting) return;
    OnZygoteGone(ZygoteName() + " did not report ready in " +
                 std::to_string(options_.start_timeout_ms) + " ms");
  });
  return Status::Ok();
}

void ZygoteLauncher::Unprepare() {
  StopZygote();
  cgroups_->RemoveParent();
  if (guard_status_.ok()) RemoveLoopbackGuard(guard_table_, options_.work_dir);
}

Status ZygoteLauncher::Prepare() {
  bool root = ::geteuid() == 0;
  if (options_.isolation == Isolation::kFull && !root) {
    return Status::Unavailable("full isolation needs root (cgroups): running as uid " +
                               std::to_string(::geteuid()) +
                               "; use the rootless mode (user namespaces + rlimits) instead");
  }
  rootless_ = options_.isolation == Isolation::kRootless ||
              (options_.isolation == Isolation::kAuto && !root);
  auto max_userns = ReadFile("/proc/sys/user/max_user_namespaces");
  if (rootless_ && max_userns.ok() && std::strtol(max_userns->c_str(), nullptr, 10) == 0) {
    return Status::Unavailable(
        "not root and user namespaces are disabled (/proc/sys/user/max_user_namespaces is 0): "
        "run gust as root, or enable user namespaces");
  }
  for (const char* ns : {"pid", "mnt", "ipc", "uts", "net", "user"}) {
    std::string path = std::string("/proc/self/ns/") + ns;
    if (::access(path.c_str(), F_OK) != 0) {
      return Status::Unavailable("kernel lacks " + std::string(ns) + " namespaces (" + path +
                                 " missing)");
    }
  }
  if (!options_.zygote_module.empty()) {
    if (::access(options_.python.c_str(), X_OK) != 0) {
      return Status::FromErrno("the zygote's interpreter " + options_.python, errno);
    }
    if (::access(options_.zygote_module.c_str(), R_OK) != 0) {
      return Status::FromErrno("the zygote's module " + options_.zygote_module, errno);
    }
  } else if (::access(options_.init_binary.c_str(), X_OK) != 0) {
    return Status::FromErrno("sandbox init binary " + options_.init_binary, errno);
  }
  std::string marker = options_.runtime_dir + "/gust_runtime";
  if (::access(marker.c_str(), R_OK | X_OK) != 0) {
    return Status::FromErrno("runtime dir " + marker, errno);
  }
  struct stat st;
  if (::stat(options_.bundles_root.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return Status::NotFound("bundles root " + options_.bundles_root + " is not a directory");
  }
  std::error_code ec;
  std::filesystem::create_directories(options_.work_dir + "/root", ec);
  if (ec) return Status::IoError("create " + options_.work_dir + "/root: " + ec.message());

  ReserveDescriptors();
  // Sandboxes orphaned by a dying zygote are reparented to us (not to the
  // host's init), so we can reap them and leave no zombies.
  if (Os().prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) {
    return Status::FromErrno("PR_SET_CHILD_SUBREAPER", errno);
  }
  if (rootless_) {
    cgroups_ = Cgroups::None();
  } else {
    auto cg = Cgroups::Detect(options_.cgroup_root, options_.cgroup_parent);
    if (!cg.ok()) return cg.status();
    cgroups_ = std::move(*cg);
  }
  GUST_RETURN_IF_ERROR(cgroups_->CreateParent());
  // Leftovers of an engine that died without Shutdown().
  for (const std::string& stale : cgroups_->ListChildren()) {
    cgroups_->KillAll(stale);
    for (int i = 0; i < 1000 && cgroups_->Remove(stale).code() == Code::kUnavailable; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  if (guard_shared_) {
    // Another launcher's table covers the sandbox uid (no nft run here).
  } else if (!rootless_ && !options_.guard_host_services) {
    // Asked for: no guard, nor one a crashed engine on this port left.
    RemoveLoopbackGuard(LoopbackGuardTable(options_.cgroup_parent), options_.work_dir);
    guard_status_ = Status::Unavailable("gust up --network-host-access");
  } else if (!rootless_) {
    guard_table_ = LoopbackGuardTable(options_.cgroup_parent);
    guard_status_ = InstallLoopbackGuard(guard_table_, options_.sandbox_uid, options_.work_dir);
    if (!guard_status_.ok()) {
      // Not fatal: sandboxes without network are unaffected, and an engine
      // without nftables still serves; the summary says what is open.
      spdlog::warn("networked sandboxes can reach the host's loopback services: {}",
                   guard_status_.ToString());
    }
  }
  spdlog::info("sandbox zygote: {}", options_.zygote_module.empty()
                                         ? options_.init_binary
                                         : options_.python + " running " + options_.zygote_module);
  return Status::Ok();
}

Status ZygoteLauncher::LaunchZygote() {
  int sv[2];
  if (Os().socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
    return Status::FromErrno("socketpair for zygote", errno);
  }
  UniqueFd ours(sv[0]), theirs(sv[1]);
  if (theirs.get() == 3) theirs = UniqueFd(::fcntl(3, F_DUPFD_CLOEXEC, 10));
  ZygoteConfig zc;
  zc.runtime_dir = options_.runtime_dir;
  zc.bundles_root = options_.bundles_root;
  zc.work_dir = options_.work_dir;
  zc.channel_dir = options_.channel_dir;
  zc.client_dir = options_.client_dir;
  zc.preload = options_.preload_modules;
  zc.uid = options_.sandbox_uid;
  zc.gid = options_.sandbox_gid;
  zc.engine_pid = ::getpid();
  zc.fail_step = options_.test_fail_step;
  zc.prefork = options_.prefork;
  zc.prefork_max = options_.prefork_max;  // below prefork: no growth (PoolSizer)
  zc.rootless = rootless_;
  zc.outer_uid = ::geteuid();
  zc.outer_gid = ::getegid();
  zc.ro_binds = options_.ro_binds;
  std::string config = SerializeZygoteConfig(zc);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, theirs.get(), 3);
  // Nothing else of the engine's: asio opens its sockets without CLOEXEC, and a
  // zygote holding the API's listening socket would accept connections after
  // the engine died, then reset them (a peer sees a reset, not a refusal).
  posix_spawn_file_actions_addclosefrom_np(&actions, 4);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  // python3 would start with sys.stdout/stderr = None on a closed fd 1/2.
  for (int fd = 1; fd <= 2; ++fd) {
    if (::fcntl(fd, F_GETFD) < 0) {
      posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", O_WRONLY, 0);
    }
  }
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  std::vector<std::string> args =
      options_.zygote_module.empty()
          ? std::vector<std::string>{options_.init_binary, config}
          : PythonZygoteCommand(options_.python, options_.zygote_module, config);
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const std::string& bin = args[0];
  std::string path = "PATH=/usr/local/bin:/usr/bin:/bin";
  std::string lang = "LANG=C.UTF-8";
  char* envp[] = {path.data(), lang.data(), nullptr};
  pid_t pid = 0;
  int rc = ::posix_spawn(&pid, bin.c_str(), &actions, &attr, argv.data(), envp);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return Status::FromErrno("spawn " + bin, rc);
  int pidfd = Os().pidfd_open(pid, 0);
  if (pidfd < 0) {
    int err = errno;
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return Status::FromErrno("pidfd_open zygote", err);
  }
  ::fcntl(ours.get(), F_SETFL, O_NONBLOCK);
  ++generation_;
  fatal_.clear();
  zygote_pid_ = pid;
  zygote_sock_ = std::make_unique<asio::posix::stream_descriptor>(io_, ours.Release());
  zygote_pidfd_ = std::make_unique<asio::posix::stream_descriptor>(io_, pidfd);
  state_ = ZygoteState::kStarting;
  std::weak_ptr<int> alive = alive_;
  uint64_t gen = generation_;
  zygote_pidfd_->async_wait(asio::posix::descriptor_base::wait_read,
                            [this, alive, gen](const boost::system::error_code& err) {
                              if (err || alive.expired() || gen != generation_) return;
                              OnZygoteGone("the zygote exited");
                            });
  return Status::Ok();
}

std::string ZygoteLauncher::IsolationSummary() const {
  if (rootless_) {
    return "ROOTLESS (engine uid " + std::to_string(::geteuid()) +
           "): user namespaces, namespaces pid,mnt,ipc,uts,net (net shared when network=true); "
           "NO cgroups: memory by RLIMIT_DATA (function memory on top of the runtime's), "
           "processes by RLIMIT_NPROC per sandbox, cpu weight NOT enforced; root: ro /usr /etc, "
           "ro bundle at /var/task, private /tmp /dev/shm /proc, minimal /dev; seccomp (" +
           std::to_string(DeniedSyscalls().size()) +
           " syscalls + namespace clone flags denied); no_new_privs; no capabilities; rlimits "
           "nofile=1024 core=0; uid " +
           std::to_string(options_.sandbox_uid) + " gid " + std::to_string(options_.sandbox_gid) +
           " (mapped to the engine's)";
  }
  std::string cg = cgroups_ ? cgroups_->Summary() : "cgroups not set up";
  return "namespaces pid,mnt,ipc,uts,net (net shared when network=true); " + cg +
         " (memory without swap, pids.max, cpu weight); root: ro /usr /etc, ro bundle at "
         "/var/task, private /tmp /dev/shm /proc, minimal /dev; seccomp (" +
         std::to_string(DeniedSyscalls().size()) +
         " syscalls + namespace clone flags denied); no_new_privs; no capabilities; rlimits "
         "nofile=1024 core=0; uid " +
         std::to_string(options_.sandbox_uid) + " gid " + std::to_string(options_.sandbox_gid) +
         (guard_status_.ok()
              ? "; host loopback closed to network=true sandboxes (nftables table inet " +
                    guard_table_ + ")"
              : "; host loopback OPEN to network=true sandboxes (" + guard_status_.message() + ")");
}

}  // namespace gust::sandbox
