#include "sandbox/env_launcher.h"

#include <unistd.h>

#include <spdlog/spdlog.h>
#include <algorithm>
#include <atomic>
#include <boost/asio/post.hpp>
#include <cstdio>

namespace gust::sandbox {
namespace {

namespace asio = boost::asio;

// Stable across engine runs (unlike std::hash's promise), so an environment's
// cgroup parent and scratch dir have the same name the next time, and
// whatever a crashed engine left under them is cleaned by the next start.
std::string Hex8(const std::string& s) {
  uint32_t h = 2166136261u;  // FNV-1a
  for (unsigned char c : s) h = (h ^ c) * 16777619u;
  char buf[9];
  std::snprintf(buf, sizeof(buf), "%08x", h);
  return buf;
}

}  // namespace

struct EnvLauncherChecker {
  std::thread thread;
  std::shared_ptr<std::atomic<bool>> done = std::make_shared<std::atomic<bool>>(false);
};

EnvLauncher::EnvLauncher(asio::io_context& io, LauncherOptions options)
    : io_(io),
      options_(std::move(options)),
      default_(std::make_unique<ZygoteLauncher>(io, options_)) {
  default_->SetExitCallback(
      [this](const std::string& id, const ExitInfo& info) { OnExit(id, info); });
}

EnvLauncher::~EnvLauncher() { Shutdown(); }

Status EnvLauncher::Start() {
  Status s = default_->Start();
  started_ = s.ok();
  return s;
}

bool EnvLauncher::IsDefault(const std::string& python) const {
  return python.empty() || python == options_.python;
}

void EnvLauncher::Spawn(const SandboxSpec& spec, SpawnCallback done) {
  if (owner_.count(spec.id)) {
    asio::post(io_, [done = std::move(done), id = spec.id]() {
      done(Status::Conflict("sandbox '" + id + "' exists"));
    });
    return;
  }
  if (IsDefault(spec.python)) {
    owner_[spec.id] = "";
    std::weak_ptr<int> alive = alive_;
    default_->Spawn(spec,
                    [this, alive, id = spec.id, done = std::move(done)](Result<SandboxHandle> r) {
                      if (!r.ok() && !alive.expired()) owner_.erase(id);
                      done(std::move(r));
                    });
    return;
  }
  if (!started_) {
    asio::post(io_, [done = std::move(done)]() {
      done(Status::Unavailable("sandbox launcher not started"));
    });
    return;
  }
  if (options_.zygote_module.empty()) {
    // gust-sandbox-init embeds Debian's libpython: it cannot be another one.
    asio::post(io_, [done = std::move(done), python = spec.python]() {
      done(
          Status::InvalidArgument("python environment " + python +
                                  ": this engine's zygote is the embedded gust-sandbox-init "
                                  "(gust up --zygote embedded), which runs Debian's python3 only"));
    });
    return;
  }
  std::unique_ptr<Env>& slot = envs_[spec.python];
  if (!slot) {
    slot = std::make_unique<Env>();
    slot->python = spec.python;
    BeginCheck(*slot);
  }
  Env& env = *slot;
  if (env.idle) env.idle->cancel();
  // Queued ones count as the environment's, for Kill and for Conflict.
  owner_[spec.id] = env.python;
  ++env.sandboxes;
  Pending p{spec, std::move(done), false};
  if (env.state == EnvState::kChecking) {
    env.pending.push_back(std::move(p));
  } else {
    Forward(env, std::move(p));
  }
}

void EnvLauncher::BeginCheck(Env& env) {
  // Threads of finished checks are joined here, so they do not pile up.
  for (auto it = checkers_.begin(); it != checkers_.end();) {
    if (it->done->load()) {
      it->thread.join();
      it = checkers_.erase(it);
    } else {
      ++it;
    }
  }
  env.serial = ++next_serial_;
  PythonEnvRules rules;
  rules.rootless = ::geteuid() != 0 || options_.isolation == Isolation::kRootless;
  rules.engine_uid = ::geteuid();
  rules.trusted_owners = options_.trusted_python_owners;
  rules.sandbox_uid = options_.sandbox_uid;
  rules.sandbox_gid = options_.sandbox_gid;
  EnvLauncherChecker checker;
  std::weak_ptr<int> alive = alive_;
  checker.thread = std::thread(
      [this, alive, rules, python = env.python, serial = env.serial, done = checker.done]() {
        Result<PythonEnv> result = LoadPythonEnv(python, rules);
        // Shutdown() joins this thread before the launcher (or the io_context) goes.
        asio::post(io_, [this, alive, python, serial, result = std::move(result)]() mutable {
          if (!alive.expired()) OnChecked(python, serial, std::move(result));
        });
        done->store(true);
      });
  checkers_.push_back(std::move(checker));
}

void EnvLauncher::OnChecked(const std::string& python, uint64_t serial, Result<PythonEnv> result) {
  auto it = envs_.find(python);
  if (it == envs_.end() || it->second->serial != serial) return;
  Env& env = *it->second;
  if (!result.ok()) return FailEnv(python, result.status());
  LauncherOptions o = options_;
  std::string tag = Hex8(python);
  o.python = python;
  auto preload = options_.python_env_preload.find(python);
  o.preload_modules =
      preload == options_.python_env_preload.end() ? std::vector<std::string>{} : preload->second;
  o.python_env_preload.clear();
  // An environment's zygote serves its own users: a small pool.
  o.prefork = std::min(options_.prefork, 1);
  o.prefork_max = std::min(options_.prefork_max, 2);
  o.cgroup_parent = options_.cgroup_parent + "-e" + tag;
  o.work_dir = options_.work_dir + "/env-" + tag;
  o.ro_binds = result->BindDirs();
  env.launcher = std::make_unique<ZygoteLauncher>(io_, std::move(o));
  // The default zygote's nftables table closes the loopback to the sandbox
  // uid, which every environment's sandboxes share: no second table (and no
  // nft run, ~40 ms, on the engine's thread per environment start).
  env.launcher->ShareLoopbackGuard();
  env.launcher->SetExitCallback(
      [this](const std::string& id, const ExitInfo& info) { OnExit(id, info); });
  Status s = env.launcher->StartAsync();
  if (!s.ok()) return FailEnv(python, s.WithContext("python environment " + python));
  spdlog::info("sandbox: python environment {} ({} {}; prefix {}, base prefix {}): zygote starting",
               python, result->implementation, result->version, result->prefix,
               result->base_prefix);
  env.state = EnvState::kRunning;
  std::deque<Pending> pending = std::move(env.pending);
  env.pending.clear();
  for (Pending& p : pending) Forward(env, std::move(p));
}

void EnvLauncher::FailEnv(const std::string& python, const Status& status) {
  auto it = envs_.find(python);
  if (it == envs_.end()) return;
  std::unique_ptr<Env> env = std::move(it->second);
  envs_.erase(it);
  spdlog::warn("sandbox: {}", status.ToString());
  if (env->launcher) env->launcher->Shutdown();
  for (Pending& p : env->pending) {
    owner_.erase(p.spec.id);
    asio::post(io_, [done = std::move(p.done), status]() { done(status); });
  }
}

void EnvLauncher::Forward(Env& env, Pending p) {
  std::string id = p.spec.id;
  std::weak_ptr<int> alive = alive_;
  env.launcher->Spawn(p.spec, [this, alive, id, python = env.python,
                               done = std::move(p.done)](Result<SandboxHandle> r) {
    if (!r.ok() && !alive.expired()) {
      owner_.erase(id);
      auto it = envs_.find(python);
      if (it != envs_.end() && --it->second->sandboxes == 0) ArmIdle(*it->second);
    }
    done(std::move(r));
  });
  if (p.kill) env.launcher->Kill(id);
}

void EnvLauncher::OnExit(const std::string& id, const ExitInfo& info) {
  auto owner = owner_.find(id);
  std::string python = owner == owner_.end() ? "" : owner->second;
  if (owner != owner_.end()) owner_.erase(owner);
  if (!python.empty()) {
    auto it = envs_.find(python);
    if (it != envs_.end() && --it->second->sandboxes == 0) ArmIdle(*it->second);
  }
  if (exit_callback_) exit_callback_(id, info);
}

void EnvLauncher::ArmIdle(Env& env) {
  if (!env.idle) env.idle = std::make_unique<asio::steady_timer>(io_);
  env.idle->expires_after(std::chrono::milliseconds(options_.python_env_keep_alive_ms));
  std::weak_ptr<int> alive = alive_;
  env.idle->async_wait([this, alive, python = env.python](const boost::system::error_code& e) {
    if (e || alive.expired()) return;
    auto it = envs_.find(python);
    // A spawn since the timer fired (its cancel came too late) keeps it.
    if (it == envs_.end() || it->second->sandboxes > 0 || it->second->state != EnvState::kRunning) {
      return;
    }
    spdlog::info("sandbox: python environment {} idle: its zygote stops", python);
    std::unique_ptr<Env> env = std::move(it->second);
    envs_.erase(it);
    env->launcher->Shutdown();
  });
}

SandboxLauncher* EnvLauncher::Owner(const std::string& id) {
  auto owner = owner_.find(id);
  if (owner == owner_.end()) return nullptr;
  if (owner->second.empty()) return default_.get();
  auto it = envs_.find(owner->second);
  return it == envs_.end() ? nullptr : it->second->launcher.get();
}

void EnvLauncher::Kill(const std::string& id) {
  auto owner = owner_.find(id);
  if (owner == owner_.end()) return;
  auto it = owner->second.empty() ? envs_.end() : envs_.find(owner->second);
  if (it != envs_.end() && it->second->state == EnvState::kChecking) {
    for (Pending& p : it->second->pending) p.kill = p.kill || p.spec.id == id;
    return;
  }
  if (SandboxLauncher* l = Owner(id)) l->Kill(id);
}

uint64_t EnvLauncher::PeakMemoryBytes(const std::string& id) {
  SandboxLauncher* l = Owner(id);
  return l ? l->PeakMemoryBytes(id) : 0;
}

int EnvLauncher::LiveCount() const {
  int n = default_->LiveCount();
  for (const auto& [python, env] : envs_) n += env->launcher ? env->launcher->LiveCount() : 0;
  return n;
}

std::string EnvLauncher::IsolationSummary() const {
  return default_->IsolationSummary() +
         "; other Python environments: a zygote each (started on first use, stopped after " +
         std::to_string(options_.python_env_keep_alive_ms / 1000) +
         " s without sandboxes), same isolation, its prefixes read-only at their own paths";
}

int EnvLauncher::ZygotePid(const std::string& python) const {
  if (IsDefault(python)) return default_->ZygotePid();
  auto it = envs_.find(python);
  return it == envs_.end() || !it->second->launcher ? 0 : it->second->launcher->ZygotePid();
}

std::vector<std::string> EnvLauncher::Environments() const {
  std::vector<std::string> out;
  for (const auto& [python, env] : envs_) out.push_back(python);
  return out;
}

void EnvLauncher::JoinCheckers() {
  for (EnvLauncherChecker& c : checkers_) c.thread.join();
  checkers_.clear();
}

void EnvLauncher::Shutdown() {
  started_ = false;
  JoinCheckers();
  std::map<std::string, std::unique_ptr<Env>> envs = std::move(envs_);
  envs_.clear();
  for (auto& [python, env] : envs) {
    for (Pending& p : env->pending) {
      asio::post(io_, [done = std::move(p.done)]() {
        done(Status::Unavailable("sandbox launcher shut down"));
      });
    }
    if (env->launcher) env->launcher->Shutdown();
  }
  default_->Shutdown();
  owner_.clear();
}

std::unique_ptr<SandboxLauncher> MakeZygoteLauncher(asio::io_context& io, LauncherOptions options) {
  return std::make_unique<EnvLauncher>(io, std::move(options));
}

}  // namespace gust::sandbox
