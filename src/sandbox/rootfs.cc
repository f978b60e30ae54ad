#include "sandbox/rootfs.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "sandbox/os_seam.h"

namespace gust::sandbox {
namespace {

Status MountOrError(const char* source, const std::string& target, const char* fstype,
                    unsigned long flags, const char* data) {
  if (Os().mount(source, target.c_str(), fstype, flags, data) != 0) {
    return Status::FromErrno(
        std::string("mount ") + (source ? source : "(remount)") + " on " + target, errno);
  }
  return Status::Ok();
}

Status MakeDir(const std::string& path, mode_t mode = 0755) {
  if (Os().mkdir(path.c_str(), mode) != 0 && errno != EEXIST) {
    return Status::FromErrno("mkdir " + path, errno);
  }
  return Status::Ok();
}

// A bind mount ignores most flags on creation, hence the remount.
Status BindReadOnly(const std::string& source, const std::string& target, bool recursive) {
  GUST_RETURN_IF_ERROR(MountOrError(
      source.c_str(), target, nullptr,
      static_cast<unsigned long>(MS_BIND) | (recursive ? static_cast<unsigned long>(MS_REC) : 0UL),
      nullptr));
  return MountOrError(nullptr, target, nullptr,
                      MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, nullptr);
}

Status BuildDev(const std::string& dev) {
  GUST_RETURN_IF_ERROR(
      MountOrError("tmpfs", dev, "tmpfs", MS_NOSUID | MS_NOEXEC, "size=64k,nr_inodes=64,mode=755"));
  for (const char* node : {"null", "zero", "full", "random", "urandom"}) {
    std::string target = dev + "/" + node;
    int fd = Os().open(target.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0666);
    if (fd < 0) return Status::FromErrno("create " + target, errno);
    Os().close(fd);
    std::string source = std::string("/dev/") + node;
    GUST_RETURN_IF_ERROR(MountOrError(source.c_str(), target, nullptr, MS_BIND, nullptr));
    GUST_RETURN_IF_ERROR(MountOrError(nullptr, target, nullptr,
                                      MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NOEXEC, nullptr));
  }
  const std::pair<const char*, const char*> links[] = {
      {"/proc/self/fd", "fd"},
      {"/proc/self/fd/0", "stdin"},
      {"/proc/self/fd/1", "stdout"},
      {"/proc/self/fd/2", "stderr"},
  };
  for (const auto& [target, name] : links) {
    std::string path = dev + "/" + name;
    if (Os().symlink(target, path.c_str()) != 0) return Status::FromErrno("symlink " + path, errno);
  }
  GUST_RETURN_IF_ERROR(MakeDir(dev + "/shm", 01777));
  return MountOrError(nullptr, dev, nullptr, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC,
                      nullptr);
}

// Mirrors the host's top-level merged-usr entries: symlinks are copied as
// symlinks, real directories bound read-only.
Status MirrorTopLevel(const std::string& root) {
  for (const char* name : {"bin", "sbin", "lib", "lib32", "lib64", "libx32"}) {
    std::string host = std::string("/") + name;
    struct stat st;
    if (::lstat(host.c_str(), &st) != 0) continue;
    std::string target = root + host;
    if (S_ISLNK(st.st_mode)) {
      char buf[4096];
      ssize_t n = ::readlink(host.c_str(), buf, sizeof(buf) - 1);
      if (n < 0) return Status::FromErrno("readlink " + host, errno);
      buf[n] = '\0';
      if (Os().symlink(buf, target.c_str()) != 0) {
        return Status::FromErrno("symlink " + target, errno);
      }
    } else if (S_ISDIR(st.st_mode)) {
      GUST_RETURN_IF_ERROR(MakeDir(target));
      GUST_RETURN_IF_ERROR(BindReadOnly(host, target, /*recursive=*/true));
    }
  }
  return Status::Ok();
}

}  // namespace

Status BuildZygoteRoot(const RootfsOptions& o) {
  if (Os().unshare(CLONE_NEWNS) != 0) return Status::FromErrno("unshare(CLONE_NEWNS)", errno);
  // Nothing mounted from here on may propagate back to the host.
  GUST_RETURN_IF_ERROR(MountOrError(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr));
  const std::string& r = o.root_dir;
  GUST_RETURN_IF_ERROR(MakeDir(r, 0700));
  GUST_RETURN_IF_ERROR(
      MountOrError("tmpfs", r, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,nr_inodes=256,mode=755"));
  for (const char* d : {"/usr", "/etc", "/var", "/var/runtime", "/var/task", "/.bundles", "/.empty",
                        "/proc", "/dev"}) {
    GUST_RETURN_IF_ERROR(MakeDir(r + d));
  }
  GUST_RETURN_IF_ERROR(MakeDir(r + "/tmp", 01777));
  GUST_RETURN_IF_ERROR(BindReadOnly("/usr", r + "/usr", /*recursive=*/true));
  GUST_RETURN_IF_ERROR(BindReadOnly("/etc", r + "/etc", /*recursive=*/true));
  GUST_RETURN_IF_ERROR(MirrorTopLevel(r));
  GUST_RETURN_IF_ERROR(BindReadOnly(o.runtime_dir, r + "/var/runtime", /*recursive=*/false));
  GUST_RETURN_IF_ERROR(BindReadOnly(o.bundles_root, r + "/.bundles", /*recursive=*/false));
  if (!o.channel_dir.empty()) {
    GUST_RETURN_IF_ERROR(MakeDir(r + "/run"));
    GUST_RETURN_IF_ERROR(MakeDir(r + "/run/gust"));
    GUST_RETURN_IF_ERROR(BindReadOnly(o.channel_dir, r + "/run/gust", /*recursive=*/false));
  }
  if (!o.client_dir.empty()) {
    GUST_RETURN_IF_ERROR(MakeDir(r + "/var/gust"));
    GUST_RETURN_IF_ERROR(MakeDir(r + "/var/gust/gust"));
    GUST_RETURN_IF_ERROR(BindReadOnly(o.client_dir, r + "/var/gust/gust", /*recursive=*/false));
  }
  for (const std::string& dir : o.ro_binds) {
    if (dir.rfind("/usr/", 0) == 0 || dir == "/usr" || dir.rfind("/etc/", 0) == 0) continue;
    std::string target = r;
    size_t pos = 1;
    while (pos <= dir.size()) {  // mkdir -p, each level 0755 whatever the host's mode
      size_t end = dir.find('/', pos);
      if (end == std::string::npos) end = dir.size();
      target += "/" + dir.substr(pos, end - pos);
      GUST_RETURN_IF_ERROR(MakeDir(target));
      pos = end + 1;
    }
    GUST_RETURN_IF_ERROR(BindReadOnly(dir, target, /*recursive=*/true));
  }
  GUST_RETURN_IF_ERROR(BuildDev(r + "/dev"));
  if (o.mount_proc) {
    GUST_RETURN_IF_ERROR(
        MountOrError("proc", r + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr));
  }
  GUST_RETURN_IF_ERROR(
      MountOrError(nullptr, r, nullptr, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, nullptr));
  // pivot_root(".", ".") stacks the old root on top of the new one; detaching
  // "." then drops the old root without needing a put_old directory.
  if (Os().chdir(r.c_str()) != 0) return Status::FromErrno("chdir " + r, errno);
  if (Os().pivot_root(".", ".") != 0) return Status::FromErrno("pivot_root " + r, errno);
  if (Os().umount2(".", MNT_DETACH) != 0) return Status::FromErrno("detach old root", errno);
  if (Os().chdir("/") != 0) return Status::FromErrno("chdir /", errno);
  return Status::Ok();
}

Status ValidateBundleRelPath(const std::string& rel) {
  if (rel.empty() || rel[0] == '/') return Status::InvalidArgument("bad bundle path '" + rel + "'");
  size_t pos = 0;
  while (pos <= rel.size()) {
    size_t end = rel.find('/', pos);
    if (end == std::string::npos) end = rel.size();
    std::string_view part(rel.data() + pos, end - pos);
    if (part.empty() || part == "." || part == "..") {
      return Status::InvalidArgument("bad bundle path '" + rel + "'");
    }
    pos = end + 1;
  }
  return Status::Ok();
}

Status SetUpChildMounts(const std::string& bundle_rel, int tmp_mb, int premounted_tmp_mb) {
  GUST_RETURN_IF_ERROR(ValidateBundleRelPath(bundle_rel));
  GUST_RETURN_IF_ERROR(BindReadOnly("/.bundles/" + bundle_rel, "/var/task", /*recursive=*/false));
  GUST_RETURN_IF_ERROR(MountOrError("/.empty", "/.bundles", nullptr, MS_BIND, nullptr));
  if (premounted_tmp_mb > 0) {
    if (tmp_mb == premounted_tmp_mb) return Status::Ok();
    // The pre-mounted /tmp is still empty: only its size changes.
    std::string tmp_opts = "size=" + std::to_string(tmp_mb) + "m,mode=1777";
    return MountOrError("tmpfs", "/tmp", "tmpfs", MS_REMOUNT | MS_NOSUID | MS_NODEV,
                        tmp_opts.c_str());
  }
  return SetUpPoolMounts(tmp_mb);
}

Status SetUpPoolMounts(int tmp_mb) {
  std::string tmp_opts = "size=" + std::to_string(tmp_mb) + "m,mode=1777";
  GUST_RETURN_IF_ERROR(
      MountOrError("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, tmp_opts.c_str()));
  GUST_RETURN_IF_ERROR(MountOrError("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                                    "size=64m,mode=1777"));
  return MountOrError("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr);
}

}  // namespace gust::sandbox
