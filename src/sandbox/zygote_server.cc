#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "sandbox/zygote_server.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <map>
#include <nlohmann/json.hpp>

#include "sandbox/cgroups.h"
#include "sandbox/child_isolation.h"
#include "sandbox/fd_passing.h"
#include "sandbox/namespace_init.h"
#include "sandbox/os_seam.h"
#include "sandbox/pool_sizer.h"
#include "sandbox/rootfs.h"
#include "sandbox/seccomp_filter.h"
#include "sandbox/zygote_python.h"

namespace gust::sandbox {
namespace {

using nlohmann::json;

constexpr int kControlFd = 3;
// /tmp size a pool child mounts ahead of demand (Lambda's default ephemeral storage).
constexpr int kPoolTmpMb = 512;

int CountThreads(int proc_self_fd) {
  int fd = Os().openat(proc_self_fd, "status", O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0) return -1;
  char buf[4096];
  ssize_t n = Os().read(fd, buf, sizeof(buf) - 1);
  Os().close(fd);
  if (n <= 0) return -1;
  buf[n] = '\0';
  const char* p = std::strstr(buf, "\nThreads:");
  return p ? std::atoi(p + 9) : -1;
}

void WriteAll(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = Os().write(fd, s.data() + off, s.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

struct SpawnRequest {
  std::string id;
  uint64_t t_recv = 0;  // when the zygote received it (set on requests forwarded to pool children)
  ChildSpec child;
  std::string config;
  bool trace = false;
};

// Parses and validates a spawn request (the engine's, or one forwarded to a
// pool child); fds are [control, log, cgroup.procs... (none when rootless)]. Returns "" or why not.
std::string ParseRequest(const json& j, const std::vector<UniqueFd>& fds,
                         const ZygoteConfig& config, const std::vector<sock_filter>* seccomp,
                         SpawnRequest* req) {
  try {
    req->t_recv = j.value("t_recv", uint64_t{0});
    req->id = j.at("id").get<std::string>();
    req->child.bundle_rel = j.at("bundle_rel").get<std::string>();
    req->child.tmp_mb = j.value("tmp_mb", 512);
    req->child.network = j.value("network", false);
    req->child.memory_mb = j.value("memory_mb", 128);
    req->child.pids_max = j.value("pids_max", 1024);
    req->config = j.at("config").get<std::string>();
    req->trace = j.value("trace", false);
  } catch (const std::exception& e) {
    return std::string("bad request: ") + e.what();
  }
  if (fds.size() < 2) return "spawn request needs >= 2 fds (control, log)";
  Status valid = ValidateBundleRelPath(req->child.bundle_rel);
  if (!valid.ok()) return valid.message();
  req->child.uid = config.uid;
  req->child.gid = config.gid;
  req->child.control_fd = fds[0].get();
  req->child.log_fd = fds[1].get();
  for (size_t i = 2; i < fds.size(); ++i) req->child.cgroup_procs_fds.push_back(fds[i].get());
  req->child.seccomp = seccomp;
  req->child.fail_step = config.fail_step;
  req->child.rootless = config.rootless;
  if (req->child.memory_mb <= 0 || req->child.pids_max <= 0) return "limits must be positive";
  return "";
}

// A spawn request of typical size, for warm-ups of the request path.
constexpr const char* kWarmRequest =
    R"({"id":"sbx-0000000000000000","bundle_rel":"0000000000000000000000000000000000000000000000)"
    R"(000000000000000000","tmp_mb":512,"network":false,"memory_mb":128,"pids_max":1024,)"
    R"("trace":false,"config":"{\"control_fd)"
    R"(\":3,\"env\":{},\"function_name\":\"warm\",\"function_version\":\"$LATEST\",)"
    R"(\"handler\":\"app.handler\",\"log_group_name\":\"/aws/lambda/warm\",\"log_stre)"
    R"(am_name\":\"2026/01/01/[$LATEST]sbx-0000000000000000\",\"memory_mb\":128,\"region)"
    R"(\":\"us-east-1\",\"sandbox_id\":\"sbx-0000000000000000\",\"task_root\":\"/var/t)"
    R"(ask\",\"timeout_s\":3}"})";

// forked_now: the child was forked for this request (else it is a pool child
// that did its after-fork work while waiting).
[[noreturn]] void RunChild(SpawnRequest& req, uint64_t t_recv, bool forked_now) {
  if (forked_now) {
    PyOS_AfterFork_Child();
    if (::getpid() != kRuntimePid) {
      WriteAll(req.child.log_fd, "gust-sandbox-init: the runtime is pid " +
                                     std::to_string(::getpid()) + " of its namespace, not " +
                                     std::to_string(kRuntimePid) + "\n");
      _exit(127);
    }
  }
  StepTimes times;
  times.Mark(forked_now ? "fork" : "assign");
  Status s = IsolateChild(req.child, &times);
  if (!s.ok()) {
    WriteAll(req.child.log_fd, "gust-sandbox-init: " + s.message() + "\n");
    _exit(127);
  }
  if (req.trace) {
    WriteAll(1, "gust-sandbox-init: trace t_recv_ns=" + std::to_string(t_recv) + " " +
                    times.Format(t_recv) + "\n");
  }
  int rc = 1;
  PyObject* boot = PyImport_ImportModule("gust_runtime.bootstrap");
  PyObject* rv = boot ? PyObject_CallMethod(boot, "run", "s", req.config.c_str()) : nullptr;
  if (rv == nullptr) {
    PyErr_Print();
  } else if (rv == Py_None) {
    rc = 0;
  } else if (PyLong_Check(rv)) {
    rc = static_cast<int>(PyLong_AsLong(rv)) & 0xff;
  }
  (void)RunPython("import sys\nsys.stdout.flush()\nsys.stderr.flush()\n");
  _exit(rc);
}

// A pool child: forked ahead of demand into its own pid namespace, it warms the
// runtime's generic state (so those copy-on-write faults are not paid during
// a cold start) and waits for one assignment: a spawn request with its fds.
// It is not isolated until then, so it dies with the zygote.
[[noreturn]] void RunPoolChild(int channel, const ZygoteConfig& config,
                               const std::vector<sock_filter>* seccomp) {
  PyOS_AfterFork_Child();
  Os().prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  if (::getpid() != kRuntimePid) _exit(125);  // the init signals pid 2
  // Only stdio and the assignment channel are ours; the zygote's control
  // socket, signalfd and the other pool channels are not.
  if (channel < 4) channel = ::fcntl(channel, F_DUPFD_CLOEXEC, 4);
  ::close_range(3, static_cast<unsigned>(channel - 1), 0);
  ::close_range(static_cast<unsigned>(channel + 1), ~0U, 0);
  // Hold fd 3 so the fds of the assignment arrive at >= 4, as ArrangeFds expects.
  Os().open("/dev/null", O_RDONLY | O_CLOEXEC, 0);
  // Namespaces now, not during a cold start. A failure here is not fatal: the
  // child exits and the zygote forks on demand instead.
  if (!PrepareNamespaces().ok()) _exit(125);
  // And the mounts that do not depend on the function (/tmp at the default size).
  if (!SetUpPoolMounts(kPoolTmpMb).ok()) _exit(125);
  if (!config.rootless && !DropBoundingSet().ok()) _exit(125);
  {
    // Run the request parser once so its heap pages are ours before a request.
    SpawnRequest warm;
    std::vector<UniqueFd> no_fds;
    (void)ParseRequest(json::parse(kWarmRequest, nullptr, false), no_fds, config, seccomp, &warm);
  }
  PyObject* boot = PyImport_ImportModule("gust_runtime.bootstrap");
  if (boot != nullptr && PyObject_HasAttrString(boot, "prepare")) {
    PyObject* rv = PyObject_CallMethod(boot, "prepare", nullptr);
    Py_XDECREF(rv);
  }
  Py_XDECREF(boot);
  if (PyErr_Occurred()) PyErr_Clear();  // a failed warm-up only costs speed
  auto msg = ReceiveMessage(channel);
  if (!msg.ok() || msg->eof) _exit(0);  // the zygote is shutting the pool down
  SpawnRequest req;
  if (!ParseRequest(json::parse(msg->data, nullptr, false), msg->fds, config, seccomp, &req)
           .empty()) {
    _exit(126);
  }
  req.child.namespaces_ready = true;
  req.child.premounted_tmp_mb = kPoolTmpMb;
  req.child.bounding_set_dropped = !config.rootless;
  RunChild(req, req.t_recv, /*forked_now=*/false);
}

class Server {
 public:
  Server(const ZygoteConfig& config, std::vector<sock_filter> seccomp, int pid_ns_fd,
         int self_pidfd)
      : config_(config),
        seccomp_(std::move(seccomp)),
        pid_ns_fd_(pid_ns_fd),
        init_spec_{config.rootless, config.uid, config.gid, self_pidfd} {}

