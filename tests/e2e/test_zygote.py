"""The zygote's host process: by default /usr/bin/python3 running the
_gust_zygote extension (Debian's PGO+LTO interpreter), with `--zygote embedded`
gust-sandbox-init (embedded libpython). Sandboxes of both must see the same
Python: flags, sys.path, argv, signal dispositions, stdio, preloaded modules."""
import json
import os
import subprocess

import pytest

from gust_e2e import GUST, GUST_BIN, Engine

PROBE = r'''
import os, signal, sys
PRELOADED = "numpy" in sys.modules  # before this module imports anything

def handler(event, context):
    import numpy
    status = open("/proc/self/status").read()
    return {
        "exe": os.readlink("/proc/self/exe"), "executable": sys.executable,
        "argv": sys.argv, "orig_argv": sys.orig_argv, "flags": repr(sys.flags),
        "path": sys.path, "main": sorted(k for k in vars(sys.modules["__main__"])
                                         if not k.startswith("__")),
        "preloaded": PRELOADED, "numpy": int(numpy.arange(10).sum()),
        "sigint": repr(signal.getsignal(signal.SIGINT)),
        "sig": [l for l in status.splitlines() if l.startswith(("SigIgn", "SigCgt", "SigBlk"))],
        "threads": [l for l in status.splitlines() if l.startswith("Threads")],
        "stdout": [sys.stdout.line_buffering, type(sys.stdout.buffer).__name__],
    }
'''


def probe(tmp_path, zygote):
    eng = Engine(tmp_path / zygote, extra_args=["--zygote", zygote, "--preload", "numpy"])
    eng.start()
    try:
        eng.create("probe", {"app.py": PROBE})
        status, _, data = eng.invoke("probe", {})
        assert status == 200, (data, eng.log())
        return json.loads(data), eng.log()
    finally:
        eng.stop()


@pytest.mark.skipif(not os.path.exists(os.path.join(GUST_BIN, "_gust_zygote.so")),
                    reason="built without GUST_ZYGOTE_IN_PYTHON (e.g. a sanitizer build)")
def test_zygote_runs_in_usr_bin_python3_like_the_embedded_one(tmp_path):
    py, py_log = probe(tmp_path, "python")
    emb, _ = probe(tmp_path, "embedded")
    assert os.path.realpath(py["exe"]) == os.path.realpath("/usr/bin/python3"), py
    assert "_gust_zygote.so" in py_log
    assert emb["exe"].endswith("/gust-sandbox-init"), emb
    assert py["preloaded"] and py["numpy"] == 45, py
    assert "/usr/lib/python3/dist-packages" in py["path"]
    assert "ignore_environment=1" in py["flags"] and "no_user_site=1" in py["flags"]
    assert py["argv"] == [""] and py["orig_argv"] == []
    assert py["threads"] == ["Threads:\t1"]
    for key in py:
        if key != "exe":
            assert py[key] == emb[key], (key, py[key], emb[key])


def test_zygote_option_names_the_bad_value(tmp_path):
    r = subprocess.run([GUST, "up", "--zygote", "jython", "--state-dir", str(tmp_path)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "--zygote" in r.stderr and "jython" in r.stderr, r.stderr
