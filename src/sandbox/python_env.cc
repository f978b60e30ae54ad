#include "sandbox/python_env.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/json_read.h"
#include "sandbox/unique_fd.h"

namespace gust::sandbox {
namespace {

using nlohmann::json;

// Valid Python 2 and 3 alike, so an old interpreter reports its version
// instead of a syntax error. No site (-S): a venv's prefix is read from its
// pyvenv.cfg the way site.venv() does.
constexpr const char* kProbe = R"(import sys, os, json
exe_dir = os.path.dirname(os.path.abspath(sys.executable))
prefix = sys.prefix
for c in (os.path.join(exe_dir, 'pyvenv.cfg'), os.path.join(os.path.dirname(exe_dir), 'pyvenv.cfg')):
    if os.path.isfile(c):
        prefix = os.path.dirname(exe_dir)
        break
base = getattr(sys, 'base_prefix', sys.prefix)
v = 'python%d.%d' % sys.version_info[:2]
dirs = []
for p in (prefix, base):
    for sub in ('', '/lib-dynload', '/site-packages'):
        d = os.path.join(p, 'lib', v) + sub
        if os.path.isdir(d) and d not in dirs:
            dirs.append(d)
impl = getattr(getattr(sys, 'implementation', None), 'name', 'python')
sys.stdout.write('GUST-PROBE ' + json.dumps({'implementation': impl,
    'version': sys.version.split()[0], 'major': sys.version_info[0],
    'minor': sys.version_info[1], 'prefix': prefix, 'base_prefix': base,
    'library_dirs': dirs}) + '\n')
)";

// Paths the sandbox root has its own dirs at: an environment there would be
// covered (or cover them).
constexpr const char* kReserved[] = {"/tmp",         "/proc",     "/dev",      "/var/task",
                                     "/var/runtime", "/run/gust", "/var/gust", "/.bundles"};

bool Under(const std::string& path, const std::string& dir) {
  return path == dir || (path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 &&
                         path[dir.size()] == '/');
}

std::string Mode(mode_t m) {
  char buf[8];
  std::snprintf(buf, sizeof(buf), "%04o", static_cast<unsigned>(m & 07777));
  return buf;
}

std::string Describe(const std::string& path, const struct stat& st) {
  return path + " (owner uid " + std::to_string(st.st_uid) + ", mode " + Mode(st.st_mode) + ")";
}

std::string Resolve(const std::string& path) {
  std::error_code ec;
  auto real = std::filesystem::canonical(path, ec);
  return ec ? path : real.string();
}

// Rule 2 of the header for one path (resolved) and its ancestors.
Status CheckTrusted(const std::string& python, const std::string& path,
                    const PythonEnvRules& rules) {
  std::string p = Resolve(path);
  bool self = true;
  for (;;) {
    struct stat st;
    if (::stat(p.c_str(), &st) != 0) {
      return Status::FromErrno("python environment " + python + ": " + p, errno);
    }
    bool owner_ok =
        st.st_uid == 0 || st.st_uid == rules.engine_uid ||
        std::count(rules.trusted_owners.begin(), rules.trusted_owners.end(), st.st_uid) > 0;
    bool sticky_dir = !self && S_ISDIR(st.st_mode) && (st.st_mode & S_ISVTX);
    bool writable = (st.st_mode & (S_IWGRP | S_IWOTH)) != 0 && !sticky_dir;
    if (!owner_ok || writable) {
      return Status::InvalidArgument(
          "python environment " + python + ": " + Describe(p, st) + " is " +
          (owner_ok ? "writable by group or others" : "owned by a uid gust does not trust") +
          "; its code runs as root in the sandbox zygote, so gust accepts an environment "
          "whose files are owned by root or the engine's uid (" +
          std::to_string(rules.engine_uid) +
          ") and not writable by group or others; to trust another owner, start the engine "
          "with `gust up --trusted-python-owner " +
          std::to_string(st.st_uid) + "` (LauncherOptions::trusted_python_owners)");
    }
    if (p == "/") return Status::Ok();
    p = std::filesystem::path(p).parent_path().string();
    self = false;
  }
}

bool Allows(const struct stat& st, const PythonEnvRules& rules, int want) {
  // want: 4 read, 1 search/execute; the sandbox user has no supplementary groups.
  int bits = st.st_uid == rules.sandbox_uid   ? (st.st_mode >> 6) & 7
             : st.st_gid == rules.sandbox_gid ? (st.st_mode >> 3) & 7
                                              : st.st_mode & 7;
  return (bits & want) == want;
}

// Rule 6's readability: every component from root (a bound prefix) down to path.
Status CheckReadable(const std::string& python, const std::string& root, const std::string& path,
                     const PythonEnvRules& rules) {
  std::string p = root;
  std::string rest = path.size() > root.size() ? path.substr(root.size() + 1) : "";
  for (;;) {
    struct stat st;
    if (::stat(p.c_str(), &st) != 0) {
      return Status::FromErrno("python environment " + python + ": " + p, errno);
    }
    int want = S_ISDIR(st.st_mode) ? 5 : 4;
    bool ok = rules.rootless ? ::access(p.c_str(), S_ISDIR(st.st_mode) ? R_OK | X_OK : R_OK) == 0
                             : Allows(st, rules, want);
    if (!ok) {
      std::string who = rules.rootless
                            ? "the engine's user (uid " + std::to_string(rules.engine_uid) + ")"
                            : "the sandbox user (uid " + std::to_string(rules.sandbox_uid) + ")";
      return Status::InvalidArgument("python environment " + python + ": " + who + " cannot read " +
                                     Describe(p, st) +
                                     ", so imports from it would fail inside the sandbox; make "
                                     "it readable (chmod o+rX)");
    }
    if (rest.empty()) return Status::Ok();
    size_t slash = rest.find('/');
    p += "/" + rest.substr(0, slash);
    rest = slash == std::string::npos ? "" : rest.substr(slash + 1);
  }
}

Result<std::string> RunProbe(const std::string& python, int timeout_ms) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return Status::FromErrno("pipe2", errno);
  UniqueFd rd(fds[0]), wr(fds[1]);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, wr.get(), 1);
  posix_spawn_file_actions_adddup2(&actions, wr.get(), 2);
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);  // none of the engine's sockets
  std::vector<std::string> args = {python, "-E", "-s", "-S", "-c", kProbe};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::string path = "PATH=/usr/local/bin:/usr/bin:/bin";
  std::string lang = "LANG=C.UTF-8";
  char* envp[] = {path.data(), lang.data(), nullptr};
  pid_t pid = 0;
  int rc = ::posix_spawn(&pid, python.c_str(), &actions, nullptr, argv.data(), envp);
  posix_spawn_file_actions_destroy(&actions);
  wr.Reset();
  if (rc != 0) return Status::FromErrno("python environment: running " + python, rc);
  std::string out;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  bool timed_out = false;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    pollfd p{rd.get(), POLLIN, 0};
    if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) == 0) {
      timed_out = true;
      break;
    }
    char buf[4096];
    ssize_t n = ::read(rd.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (out.size() < 65536) out.append(buf, static_cast<size_t>(n));
  }
  if (timed_out) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) {
    return Status::Timeout("python environment " + python + ": its interpreter did not report " +
                           "itself within " + std::to_string(timeout_ms) + " ms");
  }
  size_t at = out.rfind("GUST-PROBE ");
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || at == std::string::npos) {
    if (out.size() > 2000) out = out.substr(out.size() - 2000);
    return Status::InvalidArgument(
        "python environment " + python + ": its interpreter failed to start (" +
        (WIFEXITED(status) ? "exit " + std::to_string(WEXITSTATUS(status))
                           : "signal " + std::to_string(WTERMSIG(status))) +
        "): " + out);
  }
  return out.substr(at + 11);
}

}  // namespace