  int Serve(int signal_fd) {
    pollfd fds[2] = {{kControlFd, POLLIN, 0}, {signal_fd, POLLIN, 0}};
    for (;;) {
      // Requests first; the pool is refilled only when nothing is waiting.
      uint64_t now = MonotonicNs();
      if (sizer_.Forget(now, last_request_ns_)) ShrinkPool();
      uint64_t next = sizer_.ForgetAt(last_request_ns_);
      if (pool_.size() < sizer_.Target()) {
        // Not while requests come: a pool child's fork and warm-up (~5 ms of
        // CPU) would compete with the cold starts just begun (pool_sizer.h).
        next = std::max(pool_retry_ns_, sizer_.RefillAt(last_request_ns_));
      }
      int timeout = next == UINT64_MAX ? -1
                    : now >= next      ? 0
                                       : static_cast<int>((next - now) / 1000000 + 1);
      int ready = ::poll(fds, 2, timeout);
      if (ready < 0) {
        if (errno == EINTR) continue;
        return KillAllAndExit(1);
      }
      if (ready == 0) {
        if (pool_.size() < sizer_.Target()) ForkPoolChild();
        continue;
      }
      if (fds[1].revents & POLLIN) Reap(signal_fd);
      if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
        auto msg = ReceiveMessage(kControlFd);
        if (!msg.ok() && msg.status().code() == Code::kUnavailable) continue;
        if (!msg.ok() || msg->eof) return KillAllAndExit(0);
        HandleRequest(*msg);  // its fds close when msg goes, after the request
      }
    }
  }

