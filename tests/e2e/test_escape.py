"""Escapes tried from inside a sandbox, as root and rootless (suite_engine).
Each case deploys a function that attempts one way out and reports what the
kernel answered; the test asserts it failed with an error for that function
only, and the `case` fixture then checks that the canary still answers within
its bound and that no process, fd, cgroup or mount was left behind.
docs/SECURITY.md lists what each case checks and the limit that stops it."""
import os

from gust_e2e import state_usage, status_field

# Helpers every probe starts with: raw syscalls through ctypes (for the calls
# Python's os module lacks), errors as their errno names.
PRELUDE = r'''
import ctypes, errno, os, platform
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
NR = {
    "x86_64": dict(mount=165, ptrace=101, unshare=272, setns=308, process_vm_readv=310,
                   keyctl=250, add_key=248, bpf=321, perf_event_open=298, clone=56),
    "aarch64": dict(mount=40, ptrace=117, unshare=97, setns=268, process_vm_readv=270,
                    keyctl=219, add_key=217, bpf=280, perf_event_open=241, clone=220),
}[platform.machine()]

def name(e):
    return errno.errorcode.get(e, str(e))

def sys_(call, *args):
    """'allowed' or the errno name of a raw syscall."""
    args = [ctypes.c_long(a) if isinstance(a, int) else a for a in args]
    r = libc.syscall(NR[call], *args)
    return "allowed" if r >= 0 else name(ctypes.get_errno())

def attempt(fn):
    try:
        fn()
        return "allowed"
    except OSError as e:
        return name(e.errno)
'''

# Errors that mean "refused": by seccomp (EPERM), by a missing capability
# (EPERM/EACCES), by a read-only or absent file system or device (EROFS,
# ENOENT, ENODEV), by having no terminal (ENXIO, ENOTTY).
REFUSED = {"EPERM", "EACCES", "EROFS", "ENOENT", "ENODEV", "ENXIO", "ENOTTY"}


def assert_refused(results, allowed=REFUSED):
    bad = {k: v for k, v in results.items() if v not in allowed}
    assert not bad, f"not refused: {bad} (all: {results})"


def test_mount(case):
    body, _ = case.run(PRELUDE + r'''
def handler(e, c):
    out = {}
    for target, fstype in (("/tmp", b"tmpfs"), ("/proc", b"proc"), ("/var/task", b"tmpfs")):
        r = libc.mount(b"none", target.encode(), fstype, 0, None)
        out["mount " + target] = "allowed" if r == 0 else name(ctypes.get_errno())
    # MS_REMOUNT|MS_BIND of the read-only code dir as writable.
    r = libc.mount(None, b"/var/task", None, 0x20 | 0x1000, None)
    out["remount /var/task"] = "allowed" if r == 0 else name(ctypes.get_errno())
    out["umount /proc"] = "allowed" if libc.umount2(b"/proc", 2) == 0 else name(ctypes.get_errno())
    return out
''')
    assert set(body.values()) == {"EPERM"}, body


FLAGS = {"CLONE_NEWNS": 0x00020000, "CLONE_NEWUSER": 0x10000000, "CLONE_NEWPID": 0x20000000,
         "CLONE_NEWNET": 0x40000000, "CLONE_NEWUTS": 0x04000000, "CLONE_NEWIPC": 0x08000000,
         "CLONE_NEWCGROUP": 0x02000000}


def test_unshare_and_clone_new_namespaces(case):
    body, _ = case.run(PRELUDE + r'''
def handler(e, c):
    out = {}
    for flag, value in e["flags"].items():
        out["unshare " + flag] = sys_("unshare", value)
        # clone(2) with the flag (and SIGCHLD): a child that got through leaves at once.
        r = libc.syscall(NR["clone"], ctypes.c_long(value | 17), None, None, None, None)
        if r == 0:
            os._exit(0)
        if r > 0:
            os.waitpid(r, 0)
        out["clone " + flag] = "allowed" if r > 0 else name(ctypes.get_errno())
    return out
''', {"flags": FLAGS})
    assert set(body.values()) == {"EPERM"}, body


def test_setns_into_pid1_and_self(case):
    body, _ = case.run(PRELUDE + r'''
def handler(e, c):
    out = {}
    for pid in ("1", "self"):
        for ns in ("mnt", "net", "pid", "user", "ipc", "uts", "cgroup"):
            key = f"setns /proc/{pid}/ns/{ns}"
            try:
                fd = os.open(f"/proc/{pid}/ns/{ns}", os.O_RDONLY)
            except OSError as err:
                out[key] = "open: " + name(err.errno)
                continue
            out[key] = sys_("setns", fd, 0)
            os.close(fd)
    return out
''')
    # Opening is allowed for the sandbox's own namespaces; joining never.
    for key, value in body.items():
        assert value == "EPERM" or value.startswith("open: "), (key, body)


