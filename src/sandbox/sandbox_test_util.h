// Test and benchmark support for the sandbox layer: a throw-away state dir
// with a fake Python runtime (gust_runtime/{zygote,bootstrap}.py written
// here, independent of runtimes/python) and one bundle, plus a synchronous
// harness around a ZygoteLauncher. The fake bootstrap.run() looks at the
// sandbox env: MODE=ready writes a READY frame to fd 3 and waits for EOF;
// otherwise it exec()s env PROBE with a dict `result` in scope, writes
// json(result) to fd 3 and returns result.get("exit", 0).
//
// Thread-safety: single-threaded test code.
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <map>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "sandbox/sandbox.h"

namespace gust::sandbox::testing {

struct TestEnv {
  TestEnv();
  ~TestEnv();
  std::string dir;  // the "state dir"
  std::string runtime_dir;
  std::string bundles_root;
  std::string bundle_dir;
  std::string work_dir;
  LauncherOptions Options(const std::string& cgroup_parent) const;
};

// The implicit noexcept move is nlohmann::json's, whose assert_invariant() tidy
// reads as able to throw; it asserts only.
// NOLINTNEXTLINE(bugprone-exception-escape)
struct ProbeOutcome {
  bool spawned = false;
  std::string spawn_error;
  nlohmann::json result;  // null if the probe wrote nothing parseable
  std::string raw;
  bool exited = false;
  ExitInfo exit;
  std::string log;
};

class Harness {
 public:
  explicit Harness(LauncherOptions options);
  ~Harness();
  Status Start() { return launcher->Start(); }
  Result<SandboxHandle> SpawnSync(const SandboxSpec& spec, int timeout_ms = 10000);
  // Runs the io_context until the exit of id is reported.
  bool WaitExit(const std::string& id, int timeout_ms = 10000);
  ProbeOutcome RunProbe(const std::string& probe, SandboxSpec spec, int timeout_ms = 20000);
  SandboxSpec Spec(const std::string& id) const;

  boost::asio::io_context io;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work{io.get_executor()};
  std::unique_ptr<SandboxLauncher> launcher;
  std::map<std::string, ExitInfo> exits;
  std::string bundle_dir;
};

// Reads fd until EOF or timeout; returns what was read.
std::string ReadAll(int fd, int timeout_ms);
bool IsRoot();

}  // namespace gust::sandbox::testing
