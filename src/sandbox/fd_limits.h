// Descriptors of the engine process. The engine holds ~4 fds per live
// sandbox (control socket, log pipe, pidfd, its HTTP clients'): a map of 1000
// sandboxes needs several thousand, past the usual soft limit of 1024.
//
// ReserveDescriptors() raises the soft RLIMIT_NOFILE to the hard limit (at
// most 65536) and grows the fd table once, now: each time the kernel grows it
// later, the caller waits for an RCU grace period (milliseconds, on the
// engine thread, while hundreds of sandboxes start). Best effort: failures
// leave the limits as they were.
//
// Thread-safety: call once at start-up, before other threads open fds.
#pragma once

namespace gust::sandbox {

void ReserveDescriptors();

}  // namespace gust::sandbox
