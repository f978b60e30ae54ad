"""Runs Lithops' own executor tests, unchanged, against gust.lithops
(`make test-lithops`; issue 13's check).

The test files are exported at run time from a Lithops git repository
($LITHOPS_REPO, a bare or normal git directory; default the mirror below)
into a temporary directory with `git archive`: they are not part of gust's
tree. Next to them goes a `lithops` package of a few lines that makes
`import lithops` (and lithops.config, lithops.storage.utils, ...) resolve to
gust.lithops; Lithops' own tests/__init__.py and conftest.py are used as
they are. An engine of this tree (build/bin, or $GUST_BIN) is started for
the run and its URL given in $GUST_URL.

Usage: run_lithops_tests.py [pytest options] [test files of lithops/tests]
(default: the files below). Exits with pytest's status; 0 with a message when no Lithops
repository is found (CI has none).
"""

import contextlib
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
DEFAULT_LITHOPS = "/work/.mirror/lithops-cloud+lithops/repo"
TEST_FILES = ["test_call_async.py", "test_future.py", "test_map.py", "test_retries.py",
              "test_map_reduce.py", "test_storage.py"]

# The `lithops` package of the run: gust.lithops under Lithops' name. Its
# modules are aliased in sys.modules (not re-imported under a second name, so
# there is one FunctionExecutor class); lithops.tests is found on __path__.
SHIM = '''"""`lithops` for Lithops' tests: gust.lithops (tests/compat/run_lithops_tests.py)."""
import os
import sys
import urllib.request  # noqa: F401 -- Lithops' own package imports it; its tests use it

import gust.lithops
from gust.lithops import *  # noqa: F401,F403 -- re-exports gust.lithops

# No internet here or in CI: test_map_reduce.py downloads five UCI bag-of-words vocabularies
# (one word a line) from a public S3 bucket, counts their words, and test_url_processing gives
# their URLs to map_reduce, each task fetching its part. The run serves stand-ins of the same
# shape and word counts at $GUST_LITHOPS_STANDINS (the run script's server, on a LAN host the
# sandboxes reach when it can make one): those URLs are rewritten to it, in the client's
# downloads and in a map's items (in the client: a sandbox importing this has no such variable
# and rewrites nothing); every other URL goes to the network.
_STANDINS = os.environ.get("GUST_LITHOPS_STANDINS")
_urlopen = urllib.request.urlopen


def _standin(url):
    name = url.rsplit("/", 1)[-1]
    return _STANDINS + name if _STANDINS and "amazonaws.com/artm/" in url else url


def _offline_urlopen(url, *args, **kwargs):
    if isinstance(url, str):
        url = _standin(url)
    else:
        url.full_url = _standin(url.full_url)
    return _urlopen(url, *args, **kwargs)


def _standin_items(method):
    def rewritten(self, map_function, map_iterdata, *args, **kwargs):
        if isinstance(map_iterdata, list):
            map_iterdata = [_standin(x) if isinstance(x, str) else x for x in map_iterdata]
        return method(self, map_function, map_iterdata, *args, **kwargs)
    return rewritten


urllib.request.urlopen = _offline_urlopen
gust.lithops.FunctionExecutor.map = _standin_items(gust.lithops.FunctionExecutor.map)
gust.lithops.FunctionExecutor.map_reduce = _standin_items(gust.lithops.FunctionExecutor.map_reduce)

for _name, _module in list(sys.modules.items()):
    if _name.startswith("gust.lithops."):
        sys.modules["lithops." + _name[len("gust.lithops."):]] = _module
__path__ = [os.path.dirname(os.path.abspath(__file__))]
'''


# The stand-ins of test_map_reduce's vocabularies: name -> number of words.
DATASETS = {"vocab.enron.txt": 28102, "vocab.kos.txt": 6906, "vocab.nips.txt": 12419,
            "vocab.nytimes.txt": 102660, "vocab.pubmed.txt": 141043}


def standins():
    """{name: bytes}: DATASETS' words, random but the same every run, one a line."""
    import random
    out = {}
    for name, n in DATASETS.items():
        rng = random.Random(name)
        words = ("".join(rng.choice("abcdefghijklmnopqrstuvwxyz")
                         for _ in range(rng.randint(3, 12))) for _ in range(n))
        out[name] = ("\n".join(words) + "\n").encode()
    return out


def export_tests(lithops_repo, dest):
    """Writes lithops/tests/* of the repository's HEAD under dest."""
    archive = subprocess.run(["git", "--git-dir", lithops_repo, "archive", "HEAD", "lithops/tests"],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", dest], input=archive, check=True)
    with open(os.path.join(dest, "lithops", "__init__.py"), "w") as f:
        f.write(SHIM)


def main(argv):
    lithops_repo = os.environ.get("LITHOPS_REPO", DEFAULT_LITHOPS)
    if not os.path.isdir(lithops_repo):
        print("test-lithops: skipped, no Lithops repository at %s (set LITHOPS_REPO to a clone "
              "of github.com/lithops-cloud/lithops)" % lithops_repo)
        return 0
    if os.path.isdir(os.path.join(lithops_repo, ".git")):
        lithops_repo = os.path.join(lithops_repo, ".git")
    sys.path[:0] = [os.path.join(REPO, d) for d in ("tests/e2e", "tests/python", "examples/scrape")]
    from gust_e2e import Engine
    from lan import LanHost
    from range_server import FileServer
    with contextlib.ExitStack() as stack:
        # A sandbox reaches a LAN host, not this host's own addresses (docs/SECURITY.md).
        sock = stack.enter_context(LanHost()).listen() if LanHost.available() else None
        if sock is None:
            print("test-lithops: no LAN host (needs root): test_url_processing's tasks cannot "
                  "reach the stand-ins")
        server = stack.enter_context(FileServer(standins(), sock=sock))
        return run(lithops_repo, argv, Engine, server.url(""))


def run(lithops_repo, argv, Engine, standins_url):
    with tempfile.TemporaryDirectory(prefix="gust-lithops-") as tmp:
        export_tests(lithops_repo, tmp)
        tests = os.path.join(tmp, "lithops", "tests")
        args = list(argv)
        if not any(a.endswith(".py") or ".py::" in a for a in argv):
            args += TEST_FILES
        engine = Engine(os.path.join(tmp, "state"))
        engine.start()
        try:
            env = dict(os.environ, GUST_URL=engine.url, GUST_LITHOPS_STANDINS=standins_url,
                       PYTHONPATH=os.pathsep.join([tmp, os.path.join(REPO, "python")]))
            return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                                   "--rootdir", tests, *args], cwd=tests, env=env).returncode
        finally:
            engine.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
