#include "sandbox/zygote_launcher.h"

#include <fcntl.h>
#include <poll.h>
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
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/json_read.h"
#include "sandbox/fd_limits.h"
#include "sandbox/loopback_guard.h"
#include "sandbox/seccomp_filter.h"
#include "sandbox/zygote_server.h"

extern char** environ;

namespace gust::sandbox {
namespace {

using nlohmann::json;
namespace asio = boost::asio;

constexpr int kRemoveAttempts = 5000;  // x 1 ms
constexpr int kPidfdIdType = 3;        // P_PIDFD (linux/wait.h; glibc 2.36 lacks it)
// Rootless: the runtime exits with this code when the function runs out of
// memory under RLIMIT_DATA (docs/RUNTIME_PROTOCOL.md); reported as an OOM.
constexpr int kRlimitOomExitCode = 251;

// The value of "<key>:" in a /proc "Key:\tvalue" file, or 0.
uint64_t ProcField(const std::string& path, const char* key) {
  auto text = ReadFile(path);
  if (!text.ok()) return 0;
  std::string needle = std::string("\n") + key + ":";
  size_t pos = ("\n" + *text).find(needle);
  if (pos == std::string::npos) return 0;
  return std::strtoull(text->c_str() + pos + needle.size() - 1, nullptr, 10);
}

bool ValidId(const std::string& id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return true;
}

ExitInfo FromWaitStatus(int status) {
  ExitInfo info;
  if (WIFEXITED(status)) {
    info.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    info.signal = WTERMSIG(status);
  }
  return info;
}

bool PollReadable(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, timeout_ms) > 0;
}

}  // namespace

ZygoteLauncher::ZygoteLauncher(asio::io_context& io, LauncherOptions options)
    : io_(io), options_(std::move(options)) {}

ZygoteLauncher::~ZygoteLauncher() { Shutdown(); }

std::string ZygoteLauncher::ZygoteName() const {
  return options_.zygote_module.empty() ? "gust-sandbox-init"
                                        : "the sandbox zygote (" + options_.python + " running " +
                                              options_.zygote_module + ")";
}

Status ZygoteLauncher::WaitReadyBlocking() {
  int fd = zygote_sock_->native_handle();
  auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.start_timeout_ms);
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) return Status::Timeout(ZygoteName() + " did not report ready in time");
    if (!PollReadable(fd, static_cast<int>(left))) continue;
    auto msg = ReceiveMessage(fd);
    if (!msg.ok()) {
      if (msg.status().code() == Code::kUnavailable) continue;
      return msg.status().WithContext("reading from " + ZygoteName());
    }
    if (msg->eof) {
      return Status::Unavailable(ZygoteName() +
                                 " exited during start-up (its stderr is the engine's)");
    }
    json j = JsonParse(msg->data);
    std::string type = JsonStringOr(j, "type", "");
    if (type == "fatal") {
      return Status::Unavailable(ZygoteName() + ": " + JsonStringOr(j, "error", "?"));
    }
    if (type != "ready") return Status::Internal("unexpected first message from zygote");
    HandleMessage(std::move(*msg));
    return Status::Ok();
  }
}

void ZygoteLauncher::StartReading() {
  std::weak_ptr<int> alive = alive_;
  uint64_t gen = generation_;
  zygote_sock_->async_wait(asio::posix::descriptor_base::wait_read,
                           [this, alive, gen](const boost::system::error_code& err) {
                             if (err || alive.expired() || gen != generation_) return;
                             OnReadable();
                           });
}

void ZygoteLauncher::OnReadable() {
  for (;;) {
    auto msg = ReceiveMessage(zygote_sock_->native_handle(), MSG_DONTWAIT);
    if (!msg.ok() && msg.status().code() == Code::kUnavailable) break;
    if (!msg.ok() || msg->eof) {
      OnZygoteGone(msg.ok() ? "the zygote closed its socket" : msg.status().ToString());
      return;
    }
    uint64_t gen = generation_;
    HandleMessage(std::move(*msg));
    if (gen != generation_ || !zygote_sock_) return;  // the zygote went away meanwhile
  }
  StartReading();
}

