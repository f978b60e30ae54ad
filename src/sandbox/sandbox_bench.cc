// sandbox_bench: cold-start latency and creation rate of ZygoteLauncher with
// a fake runtime that answers READY at once (sandbox_test_util.h).
//   cold start = Spawn() call -> first byte on the control socket
// Also prints the per-step cost breakdown the children trace to their log
// pipes. Needs root. Usage: sandbox_bench [N=200]
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "bin/guarded_main.h"
#include "sandbox/child_isolation.h"
#include "sandbox/sandbox_test_util.h"

namespace gust::sandbox {
namespace {

using testing::Harness;
using testing::TestEnv;

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  return v[i];
}

bool WaitByte(int fd) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, 10000) <= 0) return false;
  char buf[64];
  return ::read(fd, buf, sizeof(buf)) > 0;
}

// "t_recv_ns=N fork=12 cgroup=34" -> {"t_recv_ns": N, "fork": 12, ...}
std::map<std::string, double> ParseTrace(const std::string& log) {
  std::map<std::string, double> out;
  size_t pos = log.find("trace ");
  if (pos == std::string::npos) return out;
  std::istringstream in(log.substr(pos + 6, log.find('\n', pos) - pos - 6));
  std::string tok;
  while (in >> tok) {
    size_t eq = tok.find('=');
    if (eq != std::string::npos) out[tok.substr(0, eq)] = std::atof(tok.c_str() + eq + 1);
  }
  return out;
}

int Main(int n) {
  if (!testing::IsRoot()) {
    std::fprintf(stderr, "sandbox_bench needs root\n");
    return 1;
  }
  TestEnv env;
  LauncherOptions options = env.Options("gust-bench");
  options.trace_isolation_steps = true;
  Harness h(options);
  h.bundle_dir = env.bundle_dir;
  Status s = h.Start();
  if (!s.ok()) {
    std::fprintf(stderr, "start: %s\n", s.ToString().c_str());
    return 1;
  }
  std::vector<double> cold_ms, callback_ms, to_zygote_ms;
  std::map<std::string, std::vector<double>> steps;
  std::vector<std::string> order;
  for (int i = 0; i < n + 10; ++i) {
    SandboxSpec spec = h.Spec("b" + std::to_string(i));
    spec.env["MODE"] = "ready";
    uint64_t t0 = MonotonicNs();
    auto handle = h.SpawnSync(spec);
    uint64_t t_cb = MonotonicNs();
    if (!handle.ok() || !WaitByte(handle->control_fd)) {
      std::fprintf(stderr, "spawn %d failed: %s\n", i, handle.status().ToString().c_str());
      return 1;
    }
    uint64_t t1 = MonotonicNs();
    std::string log;
    char buf[4096];
    for (ssize_t r; (r = ::read(handle->log_fd, buf, sizeof(buf))) > 0;) log.append(buf, r);
    h.launcher->Kill(spec.id);
    h.WaitExit(spec.id);
    ::close(handle->control_fd);
    ::close(handle->log_fd);
    if (i < 10) continue;  // warm-up
    cold_ms.push_back(static_cast<double>(t1 - t0) / 1e6);
    callback_ms.push_back(static_cast<double>(t_cb - t0) / 1e6);
    auto trace = ParseTrace(log);
    if (trace.count("t_recv_ns")) {
      to_zygote_ms.push_back((trace["t_recv_ns"] - static_cast<double>(t0)) / 1e6);
      trace.erase("t_recv_ns");
    }
    for (const auto& [k, v] : trace) {
      if (!steps.count(k)) order.push_back(k);
      steps[k].push_back(v);
    }
  }
  std::printf("cold start (Spawn -> first byte on control socket), %d sequential spawns:\n", n);
  std::printf("  p50 %.2f ms  p99 %.2f ms  max %.2f ms\n", Percentile(cold_ms, 0.5),
              Percentile(cold_ms, 0.99), Percentile(cold_ms, 1.0));
  std::printf("  spawn callback p50 %.2f ms; request reaches zygote p50 %.3f ms\n",
              Percentile(callback_ms, 0.5), Percentile(to_zygote_ms, 0.5));
  std::printf("child steps (us, p50 / p99), measured from the zygote's receipt:\n");
  static const char* kOrder[] = {"fork",     "cgroup",  "unshare", "mounts",  "hostname",
                                 "loopback", "rlimits", "creds",   "seccomp", "fds"};
  double sum = 0;
  for (const char* k : kOrder) {
    if (!steps.count(k)) continue;
    double p50 = Percentile(steps[k], 0.5);
    sum += p50;
    std::printf("  %-9s %8.0f / %8.0f\n", k, p50, Percentile(steps[k], 0.99));
  }
  std::printf("  (sum of p50s %.0f us; the rest of the cold start is the runtime's Python)\n", sum);

  // Creation rate: batches of spawns in flight at once, until all are READY.
  const int kBatch = 20;
  int made = 0;
  uint64_t busy_ns = 0;
  uint64_t start_all = MonotonicNs();
  for (int b = 0; made < n; ++b) {
    std::vector<std::pair<std::string, SandboxHandle>> live;
    int pending = 0;
    uint64_t t0 = MonotonicNs();
    for (int i = 0; i < kBatch && made + i < n; ++i) {
      SandboxSpec spec = h.Spec("r" + std::to_string(b) + "-" + std::to_string(i));
      spec.env["MODE"] = "ready";
      ++pending;
      h.launcher->Spawn(spec, [&, id = spec.id](Result<SandboxHandle> r) {
        --pending;
        if (r.ok()) live.emplace_back(id, *r);
      });
    }
    while (pending > 0) h.io.run_one();
    for (auto& [id, handle] : live) WaitByte(handle.control_fd);
    busy_ns += MonotonicNs() - t0;
    made += static_cast<int>(live.size());
    for (auto& [id, handle] : live) h.launcher->Kill(id);
    for (auto& [id, handle] : live) {
      h.WaitExit(id);
      ::close(handle.control_fd);
      ::close(handle.log_fd);
    }
  }
  double total_s = static_cast<double>(MonotonicNs() - start_all) / 1e9;
  std::printf("creation rate (batches of %d, Spawn -> all READY): %.0f sandboxes/s\n", kBatch,
              made / (static_cast<double>(busy_ns) / 1e9));
  std::printf("full cycle incl. kill + exit report + cgroup removal: %.0f sandboxes/s\n",
              made / total_s);
  return 0;
}

}  // namespace
}  // namespace gust::sandbox

namespace {
int Run(int argc, char** argv) { return gust::sandbox::Main(argc > 1 ? std::atoi(argv[1]) : 200); }
}  // namespace

int main(int argc, char** argv) { return gust::GuardedMain("sandbox_bench", Run, argc, argv); }
