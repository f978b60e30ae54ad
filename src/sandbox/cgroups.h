// Cgroups: the per-sandbox cgroups behind one small class, for both cgroup v1
// (one hierarchy per controller at <root>/<controller>) and pure cgroup v2
// (<root> with memory in cgroup.controllers). Layout:
//   v1: <root>/{memory,pids,cpu}/<parent>/<id>     v2: <root>/<parent>/<id>
// Limits per sandbox: memory (swap off), pids.max, cpu weight/shares.
//
// Failures: every OS error is returned as a Status naming the file; nothing
// here crashes. Create() removes what it made when a later step fails.
// Remove() returns Unavailable while the cgroup is still populated (EBUSY) so
// the caller can retry, and treats an already-missing dir as success.
//
// Thread-safety: none needed; used from the engine thread only. The object is
// immutable after Detect() (all methods are const).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"
#include "sandbox/unique_fd.h"

namespace gust::sandbox {

struct CgroupLimits {
  int memory_mb = 128;
  int pids_max = 1024;
  int cpu_weight = 100;  // v2 scale; v1 shares = weight * 1024 / 100
};

struct CgroupStats {
  uint64_t peak_memory_bytes = 0;
  bool oom_killed = false;
};

class Cgroups {
 public:
  // Finds the cgroup layout under root (normally /sys/fs/cgroup). Errors name
  // the missing piece ("cgroup pids controller not found at ...").
  static Result<Cgroups> Detect(const std::string& root, const std::string& parent);
  // No hierarchies (rootless mode): every method succeeds doing nothing,
  // OpenProcs gives no fds and Stats zeros.
  static Cgroups None() { return Cgroups(); }

  bool v2() const { return v2_; }
  // "cgroup v1 memory+pids+cpu", "cgroup v2 memory+pids+cpu" or "no cgroups".
  std::string Summary() const;

  // Creates <parent> under each controller (idempotent); in v2 also enables
  // the controllers in the subtree_control files on the way. The parent's
  // CPU weight is that of one process per online CPU.
  Status CreateParent() const;
  // Names of the sandbox cgroups currently under <parent> (in the memory
  // hierarchy for v1): leftovers of a previous engine, or live ones.
  std::vector<std::string> ListChildren() const;

  Status Create(const std::string& id, const CgroupLimits& limits) const;
  // One cgroup.procs fd (O_WRONLY) per hierarchy: writing "0" to each joins
  // the writer to the sandbox's cgroups.
  Result<std::vector<UniqueFd>> OpenProcs(const std::string& id) const;
  CgroupStats Stats(const std::string& id) const;
  uint64_t PeakMemoryBytes(const std::string& id) const;
  // The sandbox's peak-memory file held open (-1 if it cannot be), so a
  // reading per invocation is one pread instead of open/read/close.
  int OpenPeakMemory(const std::string& id) const;
  static uint64_t ReadPeakMemory(int fd);
  // SIGKILLs every process listed in the sandbox's cgroup.procs files; used
  // when the pid-namespace init cannot be signalled (zygote gone).
  void KillAll(const std::string& id) const;
  Status Remove(const std::string& id) const;
  // Removes <parent> dirs if empty; errors ignored (other engines may use them).
  void RemoveParent() const;

  // Directories of the sandbox, one per hierarchy.
  std::vector<std::string> Dirs(const std::string& id) const;

 private:
  Cgroups() = default;

  bool v2_ = false;
  std::string root_;
  std::string parent_;
  std::vector<std::string> parent_dirs_;  // v1: memory, pids, cpu; v2: one
};

// The memory this process's machine can give a sandbox, in MB: MemTotal of
// /proc/meminfo, or the memory limit of this process's own cgroup (or of an
// ancestor, v1 memory.limit_in_bytes / v2 memory.max, read under root) when
// lower, as in a container. 0 when /proc/meminfo cannot be read. The engine's
// default --max-memory (common/config.h).
int MachineMemoryMb(const std::string& root = "/sys/fs/cgroup");
// The same from given texts (/proc/meminfo, /proc/self/cgroup) and a reader
// of cgroup files: what the tests drive.
int MachineMemoryMbFrom(const std::string& meminfo, const std::string& self_cgroup,
                        const std::string& root,
                        const std::function<Result<std::string>(const std::string&)>& read);

// Small file helpers shared with the launcher (through the OS seam).
Status WriteFile(const std::string& path, const std::string& value);
Result<std::string> ReadFile(const std::string& path);

}  // namespace gust::sandbox