 private:
  // One sandbox's processes, both children of ours: its init (pid 1 of its
  // pid namespace, namespace_init.h) and its runtime (pid kRuntimePid there).
  struct Sandbox {
    std::string id;     // "" while pooled (or after a failed spawn): its end is not reported
    pid_t init = 0;     // 0 once reaped
    pid_t runtime = 0;  // 0 once reaped
    int status = 0;     // the runtime's wait status, once reaped
  };

  void Send(const json& j, const std::vector<int>& fds = {}) {
    Status s = SendMessage(kControlFd, j.dump(), fds);
    // The engine is gone or broken: nothing useful is left to do.
    if (!s.ok()) _exit(KillAllAndExit(1));
  }

  // Forks a sandbox into a fresh pid namespace: its init first (which makes
  // it pid 1), then its runtime, which runs runtime_main() and so is pid
  // kRuntimePid. Returns the runtime's pid (the sandbox's, for the engine).
  template <typename Fn>
  Result<pid_t> ForkSandbox(Fn&& runtime_main) {
    if (Os().unshare(CLONE_NEWPID) != 0) return Status::FromErrno("unshare(CLONE_NEWPID)", errno);
    PyOS_BeforeFork();
    pid_t init = Os().fork();
    if (init == 0) RunNamespaceInit(init_spec_);  // no Python in the init: no AfterFork_Child
    int fork_errno = errno;
    pid_t runtime = -1;
    if (init > 0) {
      runtime = Os().fork();
      if (runtime == 0) runtime_main();
      fork_errno = errno;
    }
    PyOS_AfterFork_Parent();
    // unshare(CLONE_NEWPID) works only while the namespace for children is
    // our own, so switch it back for the next spawn.
    if (Os().setns(pid_ns_fd_, CLONE_NEWPID) != 0) {
      Send({{"type", "fatal"}, {"error", Status::FromErrno("setns(pid)", errno).message()}});
      _exit(KillAllAndExit(1));
    }
    if (init < 0) return Status::FromErrno("fork (the sandbox's init)", fork_errno);
    if (runtime < 0) {
      Os().kill(init, SIGKILL);
      inits_[init] = 0;  // reaped silently
      return Status::FromErrno("fork (the sandbox's runtime)", fork_errno);
    }
    sandboxes_[runtime] = Sandbox{"", init, runtime, 0};
    inits_[init] = runtime;
    return runtime;
  }

