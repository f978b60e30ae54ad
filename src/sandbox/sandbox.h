// The sandbox seam: the engine asks for isolated processes through the
// SandboxLauncher interface and never touches namespaces, cgroups, mounts or
// seccomp itself. ZygoteLauncher (zygote_launcher.h) is the real one; tests of
// the engine may substitute a fake.
//
// A sandbox runs the Python runtime (runtimes/python/gust_runtime) for one
// function version. It is created by forking a pre-initialised zygote (a
// Python that has imported the runtime and the preloaded modules: by default
// /usr/bin/python3 running the _gust_zygote extension, else gust-sandbox-init,
// an embedded Python; zygote_server.h); one zygote per Python environment
// (spec.python: a venv's, pyenv's, conda's CPython >= 3.9, whose prefixes are
// bound read-only at their own paths; env_launcher.h), and the child, before
// any user code runs:
//   - lives in new pid, mount, ipc, uts and (unless spec.network) net namespaces
//     (with spec.network it shares the host's, whose own services an nftables
//     rule closes to it: loopback_guard.h; not rootless), as pid 2: pid 1 is
//     the sandbox's init (namespace_init.h), which reaps orphans and forwards
//     termination signals;
//   - is in its own cgroup: memory limit = memory_mb (swap off), pids limit,
//     cpu weight;
//   - sees a root made of read-only system dirs, the bundle read-only at
//     /var/task, the runtime at /var/runtime, a private size-limited /tmp, a
//     minimal /dev and its own /proc; nothing of the state dir or the engine
//     but, when given, the engine's sandbox channel (a unix socket's directory,
//     read-only at /run/gust: api/channel_api.h) and the gust client library
//     (read-only at /var/gust/gust);
//   - has rlimits (open files 1024, core 0), runs as an unprivileged uid with no
//     capabilities and no_new_privs, under a seccomp filter that denies mount,
//     ptrace, kexec, bpf, keyctl, unshare/setns, module loading and the like.
// Rootless mode (the engine is not root): the same namespaces, mounts, uid,
// seccomp and no_new_privs, built inside user namespaces (the zygote's maps
// its uid 0 to the engine's uid; each sandbox gets a nested one mapping the
// sandbox uid to it); cgroups are replaced by rlimits: RLIMIT_DATA for memory
// (memory_mb on top of what the runtime already holds; a MemoryError ends the
// sandbox as Runtime.OutOfMemory), RLIMIT_NPROC for processes (counted per
// sandbox, since each has its own user namespace); cpu weight is not enforced.
//
// Thread-safety: all methods and callbacks run on the io_context given at
// construction (the engine's thread). Callbacks are never invoked inline from
// the call that registers them.
#pragma once

#include <boost/asio/io_context.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/status.h"

namespace gust::sandbox {

struct SandboxSpec {
  std::string id;          // unique, [a-z0-9-]; names the cgroup too
  std::string bundle_dir;  // extracted code, mounted read-only at /var/task
  std::string handler;     // "module.function"
  std::string function_name;
  std::string function_version;
  int memory_mb = 128;
  int tmp_mb = 512;
  int pids_max = 1024;
  int cpu_weight = 100;  // cgroup v2 scale 1..10000 (v1 shares = weight * 1024 / 100)
  int timeout_s = 3;     // informational for the runtime (context); the engine enforces
  bool network = false;  // the host's network namespace, less its loopback (above)
  // The runtime's boto3 relay (runtimes/python/gust_runtime/s3_relay.py): only for
  // sandboxes that may reach buckets, so that no other cold start pays for its socket.
  bool object_relay = false;
  std::map<std::string, std::string> env;  // user environment (validated by the caller)
  // The Python environment to run in: an interpreter's absolute path as its
  // user runs it (a venv's bin/python, not what it links to, so the venv is
  // found). "": the launcher's own (LauncherOptions::python).
  std::string python;
};

// What the engine holds for a live sandbox. The fds are owned by the engine
// from the moment the spawn callback runs.
struct SandboxHandle {
  std::string id;
  int pid = -1;         // in the engine's pid namespace
  int control_fd = -1;  // stream socket speaking the runtime protocol (runtime/protocol.h)
  int log_fd = -1;      // read end of the sandbox's stdout+stderr pipe (non-blocking)
};

struct ExitInfo {
  int exit_code = -1;       // valid when signal == 0
  int signal = 0;           // terminating signal, 0 if it exited
  bool oom_killed = false;  // the cgroup's OOM killer fired (rootless: RLIMIT_DATA hit)
  uint64_t peak_memory_bytes = 0;
};

using SpawnCallback = std::function<void(Result<SandboxHandle>)>;
using ExitCallback = std::function<void(const std::string& id, const ExitInfo& info)>;

class SandboxLauncher {
 public:
  virtual ~SandboxLauncher() = default;

  // Starts the zygote(s). Errors name what is missing (e.g. "cgroup memory
  // controller not found at /sys/fs/cgroup/memory").
  virtual Status Start() = 0;
  // Stops the zygote(s) and kills every sandbox, removing their cgroups.
  virtual void Shutdown() = 0;

