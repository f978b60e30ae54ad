// A user's Python environment (a venv, a conda env, a pyenv build) as the
// sandbox layer needs to know it before running a zygote in it: what its
// interpreter reports about itself, and whether gust may run it.
//
// LoadPythonEnv(python, rules):
//   1. python must be an absolute path to an executable file;
//   2. trust, before anything of it runs (full isolation: the zygote runs as
//      root and a venv's .pth files run code at start-up): the interpreter
//      (the path and what it resolves to) and the install dir it sits in must
//      be owned by root, the engine's uid or a trusted uid, and neither they
//      nor their ancestors writable by group or others (a sticky ancestor such
//      as /tmp excepted), as sudo checks a secure path;
//   3. the probe: `python -E -s -S -c <probe>` (-S: no site, so no .pth code
//      runs) reports its implementation, version, sys.prefix (a venv's dir,
//      read from pyvenv.cfg as site would), sys.base_prefix and its library
//      dirs (stdlib, lib-dynload, site-packages of both prefixes);
//   4. CPython >= 3.9 only (the zygote module's stable ABI);
//   5. the prefixes must not lie where the sandbox root has its own dirs
//      (/tmp, /proc, /dev, /var/task, /var/runtime, /run/gust, /var/gust);
//   6. trust (2.) of the prefixes and library dirs found, and their
//      readability by the sandbox uid/gid (it reads them through read-only
//      binds at the same paths, whose parents are fresh 0755 dirs: only the
//      path below each prefix counts). Rootless: no ownership rule (the
//      zygote runs as the engine's user), readability by that user only.
// Every error is InvalidArgument (NotFound for a missing interpreter) and
// names the interpreter, the offending path, its owner and mode, and the fix;
// it is what the user reads when a spawn in that environment fails.
//
// Thread-safety: LoadPythonEnv blocks (it runs the probe, up to timeout_ms):
// call it off the engine's thread. It touches no shared state.
#pragma once

#include <stdint.h>

#include <string>
#include <vector>

#include "common/status.h"

namespace gust::sandbox {

struct PythonEnv {
  std::string python;       // as given (not resolved: a venv's bin/python)
  std::string prefix;       // sys.prefix once site ran (a venv's own dir)
  std::string base_prefix;  // sys.base_prefix (== prefix outside a venv)
  std::string implementation;
  std::string version;  // "3.9.18"
  int major = 0;
  int minor = 0;
  std::vector<std::string> library_dirs;  // stdlib, lib-dynload, site-packages that exist
  // The dirs the sandbox root must bind read-only: prefix and base_prefix,
  // deduplicated, one inside the other dropped.
  std::vector<std::string> BindDirs() const;
};

struct PythonEnvRules {
  bool rootless = false;
  uint32_t engine_uid = 0;
  std::vector<uint32_t> trusted_owners;  // LauncherOptions::trusted_python_owners
  uint32_t sandbox_uid = 993;
  uint32_t sandbox_gid = 993;
  int timeout_ms = 30000;  // for the probe
};

Result<PythonEnv> LoadPythonEnv(const std::string& python, const PythonEnvRules& rules);

}  // namespace gust::sandbox
