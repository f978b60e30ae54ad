// The init of a sandbox: pid 1 of the sandbox's pid namespace, so that the
// runtime is not. A process that is pid 1 of its namespace ignores every
// signal it has no handler for (os.kill(os.getpid(), SIGSEGV) did nothing,
// os.abort()'s SIGABRT was ignored until abort() faulted on purpose, which the
// engine saw as a segmentation fault) and inherits every orphan of the
// namespace (which the Python runtime never reaped).
//
// The zygote (zygote_server.h) forks two processes into each fresh pid
// namespace: first the init, which is pid 1, then the runtime, which is
// therefore pid kRuntimePid. Both are the zygote's children, so the zygote
// waits for the runtime itself and reports its true wait status (signal or
// exit code); the init is only the namespace's reaper. When the zygote reaps
// the runtime it SIGKILLs the init, whose death makes the kernel SIGKILL
// every process left in the namespace; the sandbox's exit is reported once
// the init is reaped, i.e. once nothing of the sandbox runs any more. (A dying
// init becomes reapable only when every process of its namespace has been
// reaped, the runtime included, which is its parent's to reap: whoever reaps
// a sandbox — the zygote, or the engine after the zygote's death — reaps the
// runtime first.)
//
// RunNamespaceInit is the init's whole life, called in the child right after
// the zygote's fork. It runs no Python: the interpreter's state is the
// zygote's mid-fork (PyOS_BeforeFork holds its locks) and must stay untouched.
// It
//   - sets PR_SET_PDEATHSIG (it dies with the zygote; spec.zygote_pidfd
//     covers a zygote that died before that) and its name (comm "gust-init");
//   - blocks every signal and resets every handler to the default (Python's
//     would run interpreter code), then closes all its descriptors: it holds
//     nothing of the zygote's, the engine's or the sandbox's;
//   - drops its privileges: in full isolation it becomes the sandbox's
//     uid/gid with no capabilities, as the runtime will; rootless it stays the
//     zygote's user-namespace root (its capabilities reach no further than
//     the zygote's own) but empties its capability sets; no_new_privs,
//     not dumpable. A failure here ends it, and so the sandbox (fail closed);
//   - then loops on sigwaitinfo(): SIGCHLD reaps every exited child (orphans
//     reparented to it), kForwardedSignals are sent on to the runtime, every
//     other signal is dropped.
//
// Thread-safety: runs in a freshly forked, single-threaded child; never returns.
#pragma once

#include <signal.h>
#include <stdint.h>
#include <sys/types.h>

namespace gust::sandbox {

// The runtime's pid inside its pid namespace: the zygote forks it right
// after the init, before anything else can be forked there.
constexpr pid_t kRuntimePid = 2;

// Signals the init passes on to the runtime (what asks a process to stop or
// reconfigure); SIGKILL and SIGSTOP from outside the namespace act on the
// init itself, and its death ends the whole sandbox.
constexpr int kForwardedSignals[] = {SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGTERM};

struct InitSpec {
  bool rootless = false;
  uint32_t uid = 993;  // full isolation: the init runs as the sandbox's uid/gid
  uint32_t gid = 993;
  // A pidfd of the zygote: if it is readable once PR_SET_PDEATHSIG is set,
  // the zygote died before that and the init exits (else it would outlive it).
  int zygote_pidfd = -1;
};

[[noreturn]] void RunNamespaceInit(const InitSpec& spec);

}  // namespace gust::sandbox
