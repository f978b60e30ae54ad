// FakeLauncher: a SandboxLauncher (sandbox/sandbox.h) for in-process tests of
// the engine core (Invoker, AsyncInvoker, Gateway, Scheduler). A "sandbox" is
// a socketpair and a pipe: the engine gets one end of each, exactly as from
// the real launcher, and the fake drives the other end on the same
// io_context, speaking the runtime protocol (runtime/protocol.h) as the
// Python runtime would: READY or INIT_ERROR after the spawn, then a RESULT or
// ERROR per INVOKE -- or it holds the invocation (a hang, or a request the
// test answers later), or dies mid-invocation (closes its end, then reports
// an ExitInfo with a signal, as a crashed runtime does).
//
// Behaviour is scripted per function (Script): spawn delay (in MonoClock
// time, so a test's ManualClock drives it), spawn failure, init failure /
// hang / crash, and a handler deciding each invocation's Reply.
//
// Errors: none of its own; a spawn fails only as scripted (or if socketpair /
// pipe fail: Internal naming the call).
//
// Thread-safety: single-threaded, on the io_context given at construction
// (like every launcher). Callbacks never run inline. Test-only.
#pragma once

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <csignal>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "sandbox/sandbox.h"

namespace gust::engine::testing {

// What the fake runtime received in one INVOKE.
struct InvokeSeen {
  std::string sandbox_id;
  std::string function;
  std::string request_id;
  int64_t deadline_ms = 0;
  bool raw_event = false;
  std::string payload;
};

// The fake runtime's answer to one INVOKE.
struct Reply {
  enum class Kind {
    kResult,  // a RESULT frame with body
    kError,   // an ERROR frame with body (a Lambda error document)
    kHold,    // no answer yet: FakeLauncher::Answer() gives it later (never: a hang)
    kCrash,   // the runtime dies: its control socket closes, the exit reports `signal`
  };
  Kind kind = Kind::kResult;
  std::string body;
  std::string output;  // written to the log pipe before the frame, as the runtime flushes
  int signal = SIGSEGV;
  bool oom_killed = false;

  static Reply Result(std::string body);
  static Reply Error(const std::string& type, const std::string& message);
  static Reply Hold();
  static Reply Crash(int signal, bool oom_killed = false);
};

using Handler = std::function<Reply(const InvokeSeen&)>;

// How the sandboxes of one function behave (set before they are spawned).
struct Script {
  enum class Init {
    kReady,      // READY at once
    kInitError,  // INIT_ERROR with init_error, then waits to be killed (the runtime exits)
    kHang,       // never answers (the engine's init timeout must end it)
    kCrash,      // dies before READY (signal SIGSEGV)
  };
  std::chrono::milliseconds spawn_delay{0};  // MonoClock time until the spawn completes
  Status spawn_error;                        // non-OK: the spawn fails with it
  Init init = Init::kReady;
  std::string init_error;  // the INIT_ERROR document
  Handler handler;         // null: RESULT echoing the payload
};

class FakeLauncher : public sandbox::SandboxLauncher {
 public:
  explicit FakeLauncher(boost::asio::io_context& io);
  ~FakeLauncher() override;

  // The behaviour of sandboxes spawned for function from now on.
  void SetScript(const std::string& function, Script script);
  void SetHandler(const std::string& function, Handler handler);
  // Answers the invocation sandbox_id holds (Reply::Hold). False if it holds none.
  bool Answer(const std::string& sandbox_id, const Reply& reply);
  // Sandboxes holding an invocation, in the order they took it.
  std::vector<std::string> Holding() const;

  int spawns() const { return spawns_; }  // Spawn() calls, failed ones included
  int kills() const { return kills_; }    // Kill() calls for live sandboxes
  const std::vector<InvokeSeen>& invocations() const { return invocations_; }
  // The ExitInfo reported for each sandbox that died, in order.
  const std::vector<std::pair<std::string, sandbox::ExitInfo>>& exits() const { return exits_; }
  // The specs given to Spawn(), in order.
  const std::vector<sandbox::SandboxSpec>& specs() const { return specs_; }

  // sandbox::SandboxLauncher
  Status Start() override { return Status::Ok(); }
  void Shutdown() override;
  void Spawn(const sandbox::SandboxSpec& spec, sandbox::SpawnCallback done) override;
  void Kill(const std::string& id) override;
  void SetExitCallback(sandbox::ExitCallback callback) override { on_exit_ = std::move(callback); }
  uint64_t PeakMemoryBytes(const std::string&) override { return 0; }
  std::string IsolationSummary() const override { return "none (fake launcher)"; }
  int LiveCount() const override { return static_cast<int>(live_.size()); }

 private:
  struct Sandbox;
  void Complete(const std::shared_ptr<Sandbox>& sb, const Script& script,
                const sandbox::SpawnCallback& done);
  void ReadNext(const std::shared_ptr<Sandbox>& sb);
  void OnInvoke(const std::shared_ptr<Sandbox>& sb, const std::string& body);
  void Act(const std::shared_ptr<Sandbox>& sb, const Reply& reply);
  void Die(const std::shared_ptr<Sandbox>& sb, int signal, bool oom_killed);

  boost::asio::io_context& io_;
  std::map<std::string, Script> scripts_;
  std::map<std::string, std::shared_ptr<Sandbox>> live_;  // spawned, exit not yet reported
  std::vector<std::string> holding_;
  sandbox::ExitCallback on_exit_;
  int spawns_ = 0;
  int kills_ = 0;
  int next_pid_ = 100000;
  std::vector<InvokeSeen> invocations_;
  std::vector<std::pair<std::string, sandbox::ExitInfo>> exits_;
  std::vector<sandbox::SandboxSpec> specs_;
  // Cleared by the destructor: callbacks still queued on the io_context then do nothing.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace gust::engine::testing
