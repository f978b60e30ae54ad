// SandboxSession against the real Python runtime run as a plain child process
// (no isolation): the launcher here only kills and reaps, which is all the
// session asks of it. Isolation itself is tested in src/sandbox and tests/e2e.
#include "runtime/sandbox_session.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/steady_timer.hpp>

#include <filesystem>
#include <fstream>
#include <optional>

namespace gust::runtime {
namespace {

class ProcessLauncher : public sandbox::SandboxLauncher {
 public:
  explicit ProcessLauncher(boost::asio::io_context& io) : reaper_(io) {}
  Status Start() override { return Status::Ok(); }
  void Shutdown() override {}
  void Spawn(const sandbox::SandboxSpec&, sandbox::SpawnCallback) override {}
  void Kill(const std::string&) override {
    if (pid_ > 0) ::kill(pid_, SIGKILL);
  }
  void SetExitCallback(sandbox::ExitCallback cb) override { on_exit_ = std::move(cb); }
  uint64_t PeakMemoryBytes(const std::string&) override { return 0; }
  std::string IsolationSummary() const override { return "none (test)"; }
  int LiveCount() const override { return pid_ > 0 ? 1 : 0; }

  void Watch(pid_t pid, std::function<void(const sandbox::ExitInfo&)> on_exit) {
    pid_ = pid;
    exit_ = std::move(on_exit);
    Poll();
  }

 private:
  void Poll() {
    int status;
    if (pid_ > 0 && ::waitpid(pid_, &status, WNOHANG) == pid_) {
      sandbox::ExitInfo info;
      if (WIFSIGNALED(status))
        info.signal = WTERMSIG(status);
      else
        info.exit_code = WEXITSTATUS(status);
      pid_ = -1;
      exit_(info);
      return;
    }
    reaper_.expires_after(std::chrono::milliseconds(5));
    reaper_.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) Poll();
    });
  }
  boost::asio::steady_timer reaper_;
  pid_t pid_ = -1;
  sandbox::ExitCallback on_exit_;
  std::function<void(const sandbox::ExitInfo&)> exit_;
};

class SandboxSessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/gust-session-XXXXXX";
    task_root_ = mkdtemp(tmpl);
  }
  void TearDown() override {
    if (session_) {
      session_->Kill();
      for (int i = 0; i < 100 && session_->state() != SandboxSession::State::kDead; ++i) {
        io_.run_for(std::chrono::milliseconds(10));
        if (io_.stopped()) io_.restart();
      }
    }
    session_.reset();
    std::filesystem::remove_all(task_root_);
  }

  // Starts the runtime on app.py = source and waits for its init outcome.
  Outcome Start(const std::string& source) {
    std::ofstream(task_root_ + "/app.py") << source;
    int sv[2], out[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    EXPECT_EQ(pipe2(out, O_CLOEXEC), 0);
    std::string config =
        R"({"control_fd": 3, "handler": "app.handler", "task_root": ")" + task_root_ +
        R"(", "function_name": "f", "function_version": "$LATEST", "memory_mb": 128,
                             "timeout_s": 3, "env": {}, "region": "us-east-1",
                             "log_group_name": "/aws/lambda/f", "log_stream_name": "s",
                             "sandbox_id": "sbx-test"})";
    std::string code = "import sys; sys.path.insert(0, '" GUST_SOURCE_DIR
                       "/runtimes/python'); from gust_runtime import bootstrap; "
                       "sys.exit(bootstrap.run(sys.argv[1]))";
    pid_t pid = fork();
    if (pid == 0) {
      dup2(sv[1], 3);
      dup2(out[1], 1);
      dup2(out[1], 2);
      execl("/usr/bin/python3", "python3", "-c", code.c_str(), config.c_str(), nullptr);
      _exit(127);
    }
    close(sv[1]);
    close(out[1]);
    fcntl(out[0], F_SETFL, O_NONBLOCK);
    sandbox::SandboxHandle handle;
    handle.id = "sbx-test";
    handle.pid = pid;
    handle.control_fd = sv[0];
    handle.log_fd = out[0];
    session_ = std::make_shared<SandboxSession>(io_, launcher_, handle);
    launcher_.Watch(pid, [this](const sandbox::ExitInfo& info) { session_->OnExit(info); });
    std::optional<Outcome> result;
    session_->AwaitInit(std::chrono::seconds(10), [&](Outcome o) { result = std::move(o); });
    RunUntil(result);
    return *result;
  }

  Outcome Invoke(const std::string& payload, std::chrono::milliseconds timeout,
                 SandboxSession::OnYield on_yield = nullptr) {
    InvokeMeta meta;
    meta.request_id = "req-1";
    meta.deadline_ms = 0;
    meta.raw_event = static_cast<bool>(on_yield);
    meta.stream = static_cast<bool>(on_yield);
    std::optional<Outcome> result;
    session_->Invoke(
        meta, payload, timeout, [&](Outcome o) { result = std::move(o); }, std::move(on_yield));
    RunUntil(result);
    return *result;
  }

  void RunUntil(std::optional<Outcome>& result) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!result && std::chrono::steady_clock::now() < deadline) {
      io_.run_for(std::chrono::milliseconds(5));
      if (io_.stopped()) io_.restart();
    }
    ASSERT_TRUE(result.has_value()) << "no outcome within 30 s";
  }

  boost::asio::io_context io_;
  ProcessLauncher launcher_{io_};
  std::shared_ptr<SandboxSession> session_;
  std::string task_root_;
};