  void HandleRequest(const ReceivedMessage& msg) {
    uint64_t t_recv = MonotonicNs();
    last_request_ns_ = t_recv;
    SpawnRequest req;
    // Not throwing: a malformed request fails in ParseRequest with a message.
    json request = json::parse(msg.data, nullptr, false);
    std::string error = ParseRequest(request, msg.fds, config_, &seccomp_, &req);
    if (!error.empty()) {
      Send({{"type", "spawn_failed"}, {"id", req.id}, {"error", error}});
      return;
    }
    if (!req.child.network) {
      request["t_recv"] = t_recv;
      if (AssignToPoolChild(req, request.dump(), msg)) {
        sizer_.OnHit();
        return;
      }
      sizer_.OnMiss(t_recv);  // the pool was too small for this burst
    }

    auto pid = ForkSandbox([&] { RunChild(req, t_recv, /*forked_now=*/true); });
    if (!pid.ok()) {
      Send({{"type", "spawn_failed"}, {"id", req.id}, {"error", pid.status().message()}});
      return;
    }
    Assigned(*pid, req.id);
  }

  // The sandbox of runtime pid now serves request id: tell the engine, with
  // a pidfd of the runtime.
  void Assigned(pid_t pid, const std::string& id) {
    // Opened before any waitpid, so the pid cannot have been reused.
    int pidfd = Os().pidfd_open(pid, 0);
    if (pidfd < 0) {
      int err = errno;
      Os().kill(pid, SIGKILL);  // reaped silently
      Send({{"type", "spawn_failed"},
            {"id", id},
            {"error", Status::FromErrno("pidfd_open", err).message()}});
      return;
    }
    UniqueFd pidfd_owner(pidfd);
    Sandbox& sandbox = sandboxes_[pid];
    sandbox.id = id;
    std::vector<int> fds = {pidfd};
    // And one of its init, which the engine reaps itself should we die:
    // orphans are reparented to it (a child subreaper).
    UniqueFd init_pidfd(sandbox.init != 0 ? Os().pidfd_open(sandbox.init, 0) : -1);
    if (init_pidfd.valid()) fds.push_back(init_pidfd.get());
    Send({{"type", "spawned"}, {"id", id}, {"pid", pid}}, fds);
  }

  // Hands the request to a waiting pool child; false if none could take it.
  // assignment: the request with the zygote's receipt time added.
  bool AssignToPoolChild(const SpawnRequest& req, const std::string& assignment,
                         const ReceivedMessage& msg) {
    std::vector<int> fds;
    for (const UniqueFd& fd : msg.fds) fds.push_back(fd.get());
    while (!pool_.empty()) {
      PoolChild child = std::move(pool_.front());
      pool_.pop_front();
      if (!SendMessage(child.channel.get(), assignment, fds).ok()) {
        Os().kill(child.pid, SIGKILL);  // died or stuck while pooled; reaped silently
        continue;
      }
      Assigned(child.pid, req.id);
      return true;
    }
    return false;
  }