void ZygoteLauncher::HandleMessage(ReceivedMessage msg) {
  // The zygote is gust's own process, but it runs beside user code: its
  // messages are read like any other outside input (docs/STYLE.md).
  json j = JsonParse(msg.data);
  if (!j.is_object()) {
    spdlog::error("sandbox: malformed message from zygote");
    return;
  }
  std::string type = JsonStringOr(j, "type", "");
  std::string id = JsonStringOr(j, "id", "");
  if (type == "ready") {
    if (const json* warnings = JsonFind(j, "warnings"); warnings && warnings->is_array()) {
      for (const json& w : *warnings) spdlog::warn("sandbox zygote: {}", JsonText(w));
    }
    state_ = ZygoteState::kReady;
    Flush();
  } else if (type == "fatal") {
    fatal_ = JsonStringOr(j, "error", "?");
    spdlog::error("sandbox zygote: {}", fatal_);
  } else if (type == "spawned") {
    Sandbox* sb = Find(id);
    if (sb == nullptr || msg.fds.empty() || msg.fds.size() > 2) {
      spdlog::error("sandbox: unexpected spawn reply for '{}'", id);
      for (const UniqueFd& fd : msg.fds) Os().pidfd_send_signal(fd.get(), SIGKILL);
      return;
    }
    sb->pidfd = std::move(msg.fds[0]);
    if (msg.fds.size() == 2) sb->init_pidfd = std::move(msg.fds[1]);
    sb->spawned = true;
    sb->handle.id = id;
    sb->handle.pid = static_cast<int>(JsonIntOr(j, "pid", -1));
    if (rootless_) {
      // The zygote reports pids of its own pid namespace; the pidfd knows ours.
      sb->host_pid = static_cast<int>(
          ProcField("/proc/self/fdinfo/" + std::to_string(sb->pidfd.get()), "Pid"));
      sb->handle.pid = sb->host_pid;
    }
    sb->handle.control_fd = sb->control.Release();
    sb->handle.log_fd = sb->log.Release();
    if (sb->kill_requested) Os().pidfd_send_signal(sb->pidfd.get(), SIGKILL);
    SpawnCallback done = std::move(sb->done);
    sb->done = nullptr;
    done(sb->handle);
  } else if (type == "spawn_failed") {
    Sandbox* sb = Find(id);
    if (sb != nullptr) {
      FailSpawn(*sb, Status::Unavailable("sandbox spawn failed: " + JsonStringOr(j, "error", "")));
    }
  } else if (type == "exited") {
    Sandbox* sb = Find(id);
    if (sb != nullptr && !sb->finishing) {
      ExitInfo info = FromWaitStatus(static_cast<int>(JsonIntOr(j, "status", 0)));
      if (rootless_ && info.signal == 0 && info.exit_code == kRlimitOomExitCode) {
        info.oom_killed = true;
        info.peak_memory_bytes = sb->peak_seen;
      }
      Finish(id, info, true);
    }
  }
}

void ZygoteLauncher::Flush() {
  if (state_ != ZygoteState::kReady || write_waiting_) return;
  while (!outbox_.empty()) {
    Outgoing& out = outbox_.front();
    std::vector<int> fds;
    for (const UniqueFd& f : out.fds) fds.push_back(f.get());
    Status s = SendMessage(zygote_sock_->native_handle(), out.data, fds, MSG_DONTWAIT);
    if (s.code() == Code::kUnavailable) {
      write_waiting_ = true;
      std::weak_ptr<int> alive = alive_;
      uint64_t gen = generation_;
      zygote_sock_->async_wait(asio::posix::descriptor_base::wait_write,
                               [this, alive, gen](const boost::system::error_code& err) {
                                 if (err || alive.expired() || gen != generation_) return;
                                 write_waiting_ = false;
                                 Flush();
                               });
      return;
    }
    std::string id = out.id;
    outbox_.pop_front();  // closes our copies of the child's fds
    Sandbox* sb = Find(id);
    if (sb == nullptr) continue;
    if (s.ok()) {
      sb->request_sent = true;
    } else {
      FailSpawn(*sb, s.WithContext("sending spawn request"));
    }
  }
}