TEST_F(SandboxSessionTest, InitThenInvokeCapturesOutput) {
  Outcome init = Start(
      "print('init line')\ndef handler(e, c):\n    print('hello', e['x'])\n"
      "    return {'y': e['x'] + 1}\n");
  ASSERT_EQ(init.kind, Outcome::Kind::kSuccess) << init.body;
  EXPECT_NE(init.output.find("init line"), std::string::npos);
  EXPECT_EQ(session_->state(), SandboxSession::State::kIdle);
  Outcome out = Invoke(R"({"x": 41})", std::chrono::seconds(5));
  ASSERT_EQ(out.kind, Outcome::Kind::kSuccess) << out.body;
  EXPECT_EQ(out.body, R"({"y": 42})");
  EXPECT_NE(out.output.find("hello 41"), std::string::npos) << out.output;
  EXPECT_EQ(out.output.find("init line"), std::string::npos);
  // Reused: a second invocation on the same sandbox.
  EXPECT_EQ(Invoke(R"({"x": 1})", std::chrono::seconds(5)).body, R"({"y": 2})");
}

TEST_F(SandboxSessionTest, TimeoutKillsAndReports) {
  ASSERT_EQ(Start("import time\ndef handler(e, c):\n    print('before'); time.sleep(30)\n").kind,
            Outcome::Kind::kSuccess);
  auto t0 = std::chrono::steady_clock::now();
  Outcome out = Invoke("{}", std::chrono::milliseconds(300));
  EXPECT_EQ(out.kind, Outcome::Kind::kTimeout);
  EXPECT_EQ(out.error_type, "Sandbox.Timedout");
  EXPECT_TRUE(out.sandbox_lost);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  EXPECT_EQ(session_->state(), SandboxSession::State::kDead);
  ASSERT_TRUE(session_->exit_info().has_value());
  EXPECT_EQ(session_->exit_info()->signal, SIGKILL);
}

TEST_F(SandboxSessionTest, ExitIsAnExitError) {
  ASSERT_EQ(Start("import os\ndef handler(e, c):\n    os._exit(3)\n").kind,
            Outcome::Kind::kSuccess);
  Outcome out = Invoke("{}", std::chrono::seconds(5));
  EXPECT_EQ(out.kind, Outcome::Kind::kExitError);
  EXPECT_EQ(out.error_type, "Runtime.ExitError");
  EXPECT_NE(out.body.find("exit status 3"), std::string::npos) << out.body;
}

TEST_F(SandboxSessionTest, SignalIsNamed) {
  ASSERT_EQ(
      Start("import os, signal\ndef handler(e, c):\n    os.kill(os.getpid(), signal.SIGSEGV)\n")
          .kind,
      Outcome::Kind::kSuccess);
  Outcome out = Invoke("{}", std::chrono::seconds(5));
  EXPECT_EQ(out.kind, Outcome::Kind::kExitError);
  EXPECT_NE(out.body.find("signal: segmentation fault"), std::string::npos) << out.body;
}

TEST_F(SandboxSessionTest, HandlerExceptionKeepsSandbox) {
  ASSERT_EQ(Start("def handler(e, c):\n    raise KeyError('k')\n").kind, Outcome::Kind::kSuccess);
  Outcome out = Invoke("{}", std::chrono::seconds(5));
  EXPECT_EQ(out.kind, Outcome::Kind::kFunctionError);
  EXPECT_EQ(out.error_type, "KeyError");
  EXPECT_FALSE(out.sandbox_lost);
  EXPECT_EQ(session_->state(), SandboxSession::State::kIdle);
}

TEST_F(SandboxSessionTest, InitErrorIsReported) {
  Outcome init = Start("raise RuntimeError('bad init')\n");
  EXPECT_EQ(init.kind, Outcome::Kind::kFunctionError);
  EXPECT_EQ(init.error_type, "RuntimeError");
  EXPECT_TRUE(init.sandbox_lost);
}

TEST_F(SandboxSessionTest, OutputIsCappedAndPipeKeepsDraining) {
  ASSERT_EQ(Start("import sys\ndef handler(e, c):\n    for _ in range(3000):\n"
                  "        sys.stdout.write('x' * 1000 + '\\n')\n    return 'done'\n")
                .kind,
            Outcome::Kind::kSuccess);
  Outcome out = Invoke("{}", std::chrono::seconds(20));
  ASSERT_EQ(out.kind, Outcome::Kind::kSuccess) << out.body;
  EXPECT_EQ(out.body, "\"done\"");
  EXPECT_LE(out.output.size(), kMaxCapturedOutput + 200);
  EXPECT_NE(out.output.find("bytes of output dropped"), std::string::npos);
}

