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
# (one word a line) from a public S3 bucket and counts their words. The run serves stand-ins of
# the same shape and word counts, generated on the spot; every other URL goes to the network.
_DATASETS = {"vocab.enron.txt": 28102, "vocab.kos.txt": 6906, "vocab.nips.txt": 12419,
             "vocab.nytimes.txt": 102660, "vocab.pubmed.txt": 141043}
_urlopen = urllib.request.urlopen


def _offline_urlopen(url, *args, **kwargs):
    import io
    import random
    full = url if isinstance(url, str) else url.full_url
    name = full.rsplit("/", 1)[-1]
    if "amazonaws.com/artm/" not in full or name not in _DATASETS:
        return _urlopen(url, *args, **kwargs)
    rng = random.Random(name)
    words = ("".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 12)))
             for _ in range(_DATASETS[name]))
    return io.BytesIO(("\\n".join(words) + "\\n").encode())


urllib.request.urlopen = _offline_urlopen

for _name, _module in list(sys.modules.items()):
    if _name.startswith("gust.lithops."):
        sys.modules["lithops." + _name[len("gust.lithops."):]] = _module
__path__ = [os.path.dirname(os.path.abspath(__file__))]
'''


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
    sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))
    from gust_e2e import Engine
    with tempfile.TemporaryDirectory(prefix="gust-lithops-") as tmp:
        export_tests(lithops_repo, tmp)
        tests = os.path.join(tmp, "lithops", "tests")
        args = list(argv)
        if not any(a.endswith(".py") or ".py::" in a for a in argv):
            args += TEST_FILES
        engine = Engine(os.path.join(tmp, "state"))
        engine.start()
        try:
            env = dict(os.environ, GUST_URL=engine.url,
                       PYTHONPATH=os.pathsep.join([tmp, os.path.join(REPO, "python")]))
            return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                                   "--rootdir", tests, *args], cwd=tests, env=env).returncode
        finally:
            engine.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
