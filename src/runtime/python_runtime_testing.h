// Test support: starts the real Python runtime (runtimes/python/gust_runtime)
// as a plain child process -- no sandbox, no zygote -- on one end of a
// socketpair, so tests and benchmarks can drive it through RuntimeChannel.
//
// The child is `/usr/bin/python3 -c "...bootstrap.run(config)"` with the
// socket as fd 3 and the parent's stdout/stderr. A temporary task root holds
// the handler modules and is removed by the destructor, which also closes the
// engine end (if still owned) and reaps the child.
//
// Thread-safety: not thread-safe; use from one thread. Not for production.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>

#include "common/status.h"

namespace gust::runtime::testing {

class PythonRuntimeProcess {
 public:
  PythonRuntimeProcess() = default;
  ~PythonRuntimeProcess();
  PythonRuntimeProcess(const PythonRuntimeProcess&) = delete;
  PythonRuntimeProcess& operator=(const PythonRuntimeProcess&) = delete;

  // Writes `files` (relative path -> contents) into a fresh task root and
  // starts the runtime with handler `handler` ("app.handler").
  Status Start(const std::map<std::string, std::string>& files, const std::string& handler);

  // The engine end of the control socket. TakeEngineFd() hands it over (e.g.
  // to a RuntimeChannel); the caller then owns it.
  int TakeEngineFd();

  // Waits for the child to exit (up to timeout_ms, then SIGKILL) and returns
  // its exit code (128 + signal if killed by one).
  Result<int> Wait(int timeout_ms);

  const std::string& task_root() const { return task_root_; }

 private:
  std::string task_root_;
  int engine_fd_ = -1;
  pid_t pid_ = -1;
};

}  // namespace gust::runtime::testing
