#include "engine/testing/fake_launcher.h"

#include <boost/asio/post.hpp>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <nlohmann/json.hpp>

#include "common/timer.h"
#include "runtime/protocol.h"

namespace gust::engine::testing {

using runtime::EncodeFrame;
using runtime::FrameType;

Reply Reply::Result(std::string body) {
  Reply r;
  r.kind = Kind::kResult;
  r.body = std::move(body);
  return r;
}

Reply Reply::Error(const std::string& type, const std::string& message) {
  Reply r;
  r.kind = Kind::kError;
  r.body =
      nlohmann::json{{"errorType", type}, {"errorMessage", message}, {"stackTrace", {}}}.dump();
  return r;
}

Reply Reply::Hold() {
  Reply r;
  r.kind = Kind::kHold;
  return r;
}

Reply Reply::Crash(int signal, bool oom_killed) {
  Reply r;
  r.kind = Kind::kCrash;
  r.signal = signal;
  r.oom_killed = oom_killed;
  return r;
}

// The runtime's side of one sandbox.
struct FakeLauncher::Sandbox {
  std::string id;
  std::string function;
  Handler handler;
  std::unique_ptr<runtime::RuntimeChannel> channel;  // far end of the control socket
  int log_fd = -1;                                   // write end of the log pipe
  bool dead = false;
  std::unique_ptr<Timer> spawn_timer;

  ~Sandbox() {
    if (log_fd >= 0) ::close(log_fd);
  }
  void Print(const std::string& text) {
    // The pipe holds 64 KB; tests print far less, so a short write is a test bug.
    if (!text.empty() && log_fd >= 0) (void)!::write(log_fd, text.data(), text.size());
  }
};

FakeLauncher::FakeLauncher(boost::asio::io_context& io) : io_(io) {}

FakeLauncher::~FakeLauncher() {
  *alive_ = false;
  // A pending read holds its sandbox: closing completes it (or drops it with
  // the io_context), so no sandbox outlives the test.
  for (auto& [id, sb] : live_) {
    if (sb->channel) sb->channel->Close();
  }
}

void FakeLauncher::SetScript(const std::string& function, Script script) {
  scripts_[function] = std::move(script);
}

void FakeLauncher::SetHandler(const std::string& function, Handler handler) {
  scripts_[function].handler = std::move(handler);
}

void FakeLauncher::Spawn(const sandbox::SandboxSpec& spec, sandbox::SpawnCallback done) {
  ++spawns_;
  specs_.push_back(spec);
  Script script = scripts_[spec.function_name];
  auto sb = std::make_shared<Sandbox>();
  sb->id = spec.id;
  sb->function = spec.function_name;
  sb->handler = script.handler;
  std::weak_ptr<bool> alive = alive_;
  auto complete = [this, alive, sb, script, done = std::move(done)] {
    if (alive.lock()) Complete(sb, script, done);
  };
  if (script.spawn_delay.count() > 0) {
    sb->spawn_timer = std::make_unique<Timer>(io_);
    sb->spawn_timer->expires_after(script.spawn_delay);
    sb->spawn_timer->async_wait(
        [complete = std::move(complete)](const boost::system::error_code& ec) mutable {
          if (!ec) complete();
        });
  } else {
    boost::asio::post(io_, std::move(complete));
  }
}

void FakeLauncher::Complete(const std::shared_ptr<Sandbox>& sb, const Script& script,
                            const sandbox::SpawnCallback& done) {
  if (!script.spawn_error.ok()) {
    done(script.spawn_error);
    return;
  }
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    done(Status::Internal(std::string("socketpair: ") + std::strerror(errno)));
    return;
  }
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC | O_NONBLOCK) != 0) {
    ::close(sv[0]);
    ::close(sv[1]);
    done(Status::Internal(std::string("pipe2: ") + std::strerror(errno)));
    return;
  }
  sb->channel = std::make_unique<runtime::RuntimeChannel>(io_, sv[1]);
  sb->log_fd = pipefd[1];
  live_[sb->id] = sb;
  sandbox::SandboxHandle handle;
  handle.id = sb->id;
  handle.pid = next_pid_++;
  handle.control_fd = sv[0];
  handle.log_fd = pipefd[0];
  done(std::move(handle));

  switch (script.init) {
    case Script::Init::kReady:
      sb->channel->Write(EncodeFrame(FrameType::kReady, R"({"init_ms": 1.5})"),
                         [](const Status&) {});
      ReadNext(sb);
      break;
    case Script::Init::kInitError:
      sb->channel->Write(EncodeFrame(FrameType::kInitError, script.init_error),
                         [](const Status&) {});
      break;
    case Script::Init::kHang:
      break;
    case Script::Init::kCrash:
      Die(sb, SIGSEGV, false);
      break;
  }
}

