"""Isolation as seen from inside a sandbox, through the real engine."""
import json

PROBE = r'''
import ctypes, errno, os, resource, socket

def try_call(fn):
    try:
        fn()
        return "allowed"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))

def handler(event, context):
    libc = ctypes.CDLL(None, use_errno=True)
    def mount():
        if libc.mount(b"none", b"/tmp", b"tmpfs", 0, None) != 0:
            raise OSError(ctypes.get_errno(), "mount")
    def unshare():
        if libc.unshare(0x00020000) != 0:
            raise OSError(ctypes.get_errno(), "unshare")
    def ptrace():
        if libc.ptrace(16, 1, None, None) != 0:  # PTRACE_ATTACH
            raise OSError(ctypes.get_errno(), "ptrace")
    def io_uring():
        params = ctypes.create_string_buffer(120)
        if libc.syscall(425, 4, params) < 0:  # io_uring_setup
            raise OSError(ctypes.get_errno(), "io_uring_setup")
    def write_task():
        open("/var/task/new.txt", "w").write("x")
    with open("/proc/self/status") as f:
        status = f.read()

    def field(name):
        return [ln for ln in status.splitlines() if ln.startswith(name)][0].split()[1]

    return {
        "uid": os.getuid(), "gid": os.getgid(), "pid": os.getpid(),
        "hostname": socket.gethostname(),
        "cap_eff": field("CapEff"), "no_new_privs": field("NoNewPrivs"),
        "seccomp": field("Seccomp:"),
        "io_uring": try_call(io_uring),
        "mount": try_call(mount), "unshare": try_call(unshare), "ptrace": try_call(ptrace),
        "write_task": try_call(write_task),
        "read_task": open("/var/task/app.py").read()[:6],
        "tmp_writable": try_call(lambda: open("/tmp/x", "w").write("x")),
        "root_listing": sorted(os.listdir("/")),
        "state_dir_visible": os.path.exists(event["state_dir"]),
        "home_visible": os.path.exists("/root"),
        "nofile": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
        "core": resource.getrlimit(resource.RLIMIT_CORE)[0],
        "interfaces": (sorted(os.listdir("/sys/class/net")) if os.path.exists("/sys/class/net")
                       else [n for _, n in socket.if_nameindex()]),
        "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
    }
'''


def test_sandbox_isolation(engine, fname):
    engine.create(fname, {"app.py": PROBE})
    status, _, data = engine.invoke(fname, {"state_dir": engine.state_dir})
    assert status == 200, data
    r = json.loads(data)
    assert "errorType" not in r, r
    assert r["uid"] == 993 and r["gid"] == 993
    assert r["pid"] == 2  # pid 1 is the sandbox's init (test_sandbox_init.py)
    assert r["pids"] == [1, 2]
    assert r["cap_eff"] == "0000000000000000"
    assert r["no_new_privs"] == "1"
    assert r["seccomp"] == "2"
    assert r["mount"] == "EPERM"
    assert r["unshare"] == "EPERM"
    assert r["ptrace"] == "EPERM"
    assert r["io_uring"] == "EPERM"
    assert r["write_task"] in ("EROFS", "EACCES")
    assert r["read_task"] == "\nimpor"
    assert r["tmp_writable"] == "allowed"
    assert not r["state_dir_visible"]
    assert not r["home_visible"]
    assert r["nofile"] == 1024
    assert r["core"] == 0
    assert r["interfaces"] == ["lo"]
