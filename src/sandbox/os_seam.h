// The OS seam of the sandbox layer: every raw system call the layer makes
// (engine side and zygote side) goes through the function-pointer table
// returned by Os(), so tests can make one call fail (ScopedOsFault) without
// touching the rest.
//
// The entries keep the kernel's calling convention (-1 and errno on failure);
// the callers turn failures into Status values. Nothing here allocates, so the
// table is safe to use in a freshly cloned child.
//
// Thread-safety: the table is a process-wide mutable global. Replace entries
// only in tests, before any other thread uses the layer (the engine and the
// zygote are single-threaded anyway).
#pragma once

#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <cstddef>

namespace gust::sandbox {

struct OsOps {
  int (*open)(const char* path, int flags, mode_t mode);
  int (*openat)(int dirfd, const char* path, int flags, mode_t mode);
  int (*close)(int fd);
  ssize_t (*read)(int fd, void* buf, size_t len);
  ssize_t (*pread)(int fd, void* buf, size_t len, off_t offset);
  ssize_t (*write)(int fd, const void* buf, size_t len);
  int (*mkdir)(const char* path, mode_t mode);
  int (*rmdir)(const char* path);
  int (*symlink)(const char* target, const char* linkpath);
  int (*mount)(const char* source, const char* target, const char* fstype, unsigned long flags,
               const void* data);
  int (*umount2)(const char* target, int flags);
  int (*pivot_root)(const char* new_root, const char* put_old);
  int (*chdir)(const char* path);
  int (*unshare)(int flags);
  int (*setns)(int fd, int nstype);
  int (*socketpair)(int domain, int type, int protocol, int sv[2]);
  int (*pipe2)(int fds[2], int flags);
  ssize_t (*sendmsg)(int fd, const struct msghdr* msg, int flags);
  ssize_t (*recvmsg)(int fd, struct msghdr* msg, int flags);
  // glibc fork(): runs the pthread_atfork handlers and fixes glibc's cached
  // thread id, which a raw clone(2) would not.
  pid_t (*fork)();
  int (*socket)(int domain, int type, int protocol);
  int (*ioctl)(int fd, unsigned long request, void* arg);
  int (*pidfd_open)(pid_t pid, unsigned int flags);
  int (*pidfd_send_signal)(int pidfd, int sig);
  pid_t (*waitpid)(pid_t pid, int* status, int options);
  int (*kill)(pid_t pid, int sig);
  int (*sethostname)(const char* name, size_t len);
  int (*setrlimit)(int resource, const struct rlimit* limit);
  int (*setgroups)(size_t n, const gid_t* groups);
  int (*setresgid)(gid_t r, gid_t e, gid_t s);
  int (*setresuid)(uid_t r, uid_t e, uid_t s);
  int (*prctl)(int option, unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5);
  int (*seccomp_set_filter)(const void* sock_fprog);
  int (*dup2)(int from, int to);
  int (*close_range)(unsigned int first, unsigned int last, int flags);
};

// The live table. Defaults forward straight to the kernel/libc.
OsOps& Os();

// Test helper: while alive, `entry` of Os() is replaced by `fn`.
template <typename Fn>
class ScopedOsFault {
 public:
  ScopedOsFault(Fn OsOps::*entry, Fn fn) : entry_(entry), saved_(Os().*entry) { Os().*entry = fn; }
  ~ScopedOsFault() { Os().*entry_ = saved_; }
  ScopedOsFault(const ScopedOsFault&) = delete;
  ScopedOsFault& operator=(const ScopedOsFault&) = delete;

 private:
  Fn OsOps::*entry_;
  Fn saved_;
};

}  // namespace gust::sandbox
