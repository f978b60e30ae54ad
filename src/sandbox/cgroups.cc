#include "sandbox/cgroups.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <limits>
#include <optional>

namespace gust::sandbox {
namespace {

constexpr const char* kV1Controllers[] = {"memory", "pids", "cpu"};

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

// Value of "key N" in a flat-keyed file such as memory.events.
uint64_t KeyedValue(const std::string& text, const std::string& key) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    if (line.size() > key.size() && line.substr(0, key.size()) == key && line[key.size()] == ' ') {
      return std::strtoull(std::string(line.substr(key.size() + 1)).c_str(), nullptr, 10);
    }
    pos = end + 1;
  }
  return 0;
}

// The limit in a cgroup memory file ("max" or bytes), or nothing.
std::optional<uint64_t> LimitBytes(const Result<std::string>& text) {
  if (!text.ok()) return std::nullopt;
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), v);
  if (ec != std::errc() || end == text->data()) return std::nullopt;  // "max", or empty
  return v;
}

}  // namespace

int MachineMemoryMbFrom(const std::string& meminfo, const std::string& self_cgroup,
                        const std::string& root,
                        const std::function<Result<std::string>(const std::string&)>& read) {
  size_t at = meminfo.find("MemTotal:");
  if (at == std::string::npos) return 0;
  uint64_t bytes = std::strtoull(meminfo.c_str() + at + 9, nullptr, 10) * 1024;
  // "N:memory:/path" (v1) or "0::/path" (v2). Each level from the cgroup up
  // to the hierarchy's root may limit it; inside a cgroup namespace the path
  // is "/" and the mount's root is the process's own cgroup.
  size_t pos = 0;
  while (pos < self_cgroup.size()) {
    size_t end = self_cgroup.find('\n', pos);
    if (end == std::string::npos) end = self_cgroup.size();
    std::string line = self_cgroup.substr(pos, end - pos);
    pos = end + 1;
    size_t c1 = line.find(':');
    size_t c2 = c1 == std::string::npos ? c1 : line.find(':', c1 + 1);
    if (c2 == std::string::npos) continue;
    std::string controllers = line.substr(c1 + 1, c2 - c1 - 1);
    std::string path = line.substr(c2 + 1);
    std::string dir, file;
    if (controllers.empty() && line.compare(0, c1, "0") == 0) {
      dir = root;
      file = "/memory.max";
    } else if (("," + controllers + ",").find(",memory,") != std::string::npos) {
      dir = root + "/memory";
      file = "/memory.limit_in_bytes";
    } else {
      continue;
    }
    for (;;) {
      if (auto limit = LimitBytes(read(dir + path + file))) bytes = std::min(bytes, *limit);
      if (path.empty() || path == "/") break;
      size_t slash = path.rfind('/');
      path = slash == std::string::npos || slash == 0 ? "/" : path.substr(0, slash);
    }
  }
  return static_cast<int>(std::min<uint64_t>(bytes >> 20, std::numeric_limits<int>::max()));
}

int MachineMemoryMb(const std::string& root) {
  auto meminfo = ReadFile("/proc/meminfo");
  if (!meminfo.ok()) return 0;
  auto self = ReadFile("/proc/self/cgroup");
  return MachineMemoryMbFrom(*meminfo, self.ok() ? *self : "", root, ReadFile);
}

Status WriteFile(const std::string& path, const std::string& value) {
  int fd = Os().open(path.c_str(), O_WRONLY | O_CLOEXEC, 0);
  if (fd < 0) return Status::FromErrno("open " + path, errno);
  UniqueFd owner(fd);
  ssize_t n = Os().write(fd, value.data(), value.size());
  if (n < 0) return Status::FromErrno("write " + value + " to " + path, errno);
  if (static_cast<size_t>(n) != value.size()) return Status::IoError("short write to " + path);
  return Status::Ok();
}