def test_ptrace_and_process_vm_readv(case):
    body, _ = case.run(PRELUDE + r'''
import time
def handler(e, c):
    out = {}
    child = os.fork()
    if child == 0:
        time.sleep(30)
        os._exit(0)
    try:
        for target in sorted({1, child} | {int(p) for p in os.listdir("/proc") if p.isdigit()}
                             - {os.getpid()}):
            out[f"PTRACE_ATTACH {target}"] = sys_("ptrace", 16, target, 0, 0)
            out[f"PTRACE_SEIZE {target}"] = sys_("ptrace", 0x4206, target, 0, 0)
            buf = ctypes.create_string_buffer(64)
            local = (ctypes.c_void_p * 2)(ctypes.cast(buf, ctypes.c_void_p), 64)
            remote = (ctypes.c_void_p * 2)(0x400000, 64)
            out[f"process_vm_readv {target}"] = sys_("process_vm_readv", target, local, 1,
                                                     remote, 1, 0)
        out["PTRACE_TRACEME"] = sys_("ptrace", 0, 0, 0, 0)
    finally:
        os.kill(child, 9)
        os.waitpid(child, 0)
    return out
''')
    assert set(body.values()) == {"EPERM"}, body


def test_proc_of_other_processes(case, suite_engine):
    """The engine's pid is unknown inside: every pid the sandbox can name
    (1..N and /proc/*) is tried for its root, environ, cmdline and fds; none
    may show the engine's environment (its marker) or its state dir."""
    body, _ = case.run(PRELUDE + r'''
def handler(e, c):
    marker, state = e["marker"].encode(), e["state_dir"]
    seen, found, roots = [], [], {}
    listed = {int(p) for p in os.listdir("/proc") if p.isdigit()}
    for pid in sorted(listed | set(range(1, e["scan"]))):
        if not os.path.exists(f"/proc/{pid}"):
            continue
        seen.append(pid)
        for part in ("environ", "cmdline"):
            try:
                with open(f"/proc/{pid}/{part}", "rb") as f:
                    if marker in f.read():
                        found.append(f"{pid}/{part}")
            except OSError:
                pass
        roots[pid] = attempt(lambda: os.listdir(f"/proc/{pid}/root/"))
        for path in (f"/proc/{pid}/root{state}", f"/proc/{pid}/cwd{state}"):
            if os.path.exists(path):
                found.append(path)
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if state in os.readlink(f"/proc/{pid}/fd/{fd}"):
                    found.append(f"{pid}/fd/{fd}")
        except OSError:
            pass
    own_env = e["marker"] in repr(dict(os.environ))
    return {"seen": seen, "found": found, "own_env": own_env,
            "state_visible": os.path.exists(state), "roots": roots}
''', {"marker": suite_engine.marker, "state_dir": suite_engine.state_dir, "scan": 4096})
    assert "errorType" not in body, body
    assert body["found"] == [] and not body["own_env"] and not body["state_visible"], body
    # Only the sandbox's own processes are there (its handler, and an init if any).
    assert 1 <= len(body["seen"]) <= 3, body


def test_keyctl_bpf_perf_event_open(case):
    body, _ = case.run(PRELUDE + r'''
def handler(e, c):
    attr = ctypes.create_string_buffer(128)
    perf_attr = ctypes.create_string_buffer(128)
    ctypes.c_uint32.from_buffer(perf_attr, 4).value = 112  # perf_event_attr.size
    return {
        # KEYCTL_GET_KEYRING_ID of the session keyring, creating it.
        "keyctl": sys_("keyctl", 0, -3, 1),
        "add_key": sys_("add_key", b"user", b"gust", b"secret", 6, -3),
        "bpf BPF_MAP_CREATE": sys_("bpf", 0, attr, 72),
        "bpf BPF_PROG_LOAD": sys_("bpf", 5, attr, 72),
        # perf_event_open(attr, pid 0, cpu -1, group -1, 0) with attr.size set.
        "perf_event_open": sys_("perf_event_open", perf_attr, 0, -1, -1, 0),
    }
''')
    assert set(body.values()) == {"EPERM"}, body


