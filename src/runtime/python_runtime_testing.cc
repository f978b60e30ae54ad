#include "runtime/python_runtime_testing.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

namespace gust::runtime::testing {

namespace {

constexpr char kPython[] = "/usr/bin/python3";
constexpr int kControlFd = 3;

}  // namespace

PythonRuntimeProcess::~PythonRuntimeProcess() {
  if (engine_fd_ >= 0) ::close(engine_fd_);
  engine_fd_ = -1;
  if (pid_ > 0) (void)Wait(5000);
  if (!task_root_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(task_root_, ignored);
  }
}

Status PythonRuntimeProcess::Start(const std::map<std::string, std::string>& files,
                                   const std::string& handler) {
  char dir_template[] = "/tmp/gust_runtime_test.XXXXXX";
  if (::mkdtemp(dir_template) == nullptr) return Status::FromErrno("mkdtemp", errno);
  task_root_ = dir_template;
  for (const auto& [name, contents] : files) {
    const std::filesystem::path path = std::filesystem::path(task_root_) / name;
    std::error_code ec;
    std::filesystem::create_directories(path.parent_path(), ec);
    std::ofstream out(path);
    out << contents;
    if (!out) return Status::IoError("cannot write " + path.string());
  }

  const nlohmann::json config = {
      {"control_fd", kControlFd},
      {"handler", handler},
      {"task_root", task_root_},
      {"function_name", "f"},
      {"function_version", "$LATEST"},
      {"memory_mb", 128},
      {"timeout_s", 3},
      {"env", nlohmann::json::object()},
      {"region", "us-east-1"},
      {"log_group_name", "/aws/lambda/f"},
      {"log_stream_name", "2026/11/25/[$LATEST]test"},
      {"sandbox_id", "test"},
  };
  const std::string code = std::string("import sys; sys.path.insert(0, '") + GUST_SOURCE_DIR +
                           "/runtimes/python'); from gust_runtime import bootstrap; "
                           "sys.exit(bootstrap.run(sys.argv[1]))";
  const std::string config_json = config.dump();
  // Everything the child needs is built before fork(): after it, only
  // async-signal-safe calls.
  std::vector<char*> argv = {const_cast<char*>(kPython), const_cast<char*>("-c"),
                             const_cast<char*>(code.c_str()),
                             const_cast<char*>(config_json.c_str()), nullptr};

  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    return Status::FromErrno("socketpair", errno);
  }
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int err = errno;
    ::close(fds[0]);
    ::close(fds[1]);
    return Status::FromErrno("fork", err);
  }
  if (pid == 0) {
    if (fds[1] == kControlFd) {
      ::fcntl(kControlFd, F_SETFD, 0);  // dup2 onto itself would keep FD_CLOEXEC
    } else if (::dup2(fds[1], kControlFd) < 0) {
      ::_exit(127);
    }
    const int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    ::execv(kPython, argv.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  engine_fd_ = fds[0];
  pid_ = pid;
  return Status::Ok();
}

int PythonRuntimeProcess::TakeEngineFd() {
  const int fd = engine_fd_;
  engine_fd_ = -1;
  return fd;
}

Result<int> PythonRuntimeProcess::Wait(int timeout_ms) {
  if (pid_ <= 0) return Status::Internal("no runtime process");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  int status = 0;
  for (;;) {
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) break;
    if (r < 0) return Status::FromErrno("waitpid", errno);
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  pid_ = -1;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + WTERMSIG(status);
}

}  // namespace gust::runtime::testing