  void ForkPoolChild() {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
      pool_retry_ns_ = MonotonicNs() + 1000000000ull;
      return;
    }
    UniqueFd ours(sv[0]), theirs(sv[1]);
    auto pid = ForkSandbox([&] {
      ours.Reset();
      RunPoolChild(theirs.get(), config_, &seccomp_);
    });
    if (!pid.ok()) {
      // e.g. at the pids limit: back off instead of spinning.
      pool_retry_ns_ = MonotonicNs() + 1000000000ull;
      return;
    }
    pool_.push_back(PoolChild{*pid, std::move(ours)});
    RehearseAssignment();
  }

  // The fork made our heap copy-on-write again; the allocations of the next
  // assignment would pay those page faults (~11 us each) during a cold start.
  // Running the same steps now (no message sent) takes them while idle.
  void RehearseAssignment() {
    SpawnRequest req;
    std::vector<UniqueFd> no_fds;
    json request = json::parse(kWarmRequest, nullptr, false);
    (void)ParseRequest(request, no_fds, config_, &seccomp_, &req);
    request["t_recv"] = MonotonicNs();
    std::string assignment = request.dump();
    sandboxes_[-1].id = req.id;
    sandboxes_.erase(-1);
    std::string reply = json{{"type", "spawned"}, {"id", req.id}, {"pid", 1}}.dump();
  }

  void Reap(int signal_fd) {
    signalfd_siginfo info;
    while (Os().read(signal_fd, &info, sizeof(info)) == sizeof(info)) {
    }
    for (;;) {
      int status = 0;
      pid_t pid = Os().waitpid(-1, &status, WNOHANG);
      if (pid <= 0) return;
      pid_t runtime = pid;
      if (auto init = inits_.find(pid); init != inits_.end()) {
        runtime = init->second;
        inits_.erase(init);
        auto it = sandboxes_.find(runtime);
        if (it == sandboxes_.end()) continue;
        it->second.init = 0;
        // Its death SIGKILLed the namespace, the runtime included; it may
        // just not be reaped yet.
        if (it->second.runtime != 0) continue;
      } else {
        auto it = sandboxes_.find(pid);
        if (it == sandboxes_.end()) continue;
        it->second.runtime = 0;
        it->second.status = status;
        if (it->second.id.empty()) ForgetPoolChild(pid);
        if (it->second.init != 0) {
          // The sandbox ends with its runtime: the init's death takes every
          // process left in the namespace with it; reported once it is reaped.
          Os().kill(it->second.init, SIGKILL);
          continue;
        }
      }
      auto it = sandboxes_.find(runtime);
      Sandbox done = std::move(it->second);
      sandboxes_.erase(it);
      if (!done.id.empty()) {
        Send({{"type", "exited"}, {"id", done.id}, {"pid", runtime}, {"status", done.status}});
      }
    }
  }

  // A pool child died before its assignment (it could not set up its
  // namespaces, or was killed): refill later, not in a tight loop.
  void ForgetPoolChild(pid_t pid) {
    for (auto p = pool_.begin(); p != pool_.end(); ++p) {
      if (p->pid == pid) {
        pool_.erase(p);
        pool_retry_ns_ = MonotonicNs() + 1000000000ull;
        return;
      }
    }
  }

  // Back to the configured pool after a quiet spell: the surplus children exit.
  void ShrinkPool() {
    while (pool_.size() > sizer_.Target()) {
      Os().kill(pool_.back().pid, SIGKILL);  // reaped silently (its id is "")
      pool_.pop_back();
    }
  }

  int KillAllAndExit(int code) {
    for (const auto& [init, runtime] : inits_) Os().kill(init, SIGKILL);
    for (const auto& [pid, sandbox] : sandboxes_) {
      if (sandbox.runtime != 0) Os().kill(pid, SIGKILL);
    }
    // Runtimes first: a dying init lingers until every process of its
    // namespace is reaped, its sibling runtime included.
    for (const auto& [pid, sandbox] : sandboxes_) {
      if (sandbox.runtime != 0) Os().waitpid(pid, nullptr, 0);
    }
    for (const auto& [init, runtime] : inits_) Os().waitpid(init, nullptr, 0);
    inits_.clear();
    sandboxes_.clear();
    return code;
  }

  const ZygoteConfig& config_;
  std::vector<sock_filter> seccomp_;
  int pid_ns_fd_;
  InitSpec init_spec_;
  std::map<pid_t, Sandbox> sandboxes_;  // by the runtime's pid
  std::map<pid_t, pid_t> inits_;        // init's pid -> its runtime's (0: none)
  struct PoolChild {
    pid_t pid;         // the runtime's
    UniqueFd channel;  // seqpacket: one assignment message, then closed
  };
  std::deque<PoolChild> pool_;
  uint64_t pool_retry_ns_ = 0;
  uint64_t last_request_ns_ = 0;
  PoolSizer sizer_{config_.prefork, config_.prefork_max};
};

void SendFatal(const Status& s) {
  json j = {{"type", "fatal"}, {"error", s.message()}};
  (void)SendMessage(kControlFd, j.dump(), {});
}

// Rootless: a user namespace in which we are 0 (= the engine's uid/gid
// outside), then a pid namespace for our children-to-be.
Status EnterRootlessNamespaces(const ZygoteConfig& config) {
  if (Os().unshare(CLONE_NEWUSER) != 0) {
    return Status::FromErrno(
        "unshare(CLONE_NEWUSER) (unprivileged user namespaces may be disabled: see "
        "/proc/sys/user/max_user_namespaces and kernel.apparmor_restrict_unprivileged_userns)",
        errno);
  }
  GUST_RETURN_IF_ERROR(WriteFile("/proc/self/setgroups", "deny"));
  GUST_RETURN_IF_ERROR(
      WriteFile("/proc/self/uid_map", "0 " + std::to_string(config.outer_uid) + " 1"));
  GUST_RETURN_IF_ERROR(
      WriteFile("/proc/self/gid_map", "0 " + std::to_string(config.outer_gid) + " 1"));
  if (Os().unshare(CLONE_NEWPID) != 0) return Status::FromErrno("unshare(CLONE_NEWPID)", errno);
  return Status::Ok();
}