def test_raw_devices_and_mknod(case):
    body, _ = case.run(PRELUDE + r'''
import stat
def handler(e, c):
    out = {}
    for dev in ("/dev/mem", "/dev/kmem", "/dev/port", "/dev/sda", "/dev/vda", "/dev/nvme0n1",
                "/dev/xvda", "/dev/loop0", "/dev/kmsg", "/dev/tty0", "/dev/console"):
        out["open " + dev] = attempt(lambda: os.close(os.open(dev, os.O_RDWR)))
    for path, mode, major, minor in (("/tmp/mem", stat.S_IFCHR, 1, 1),
                                     ("/tmp/port", stat.S_IFCHR, 1, 4),
                                     ("/tmp/sda", stat.S_IFBLK, 8, 0),
                                     ("/dev/shm/vda", stat.S_IFBLK, 253, 0)):
        out["mknod " + path] = attempt(lambda: os.mknod(path, mode | 0o600,
                                                        os.makedev(major, minor)))
        if out["mknod " + path] == "allowed":
            out["open " + path] = attempt(lambda: os.close(os.open(path, os.O_RDONLY)))
    out["/dev"] = sorted(os.listdir("/dev"))
    return out
''')
    devices = body.pop("/dev")
    assert_refused(body)
    # Only the harmless character devices are in the sandbox's /dev.
    assert not {"mem", "kmem", "port", "sda", "vda", "nvme0n1", "kmsg"} & set(devices), devices


def test_write_sys_and_proc_sys(case):
    with open("/proc/sys/kernel/hostname") as f:
        hostname = f.read()
    body, _ = case.run(PRELUDE + r'''
def handler(e, c):
    out = {}
    for path, value in (("/proc/sys/kernel/hostname", "escaped"),
                        ("/proc/sys/kernel/core_pattern", "|/tmp/x"),
                        ("/proc/sys/vm/drop_caches", "3"),
                        ("/proc/sysrq-trigger", "h"),
                        ("/proc/sys/kernel/modprobe", "/tmp/x"),
                        ("/sys/kernel/mm/transparent_hugepage/enabled", "never"),
                        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "1"),
                        ("/sys/fs/cgroup/pids/pids.max", "max"),
                        ("/sys/class/net/lo/mtu", "1000")):
        def write():
            with open(path, "w") as f:
                f.write(value)
        out[path] = attempt(write)
    return out
''')
    assert_refused(body)
    with open("/proc/sys/kernel/hostname") as f:
        assert f.read() == hostname


def test_setuid_binaries_gain_nothing(case):
    """Every setuid/setgid binary the sandbox can see is executed; the
    process it becomes (read from /proc while it lives or as a zombie) keeps
    the sandbox's uid and gid."""
    body, _ = case.run(PRELUDE + r'''
import stat, subprocess
def handler(e, c):
    found = {}
    for d in ("/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/lib", "/usr/libexec"):
        for root, _, files in os.walk(d):
            for f in files:
                p = os.path.join(root, f)
                try:
                    st = os.lstat(p)
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode) and st.st_mode & (stat.S_ISUID | stat.S_ISGID):
                    found[os.path.realpath(p)] = True
    out = {}
    for p in sorted(found):
        try:
            proc = subprocess.Popen([p], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
        except OSError as err:
            out[p] = "exec: " + name(err.errno)
            continue
        # Popen returns after the exec: the ids are the new program's.
        with open(f"/proc/{proc.pid}/status") as f:
            ids = {l.split(":")[0]: l.split()[1:] for l in f if l.startswith(("Uid", "Gid"))}
        proc.kill()
        proc.communicate()
        out[p] = ids
    return {"uid": os.getuid(), "gid": os.getgid(), "ran": out}
''', Timeout=60)
    assert body["ran"], "no setuid binary found in the sandbox: the case tests nothing"
    uid, gid = str(body["uid"]), str(body["gid"])
    for path, ids in body["ran"].items():
        if isinstance(ids, str):  # not executable at all (noexec, EACCES)
            assert ids.startswith("exec: "), (path, ids)
            continue
        assert ids["Uid"] == [uid] * 4 and ids["Gid"] == [gid] * 4, (path, ids)


def test_other_sandbox_tmp(case):
    """One function writes a secret to its /tmp and /dev/shm; another looks
    for it everywhere it can reach. Both sandboxes are alive at once."""
    secret = "gust-secret-" + os.urandom(8).hex()
    writer = case.deploy(r'''
def handler(e, c):
    for d in ("/tmp", "/dev/shm"):
        with open(d + "/" + e["secret"], "w") as f:
            f.write(e["secret"])
    return "written"
''', "-writer")
    status, body, _ = case.invoke(writer, {"secret": secret})
    assert (status, body) == (200, "written"), body
    status, body, _ = case.invoke(case.deploy(PRELUDE + r'''
def handler(e, c):
    found = []
    roots = ["/tmp", "/dev/shm", "/var/tmp", "/run"] + [
        f"/proc/{p}/root/tmp" for p in os.listdir("/proc") if p.isdigit()]
    for top in roots:
        for root, dirs, files in os.walk(top):
            if e["secret"] in files or e["secret"] in dirs:
                found.append(root)
    return found
''', "-reader"), {"secret": secret})
    assert (status, body) == (200, []), body
    # Nor on the host's /tmp or in the engine's state dir.
    for top in ("/tmp", case.engine.state_dir):
        for root, dirs, files in os.walk(top):
            assert secret not in files, root