Result<std::string> ReadFile(const std::string& path) {
  int fd = Os().open(path.c_str(), O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0) return Status::FromErrno("open " + path, errno);
  UniqueFd owner(fd);
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = Os().read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno("read " + path, errno);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

Result<Cgroups> Cgroups::Detect(const std::string& root, const std::string& parent) {
  Cgroups c;
  c.root_ = root;
  c.parent_ = parent;
  auto controllers = ReadFile(root + "/cgroup.controllers");
  if (controllers.ok() && controllers->find("memory") != std::string::npos) {
    c.v2_ = true;
    for (const char* need : {"memory", "pids", "cpu"}) {
      if (controllers->find(need) == std::string::npos) {
        return Status::Unavailable(std::string("cgroup v2 controller ") + need + " not listed in " +
                                   root + "/cgroup.controllers");
      }
    }
    c.parent_dirs_.push_back(root + "/" + parent);
    return c;
  }
  for (const char* ctrl : kV1Controllers) {
    std::string dir = root + "/" + ctrl;
    if (!Exists(dir + "/cgroup.procs")) {
      return Status::Unavailable(std::string("cgroup ") + ctrl + " controller not found at " + dir +
                                 " (and no cgroup v2 with memory at " + root + ")");
    }
    c.parent_dirs_.push_back(dir + "/" + parent);
  }
  return c;
}

std::string Cgroups::Summary() const {
  if (parent_dirs_.empty()) return "no cgroups";
  return v2_ ? "cgroup v2 memory+pids+cpu" : "cgroup v1 memory+pids+cpu";
}

Status Cgroups::CreateParent() const {
  if (parent_dirs_.empty()) return Status::Ok();
  if (v2_) {
    GUST_RETURN_IF_ERROR(WriteFile(root_ + "/cgroup.subtree_control", "+memory +pids +cpu"));
  }
  for (const std::string& dir : parent_dirs_) {
    if (Os().mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
      return Status::FromErrno("mkdir " + dir, errno);
    }
  }
  if (v2_) {
    GUST_RETURN_IF_ERROR(
        WriteFile(parent_dirs_[0] + "/cgroup.subtree_control", "+memory +pids +cpu"));
  }
  // The sandboxes share their parent's CPU weight: at the default (that of
  // one process) a busy machine would give all of them together one process's
  // share. Weighted as one process per core, a map competes for the CPU like
  // a process pool of that many workers would.
  long cpus = std::max(1L, ::sysconf(_SC_NPROCESSORS_ONLN));
  if (v2_) {
    GUST_RETURN_IF_ERROR(
        WriteFile(parent_dirs_[0] + "/cpu.weight", std::to_string(std::min(10000L, cpus * 100))));
  } else {
    GUST_RETURN_IF_ERROR(WriteFile(parent_dirs_[2] + "/cpu.shares", std::to_string(cpus * 1024)));
  }
  return Status::Ok();
}

std::vector<std::string> Cgroups::ListChildren() const {
  std::vector<std::string> out;
  if (parent_dirs_.empty()) return out;
  DIR* d = ::opendir(parent_dirs_[0].c_str());
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    if (e->d_type == DT_DIR && e->d_name[0] != '.') out.emplace_back(e->d_name);
  }
  ::closedir(d);
  return out;
}

std::vector<std::string> Cgroups::Dirs(const std::string& id) const {
  std::vector<std::string> out;
  for (const std::string& p : parent_dirs_) out.push_back(p + "/" + id);
  return out;
}

Status Cgroups::Create(const std::string& id, const CgroupLimits& limits) const {
  if (id.empty() || id.find('/') != std::string::npos || id[0] == '.') {
    return Status::InvalidArgument("bad sandbox id '" + id + "'");
  }
  std::vector<std::string> dirs = Dirs(id);
  if (dirs.empty()) return Status::Ok();
  std::vector<std::string> made;
  auto fail = [&](Status s) {
    for (const std::string& d : made) Os().rmdir(d.c_str());
    return s;
  };
  for (const std::string& d : dirs) {
    if (Os().mkdir(d.c_str(), 0755) != 0) return fail(Status::FromErrno("mkdir " + d, errno));
    made.push_back(d);
  }
  const std::string mem = std::to_string(static_cast<uint64_t>(limits.memory_mb) << 20);
  Status s;
  if (v2_) {
    const std::string& d = dirs[0];
    s = WriteFile(d + "/memory.max", mem);
    // Without swap accounting the file is absent and there is nothing to turn off.
    if (s.ok() && Exists(d + "/memory.swap.max")) s = WriteFile(d + "/memory.swap.max", "0");
    // One OOM kill takes the whole sandbox down, as a Lambda OOM does.
    if (s.ok()) s = WriteFile(d + "/memory.oom.group", "1");
    if (s.ok()) s = WriteFile(d + "/pids.max", std::to_string(limits.pids_max));
    if (s.ok()) s = WriteFile(d + "/cpu.weight", std::to_string(limits.cpu_weight));
  } else {
    s = WriteFile(dirs[0] + "/memory.limit_in_bytes", mem);
    if (s.ok() && Exists(dirs[0] + "/memory.memsw.limit_in_bytes")) {
      s = WriteFile(dirs[0] + "/memory.memsw.limit_in_bytes", mem);
    }
    if (s.ok()) s = WriteFile(dirs[0] + "/memory.swappiness", "0");
    if (s.ok()) s = WriteFile(dirs[1] + "/pids.max", std::to_string(limits.pids_max));
    if (s.ok()) {
      s = WriteFile(dirs[2] + "/cpu.shares", std::to_string(limits.cpu_weight * 1024 / 100));
    }
  }
  if (!s.ok()) return fail(s.WithContext("cgroup " + id));
  return Status::Ok();
}