// The process outside the zygote's pid namespace: it holds nothing (the
// engine's socket is the zygote's alone) and exits as the zygote does; when
// it is killed, the zygote follows through PR_SET_PDEATHSIG, and with it
// every process of its pid namespace.
[[noreturn]] void ProxyUntilExit(pid_t zygote) {
  ::close_range(3, ~0U, 0);
  int status = 0;
  while (::waitpid(zygote, &status, 0) < 0 && errno == EINTR) {
  }
  _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
}

}  // namespace

int RunZygote(const ZygoteConfig& config, Status (*init_python)()) {
  if (Os().prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) return 1;
  // The engine may have died before the prctl took effect.
  if (config.engine_pid != 0 && getppid() != config.engine_pid) return 1;
  for (int fd = 0; fd <= 2; ++fd) {
    if (fcntl(fd, F_GETFD) < 0) Os().open("/dev/null", O_RDWR, 0);
  }
  if (config.rootless) {
    Status s = EnterRootlessNamespaces(config);
    if (!s.ok()) {
      SendFatal(s.WithContext("rootless isolation"));
      return 1;
    }
    // Inside /usr/bin/python3 the interpreter is already up: the child goes on
    // running Python code, the proxy never does.
    bool python_up = Py_IsInitialized();
    if (python_up) PyOS_BeforeFork();
    pid_t zygote = Os().fork();
    if (zygote < 0) {
      if (python_up) PyOS_AfterFork_Parent();
      SendFatal(Status::FromErrno("fork into the zygote's pid namespace", errno));
      return 1;
    }
    if (zygote > 0) ProxyUntilExit(zygote);
    if (python_up) PyOS_AfterFork_Child();
    if (Os().prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) return 1;
  }
  // Kept across the pivot (the new root has no /proc) to count our threads.
  UniqueFd proc_self(Os().open("/proc/self", O_PATH | O_DIRECTORY | O_CLOEXEC, 0));
  UniqueFd pid_ns(Os().open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC, 0));
  if (!pid_ns.valid()) {
    SendFatal(Status::FromErrno("open /proc/self/ns/pid", errno));
    return 1;
  }
  Status s =
      BuildZygoteRoot({config.work_dir + "/root", config.runtime_dir, config.bundles_root,
                       config.rootless, config.channel_dir, config.client_dir, config.ro_binds});
  if (!s.ok()) {
    SendFatal(s.WithContext("building the sandbox root"));
    return 1;
  }
  auto seccomp = BuildSandboxFilter();
  if (!seccomp.ok()) {
    SendFatal(seccomp.status().WithContext("compiling the seccomp filter"));
    return 1;
  }
  if (init_python != nullptr) s = init_python();
  std::vector<std::string> warnings;
  if (s.ok()) s = LoadRuntime(config.preload, &warnings);
  if (!s.ok()) {
    SendFatal(s);
    return 1;
  }
  int threads = CountThreads(proc_self.get());
  if (threads > 1) {
    SendFatal(Status::Internal("the zygote has " + std::to_string(threads) +
                               " threads after preload (a preloaded module started threads); "
                               "forking it would be unsafe"));
    return 1;
  }
  proc_self.Reset();
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  UniqueFd sfd(::signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!sfd.valid()) {
    SendFatal(Status::FromErrno("signalfd", errno));
    return 1;
  }
  // For the inits, which check that their parent still lives (namespace_init.h).
  UniqueFd self(Os().pidfd_open(::getpid(), 0));
  if (!self.valid()) {
    SendFatal(Status::FromErrno("pidfd_open(the zygote)", errno));
    return 1;
  }
  json ready = {{"type", "ready"}, {"warnings", warnings}, {"python", Py_GetVersion()}};
  if (!SendMessage(kControlFd, ready.dump(), {}).ok()) return 1;
  Server server(config, std::move(*seccomp), pid_ns.get(), self.get());
  return server.Serve(sfd.get());
}

}  // namespace gust::sandbox