// A handler that pulls input: each YIELD gets the next piece as RESUME, an
// empty RESUME ends it (what a map job's worker does with chunks of tasks).
constexpr char kPuller[] = R"(def handler(event, context):
    seen = []
    piece = event
    while piece is not None:
        seen.append(piece)
        piece = context.gust_yield(b"got " + piece)
    return b"|".join(seen)
)";

TEST_F(SandboxSessionTest, StreamingInvocationExchangesYieldAndResume) {
  ASSERT_EQ(Start(kPuller).kind, Outcome::Kind::kSuccess);
  std::vector<std::string> yields;
  std::vector<std::string> inputs = {"b", "c", ""};
  Outcome out = Invoke("a", std::chrono::seconds(5),
                       [&](const std::string& output, const SandboxSession::ResumeFn& resume) {
                         yields.push_back(output);
                         resume({inputs[yields.size() - 1], std::chrono::seconds(5)});
                       });
  ASSERT_EQ(out.kind, Outcome::Kind::kSuccess) << out.body;
  EXPECT_EQ(out.body, "a|b|c");
  EXPECT_EQ(yields, (std::vector<std::string>{"got a", "got b", "got c"}));
  EXPECT_EQ(session_->state(), SandboxSession::State::kIdle);
  // The sandbox serves a plain invocation afterwards (no stream: no gust_yield).
  Outcome plain = Invoke("{}", std::chrono::seconds(5));
  EXPECT_EQ(plain.kind, Outcome::Kind::kFunctionError);
  EXPECT_NE(plain.body.find("gust_yield"), std::string::npos) << plain.body;
}

TEST_F(SandboxSessionTest, ResumeRearmsTheTimeLimit) {
  ASSERT_EQ(Start("import time\n"
                  "def handler(event, context):\n"
                  "    piece = event\n"
                  "    while piece is not None:\n"
                  "        if piece == b'slow': time.sleep(30)\n"
                  "        piece = context.gust_yield(b'ok')\n"
                  "    return b'done'\n")
                .kind,
            Outcome::Kind::kSuccess);
  // 300 ms for the first piece (quick), then 300 ms for "slow", which sleeps.
  auto t0 = std::chrono::steady_clock::now();
  Outcome out = Invoke("a", std::chrono::milliseconds(300),
                       [](const std::string&, const SandboxSession::ResumeFn& resume) {
                         resume({"slow", std::chrono::milliseconds(300)});
                       });
  EXPECT_EQ(out.kind, Outcome::Kind::kTimeout) << out.body;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
}

// A map session of another node answers a YIELD once its owner's next chunk is there: the
// resume comes later, from the engine thread, and a second call of it changes nothing.
TEST_F(SandboxSessionTest, ResumeMayComeLater) {
  ASSERT_EQ(Start(kPuller).kind, Outcome::Kind::kSuccess);
  std::vector<std::string> inputs = {"b", ""};
  size_t yields = 0;
  boost::asio::steady_timer later(io_);
  Outcome out = Invoke("a", std::chrono::seconds(5),
                       [&](const std::string&, SandboxSession::ResumeFn resume) {
                         std::string next = inputs[yields++];
                         later.expires_after(std::chrono::milliseconds(50));
                         later.async_wait([resume, next](const boost::system::error_code&) {
                           resume({next, {}});
                           resume({"again", {}});  // ignored: this YIELD was answered
                         });
                       });
  ASSERT_EQ(out.kind, Outcome::Kind::kSuccess) << out.body;
  EXPECT_EQ(out.body, "a|b");
  EXPECT_EQ(yields, 2u);
}

// The time limit runs on while a resume is awaited; one that comes after the invocation
// ended is ignored.
TEST_F(SandboxSessionTest, ResumeAfterTheTimeLimitIsIgnored) {
  ASSERT_EQ(Start(kPuller).kind, Outcome::Kind::kSuccess);
  SandboxSession::ResumeFn held;
  Outcome out = Invoke("a", std::chrono::milliseconds(300),
                       [&](const std::string&, SandboxSession::ResumeFn resume) {
                         held = std::move(resume);  // never answered in time
                       });
  EXPECT_EQ(out.kind, Outcome::Kind::kTimeout) << out.body;
  ASSERT_TRUE(held);
  held({"b", {}});
  io_.run_for(std::chrono::milliseconds(50));
  EXPECT_NE(session_->state(), SandboxSession::State::kBusy);
}

TEST_F(SandboxSessionTest, YieldOutsideAStreamingInvocationLosesTheSandbox) {
  // A handler writing a YIELD frame on its own (the engine did not ask for a stream).
  ASSERT_EQ(Start("import os, struct, time\n"
                  "def handler(e, c):\n"
                  "    os.write(3, struct.pack('<IBBH', 1, 14, 0, 0) + b'x')\n"
                  "    time.sleep(30)\n")
                .kind,
            Outcome::Kind::kSuccess);
  Outcome out = Invoke("{}", std::chrono::seconds(20));
  EXPECT_NE(out.kind, Outcome::Kind::kSuccess);
  EXPECT_TRUE(out.sandbox_lost);
  EXPECT_NE(out.body.find("YIELD"), std::string::npos) << out.body;
}

}  // namespace
}  // namespace gust::runtime