void ZygoteLauncher::Spawn(const SandboxSpec& spec, SpawnCallback done) {
  auto fail = [this, &done](Status s) {
    asio::post(io_, [done = std::move(done), s = std::move(s)]() { done(s); });
  };
  if (!started_ || shutting_down_) return fail(Status::Unavailable("sandbox launcher not started"));
  if (!ValidId(spec.id)) return fail(Status::InvalidArgument("bad sandbox id '" + spec.id + "'"));
  if (sandboxes_.count(spec.id)) return fail(Status::Conflict("sandbox '" + spec.id + "' exists"));
  namespace fs = std::filesystem;
  std::string rel = fs::path(spec.bundle_dir)
                        .lexically_normal()
                        .lexically_relative(fs::path(options_.bundles_root).lexically_normal())
                        .string();
  if (rel.empty() || rel == "." || rel.rfind("..", 0) == 0) {
    return fail(Status::InvalidArgument("bundle dir " + spec.bundle_dir + " is not under " +
                                        options_.bundles_root));
  }
  if (spec.memory_mb <= 0 || spec.tmp_mb <= 0 || spec.pids_max <= 0 || spec.cpu_weight <= 0) {
    return fail(Status::InvalidArgument("sandbox limits must be positive"));
  }
  Status s = cgroups_->Create(spec.id, {spec.memory_mb, spec.pids_max, spec.cpu_weight});
  if (!s.ok()) return fail(s);
  auto sb = std::make_unique<Sandbox>();
  sb->id = spec.id;
  Outgoing out;
  out.id = spec.id;
  auto cleanup = [&](Status err) {
    (void)cgroups_->Remove(spec.id);
    fail(std::move(err));
  };
  int sv[2];
  if (Os().socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    return cleanup(Status::FromErrno("socketpair", errno));
  }
  sb->control.Reset(sv[0]);
  out.fds.emplace_back(sv[1]);
  int pipe_fds[2];
  if (Os().pipe2(pipe_fds, O_CLOEXEC) != 0) return cleanup(Status::FromErrno("pipe2", errno));
  sb->log.Reset(pipe_fds[0]);
  out.fds.emplace_back(pipe_fds[1]);
  ::fcntl(sb->log.get(), F_SETFL, O_NONBLOCK);
  auto procs = cgroups_->OpenProcs(spec.id);
  if (!procs.ok()) return cleanup(procs.status());
  for (UniqueFd& f : *procs) out.fds.push_back(std::move(f));
  json req = {{"type", "spawn"},
              {"id", spec.id},
              {"bundle_rel", rel},
              {"tmp_mb", spec.tmp_mb},
              {"network", spec.network},
              {"memory_mb", spec.memory_mb},
              {"pids_max", spec.pids_max},
              {"config", BootstrapConfig(spec)},
              {"trace", options_.trace_isolation_steps}};
  out.data = req.dump();
  sb->done = std::move(done);
  sandboxes_[spec.id] = std::move(sb);
  outbox_.push_back(std::move(out));
  if (state_ == ZygoteState::kStopped) {
    Status launched = LaunchZygote();
    if (!launched.ok()) {
      spdlog::error("sandbox: restarting the zygote failed: {}", launched.ToString());
      outbox_.clear();
      std::vector<std::string> ids;
      for (const auto& [id, pending] : sandboxes_) {
        if (!pending->spawned && !pending->finishing) ids.push_back(id);
      }
      for (const std::string& id : ids) FailSpawn(*Find(id), launched);
      return;
    }
    StartReading();
    return;
  }
  Flush();
}

std::string ZygoteLauncher::BootstrapConfig(const SandboxSpec& spec) const {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  char date[16];
  std::strftime(date, sizeof(date), "%Y/%m/%d", &tm);
  json env = json::object();
  for (const auto& [k, v] : spec.env) env[k] = v;
  json c = {{"control_fd", 3},
            {"handler", spec.handler},
            {"task_root", "/var/task"},
            {"function_name", spec.function_name},
            {"function_version", spec.function_version},
            {"memory_mb", spec.memory_mb},
            {"timeout_s", spec.timeout_s},
            {"env", env},
            {"region", options_.region},
            {"log_group_name", "/aws/lambda/" + spec.function_name},
            {"log_stream_name", std::string(date) + "/[" + spec.function_version + "]" + spec.id},
            {"sandbox_id", spec.id}};
  if (rootless_) c["oom_exit_code"] = kRlimitOomExitCode;
  if (!options_.node_name.empty()) c["node"] = options_.node_name;
  // The runtime's boto3 relay listens on 127.0.0.1, which the loopback guard
  // closes to a networked sandbox (loopback_guard.h): none is offered there.
  if (!spec.object_relay || (spec.network && guard_status_.ok())) c["s3_relay"] = false;
  return c.dump();
}

