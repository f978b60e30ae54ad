#include "runtime/sandbox_session.h"

#include <boost/asio/post.hpp>

#include <nlohmann/json.hpp>

#include <unistd.h>

#include <csignal>
#include <cstring>

#include "common/json_read.h"

namespace gust::runtime {
namespace {

// How long to wait for the launcher's exit report after the control socket
// closed before declaring the sandbox lost anyway (and killing it for certain).
constexpr auto kExitReportGrace = std::chrono::seconds(2);

// Go-style signal names, as Lambda prints them ("signal: killed").
std::string SignalDescription(int sig) {
  switch (sig) {
    case SIGKILL:
      return "killed";
    case SIGSEGV:
      return "segmentation fault";
    case SIGABRT:
      return "aborted";
    case SIGBUS:
      return "bus error";
    case SIGFPE:
      return "floating point exception";
    case SIGILL:
      return "illegal instruction";
    case SIGTERM:
      return "terminated";
    case SIGPIPE:
      return "broken pipe";
    default: {
      const char* name = strsignal(sig);
      return name ? name : "signal " + std::to_string(sig);
    }
  }
}

}  // namespace

const char* OutcomeKindName(Outcome::Kind kind) {
  switch (kind) {
    case Outcome::Kind::kSuccess:
      return "Success";
    case Outcome::Kind::kFunctionError:
      return "Unhandled";
    case Outcome::Kind::kTimeout:
      return "Timeout";
    case Outcome::Kind::kOutOfMemory:
      return "OutOfMemory";
    case Outcome::Kind::kExitError:
      return "ExitError";
    case Outcome::Kind::kEngineError:
      return "EngineError";
  }
  return "Unknown";
}

SandboxSession::SandboxSession(boost::asio::io_context& io, sandbox::SandboxLauncher& launcher,
                               const sandbox::SandboxHandle& handle)
    : io_(io),
      launcher_(launcher),
      id_(handle.id),
      pid_(handle.pid),
      channel_(io, handle.control_fd),
      log_pipe_(io, handle.log_fd),
      timer_(io),
      exit_wait_timer_(io),
      last_used_(MonoClock::now()) {}

// Deliberately does not kill: pending io handlers can keep a session alive
// past the launcher (at shutdown), so the destructor must not touch it. Owners
// Kill() what they drop; SandboxLauncher::Shutdown() kills whatever is left.
SandboxSession::~SandboxSession() = default;

uint64_t SandboxSession::PeakMemoryBytes() const {
  if (exit_info_) return exit_info_->peak_memory_bytes;
  return launcher_.PeakMemoryBytes(id_);
}

void SandboxSession::StartLogRead() {
  auto self = shared_from_this();
  log_pipe_.async_read_some(boost::asio::buffer(log_buf_),
                            [self](const boost::system::error_code& ec, size_t n) {
                              if (n > 0) self->Capture(self->log_buf_, n);
                              if (!ec) self->StartLogRead();
                            });
}

// Reads whatever the pipe holds right now. The runtime flushes stdout/stderr
// before it writes a result frame, so after a frame arrives the invocation's
// output is already in the pipe.
void SandboxSession::DrainLogPipe() {
  int fd = log_pipe_.native_handle();
  for (;;) {
    ssize_t n = ::read(fd, log_buf_, sizeof log_buf_);
    if (n <= 0) break;
    Capture(log_buf_, static_cast<size_t>(n));
  }
}

// Keeps at most kMaxCapturedOutput bytes per invocation; counts the rest.
void SandboxSession::Capture(const char* data, size_t n) {
  size_t room = kMaxCapturedOutput > captured_.size() ? kMaxCapturedOutput - captured_.size() : 0;
  size_t keep = std::min(room, n);
  captured_.append(data, keep);
  dropped_output_ += n - keep;
}

std::string SandboxSession::TakeOutput() {
  DrainLogPipe();
  std::string out = std::move(captured_);
  captured_.clear();
  if (dropped_output_ > 0) {
    if (!out.empty() && out.back() != '\n') out.push_back('\n');
    out += "[gust: " + std::to_string(dropped_output_) +
           " bytes of output dropped: over the 1 MiB per-invocation log limit]\n";
    dropped_output_ = 0;
  }
  return out;
}

void SandboxSession::ArmTimer(std::chrono::milliseconds timeout) {
  timer_.expires_after(timeout);
  std::weak_ptr<SandboxSession> weak = shared_from_this();
  timer_.async_wait([weak](const boost::system::error_code& ec) {
    auto self = weak.lock();
    if (ec || !self || !self->pending_) return;
    self->timed_out_ = true;
    self->Kill();
  });
}

void SandboxSession::AwaitInit(std::chrono::milliseconds timeout, Done done) {
  pending_ = std::move(done);
  op_start_ = MonoClock::now();
  StartLogRead();
  ArmTimer(timeout);
  auto self = shared_from_this();
  channel_.ReadFrame([self](Result<Frame> frame) { self->OnFrame(std::move(frame)); });
}

void SandboxSession::Invoke(const InvokeMeta& meta, std::string_view payload,
                            std::chrono::milliseconds timeout, Done done, OnYield on_yield) {
  state_ = State::kBusy;
  pending_ = std::move(done);
  on_yield_ = std::move(on_yield);
  op_start_ = MonoClock::now();
  TakeOutput();  // output printed while idle is not this invocation's
  ArmTimer(timeout);
  auto self = shared_from_this();
  channel_.Write(EncodeInvoke(meta, payload), [self](const Status& st) {
    if (!st.ok()) self->OnChannelLost(st);
  });
  channel_.ReadFrame([self](Result<Frame> frame) { self->OnFrame(std::move(frame)); });
}

void SandboxSession::OnFrame(Result<Frame> frame) {
  if (!pending_ || waiting_for_exit_) return;
  if (!frame.ok()) {
    OnChannelLost(frame.status());
    return;
  }
  Outcome out;
  out.duration_ms = MsBetween(op_start_, MonoClock::now());
  switch (frame->type) {
    case FrameType::kReady: {
      out.kind = Outcome::Kind::kSuccess;
      auto doc = JsonParse(frame->body);
      JsonGetNumber(doc, "init_ms", &out.init_ms);
      break;
    }
    case FrameType::kResult:
      out.kind = Outcome::Kind::kSuccess;
      out.body = std::move(frame->body);
      break;
    case FrameType::kError:
    case FrameType::kInitError: {
      out.kind = Outcome::Kind::kFunctionError;
      auto doc = JsonParse(frame->body);
      out.error_type = JsonStringOr(doc, "errorType", "Runtime.Unknown");
      out.body = std::move(frame->body);
      // A failed init leaves nothing to reuse: the runtime exits after INIT_ERROR.
      out.sandbox_lost = frame->type == FrameType::kInitError;
      break;
    }
    case FrameType::kYield:
      if (on_yield_ && state_ == State::kBusy) {
        OnYieldFrame(std::move(frame->body));
        return;
      }
      [[fallthrough]];
    default:
      OnChannelLost(
          Status::Internal("unexpected " + FrameTypeName(frame->type) + " frame from the runtime"));
      return;
  }
  timer_.cancel();
  out.output = TakeOutput();
  if (out.sandbox_lost) {
    Kill();
    state_ = State::kDead;
  } else {
    state_ = State::kIdle;
  }
  last_used_ = MonoClock::now();
  Finish(std::move(out));
}

void SandboxSession::OnYieldFrame(std::string body) {
  // The generation tells a resume of this YIELD from one of an invocation that
  // ended meanwhile (timed out, lost its sandbox) and a later one's.
  uint64_t generation = ++yield_generation_;
  auto self = shared_from_this();
  on_yield_(std::move(body), [self, generation](Resume next) {
    if (generation != self->yield_generation_ || !self->pending_ || self->waiting_for_exit_ ||
        self->state_ != State::kBusy) {
      return;
    }
    ++self->yield_generation_;  // answered: a second call is ignored too
    if (next.timeout.count() > 0) self->ArmTimer(next.timeout);
    self->channel_.Write(EncodeFrame(FrameType::kResume, next.input), [self](const Status& st) {
      if (!st.ok()) self->OnChannelLost(st);
    });
    self->channel_.ReadFrame([self](Result<Frame> frame) { self->OnFrame(std::move(frame)); });
  });
}

void SandboxSession::OnChannelLost(const Status& why) {
  if (!pending_ || waiting_for_exit_) return;
  if (exit_info_) {
    Finish(OutcomeFromExit(*exit_info_));
    return;
  }
  // Wait for the exit report to tell an OOM kill from a crash.
  waiting_for_exit_ = true;
  exit_wait_timer_.expires_after(kExitReportGrace);
  std::weak_ptr<SandboxSession> weak = shared_from_this();
  exit_wait_timer_.async_wait([weak, reason = why.message()](const boost::system::error_code& ec) {
    auto self = weak.lock();
    if (ec || !self || !self->pending_) return;
    self->Kill();
    Outcome out;
    out.kind = Outcome::Kind::kEngineError;
    out.error_type = "Runtime.Unknown";
    out.body = ErrorDocument(out.error_type, "sandbox stopped answering: " + reason);
    out.output = self->TakeOutput();
    out.duration_ms = MsBetween(self->op_start_, MonoClock::now());
    out.sandbox_lost = true;
    self->state_ = State::kDead;
    self->Finish(std::move(out));
  });
}

Outcome SandboxSession::OutcomeFromExit(const sandbox::ExitInfo& info) {
  Outcome out;
  out.sandbox_lost = true;
  out.duration_ms = MsBetween(op_start_, MonoClock::now());
  out.output = TakeOutput();
  std::string detail;
  if (info.signal != 0) {
    detail = "signal: " + SignalDescription(info.signal);
  } else {
    detail = "exit status " + std::to_string(info.exit_code);
  }
  if (timed_out_) {
    out.kind = Outcome::Kind::kTimeout;
    out.error_type = "Sandbox.Timedout";
  } else if (info.oom_killed) {
    out.kind = Outcome::Kind::kOutOfMemory;
    out.error_type = "Runtime.OutOfMemory";
    out.body = ErrorDocument(out.error_type, "Runtime exited with error: " + detail);
  } else {
    out.kind = Outcome::Kind::kExitError;
    out.error_type = "Runtime.ExitError";
    out.body = ErrorDocument(out.error_type, "Runtime exited with error: " + detail);
  }
  return out;
}

void SandboxSession::OnExit(const sandbox::ExitInfo& info) {
  exit_info_ = info;
  bool was_starting_or_busy = state_ == State::kStarting || state_ == State::kBusy;
  state_ = State::kDead;
  timer_.cancel();
  exit_wait_timer_.cancel();
  boost::system::error_code ignored;
  channel_.Close();
  if (pending_ && was_starting_or_busy) {
    Finish(OutcomeFromExit(info));
  }
  log_pipe_.close(ignored);
}

void SandboxSession::Kill() {
  if (killed_ || exit_info_) return;
  killed_ = true;
  launcher_.Kill(id_);
}

void SandboxSession::Finish(Outcome outcome) {
  waiting_for_exit_ = false;
  Done done = std::move(pending_);
  pending_ = nullptr;
  on_yield_ = nullptr;
  ++yield_generation_;
  // Never complete inline: the caller may still be on the stack of Invoke().
  boost::asio::post(io_, [done = std::move(done), outcome = std::move(outcome)]() mutable {
    done(std::move(outcome));
  });
}

}  // namespace gust::runtime
