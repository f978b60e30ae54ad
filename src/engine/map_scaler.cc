#include "engine/map_scaler.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>

namespace gust::engine {
namespace {

// A task that uses less CPU than this share is treated as this (a sleeping
// task is not free: its sandbox's round trips and wake-ups cost something).
constexpr double kMinCpuShare = 0.001;
// Smoothing of cold-start times: the latest weighs half.
constexpr double kColdStartEwma = 0.5;

// Reads a small /proc file into buf (NUL-terminated); its length or -1.
ssize_t ReadSmallFile(const char* path, char* buf, size_t size) {
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = ::read(fd, buf, size - 1);
  ::close(fd);
  if (n < 0) return -1;
  buf[n] = '\0';
  return n;
}

}  // namespace

double TaskMeasures::MedianTaskMs(size_t recent) const {
  size_t n = std::min({task_count_, task_ms_.size(), recent});
  if (n == 0) return -1;
  std::array<double, kTaskTimes> sorted{};
  for (size_t k = 0; k < n; ++k) {  // the n latest, newest first
    sorted[k] = task_ms_[(task_count_ - 1 - k) % task_ms_.size()];
  }
  std::nth_element(sorted.begin(), sorted.begin() + n / 2, sorted.begin() + n);
  return sorted[n / 2];
}

void TaskMeasures::AddCpuShare(double share) {
  cpu_shares_[cpu_share_count_++ % cpu_shares_.size()] = share;
  size_t n = std::min(cpu_share_count_, cpu_shares_.size());
  cpu_share_ = *std::max_element(cpu_shares_.begin(), cpu_shares_.begin() + n);
}

void TaskMeasures::AddColdStart(double ms) {
  cold_start_ms_ = kColdStartEwma * ms + (1 - kColdStartEwma) * cold_start_ms_;
}

void MeasureSessions(const std::vector<SessionLoad>& sessions, double median_task_ms,
                     ScaleInputs* in) {
  in->sessions = sessions.size();
  in->running_sessions = 0;
  double oldest_ms = -1;
  size_t oldest_size = 1;
  for (const SessionLoad& s : sessions) {
    if (!s.running) continue;
    ++in->running_sessions;
    if (s.chunk_age_ms > oldest_ms) {
      oldest_ms = s.chunk_age_ms;
      oldest_size = std::max<size_t>(s.chunk_tasks, 1);
    }
  }
  double running = oldest_ms >= 0 ? oldest_ms / static_cast<double>(oldest_size) : -1;
  in->task_ms = std::max(median_task_ms, running);
  if (in->pending_tasks == 0 || in->running_sessions == 0) return;
  in->first_free_ms = std::numeric_limits<double>::max();
  for (const SessionLoad& s : sessions) {
    if (!s.running) continue;
    in->first_free_ms =
        std::min(in->first_free_ms,
                 ExpectedFreeInMs(median_task_ms, running, s.chunk_tasks, s.chunk_age_ms));
  }
}

size_t ScaledWidth(ScaleInputs* in) {
  if (in->pending_tasks > 0 && TargetSessions(*in) > in->sessions) {
    auto memory = ReadHostMemory();
    in->memory_short = memory && MemoryShort(*memory);
  }
  return TargetSessions(*in);
}

size_t TargetSessions(const ScaleInputs& in) {
  size_t cores = static_cast<size_t>(std::max(in.cores, 1));
  size_t ceiling = static_cast<size_t>(std::max(in.concurrency, 1));
  size_t wanted = in.sessions + in.pending_tasks;  // more would sit idle
  size_t floor = std::min({cores, ceiling, std::max<size_t>(wanted, 1)});
  if (in.cpu_share < 0 || in.task_ms < 0 || (in.running_sessions == 0 && !in.from_history)) {
    // Nothing measured yet: start at the core count, do not guess wider.
    return std::max(std::min(in.sessions, ceiling), floor);
  }
  double share = std::max(in.cpu_share, kMinCpuShare);
  // Rounded down unless close to the next integer: a CPU-bound map measured
  // at 0.75 (waits for chunks, a busy machine) stays at the core count.
  auto cpu_cap = static_cast<size_t>(std::floor(static_cast<double>(cores) / share + 0.25));
  size_t cap = std::max(floor, std::min(cpu_cap, ceiling));
  if (in.sessions > cap) return cap;  // CPU-bound: shed the extra sandboxes
  double drain_ms =
      in.first_free_ms + static_cast<double>(in.pending_tasks) * in.task_ms /
                             static_cast<double>(std::max<size_t>(in.running_sessions, 1));
  if (drain_ms <= in.cold_start_ms || in.memory_short) return std::max(in.sessions, floor);
  return std::max(floor, std::min(cap, wanted));
}

double ExpectedFreeInMs(double median_task_ms, double lower_bound_task_ms, size_t chunk_tasks,
                        double age_ms) {
  double task_ms = median_task_ms >= 0 ? median_task_ms : 2 * lower_bound_task_ms;
  return std::max(0.0, task_ms * static_cast<double>(std::max<size_t>(chunk_tasks, 1)) - age_ms);
}

int AutoChunkTasks(double task_ms, size_t pending_tasks, size_t width) {
  if (task_ms < 0) return 1;  // nothing known: one task, measured, then sized
  double per_round = kTargetRoundMs / std::max(task_ms, 0.001);
  size_t balanced = pending_tasks / (2 * std::max<size_t>(width, 1));
  double n = std::min<double>(per_round, static_cast<double>(std::max<size_t>(balanced, 1)));
  return static_cast<int>(std::clamp(n, 1.0, static_cast<double>(kMaxAutoChunk)));
}

std::optional<uint64_t> ProcessCpuDemandNs(int pid) {
  if (pid <= 0) return std::nullopt;
  char path[48];
  std::snprintf(path, sizeof path, "/proc/%d/schedstat", pid);
  char buf[128];
  if (ReadSmallFile(path, buf, sizeof buf) <= 0) return std::nullopt;
  // "<ns on cpu> <ns waiting on a runqueue> <timeslices>"
  char* end = nullptr;
  unsigned long long on_cpu = std::strtoull(buf, &end, 10);
  if (end == buf) return std::nullopt;
  char* rest = end;
  unsigned long long waiting = std::strtoull(rest, &end, 10);
  if (end == rest) waiting = 0;
  return static_cast<uint64_t>(on_cpu + waiting);
}

std::optional<HostMemory> ReadHostMemory() {
  char buf[4096];
  if (ReadSmallFile("/proc/meminfo", buf, sizeof buf) <= 0) return std::nullopt;
  auto field = [&buf](const char* name) -> uint64_t {
    const char* p = std::strstr(buf, name);
    return p ? std::strtoull(p + std::strlen(name), nullptr, 10) * 1024 : 0;
  };
  HostMemory m;
  m.total = field("MemTotal:");
  m.available = field("MemAvailable:");
  if (m.total == 0) return std::nullopt;
  return m;
}

bool MemoryShort(const HostMemory& m) {
  uint64_t reserve = std::max<uint64_t>(uint64_t{1} << 30, m.total / 10);
  return m.available < reserve;
}

}  // namespace gust::engine
