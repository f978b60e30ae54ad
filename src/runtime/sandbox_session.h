// SandboxSession: the engine's view of one live sandbox — its control channel,
// its stdout/stderr pipe and the state machine of one invocation at a time.
//
//   kStarting --READY--> kIdle <--result--> kBusy
//        \--INIT_ERROR / exit / init timeout--> kDead (terminal)
//   kBusy --timeout / crash / OOM--> kDead
//
// Every failure is an outcome, never an exception: a timed-out invocation
// kills the sandbox and reports kTimeout once the kill is confirmed by the
// launcher's exit report (so no process is left running when the caller hears
// of it); EOF on the control socket waits for the exit report to tell an OOM
// kill from a crash, with a fallback timer in case the report never comes.
//
// A streaming invocation (InvokeMeta::stream, map jobs) may exchange YIELD /
// RESUME frames before its result: each YIELD goes to the caller's OnYield,
// whose answer is sent back as RESUME and re-arms the time limit; the
// invocation's outcome still comes from its final RESULT/ERROR (or crash).
//
// Output captured between the start of an invocation and its result frame
// belongs to that invocation. At most kMaxCapturedOutput bytes are kept per
// invocation (the rest is counted and dropped, and the pipe is still drained
// so a chatty function never blocks on a full pipe).
//
// Lifetime: destroying a session does not kill its sandbox (the launcher may
// already be gone when the last handler holding it is destroyed); whoever
// drops a live session calls Kill() first.
//
// Thread-safety: single-threaded, on the engine's io_context. Owners hold a
// shared_ptr; callbacks never run inline from the call that starts them.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "common/clock.h"
#include "common/timer.h"
#include "runtime/protocol.h"
#include "sandbox/sandbox.h"

namespace gust::runtime {

inline constexpr size_t kMaxCapturedOutput = 1 << 20;

struct Outcome {
  enum class Kind {
    kSuccess,        // RESULT or READY
    kFunctionError,  // ERROR / INIT_ERROR frame from the runtime (handler raised, import failed)
    kTimeout,        // deadline passed; sandbox killed
    kOutOfMemory,    // the cgroup's OOM killer fired
    kExitError,      // the runtime exited or was killed by a signal
    kEngineError,    // the engine could not talk to the sandbox
  };
  Kind kind = Kind::kEngineError;
  std::string body;        // RESULT payload, or a Lambda error JSON document
  std::string error_type;  // "" on success; errorType otherwise
  std::string output;      // captured stdout/stderr
  double duration_ms = 0;  // request sent -> frame received (or kill confirmed)
  double init_ms = 0;      // READY's own figure (init phase only)
  bool sandbox_lost = false;
};

const char* OutcomeKindName(Outcome::Kind kind);

class SandboxSession : public std::enable_shared_from_this<SandboxSession> {
 public:
  enum class State { kStarting, kIdle, kBusy, kDead };
  using Done = std::function<void(Outcome)>;
  // The answer to one YIELD of a streaming invocation: the next input (empty:
  // no more, the runtime finishes) and the time limit from now on (0: keep).
  struct Resume {
    std::string input;
    std::chrono::milliseconds timeout{0};
  };
  // A YIELD's output goes to OnYield, which answers it by calling `resume`
  // once, inline or later on the engine thread (a map session of another node
  // waits for its owner's next chunk over HTTP). The invocation's time limit
  // runs on meanwhile; a resume after the invocation ended is ignored.
  using ResumeFn = std::function<void(Resume)>;
  using OnYield = std::function<void(std::string output, ResumeFn resume)>;

  SandboxSession(boost::asio::io_context& io, sandbox::SandboxLauncher& launcher,
                 const sandbox::SandboxHandle& handle);
  ~SandboxSession();
  SandboxSession(const SandboxSession&) = delete;
  SandboxSession& operator=(const SandboxSession&) = delete;

  // Starts reading the log pipe and waits for READY / INIT_ERROR.
  void AwaitInit(std::chrono::milliseconds timeout, Done done);
  // Precondition: state() == kIdle. on_yield: required for a streaming
  // invocation (a YIELD without one is a protocol violation: sandbox lost).
  void Invoke(const InvokeMeta& meta, std::string_view payload, std::chrono::milliseconds timeout,
              Done done, OnYield on_yield = nullptr);
  // The launcher reported the sandbox's exit. Completes any pending work.
  void OnExit(const sandbox::ExitInfo& info);
  // Kills the sandbox (idempotent). A pending operation completes when the exit is reported.
  void Kill();

  State state() const { return state_; }
  const std::string& id() const { return id_; }
  int pid() const { return pid_; }
  uint64_t PeakMemoryBytes() const;
  MonoTime last_used() const { return last_used_; }
  // Restarts the idle clock (keep-warm): the reaper measures idleness from here.
  void Touch() { last_used_ = MonoClock::now(); }
  const std::optional<sandbox::ExitInfo>& exit_info() const { return exit_info_; }

 private:
  void StartLogRead();
  void DrainLogPipe();
  void Capture(const char* data, size_t n);
  std::string TakeOutput();
  void ArmTimer(std::chrono::milliseconds timeout);
  void OnFrame(Result<Frame> frame);
  void OnYieldFrame(std::string body);
  void OnChannelLost(const Status& why);
  void Finish(Outcome outcome);
  Outcome OutcomeFromExit(const sandbox::ExitInfo& info);

  boost::asio::io_context& io_;
  sandbox::SandboxLauncher& launcher_;
  std::string id_;
  int pid_;
  RuntimeChannel channel_;
  boost::asio::posix::stream_descriptor log_pipe_;
  Timer timer_;  // on MonoClock: engine tests run timeouts in fake time
  Timer exit_wait_timer_;
  State state_ = State::kStarting;
  Done pending_;
  OnYield on_yield_;
  uint64_t yield_generation_ = 0;  // OnYieldFrame's: which resume is current
  MonoTime op_start_;
  MonoTime last_used_;
  bool timed_out_ = false;
  bool killed_ = false;
  bool waiting_for_exit_ = false;
  std::optional<sandbox::ExitInfo> exit_info_;
  std::string captured_;
  size_t dropped_output_ = 0;
  char log_buf_[16384];
};

}  // namespace gust::runtime
