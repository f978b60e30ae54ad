// EnvLauncher: the SandboxLauncher the engine holds (MakeZygoteLauncher). It
// routes each sandbox to the zygote of its Python environment
// (SandboxSpec::python):
//   - "" or the launcher's own interpreter (LauncherOptions::python): the
//     default ZygoteLauncher, started by Start() as before, unchanged;
//   - any other interpreter: a ZygoteLauncher of its own, created by the
//     first Spawn in it. That spawn never blocks the engine's thread: the
//     environment is checked on a thread of its own (LoadPythonEnv,
//     python_env.h: version, trust, readability; the probe runs its
//     interpreter), then the zygote is started without waiting for its
//     "ready" (ZygoteLauncher::StartAsync); spawns that arrive meanwhile
//     queue, in order. Its options are the default's but for: python; the
//     preloads of python_env_preload[python] (none by default); prefork 1
//     (max 2); cgroup_parent <cgroup_parent>-e<8 hex of the path's FNV-1a>;
//     work_dir/env-<same>; the environment's prefix and base prefix bound
//     read-only at the same paths (ro_binds); no nftables table of its own
//     (the default's matches the sandbox uid, which they share).
//     Once none of its sandboxes has lived for python_env_keep_alive_ms, it
//     is shut down (its cgroup parent removed) and forgotten; the
//     next spawn starts it again (and checks the environment again).
// Kill, PeakMemoryBytes and exits route to the launcher that owns the id.
//
// Errors: a spawn in an environment that fails its check, or whose
// ZygoteLauncher cannot start, fails through its callback with the cause
// (python_env.h's messages), as does every spawn queued behind it; the
// environment is forgotten, so a fixed one is checked again by the next
// spawn. A zygote that dies before "ready" fails its queued spawns with its
// own "fatal" text (e.g. an import error of the runtime); the next spawn
// restarts it (ZygoteLauncher's restart path). Other environments and the
// default are unaffected.
//
// Thread-safety: as SandboxLauncher (the engine's thread), except the
// environment checks, which run on their own threads and post their result
// back to the io_context; Shutdown() joins them (each is bounded by the
// probe's timeout).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <deque>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "sandbox/python_env.h"
#include "sandbox/sandbox.h"
#include "sandbox/zygote_launcher.h"

namespace gust::sandbox {

struct EnvLauncherChecker;  // a check's thread (env_launcher.cc)

class EnvLauncher : public SandboxLauncher {
 public:
  EnvLauncher(boost::asio::io_context& io, LauncherOptions options);
  ~EnvLauncher() override;

  Status Start() override;
  void Shutdown() override;
  void Spawn(const SandboxSpec& spec, SpawnCallback done) override;
  void Kill(const std::string& id) override;
  void SetExitCallback(ExitCallback callback) override { exit_callback_ = std::move(callback); }
  uint64_t PeakMemoryBytes(const std::string& id) override;
  std::string IsolationSummary() const override;
  int LiveCount() const override;

  // For tests: the default zygote's pid (python ""), or an environment's (0
  // when it has none running), and the environments with a launcher.
  int ZygotePid(const std::string& python = "") const;
  std::vector<std::string> Environments() const;

 private:
  enum class EnvState { kChecking, kRunning };
  struct Pending {
    SandboxSpec spec;
    SpawnCallback done;
    bool kill = false;
  };
  struct Env {
    std::string python;
    EnvState state = EnvState::kChecking;
    uint64_t serial = 0;  // tells a stale check's result from the current one's
    std::unique_ptr<ZygoteLauncher> launcher;
    std::deque<Pending> pending;
    std::unique_ptr<boost::asio::steady_timer> idle;
    int sandboxes = 0;  // queued, spawning or live: the zygote is idle at 0
  };

  bool IsDefault(const std::string& python) const;
  void BeginCheck(Env& env);
  void OnChecked(const std::string& python, uint64_t serial, Result<PythonEnv> result);
  void FailEnv(const std::string& python, const Status& status);
  void Forward(Env& env, Pending p);
  void OnExit(const std::string& id, const ExitInfo& info);
  void ArmIdle(Env& env);
  SandboxLauncher* Owner(const std::string& id);
  void JoinCheckers();

  boost::asio::io_context& io_;
  LauncherOptions options_;
  std::unique_ptr<ZygoteLauncher> default_;
  std::map<std::string, std::unique_ptr<Env>> envs_;  // by interpreter path
  std::map<std::string, std::string> owner_;          // sandbox id -> python ("" = default)
  ExitCallback exit_callback_;
  bool started_ = false;  // between a successful Start() and Shutdown()
  uint64_t next_serial_ = 0;
  std::vector<EnvLauncherChecker> checkers_;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

}  // namespace gust::sandbox
