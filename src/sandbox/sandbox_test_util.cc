#include "sandbox/sandbox_test_util.h"

#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <utility>

namespace gust::sandbox::testing {
namespace {

namespace fs = std::filesystem;

const char kBootstrap[] = R"PY(
import json, os, struct

def _write_all(fd, data):
    while data:
        n = os.write(fd, data)
        data = data[n:]

def run(config_json):
    cfg = json.loads(config_json)
    env = cfg.get("env", {})
    if env.get("MODE") == "ready":
        body = b'{"init_ms": 0}'
        _write_all(3, struct.pack("<IBBH", len(body), 10, 0, 0) + body)
        while os.read(3, 65536):
            pass
        return 0
    result = {}
    try:
        exec(env.get("PROBE", ""), {"result": result, "cfg": cfg})
    except Exception as e:
        result["exception"] = repr(e)
    _write_all(3, json.dumps(result).encode())
    return int(result.get("exit", 0))
)PY";

void WriteText(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

}  // namespace

bool IsRoot() { return ::geteuid() == 0; }

TestEnv::TestEnv() {
  char tmpl[] = "/tmp/gust-sbx-test-XXXXXX";
  dir = ::mkdtemp(tmpl);
  ::chmod(dir.c_str(), 0700);
  runtime_dir = dir + "/runtime";
  bundles_root = dir + "/bundles";
  bundle_dir = bundles_root + "/fn1/v1";
  work_dir = dir + "/work";
  fs::create_directories(runtime_dir + "/gust_runtime");
  fs::create_directories(bundle_dir);
  fs::create_directories(work_dir);
  WriteText(runtime_dir + "/gust_runtime/__init__.py", "");
  WriteText(runtime_dir + "/gust_runtime/zygote.py",
            "import gc, importlib\n"
            "def preload(mods):\n"
            "    for m in mods:\n"
            "        importlib.import_module(m)\n"
            "    gc.freeze()\n");
  WriteText(runtime_dir + "/gust_runtime/bootstrap.py", kBootstrap);
  WriteText(bundle_dir + "/app.py", "def handler(event, context):\n    return event\n");
  WriteText(dir + "/secret.txt", "state dir secret\n");
  // The sandbox uid must be able to traverse to the runtime and the bundle
  // through the binds, but the state dir itself stays 0700.
  for (const std::string& p : {runtime_dir, runtime_dir + "/gust_runtime", bundles_root,
                               bundles_root + "/fn1", bundle_dir}) {
    ::chmod(p.c_str(), 0755);
  }
}

TestEnv::~TestEnv() {
  std::error_code ec;
  fs::remove_all(dir, ec);
}

LauncherOptions TestEnv::Options(const std::string& cgroup_parent) const {
  LauncherOptions o;
  o.init_binary = GUST_SANDBOX_INIT_PATH;
  o.zygote_module = GUST_ZYGOTE_MODULE_PATH;  // "" when not built: gust-sandbox-init
  o.runtime_dir = runtime_dir;
  o.bundles_root = bundles_root;
  o.work_dir = work_dir;
  o.cgroup_parent = cgroup_parent;
  o.preload_modules = {"json"};
  return o;
}

std::string ReadAll(int fd, int timeout_ms) {
  std::string out;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) return out;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    char buf[65536];
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n <= 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

Harness::Harness(LauncherOptions options) : launcher(MakeZygoteLauncher(io, std::move(options))) {
  launcher->SetExitCallback(
      [this](const std::string& id, const ExitInfo& info) { exits[id] = info; });
}

// A handler that throws while the launcher shuts down is a broken test run:
// it aborts, loudly, and no exception leaves a destructor.
Harness::~Harness() {
  try {
    launcher->Shutdown();
    io.poll();
  } catch (...) {
    std::abort();
  }
}

SandboxSpec Harness::Spec(const std::string& id) const {
  SandboxSpec s;
  s.id = id;
  s.bundle_dir = bundle_dir;
  s.handler = "app.handler";
  s.function_name = "fn1";
  s.function_version = "$LATEST";
  return s;
}

Result<SandboxHandle> Harness::SpawnSync(const SandboxSpec& spec, int timeout_ms) {
  std::optional<Result<SandboxHandle>> got;
  launcher->Spawn(spec, [&](Result<SandboxHandle> r) { got = std::move(r); });
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!got && std::chrono::steady_clock::now() < deadline) {
    io.run_one_for(std::chrono::milliseconds(50));
  }
  if (!got) return Status::Timeout("spawn did not complete");
  return std::move(*got);
}

bool Harness::WaitExit(const std::string& id, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!exits.count(id) && std::chrono::steady_clock::now() < deadline) {
    io.run_one_for(std::chrono::milliseconds(50));
  }
  return exits.count(id) > 0;
}

ProbeOutcome Harness::RunProbe(const std::string& probe, SandboxSpec spec, int timeout_ms) {
  ProbeOutcome out;
  spec.env["PROBE"] = probe;
  auto h = SpawnSync(spec, timeout_ms);
  if (!h.ok()) {
    out.spawn_error = h.status().ToString();
    return out;
  }
  out.spawned = true;
  out.raw = ReadAll(h->control_fd, timeout_ms);
  out.result = nlohmann::json::parse(out.raw, nullptr, false);
  if (out.result.is_discarded()) out.result = nullptr;
  out.exited = WaitExit(spec.id, timeout_ms);
  if (!out.exited) launcher->Kill(spec.id), out.exited = WaitExit(spec.id, 5000);
  if (out.exited) out.exit = exits[spec.id];
  out.log = ReadAll(h->log_fd, 100);
  ::close(h->control_fd);
  ::close(h->log_fd);
  return out;
}

}  // namespace gust::sandbox::testing
