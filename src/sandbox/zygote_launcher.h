// ZygoteLauncher: the engine side of the sandbox layer (SandboxLauncher in
// sandbox.h). It owns the per-sandbox cgroups and one zygote process
// (zygote_server.h: /usr/bin/python3 running _gust_zygote.so when
// options.zygote_module is set, else gust-sandbox-init), asks it for sandboxes
// over a SOCK_SEQPACKET socket and turns its replies into the engine's callbacks.
//
// Thread-safety: none, by design: every method and callback runs on the
// io_context passed at construction, which the engine drives from a single
// thread, so the maps below need no locks. Calling from another thread is a
// bug.
//
// Invariants: every sandbox in sandboxes_ has a cgroup; it is removed from
// the map only after its cgroup removal was attempted and its callback (spawn
// failure or exit) ran. A sandbox whose spawn succeeded gets exactly one exit
// callback (unless Shutdown() intervenes: Shutdown invokes no exit callbacks,
// and pending spawn callbacks get Unavailable).
//
// Start() makes the engine a child subreaper (PR_SET_CHILD_SUBREAPER), so
// sandboxes orphaned by a dying zygote are reparented to the engine and reaped
// here instead of lingering as zombies under the host's init: the runtime
// (through its pidfd), then its init (the zygote passes a pidfd of it too).
//
// Failures: Start() returns errors naming what is missing (not root, no
// cgroup controller, no namespace support, no init binary, zygote setup or
// runtime import failure). Spawn() reports errors through its callback (never
// inline). If the zygote dies, every sandbox is SIGKILLed (pidfd, then each
// pid in its cgroups) and reported exited with SIGKILL; unanswered spawns fail
// with Unavailable; the next Spawn() restarts the zygote. Cgroups still
// populated at removal are retried every millisecond for up to 5 s, then
// logged and left. Nothing here aborts the process.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sandbox/cgroups.h"
#include "sandbox/fd_passing.h"
#include "sandbox/sandbox.h"

namespace gust::sandbox {

class ZygoteLauncher : public SandboxLauncher {
 public:
  ZygoteLauncher(boost::asio::io_context& io, LauncherOptions options);
  ~ZygoteLauncher() override;

  Status Start() override;
  // Start() without waiting for the zygote's "ready": spawns queue until it
  // comes (or fail, with the zygote's own error, if it dies first or stays
  // silent for options.start_timeout_ms). For zygotes started on demand on
  // the engine's thread (env_launcher.h). The checks, cgroups and nftables
  // guard are still set up inline (milliseconds), and their errors returned.
  Status StartAsync();
  void Shutdown() override;
  void Spawn(const SandboxSpec& spec, SpawnCallback done) override;
  void Kill(const std::string& id) override;
  void SetExitCallback(ExitCallback callback) override { exit_callback_ = std::move(callback); }
  uint64_t PeakMemoryBytes(const std::string& id) override;
  std::string IsolationSummary() const override;
  int LiveCount() const override;

  // Before Start(): this launcher's sandboxes are covered by another one's
  // nftables table (it matches the sandbox uid, which launchers of one
  // engine share), so Start() neither installs nor removes one: no nft run.
  void ShareLoopbackGuard() { guard_shared_ = true; }

  // pid of the current zygote (0 when none); for tests.
  int ZygotePid() const { return zygote_pid_; }

 private:
  enum class ZygoteState { kStopped, kStarting, kReady };

  struct Sandbox {
    std::string id;
    SpawnCallback done;  // empty once called
    SandboxHandle handle;
    UniqueFd control;  // engine ends, handed over in the spawn callback
    UniqueFd log;
    UniqueFd pidfd;
    // Of its init (namespace_init.h); reaped here only if the zygote died,
    // since the init is then reparented to us.
    UniqueFd init_pidfd;
    bool request_sent = false;
    bool spawned = false;
    bool kill_requested = false;
    bool finishing = false;
    std::unique_ptr<boost::asio::posix::stream_descriptor> pid_watch;
    std::unique_ptr<boost::asio::steady_timer> retry_timer;
    int remove_attempts = 0;
    int reap_attempts = 0;
    bool orphan_reaped = false;  // after the zygote's death: we reaped the runtime
    ExitInfo orphan_exit;
    int host_pid = 0;        // rootless: the init's pid as /proc shows it to us
    uint64_t peak_seen = 0;  // rootless: the highest VmHWM read (reported on OOM)
    UniqueFd peak_memory;    // its cgroup's peak-memory file, opened on first read
  };

  struct Outgoing {
    std::string id;
    std::string data;
    std::vector<UniqueFd> fds;
  };

  Status StartZygote(bool wait_ready);  // Start() and StartAsync()
  Status Prepare();                     // Start()'s checks and set-up before the zygote runs
  void Unprepare();                     // undoes Prepare() after a failed start
  Status LaunchZygote();
  std::string ZygoteName() const;  // for error messages
  Status WaitReadyBlocking();
  void StartReading();
  void OnReadable();
  void HandleMessage(ReceivedMessage msg);
  void Flush();
  void OnZygoteGone(const std::string& why);
  void ReapOrphan(const std::string& id);
  void StopZygote();

  void FailSpawn(Sandbox& sb, Status status);
  void Finish(const std::string& id, ExitInfo info, bool report);
  void TryRemoveCgroup(const std::string& id, ExitInfo info, bool report);
  Sandbox* Find(const std::string& id);
  std::string BootstrapConfig(const SandboxSpec& spec) const;

  boost::asio::io_context& io_;
  LauncherOptions options_;
  std::optional<Cgroups> cgroups_;
  bool rootless_ = false;  // decided by Start()
  // Full isolation: the nftables table closing the host's loopback to
  // networked sandboxes (loopback_guard.h), and whether installing it worked.
  std::string guard_table_;
  Status guard_status_ = Status::Unavailable("not installed");
  bool guard_shared_ = false;
  bool started_ = false;
  bool shutting_down_ = false;

  ZygoteState state_ = ZygoteState::kStopped;
  int zygote_pid_ = 0;
  uint64_t generation_ = 0;  // bumps per zygote; stale handlers check it
  std::unique_ptr<boost::asio::posix::stream_descriptor> zygote_sock_;
  std::unique_ptr<boost::asio::posix::stream_descriptor> zygote_pidfd_;
  bool write_waiting_ = false;
  std::deque<Outgoing> outbox_;
  std::string fatal_;  // the current zygote's "fatal" message, if it sent one
  std::unique_ptr<boost::asio::steady_timer> ready_timer_;  // StartAsync()

  std::map<std::string, std::unique_ptr<Sandbox>> sandboxes_;
  ExitCallback exit_callback_;
  // Handlers hold a weak_ptr to this, so one that runs after the launcher
  // is destroyed does nothing.
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

}  // namespace gust::sandbox
