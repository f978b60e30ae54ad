// Mount work of the sandbox layer.
//
// Zygote side (BuildZygoteRoot, once at start): a private mount namespace
// whose root is a fresh tmpfs holding only what sandboxes may see: read-only
// binds of /usr and /etc, the host's merged-/usr symlinks (or ro binds where
// the host has real dirs), the runtime at /var/runtime, the bundle root at
// /.bundles, an empty directory /.empty, empty mount points /var/task /tmp
// /proc /dev/shm, when given the engine's channel dir at /run/gust and the
// gust client at /var/gust/gust (read-only binds made once here, so they cost
// no cold start anything; a socket in a read-only mount still accepts
// connections), and a
// read-only /dev tmpfs with null, zero, full, random, urandom bound from the
// host plus the fd/stdin/stdout/stderr symlinks. The zygote then pivots into
// it and detaches the old root, so neither it nor its children can reach the
// state dir, /root or /home. Both tmpfs are remounted read-only at the end.
// With mount_proc (rootless: the zygote is the init of its own pid namespace,
// in a user namespace) a proc of that namespace is mounted at /proc of the new
// root: a kernel in a user namespace mounts a new proc only where one is
// already fully visible, and the children's own /proc goes on top of it.
//
// Child side (SetUpChildMounts, in each sandbox before user code): binds its
// bundle dir (a path relative to the bundle root) read-only,nosuid,nodev onto
// /var/task, covers /.bundles with the empty /.empty, mounts a size-limited
// /tmp, a small /dev/shm and a fresh /proc (the child is pid 2 of its own pid
// namespace). /.bundles is covered, not unmounted: an unmount waits for an
// expedited RCU grace period, which the kernel serialises across the machine
// (~10-25 ms per sandbox when hundreds start at once); a covered mount is as
// unreachable to code that can neither mount nor unmount (seccomp, no caps).
//
// Failures: every step returns a Status naming the step and the errno; the
// zygote exits on a BuildZygoteRoot error and the child exits 127 on a
// SetUpChildMounts error, so no user code ever runs half-isolated. Nothing
// here crashes.
//
// Thread-safety: process-wide effects; call from a single-threaded process.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace gust::sandbox {

struct RootfsOptions {
  std::string root_dir;      // empty dir on the host; the tmpfs root is mounted here
  std::string runtime_dir;   // bound ro at /var/runtime
  std::string bundles_root;  // bound ro at /.bundles
  bool mount_proc = false;   // see above
  std::string channel_dir;   // "" or bound ro at /run/gust
  std::string client_dir;    // "" or bound ro at /var/gust/gust
  // Host directories bound read-only (nosuid, nodev) at the same absolute
  // paths, their parents created in the root as plain 0755 dirs: a Python
  // environment's prefix and base prefix, so its interpreter's absolute paths
  // and compiled extensions work. Ones under /usr or /etc are visible already.
  std::vector<std::string> ro_binds;
};

Status BuildZygoteRoot(const RootfsOptions& options);

// Rejects absolute paths, "..", "." and empty components.
Status ValidateBundleRelPath(const std::string& rel);

// premounted_tmp_mb > 0: SetUpPoolMounts(premounted_tmp_mb) ran already, so
// only the bundle is bound (and /tmp resized if tmp_mb differs).
Status SetUpChildMounts(const std::string& bundle_rel, int tmp_mb, int premounted_tmp_mb = 0);
// The bundle-independent mounts: a size-limited /tmp, /dev/shm, /proc. A
// pre-forked child (own mount and pid namespaces) runs it before assignment.
Status SetUpPoolMounts(int tmp_mb);

}  // namespace gust::sandbox