void ZygoteLauncher::FailSpawn(Sandbox& sb, Status status) {
  std::string id = sb.id;
  SpawnCallback done = std::move(sb.done);
  sb.done = nullptr;
  cgroups_->KillAll(id);
  sb.peak_memory.Reset();  // no file of the cgroup held open while it is removed
  if (cgroups_->Remove(id).code() == Code::kUnavailable) {
    // A child may still be dying; finish the removal in the background.
    sb.control.Reset();
    sb.log.Reset();
    sb.finishing = true;
    TryRemoveCgroup(id, ExitInfo{}, /*report=*/false);
  } else {
    sandboxes_.erase(id);
  }
  if (done) done(std::move(status));
}

void ZygoteLauncher::Kill(const std::string& id) {
  Sandbox* sb = Find(id);
  if (sb == nullptr) return;
  if (sb->pidfd.valid()) {
    Os().pidfd_send_signal(sb->pidfd.get(), SIGKILL);
  } else {
    sb->kill_requested = true;
  }
}

void ZygoteLauncher::Finish(const std::string& id, ExitInfo info, bool report) {
  Sandbox* sb = Find(id);
  if (sb == nullptr) return;
  sb->finishing = true;
  if (!rootless_) {
    CgroupStats stats = cgroups_->Stats(id);
    info.oom_killed = stats.oom_killed;
    info.peak_memory_bytes = stats.peak_memory_bytes;
  }
  sb->pid_watch.reset();
  sb->pidfd.Reset();
  sb->init_pidfd.Reset();
  TryRemoveCgroup(id, info, report);
}

void ZygoteLauncher::TryRemoveCgroup(const std::string& id, ExitInfo info, bool report) {
  Sandbox* sb = Find(id);
  if (sb == nullptr) return;
  sb->peak_memory.Reset();
  Status s = cgroups_->Remove(id);
  if (s.code() == Code::kUnavailable && ++sb->remove_attempts < kRemoveAttempts) {
    if (sb->remove_attempts % 100 == 0) cgroups_->KillAll(id);
    if (!sb->retry_timer) sb->retry_timer = std::make_unique<asio::steady_timer>(io_);
    sb->retry_timer->expires_after(std::chrono::milliseconds(1));
    std::weak_ptr<int> alive = alive_;
    sb->retry_timer->async_wait(
        [this, alive, id, info, report](const boost::system::error_code& e) {
          if (e || alive.expired()) return;
          TryRemoveCgroup(id, info, report);
        });
    return;
  }
  if (!s.ok()) spdlog::error("sandbox {}: cgroup left behind: {}", id, s.ToString());
  bool was_spawned = sb->spawned;
  sandboxes_.erase(id);
  if (report && was_spawned && exit_callback_) exit_callback_(id, info);
}

void ZygoteLauncher::OnZygoteGone(const std::string& why) {
  if (state_ == ZygoteState::kStopped) return;
  if (!shutting_down_) spdlog::error("sandbox: zygote gone ({}); killing its sandboxes", why);
  StopZygote();
  outbox_.clear();
  std::vector<std::string> ids;
  for (const auto& [id, sb] : sandboxes_) ids.push_back(id);
  for (const std::string& id : ids) {
    Sandbox* sb = Find(id);
    if (sb == nullptr || sb->finishing) continue;
    if (!sb->spawned) {
      // Its own account of why (a "fatal" message) is what a user can act on.
      FailSpawn(*sb, Status::Unavailable("the sandbox zygote died before the sandbox started: " +
                                         (fatal_.empty() ? why : ZygoteName() + ": " + fatal_)));
      continue;
    }
    Os().pidfd_send_signal(sb->pidfd.get(), SIGKILL);
    if (sb->init_pidfd.valid()) Os().pidfd_send_signal(sb->init_pidfd.get(), SIGKILL);
    cgroups_->KillAll(id);
    // The zygote cannot report the exit any more; the pidfd turns readable
    // when the process is gone.
    sb->pid_watch = std::make_unique<asio::posix::stream_descriptor>(io_, ::dup(sb->pidfd.get()));
    std::weak_ptr<int> alive = alive_;
    sb->pid_watch->async_wait(asio::posix::descriptor_base::wait_read,
                              [this, alive, id](const boost::system::error_code& e) {
                                if (e || alive.expired()) return;
                                ReapOrphan(id);
                              });
  }
}