def test_tiocsti(case):
    body, _ = case.run(PRELUDE + r'''
import fcntl, termios
def handler(e, c):
    out = {}
    for fd in (0, 1, 2):
        out[f"isatty {fd}"] = os.isatty(fd)
        out[f"TIOCSTI {fd}"] = attempt(lambda: fcntl.ioctl(fd, termios.TIOCSTI, b"x"))
    try:
        tty = os.open("/dev/tty", os.O_RDWR)
        out["open /dev/tty"] = "allowed"
        out["TIOCSTI /dev/tty"] = attempt(lambda: fcntl.ioctl(tty, termios.TIOCSTI, b"x"))
    except OSError as err:
        out["open /dev/tty"] = name(err.errno)
    return out
''')
    assert not any(body.pop(f"isatty {fd}") for fd in (0, 1, 2)), body
    assert_refused(body)


def test_gigabyte_on_stdout(case):
    """1 GiB printed by one invocation: the engine keeps 1 MiB of it for the
    log and drops the rest as it reads (its memory stays flat), and others are
    served meanwhile."""
    pid = case.engine.proc.pid
    hwm_before = status_field(pid, "VmHWM")
    with case.canary_during():
        body, log = case.run(r'''
import sys
def handler(e, c):
    chunk = b"x" * 1023 + b"\n"
    block = chunk * 1024
    for _ in range(1024):
        sys.stdout.buffer.write(block)
    sys.stdout.flush()
    return "printed"
''', Timeout=300)
    assert body == "printed", body
    hwm_after = status_field(pid, "VmHWM")
    assert hwm_after - hwm_before < 64 * 1024, (hwm_before, hwm_after)
    # The tail of the log says what was dropped.
    assert "bytes of output dropped: over the 1 MiB per-invocation log limit" in log, log[-500:]
    log_file = os.path.join(case.engine.state_dir, "logs", case.names[0] + ".log")
    assert not os.path.exists(log_file) or os.path.getsize(log_file) < 4 << 20


def test_tmp_full(case):
    """/tmp filled to ENOSPC inside; it is a tmpfs (memory charged to the
    sandbox), so neither the engine's state dir nor the host's disk grows."""
    before = state_usage(case.engine)
    body, _ = case.run(r'''
def handler(e, c):
    with open("/proc/self/mounts") as f:
        fs = [l.split()[2] for l in f if l.split()[1] == "/tmp"]
    n = 0
    try:
        with open("/tmp/fill", "wb") as f:
            while True:
                f.write(b"0" * (1 << 20)); f.flush(); n += 1
    except OSError as err:
        return {"mb": n, "errno": err.errno, "fs": fs}
''', MemorySize=1024, Timeout=60)
    assert body["errno"] == 28 and 0 < body["mb"] <= 512, body  # ENOSPC
    assert body["fs"][-1:] == ["tmpfs"], body
    # The file still fills the live sandbox's /tmp, and not the state dir.
    assert state_usage(case.engine) - before < 64 << 20


def test_ten_thousand_threads(case):
    body, _ = case.run(r'''
import threading
def handler(e, c):
    release, threads = threading.Event(), []
    try:
        for _ in range(10000):
            t = threading.Thread(target=release.wait)
            t.start()
            threads.append(t)
        error = None
    except (RuntimeError, MemoryError, OSError) as err:
        error = f"{type(err).__name__}: {err}"
    release.set()
    for t in threads:
        t.join()
    return {"started": len(threads), "error": error}
''', MemorySize=2048, Timeout=120)
    assert body["started"] < 10000 and body["error"], body
    assert "can't start new thread" in body["error"] or "MemoryError" in body["error"], body


FORK_BOMB = r'''
import os, time
def handler(e, c):
    n = 0
    try:
        while True:
            if os.fork() == 0:
                time.sleep(600)
                os._exit(0)
            n += 1
    except OSError as err:
        return {"forked": n, "error": err.strerror}
'''


def test_fork_bomb(case):
    """The bomb's children outlive the invocation (they sleep 600 s): the
    case's leak check after deleting the function finds them gone."""
    with case.canary_during():
        body, _ = case.run(FORK_BOMB, MemorySize=2048, Timeout=120)
    assert 0 < body["forked"] < 1100 and body["error"], body