  // Creates a sandbox. The callback gets the handle once the child exists
  // (the runtime then reports READY or INIT_ERROR over control_fd).
  virtual void Spawn(const SandboxSpec& spec, SpawnCallback done) = 0;
  // SIGKILLs every process of the sandbox. The exit callback follows.
  virtual void Kill(const std::string& id) = 0;
  // Called once per sandbox when its processes are gone and reaped; after
  // it the cgroup is removed and the id forgotten.
  virtual void SetExitCallback(ExitCallback callback) = 0;

  // Current peak memory of a live sandbox in bytes (0 if unknown): the
  // cgroup's peak, or in rootless mode the peak RSS (VmHWM) of its runtime process.
  virtual uint64_t PeakMemoryBytes(const std::string& id) = 0;
  // Human-readable account of the isolation in force, printed by `gust up`:
  // "namespaces pid,mnt,ipc,uts,net; cgroup v1 memory+pids+cpu; seccomp; uid 993".
  virtual std::string IsolationSummary() const = 0;
  // Number of live sandboxes (spawned, not yet exited).
  virtual int LiveCount() const = 0;
};

enum class Isolation {
  kAuto,      // kFull when the engine runs as root, else kRootless
  kFull,      // namespaces + cgroups; needs root
  kRootless,  // user namespaces + rlimits (see the top of this file)
};

struct LauncherOptions {
  Isolation isolation = Isolation::kAuto;
  std::string init_binary;  // path of gust-sandbox-init
  // Path of the _gust_zygote extension module (named _gust_zygote.so, as the
  // bootstrap imports it by name): when set, the zygote is
  // `python -E -s -c <bootstrap>` running it (zygote_server.h), else init_binary.
  std::string zygote_module;
  std::string python = "/usr/bin/python3";
  std::string runtime_dir;   // runtimes/python (holds gust_runtime/)
  std::string bundles_root;  // BundleCache root; every spec.bundle_dir is beneath it
  // Optional: the directory of the engine's sandbox channel socket
  // (api/channel_api.h), bound read-only at /run/gust; python/gust, bound
  // read-only at /var/gust/gust. "": not mounted.
  std::string channel_dir;
  std::string client_dir;
  std::string work_dir;  // private scratch dir for the zygote's root (under the state dir)
  std::vector<std::string> preload_modules;  // imported by the zygote before forking
  uint32_t sandbox_uid = 993;                // unprivileged uid/gid inside sandboxes
  uint32_t sandbox_gid = 993;
  std::string cgroup_parent = "gust";  // cgroup dir name under each controller (one per engine)
  std::string cgroup_root = "/sys/fs/cgroup";
  std::string region = "us-east-1";  // AWS_REGION inside sandboxes
  std::string node_name;             // GUST_NODE inside sandboxes, in cluster mode ("": not set)
  // Full isolation: keep network=true sandboxes off the host's own services
  // (loopback_guard.h). False: they reach them (the operator's choice, e.g.
  // functions that use a database on 127.0.0.1).
  bool guard_host_services = true;
  // Benchmarks: each child writes "gust-sandbox-init: trace t_recv_ns=N
  // fork=<us> cgroup=<us> ..." (its isolation steps' cost) to its log pipe.
  bool trace_isolation_steps = false;
  // Generic children the zygote keeps forked and warmed ahead of demand
  // (cold starts then skip fork and the runtime's generic init). 0: off.
  int prefork = kDefaultPrefork;
  // After a burst of cold starts that emptied the pool, it refills up to this
  // many for the next 10 minutes (then shrinks back to prefork).
  int prefork_max = kDefaultPreforkMax;
  // Tests only: the named isolation step ("cgroup", "unshare", "mounts",
  // "hostname", "loopback", "rlimits", "creds", "seccomp", "fds") fails with
  // EIO in every child, which must then exit 127 without running user code.
  std::string test_fail_step;
  // How long Start() waits for the zygote's "ready" (preloading can be slow).
  int start_timeout_ms = 120000;

  // Other Python environments (SandboxSpec::python; env_launcher.h). An
  // environment's zygote with no live sandbox for this long is stopped; the
  // next spawn in it starts it again.
  int python_env_keep_alive_ms = 10 * 60 * 1000;
  // Modules an environment's zygote imports before forking, by interpreter
  // path as in SandboxSpec::python (preload_modules is the default zygote's,
  // Debian's). Missing ones are warnings.
  std::map<std::string, std::vector<std::string>> python_env_preload;
  // Full isolation: an environment's zygote runs its interpreter, prefix and
  // site-packages as root, so they must be owned by root or the engine's uid
  // (and not be group/other-writable); these uids are accepted as owners too
  // (`gust up --trusted-python-owner UID`). Rootless mode ignores it.
  std::vector<uint32_t> trusted_python_owners;
  // Set by the environment router for an environment's zygote, not by callers:
  // host dirs bound read-only at the same paths in the sandboxes' root.
  std::vector<std::string> ro_binds;
};

// The real launcher: an EnvLauncher (env_launcher.h) routing each spawn to
// the zygote of its Python environment (ZygoteLauncher, zygote_launcher.h).
std::unique_ptr<SandboxLauncher> MakeZygoteLauncher(boost::asio::io_context& io,
                                                    LauncherOptions options);

}  // namespace gust::sandbox