std::vector<std::string> PythonEnv::BindDirs() const {
  std::vector<std::string> out;
  for (const std::string& d : {prefix, base_prefix}) {
    bool covered =
        std::any_of(out.begin(), out.end(), [&](const std::string& o) { return Under(d, o); });
    if (!covered) {
      out.erase(
          std::remove_if(out.begin(), out.end(), [&](const std::string& o) { return Under(o, d); }),
          out.end());
      out.push_back(d);
    }
  }
  return out;
}

Result<PythonEnv> LoadPythonEnv(const std::string& python, const PythonEnvRules& rules) {
  if (python.empty() || python[0] != '/') {
    return Status::InvalidArgument("python environment '" + python +
                                   "': the interpreter must be given as an absolute path");
  }
  struct stat st;
  if (::stat(python.c_str(), &st) != 0) {
    int err = errno;
    auto s = Status::FromErrno("python environment " + python + ": no interpreter there", err);
    return err == ENOENT ? Status::NotFound(s.message()) : s;
  }
  if (!S_ISREG(st.st_mode) || ::access(python.c_str(), X_OK) != 0) {
    return Status::InvalidArgument("python environment " + python + ": not an executable file");
  }
  // Before the probe runs it: the interpreter and the install it finds its
  // standard library in (two levels up from the binary, as getpath looks).
  std::string real = Resolve(python);
  std::string install = std::filesystem::path(real).parent_path().parent_path().string();
  if (!rules.rootless) {
    GUST_RETURN_IF_ERROR(CheckTrusted(python, python, rules));
    GUST_RETURN_IF_ERROR(CheckTrusted(python, install, rules));
    if (::access((install + "/lib").c_str(), F_OK) == 0) {
      GUST_RETURN_IF_ERROR(CheckTrusted(python, install + "/lib", rules));
    }
  }
  GUST_ASSIGN_OR_RETURN(std::string report, RunProbe(python, rules.timeout_ms));
  json j = json::parse(report, nullptr, false);
  PythonEnv env;
  env.python = python;
  env.implementation = JsonStringOr(j, "implementation", "");
  env.version = JsonStringOr(j, "version", "");
  env.major = static_cast<int>(JsonIntOr(j, "major", 0));
  env.minor = static_cast<int>(JsonIntOr(j, "minor", 0));
  env.prefix = JsonStringOr(j, "prefix", "");
  env.base_prefix = JsonStringOr(j, "base_prefix", "");
  if (const json* dirs = JsonFind(j, "library_dirs"); dirs && dirs->is_array()) {
    for (const json& d : *dirs) {
      if (d.is_string()) env.library_dirs.push_back(d.get<std::string>());
    }
  }
  if (env.implementation != "cpython" || env.major < 3 || (env.major == 3 && env.minor < 9)) {
    return Status::InvalidArgument(
        "python environment " + python + " is " +
        (env.implementation.empty() ? std::string("python") : env.implementation) + " " +
        env.version +
        ": gust runs CPython 3.9 or later (the sandbox zygote's module uses the stable ABI of "
        "CPython 3.9)");
  }
  if (env.prefix.empty() || env.prefix[0] != '/' || env.base_prefix.empty() ||
      env.base_prefix[0] != '/') {
    return Status::InvalidArgument("python environment " + python +
                                   ": its interpreter reported no absolute sys.prefix");
  }
  for (const std::string& dir : env.BindDirs()) {
    for (const char* reserved : kReserved) {
      if (Under(dir, reserved) || dir == "/") {
        return Status::InvalidArgument(
            "python environment " + python + ": its prefix " + dir + " is under " + reserved +
            ", which every sandbox has its own of; move the environment elsewhere");
      }
    }
  }
  std::vector<std::string> checked = {env.prefix, env.base_prefix};
  checked.insert(checked.end(), env.library_dirs.begin(), env.library_dirs.end());
  for (const std::string& dir : checked) {
    if (!rules.rootless) GUST_RETURN_IF_ERROR(CheckTrusted(python, dir, rules));
    for (const std::string& root : env.BindDirs()) {
      if (Under(dir, root)) GUST_RETURN_IF_ERROR(CheckReadable(python, root, dir, rules));
    }
  }
  // The interpreter as sys.executable names it, where the sandbox sees it.
  for (const std::string& root : env.BindDirs()) {
    if (Under(python, root)) GUST_RETURN_IF_ERROR(CheckReadable(python, root, python, rules));
  }
  return env;
}

}  // namespace gust::sandbox
