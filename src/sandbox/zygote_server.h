// The zygote: a single-threaded process that holds an initialised CPython
// (>= 3.9) with the runtime and the preloaded modules imported, inside a private
// mount namespace whose root shows only what sandboxes may see (rootfs.h),
// and forks one sandbox per request. RunZygote runs in one of two hosts:
//   - python3 -E -s -c <bootstrap> with the _gust_zygote extension module
//     (src/bin/gust_zygote_module.cc; the default): Debian's /usr/bin/python3
//     (a PGO+LTO interpreter runs Python ~15% faster than any embedding of it)
//     or a user's environment's interpreter (env_launcher.h). The module is
//     built against CPython 3.9's stable ABI, so one .so serves every CPython
//     >= 3.9; the bootstrap refuses an older or non-CPython interpreter;
//   - gust-sandbox-init, which embeds libpython and initialises it here with
//     the same settings (sanitizer builds, where an ASan extension cannot load
//     into python3, and GUST_ZYGOTE_IN_PYTHON=OFF builds).
//
// Wire protocol on fd 3 (SOCK_SEQPACKET, one JSON object per message):
//   zygote -> engine  {"type":"ready","warnings":[...]} once, after preload, or
//                     {"type":"fatal","error":...} and exit 1.
//   engine -> zygote  {"type":"spawn","id","bundle_rel","tmp_mb","network",
//                     "memory_mb","pids_max" (enforced here only when rootless),
//                     "config" (the string for bootstrap.run),"trace"}
//                     + fds [control socket (child end),
//                     log pipe write end, one cgroup.procs fd per hierarchy]
//   zygote -> engine  {"type":"spawned","id","pid"} + [pidfd of the runtime,
//                     pidfd of the sandbox's init (absent if it is already gone)], or
//                     {"type":"spawn_failed","id","error"}
//   zygote -> engine  {"type":"exited","id","pid","status"} (the runtime's raw
//                     wait status, sent once every process of the sandbox is gone)
// With "trace", the child writes "gust-sandbox-init: trace t_recv_ns=<N>
// fork=<us> cgroup=<us> ..." (each step's cost) to its log pipe first.
// EOF on fd 3 makes the zygote SIGKILL its children, reap them and exit 0.
//
// Each sandbox: unshare(CLONE_NEWPID) (so the next child is pid 1 of a fresh
// pid namespace), PyOS_BeforeFork, fork of the sandbox's init (pid 1: a C++
// loop that reaps orphans and forwards termination signals, and never runs
// Python; namespace_init.h), fork of the runtime (pid 2, also our child, so
// its wait status is ours to read), PyOS_AfterFork_Parent/Child. The runtime
// isolates itself (child_isolation.h) and calls
// gust_runtime.bootstrap.run(config_json), then _exit()s with its return
// value. A failed isolation step is written to the log pipe and the child
// _exit(127)s without running any Python code of the runtime. When the
// runtime is reaped the zygote SIGKILLs its init (which ends whatever else
// runs in the namespace) and reports the runtime's status once the init is
// reaped too. Pool children are such pairs, forked ahead of demand: the
// runtime waits for its assignment, the init is already in place.
//
// Failures: setup errors are reported as "fatal" and RunZygote returns 1;
// a bad request gets "spawn_failed"; an unreadable/unwritable fd 3 ends the
// zygote (its children die with it through PR_SET_PDEATHSIG).
//
// Thread-safety: owns the process; must stay single-threaded (fork).
#pragma once

#include <stdint.h>
#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "common/config.h"
#include "common/status.h"

namespace gust::sandbox {

struct ZygoteConfig {
  std::string runtime_dir;
  std::string bundles_root;
  std::string work_dir;     // the root tmpfs is mounted at work_dir/root
  std::string channel_dir;  // "" or bound ro at /run/gust (rootfs.h)
  std::string client_dir;   // "" or bound ro at /var/gust/gust
  std::vector<std::string> preload;
  uint32_t uid = 993;
  uint32_t gid = 993;
  pid_t engine_pid = 0;  // if set, the zygote exits unless its parent is this pid
  // Test hook: this isolation step fails with EIO in every child.
  std::string fail_step;
  // Children forked ahead of demand (their fork and Python warm-up happen off
  // the critical path); a spawn takes one when the pool is not empty. 0: off.
  int prefork = kDefaultPrefork;
  // What the pool may grow to after bursts that emptied it (pool_sizer.h).
  int prefork_max = kDefaultPreforkMax;
  // Rootless mode (sandbox.h): the zygote first enters a user namespace
  // mapping its uid/gid 0 to outer_uid/outer_gid (the engine's), then a pid
  // namespace whose init it becomes (a proxy process stays outside and exits
  // with it), so it may create and re-enter pid namespaces for its children.
  bool rootless = false;
  uint32_t outer_uid = 0;
  uint32_t outer_gid = 0;
  // Host directories bound read-only at the same paths in the sandbox root
  // (a Python environment's prefix and base prefix: rootfs.h).
  std::vector<std::string> ro_binds;
};

Result<ZygoteConfig> ParseZygoteConfig(std::string_view json);
std::string SerializeZygoteConfig(const ZygoteConfig& config);

// argv of `python` running the zygote from module_path (a file named
// _gust_zygote.so, which the bootstrap imports by name) with config_json.
std::vector<std::string> PythonZygoteCommand(const std::string& python,
                                             const std::string& module_path,
                                             const std::string& config_json);

// Runs the zygote on fd 3 until EOF; returns the process exit code.
// init_python brings the interpreter up when it is embedded (InitPython,
// gust-sandbox-init); nullptr inside python3, where it already is.
int RunZygote(const ZygoteConfig& config, Status (*init_python)());

}  // namespace gust::sandbox
