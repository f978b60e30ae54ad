#include "sandbox/os_seam.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/seccomp.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sched.h>

namespace gust::sandbox {
namespace {

int DoOpen(const char* path, int flags, mode_t mode) { return ::open(path, flags, mode); }
int DoOpenat(int dirfd, const char* path, int flags, mode_t mode) {
  return ::openat(dirfd, path, flags, mode);
}
int DoPivotRoot(const char* new_root, const char* put_old) {
  return static_cast<int>(::syscall(SYS_pivot_root, new_root, put_old));
}
int DoIoctl(int fd, unsigned long request, void* arg) { return ::ioctl(fd, request, arg); }
int DoPidfdOpen(pid_t pid, unsigned int flags) {
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, flags));
}
int DoPidfdSendSignal(int pidfd, int sig) {
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0));
}
int DoPrctl(int option, unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5) {
  return ::prctl(option, a2, a3, a4, a5);
}
int DoSeccomp(const void* prog) {
  return static_cast<int>(::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, prog));
}
int DoCloseRange(unsigned int first, unsigned int last, int flags) {
  return static_cast<int>(::syscall(SYS_close_range, first, last, flags));
}

}  // namespace

OsOps& Os() {
  static OsOps ops = {
      .open = DoOpen,
      .openat = DoOpenat,
      .close = ::close,
      .read = ::read,
      .pread = ::pread,
      .write = ::write,
      .mkdir = ::mkdir,
      .rmdir = ::rmdir,
      .symlink = ::symlink,
      .mount = ::mount,
      .umount2 = ::umount2,
      .pivot_root = DoPivotRoot,
      .chdir = ::chdir,
      .unshare = ::unshare,
      .setns = ::setns,
      .socketpair = ::socketpair,
      .pipe2 = ::pipe2,
      .sendmsg = ::sendmsg,
      .recvmsg = ::recvmsg,
      .fork = ::fork,
      .socket = ::socket,
      .ioctl = DoIoctl,
      .pidfd_open = DoPidfdOpen,
      .pidfd_send_signal = DoPidfdSendSignal,
      .waitpid = ::waitpid,
      .kill = ::kill,
      .sethostname = ::sethostname,
      .setrlimit =
          [](int r, const struct rlimit* l) {
            return ::setrlimit(static_cast<__rlimit_resource_t>(r), l);
          },
      .setgroups = ::setgroups,
      .setresgid = ::setresgid,
      .setresuid = ::setresuid,
      .prctl = DoPrctl,
      .seccomp_set_filter = DoSeccomp,
      .dup2 = ::dup2,
      .close_range = DoCloseRange,
  };
  return ops;
}

}  // namespace gust::sandbox