void FakeLauncher::ReadNext(const std::shared_ptr<Sandbox>& sb) {
  std::weak_ptr<bool> alive = alive_;
  sb->channel->ReadFrame([this, alive, sb](Result<runtime::Frame> frame) {
    // An error: the engine closed its end (or the sandbox died); nothing to answer.
    if (!alive.lock() || sb->dead || !frame.ok()) return;
    if (frame->type != FrameType::kInvoke) {
      // The fake runtime does not stream: anything else ends it, as a protocol violation would.
      Die(sb, SIGABRT, false);
      return;
    }
    OnInvoke(sb, frame->body);
  });
}

void FakeLauncher::OnInvoke(const std::shared_ptr<Sandbox>& sb, const std::string& body) {
  // INVOKE body: u32 LE meta length, the meta JSON, the payload (runtime/protocol.h).
  InvokeSeen seen;
  seen.sandbox_id = sb->id;
  seen.function = sb->function;
  if (body.size() >= 4) {
    uint32_t meta_len = static_cast<uint8_t>(body[0]) | static_cast<uint8_t>(body[1]) << 8 |
                        static_cast<uint8_t>(body[2]) << 16 |
                        static_cast<uint32_t>(static_cast<uint8_t>(body[3])) << 24;
    if (meta_len <= body.size() - 4) {
      auto meta = nlohmann::json::parse(body.substr(4, meta_len), nullptr, false);
      if (meta.is_object()) {
        if (auto it = meta.find("request_id"); it != meta.end() && it->is_string())
          seen.request_id = it->get<std::string>();
        if (auto it = meta.find("deadline_ms"); it != meta.end() && it->is_number_integer())
          seen.deadline_ms = it->get<int64_t>();
        if (auto it = meta.find("raw_event"); it != meta.end() && it->is_boolean())
          seen.raw_event = it->get<bool>();
      }
      seen.payload = body.substr(4 + meta_len);
    }
  }
  invocations_.push_back(seen);
  Act(sb, sb->handler ? sb->handler(seen) : Reply::Result(seen.payload));
}

void FakeLauncher::Act(const std::shared_ptr<Sandbox>& sb, const Reply& reply) {
  if (sb->dead) return;
  sb->Print(reply.output);
  switch (reply.kind) {
    case Reply::Kind::kResult:
    case Reply::Kind::kError:
      sb->channel->Write(
          EncodeFrame(reply.kind == Reply::Kind::kResult ? FrameType::kResult : FrameType::kError,
                      reply.body),
          [](const Status&) {});
      ReadNext(sb);
      break;
    case Reply::Kind::kHold:
      holding_.push_back(sb->id);
      break;
    case Reply::Kind::kCrash:
      Die(sb, reply.signal, reply.oom_killed);
      break;
  }
}

bool FakeLauncher::Answer(const std::string& sandbox_id, const Reply& reply) {
  auto held = std::find(holding_.begin(), holding_.end(), sandbox_id);
  auto it = live_.find(sandbox_id);
  if (held == holding_.end() || it == live_.end()) return false;
  holding_.erase(held);
  Act(it->second, reply);
  return true;
}

std::vector<std::string> FakeLauncher::Holding() const { return holding_; }

// As a process dies: its socket and pipe close at once; the launcher reports
// the exit afterwards (the real one after reaping it).
void FakeLauncher::Die(const std::shared_ptr<Sandbox>& sb, int signal, bool oom_killed) {
  if (sb->dead) return;
  sb->dead = true;
  if (sb->channel) sb->channel->Close();
  if (sb->log_fd >= 0) {
    ::close(sb->log_fd);
    sb->log_fd = -1;
  }
  holding_.erase(std::remove(holding_.begin(), holding_.end(), sb->id), holding_.end());
  sandbox::ExitInfo info;
  info.signal = signal;
  info.oom_killed = oom_killed;
  std::weak_ptr<bool> alive = alive_;
  boost::asio::post(io_, [this, alive, sb, info] {
    if (!alive.lock()) return;
    live_.erase(sb->id);
    exits_.emplace_back(sb->id, info);
    if (on_exit_) on_exit_(sb->id, info);
  });
}

void FakeLauncher::Kill(const std::string& id) {
  auto it = live_.find(id);
  if (it == live_.end() || it->second->dead) return;
  ++kills_;
  Die(it->second, SIGKILL, false);
}

void FakeLauncher::Shutdown() {
  std::vector<std::shared_ptr<Sandbox>> all;
  for (auto& [id, sb] : live_) all.push_back(sb);
  for (auto& sb : all) {
    if (!sb->dead) Die(sb, SIGKILL, false);
  }
}

}  // namespace gust::engine::testing