Result<std::vector<UniqueFd>> Cgroups::OpenProcs(const std::string& id) const {
  std::vector<UniqueFd> fds;
  for (const std::string& d : Dirs(id)) {
    // v1: "tasks", not "cgroup.procs". The joining child is single-threaded,
    // so moving its one thread moves the process; and the kernel moves one
    // thread writing "0" for itself without the global threadgroup rwsem a
    // process move takes (whose writers wait for RCU grace periods: ~15 ms
    // per sandbox, serialised, when hundreds start at once).
    std::string path = d + (v2_ ? "/cgroup.procs" : "/tasks");
    int fd = Os().open(path.c_str(), O_WRONLY | O_CLOEXEC, 0);
    if (fd < 0) return Status::FromErrno("open " + path, errno);
    fds.emplace_back(fd);
  }
  return fds;
}

uint64_t Cgroups::PeakMemoryBytes(const std::string& id) const {
  UniqueFd fd(OpenPeakMemory(id));
  return fd.valid() ? ReadPeakMemory(fd.get()) : 0;
}

int Cgroups::OpenPeakMemory(const std::string& id) const {
  if (parent_dirs_.empty()) return -1;
  const std::string path = Dirs(id)[0] + (v2_ ? "/memory.peak" : "/memory.max_usage_in_bytes");
  return Os().open(path.c_str(), O_RDONLY | O_CLOEXEC, 0);
}

uint64_t Cgroups::ReadPeakMemory(int fd) {
  char buf[32];
  ssize_t n = Os().pread(fd, buf, sizeof(buf) - 1, 0);
  if (n <= 0) return 0;
  buf[n] = '\0';
  return std::strtoull(buf, nullptr, 10);
}

CgroupStats Cgroups::Stats(const std::string& id) const {
  CgroupStats st;
  if (parent_dirs_.empty()) return st;
  st.peak_memory_bytes = PeakMemoryBytes(id);
  const std::string d = Dirs(id)[0];
  auto text = ReadFile(d + (v2_ ? "/memory.events" : "/memory.oom_control"));
  if (text.ok()) st.oom_killed = KeyedValue(*text, "oom_kill") > 0;
  return st;
}

void Cgroups::KillAll(const std::string& id) const {
  for (const std::string& d : Dirs(id)) {
    auto text = ReadFile(d + "/cgroup.procs");
    if (!text.ok()) continue;
    const char* p = text->c_str();
    while (*p != '\0') {
      char* end;
      long pid = std::strtol(p, &end, 10);
      if (end == p) break;
      if (pid > 0) Os().kill(static_cast<pid_t>(pid), SIGKILL);
      p = end;
      while (*p == '\n') ++p;
    }
  }
}

Status Cgroups::Remove(const std::string& id) const {
  Status result;
  for (const std::string& d : Dirs(id)) {
    if (Os().rmdir(d.c_str()) == 0 || errno == ENOENT) continue;
    if (errno == EBUSY) {
      result = Status::Unavailable("cgroup " + d + " still populated");
    } else if (result.ok()) {
      result = Status::FromErrno("rmdir " + d, errno);
    }
  }
  return result;
}

void Cgroups::RemoveParent() const {
  for (const std::string& d : parent_dirs_) Os().rmdir(d.c_str());
}

}  // namespace gust::sandbox