// The orphan may turn into a zombie before its reparenting to us completes,
// so an unsuccessful waitid is retried for a while before giving up. Its init
// is reaped after it: a dying init waits until the rest of its namespace,
// runtime included, has been reaped.
void ZygoteLauncher::ReapOrphan(const std::string& id) {
  Sandbox* sb = Find(id);
  if (sb == nullptr || !sb->pidfd.valid()) return;
  auto reap = [](int pidfd, siginfo_t* si) {
    return ::waitid(static_cast<idtype_t>(kPidfdIdType), static_cast<id_t>(pidfd), si,
                    WEXITED | WNOHANG) == 0 &&
           si->si_pid != 0;
  };
  siginfo_t si{};
  if (!sb->orphan_reaped && reap(sb->pidfd.get(), &si)) {
    sb->orphan_reaped = true;
    if (si.si_code == CLD_EXITED) {
      sb->orphan_exit = FromWaitStatus(si.si_status << 8);
    } else {
      sb->orphan_exit.signal = si.si_status;
    }
  }
  bool init_reaped =
      !sb->init_pidfd.valid() || (sb->orphan_reaped && reap(sb->init_pidfd.get(), &si));
  if ((!sb->orphan_reaped || !init_reaped) && ++sb->reap_attempts < 400) {
    if (!sb->retry_timer) sb->retry_timer = std::make_unique<asio::steady_timer>(io_);
    sb->retry_timer->expires_after(std::chrono::milliseconds(5));
    std::weak_ptr<int> alive = alive_;
    sb->retry_timer->async_wait([this, alive, id](const boost::system::error_code& e) {
      if (e || alive.expired()) return;
      ReapOrphan(id);
    });
    return;
  }
  ExitInfo info;
  info.signal = SIGKILL;
  Finish(id, sb->orphan_reaped ? sb->orphan_exit : info, true);
}

void ZygoteLauncher::StopZygote() {
  ++generation_;
  ready_timer_.reset();
  state_ = ZygoteState::kStopped;
  write_waiting_ = false;
  zygote_sock_.reset();  // EOF makes a live zygote kill and reap its children
  if (zygote_pid_ > 0) {
    int fd = zygote_pidfd_ ? zygote_pidfd_->native_handle() : -1;
    if (fd >= 0 && !PollReadable(fd, 2000)) Os().pidfd_send_signal(fd, SIGKILL);
    ::waitpid(zygote_pid_, nullptr, 0);
  }
  zygote_pidfd_.reset();
  zygote_pid_ = 0;
}

void ZygoteLauncher::Shutdown() {
  if (!started_) return;
  shutting_down_ = true;
  for (auto& [id, sb] : sandboxes_) {
    if (sb->pidfd.valid()) Os().pidfd_send_signal(sb->pidfd.get(), SIGKILL);
    if (sb->done) {
      asio::post(io_, [done = std::move(sb->done)]() {
        done(Status::Unavailable("sandbox launcher shut down"));
      });
      sb->done = nullptr;
    }
  }
  StopZygote();  // returns once the zygote has reaped every sandbox
  for (auto& [id, sb] : sandboxes_) {
    sb->peak_memory.Reset();
    for (int i = 0; i < 2000 && cgroups_->Remove(id).code() == Code::kUnavailable; ++i) {
      if (i % 100 == 0) cgroups_->KillAll(id);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  sandboxes_.clear();
  outbox_.clear();
  cgroups_->RemoveParent();
  if (guard_status_.ok()) RemoveLoopbackGuard(guard_table_, options_.work_dir);
  started_ = false;
}

ZygoteLauncher::Sandbox* ZygoteLauncher::Find(const std::string& id) {
  auto it = sandboxes_.find(id);
  return it == sandboxes_.end() ? nullptr : it->second.get();
}

uint64_t ZygoteLauncher::PeakMemoryBytes(const std::string& id) {
  Sandbox* sb = Find(id);
  if (sb == nullptr || !cgroups_) return 0;
  if (!rootless_) {
    if (!sb->peak_memory.valid()) sb->peak_memory.Reset(cgroups_->OpenPeakMemory(id));
    return sb->peak_memory.valid() ? Cgroups::ReadPeakMemory(sb->peak_memory.get())
                                   : cgroups_->PeakMemoryBytes(id);
  }
  if (sb->host_pid <= 0) return 0;
  uint64_t hwm = ProcField("/proc/" + std::to_string(sb->host_pid) + "/status", "VmHWM") * 1024;
  sb->peak_seen = std::max(sb->peak_seen, hwm);
  return hwm;
}

int ZygoteLauncher::LiveCount() const {
  int n = 0;
  for (const auto& [id, sb] : sandboxes_) n += sb->spawned ? 1 : 0;
  return n;
}

}  // namespace gust::sandbox
