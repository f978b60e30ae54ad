#!/usr/bin/env python3
"""Maps and cold starts in a second Python environment next to Debian's (issue 19).

Environments: Debian's /usr/bin/python3 (the engine's own zygote), a venv over
it, and a venv over pyenv's CPython 3.12 (made offline in a temp dir, as
tests/e2e/test_python_envs.py makes them). Each rep starts a fresh engine; in
it, one client process per environment (running in that environment) times

  first   its first map of --tasks tiny tasks: pays the environment's zygote
          start (none for Debian's), the code upload and the sandboxes' starts
  warm    --warm later maps of the same tasks (warm sandboxes)

and, outside the engine, what one zygote start costs in that environment
(its interpreter's start plus the import of gust's runtime, which a zygote
does before its first fork: a lower bound of the zygote start the first map
pays), then the cold start of a deployed function in the venv (`GustPython`, as
`gust deploy --python` sets it) and without (the engine's own), each a new
function whose first invocation starts its sandbox (the environment's zygote
already runs: the maps started it).

Prints a table (min / median / max over the reps) and writes --out (JSON).
"""
import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from common import REPO, Engine, machine  # noqa: E402 -- needs the path set above
from gust_e2e import envs_dir, make_venv  # noqa: E402 -- bench.common puts tests/e2e on the path

DEBIAN = "/usr/bin/python3"
PYENV_312 = "/root/.pyenv/versions/3.12.1/bin/python3"

# Runs in the environment: its maps' times, in seconds, as JSON.
CLIENT = """
import json, sys, time
import gust

def tiny(x):
    return x + 1

n, warm = int(sys.argv[1]), int(sys.argv[2])
ex = gust.FunctionExecutor(show_progress=False)
times = []
for i in range(1 + warm):
    t = time.perf_counter()
    assert ex.get_result(ex.map(tiny, range(n))) == [x + 1 for x in range(n)]
    times.append(time.perf_counter() - t)
print("TIMES " + json.dumps(times))
"""

HANDLER = "import sys\n\ndef handler(event, context):\n    return sys.executable\n"


def client_maps(eng, python, tasks, warm):
    env = dict(os.environ, GUST_URL=eng.url, PYTHONPATH=os.path.join(REPO, "python"))
    out = subprocess.run([python, "-c", CLIENT, str(tasks), str(warm)], env=env, text=True,
                         capture_output=True, timeout=600)
    lines = [line for line in out.stdout.splitlines() if line.startswith("TIMES ")]
    if out.returncode != 0 or not lines:
        raise RuntimeError("client in %s failed:\n%s\n%s" % (python, out.stderr[-3000:],
                                                             eng.log()[-3000:]))
    return json.loads(lines[-1][len("TIMES "):])


# What a zygote does before it is ready: start the interpreter, import the runtime.
ZYGOTE_IMPORTS = ("import sys; sys.path.insert(0, sys.argv[1]); import gust_runtime.zygote, "
                  "gust_runtime.bootstrap, gust_runtime.map_worker, cloudpickle")


def zygote_start(python):
    t = time.perf_counter()
    subprocess.run([python, "-c", ZYGOTE_IMPORTS, os.path.join(REPO, "runtimes", "python")],
                   check=True, timeout=60)
    return time.perf_counter() - t


def cold_start(eng, name, python):
    config = {"GustPython": python} if python else {}
    eng.deploy(name, HANDLER, **config)
    t = time.perf_counter()
    status, _, data = eng.call("POST", f"/2015-03-31/functions/{name}/invocations", "{}")
    elapsed = time.perf_counter() - t
    if status != 200 or json.loads(data) != (python or DEBIAN):
        raise RuntimeError("%s answered %d %r" % (name, status, data))
    return elapsed


def stats(values):
    return {"min": min(values), "median": statistics.median(values), "max": max(values),
            "n": len(values)}


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=3, help="fresh engines (>= 3 for min/median/max)")
    ap.add_argument("--tasks", type=int, default=100, help="tasks per map")
    ap.add_argument("--warm", type=int, default=3, help="warm maps after the first, per rep")
    ap.add_argument("--out", default=os.path.join(REPO, "bench", "out", "envs.json"))
    args = ap.parse_args()

    top = envs_dir()
    try:
        envs = {"debian python3": DEBIAN, "venv over python3": make_venv(DEBIAN, top + "/v311")}
        if os.access(PYENV_312, os.X_OK):
            envs["venv over pyenv 3.12"] = make_venv(PYENV_312, top + "/v312")
        else:
            print("pyenv 3.12 not found at %s: skipped" % PYENV_312, file=sys.stderr)
        first = {k: [] for k in envs}
        warm = {k: [] for k in envs}
        zygote = {k: [] for k in envs}
        cold = {"engine's python": [], "--python venv": []}
        for rep in range(args.reps):
            with tempfile.TemporaryDirectory(prefix="gust-bench-envs-") as state:
                with Engine(state) as eng:
                    for label, python in envs.items():
                        times = client_maps(eng, python, args.tasks, args.warm)
                        first[label].append(times[0])
                        warm[label].extend(times[1:])
                        zygote[label].append(zygote_start(python))
                    cold["engine's python"].append(cold_start(eng, f"plain-{rep}", ""))
                    cold["--python venv"].append(
                        cold_start(eng, f"venv-{rep}", envs["venv over python3"]))
    finally:
        shutil.rmtree(top, ignore_errors=True)

    report = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(), "load": os.getloadavg(), "args": vars(args),
        "first_map_s": {k: stats(v) for k, v in first.items()},
        "warm_map_s": {k: stats(v) for k, v in warm.items()},
        "zygote_start_s": {k: stats(v) for k, v in zygote.items()},
        "cold_start_s": {k: stats(v) for k, v in cold.items()},
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)
    print("%s, load %.2f %.2f %.2f, %d reps, %d tasks per map"
          % ((report["machine"],) + tuple(report["load"]) + (args.reps, args.tasks)))
    print("| figure | environment | min | median | max |")
    print("|---|---|---|---|---|")
    for figure, unit_key in (("first map", "first_map_s"), ("warm map", "warm_map_s"),
                             ("zygote start (lower bound)", "zygote_start_s"),
                             ("cold start (deployed)", "cold_start_s")):
        for label, s in report[unit_key].items():
            print("| %s | %s | %.1f ms | %.1f ms | %.1f ms |"
                  % (figure, label, s["min"] * 1e3, s["median"] * 1e3, s["max"] * 1e3))


if __name__ == "__main__":
    main()
