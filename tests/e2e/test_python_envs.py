"""Maps and deployed functions run in their own Python environment (issue 19,
docs/ENVIRONMENTS.md): Debian's python3, a venv over it with a package of its
own (with and without system site-packages), a venv over pyenv's CPython
3.9; and the errors that name their cause (a package the environment lacks,
an environment the sandbox cannot read, a client too old). The environments are made here, offline,
as a user makes them: `python -m venv --without-pip`, then cloudpickle copied
into site-packages as `pip install cloudpickle` would put it, then a package
`mypkg` of the venv's own. The client runs inside each environment
(PYTHONPATH=<repo>/python) against one engine for the whole module."""
import json
import os
import shutil
import subprocess
import textwrap

import boto3
import pytest
from botocore.config import Config

from gust_e2e import GUST, REPO, Engine, envs_dir, make_venv, run_gust

DEBIAN_PYTHON = "/usr/bin/python3"
PYENV_39 = "/root/.pyenv/versions/3.9.18/bin/python3"
DEBIAN_DIST_PACKAGES = "/usr/lib/python3/dist-packages/"
PYENV_38 = "/root/.pyenv/versions/3.8.18/bin/python3"


@pytest.fixture(scope="module")
def eng(tmp_path_factory):
    """The module's one engine (CI time is tight): sandboxes kept 60 s."""
    with Engine(tmp_path_factory.mktemp("gust-envs"), extra_args=["--keep-alive", "60s"]) as e:
        yield e


@pytest.fixture(scope="module")
def envs():
    """A directory for the module's environments, readable by everyone (as a
    user's home project is): pytest's own tmp dirs are 0700."""
    top = envs_dir()
    yield top
    shutil.rmtree(top, ignore_errors=True)


@pytest.fixture(scope="module")
def debian_venv(envs):
    return make_venv(DEBIAN_PYTHON, os.path.join(envs, "venv311"), "mypkg of venv311")


@pytest.fixture(scope="module")
def pyenv_venv(envs):
    if not os.access(PYENV_39, os.X_OK):
        pytest.skip("pyenv's CPython 3.9.18 is not installed at " + PYENV_39)
    return make_venv(PYENV_39, os.path.join(envs, "venv39"), "mypkg of venv39")


# The task a client maps: where it ran, and its environment's mypkg (or None).
PROBE = textwrap.dedent("""
    import json, sys, traceback
    import gust

    def probe(x):
        import sys
        try:
            import mypkg
            value = mypkg.VALUE
        except ImportError:
            value = None
        try:
            import numpy
            numpy_file = numpy.__file__
        except ImportError:
            numpy_file = None
        import cloudpickle
        return {"executable": sys.executable, "version": list(sys.version_info[:2]),
                "prefix": sys.prefix, "mypkg": value, "x": x, "numpy": numpy_file,
                "cloudpickle": cloudpickle.__file__}

    def missing(x):
        import gust_no_such_package_xyz
        return x

    ex = gust.FunctionExecutor(show_progress=False)
    out = {}
    fs = ex.map(probe, [1, 2])
    out["results"] = ex.get_result(fs)
    out["function"] = fs[0].job.function
    if "--missing" in sys.argv:
        try:
            ex.get_result(ex.map(missing, [1]))
        except ImportError as e:
            out["import_error"] = "".join(traceback.format_exception(type(e), e, e.__traceback__))
    print("RESULT " + json.dumps(out))
""")


def run_client(eng, python, *flags):
    """Runs PROBE in `python` against eng; returns its RESULT document."""
    env = dict(os.environ, GUST_URL=eng.url, PYTHONPATH=os.path.join(REPO, "python"))
    env.pop("PYTHONHOME", None)
    out = subprocess.run([python, "-c", PROBE] + list(flags), env=env, capture_output=True,
                         text=True, timeout=300)
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    assert out.returncode == 0 and lines, (python, out.stdout, out.stderr[-4000:],
                                           eng.log()[-3000:])
    return json.loads(lines[-1][len("RESULT "):])


def function_config(eng, name):
    status, data = eng.get(f"/2015-03-31/functions/{name}/configuration")
    assert status == 200, data
    return json.loads(data)


def test_debian_python_map_is_unchanged(eng):
    """(a) Debian's python3: the engine's own interpreter and zygote, as before."""
    out = run_client(eng, DEBIAN_PYTHON)
    assert [r["x"] for r in out["results"]] == [1, 2]
    for r in out["results"]:
        assert r["executable"] == DEBIAN_PYTHON
        assert r["mypkg"] is None
        assert r["cloudpickle"].startswith(DEBIAN_DIST_PACKAGES), r
        assert r["numpy"].startswith(DEBIAN_DIST_PACKAGES), r
    assert "GustPython" not in function_config(eng, out["function"]), \
        "the engine's own Python is no environment of the map's function"


def test_venv_over_debian_python_runs_its_own_packages(eng, debian_venv):
    """(b) A venv over /usr/bin/python3 with mypkg: the tasks import it, and
    see the venv's interpreter as theirs."""
    out = run_client(eng, debian_venv)
    assert [r["x"] for r in out["results"]] == [1, 2]
    for r in out["results"]:
        assert r["executable"] == debian_venv
        assert r["mypkg"] == "mypkg of venv311"
        assert r["prefix"] == os.path.dirname(os.path.dirname(debian_venv))
        assert r["cloudpickle"].startswith(r["prefix"] + "/lib/"), r
        assert r["numpy"] is None, "a venv without system site-packages sees none of Debian's"
    assert function_config(eng, out["function"]).get("GustPython") == debian_venv


def test_venv_with_system_site_packages(eng, envs):
    """(b') A venv made with --system-site-packages: its own packages first
    (mypkg, its cloudpickle), then Debian's (numpy)."""
    python = make_venv(DEBIAN_PYTHON, os.path.join(envs, "venvsys"), "mypkg of venvsys",
                       system_site_packages=True)
    out = run_client(eng, python)
    for r in out["results"]:
        assert r["executable"] == python
        assert r["mypkg"] == "mypkg of venvsys"
        assert r["cloudpickle"].startswith(r["prefix"] + "/lib/"), r
        assert r["numpy"].startswith(DEBIAN_DIST_PACKAGES), r


def test_venv_over_pyenv_39(eng, pyenv_venv):
    """(c) A venv over pyenv's CPython 3.9: another version than the engine's
    own runs too (its client is no longer refused)."""
    out = run_client(eng, pyenv_venv)
    for r in out["results"]:
        assert r["executable"] == pyenv_venv
        assert r["version"] == [3, 9]
        assert r["mypkg"] == "mypkg of venv39"
        assert r["cloudpickle"].startswith(r["prefix"] + "/lib/python3.9/"), r


def test_missing_package_names_the_environment(eng, debian_venv):
    """(d) A package the environment lacks: the ImportError says which
    environment the task ran in, so the user knows where to install it."""
    out = run_client(eng, debian_venv, "--missing")
    text = out.get("import_error", "")
    assert "gust_no_such_package_xyz" in text, out
    assert os.path.dirname(os.path.dirname(debian_venv)) in text, text


def test_unreadable_environment_is_named(eng, envs):
    """(f) A venv the sandbox user cannot read (mode 0700, owned by root as the
    engine is): the task fails with the path and the fix, not with an
    ImportError from inside the sandbox."""
    top = os.path.join(envs, "private")
    os.makedirs(top)
    python = make_venv(DEBIAN_PYTHON, os.path.join(top, "venv"))
    os.chmod(os.path.join(top, "venv"), 0o700)
    env = dict(os.environ, GUST_URL=eng.url, PYTHONPATH=os.path.join(REPO, "python"))
    code = ("import gust\nex = gust.FunctionExecutor(show_progress=False)\n"
            "ex.get_result(ex.map(abs, [1]))\n")
    out = subprocess.run([python, "-c", code], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode != 0
    assert "cannot read " + os.path.join(top, "venv") in out.stderr, out.stderr[-3000:]
    assert "chmod o+rX" in out.stderr, out.stderr[-3000:]


def test_too_old_python_is_told_the_supported_range():
    """(g) A client on CPython 3.8 is told the range at `import gust`, naming
    its interpreter (the engine refuses a 3.8 header too: EnvLauncherTest)."""
    if not os.access(PYENV_38, os.X_OK):
        pytest.skip("pyenv's CPython 3.8.18 is not installed at " + PYENV_38)
    env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "python"))
    out = subprocess.run([PYENV_38, "-c", "import gust"], env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode != 0
    assert "gust supports CPython 3.9 to 3.13; this is Python 3.8 (" + PYENV_38 in out.stderr, \
        out.stderr


def test_deploy_python_runs_the_function_in_the_environment(eng, debian_venv, tmp_path):
    """(e) `gust deploy --python`: a function importing mypkg, invoked through
    boto3; GetFunctionConfiguration carries the GustPython extension field."""
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text(
        "import sys\nimport mypkg\n\n"
        "def handler(event, context):\n"
        "    return {'executable': sys.executable, 'mypkg': mypkg.VALUE}\n")
    run_gust(eng, "deploy", "envfn", str(code), "--handler", "app.handler",
             "--python", debian_venv, cwd=str(tmp_path))
    assert function_config(eng, "envfn")["GustPython"] == debian_venv
    lam = boto3.client("lambda", endpoint_url=eng.url, region_name="us-east-1",
                       aws_access_key_id="gust", aws_secret_access_key="gust",
                       config=Config(retries={"max_attempts": 0}, read_timeout=120))
    r = lam.invoke(FunctionName="envfn", Payload=b"{}")
    body = json.loads(r["Payload"].read())
    assert "FunctionError" not in r, body
    assert body == {"executable": debian_venv, "mypkg": "mypkg of venv311"}


def test_stage_python_serves_a_web_app_in_the_environment(eng, envs, tmp_path):
    """(e') A web app's stage with "python" in gust_settings.json: `gust deploy
    dev` runs the Flask app in that environment (a venv with system
    site-packages, for Debian's Flask, and mypkg of its own)."""
    python = make_venv(DEBIAN_PYTHON, os.path.join(envs, "venvweb"), "mypkg of venvweb",
                       system_site_packages=True)
    d = tmp_path / "webenv"
    d.mkdir()
    (d / "app.py").write_text(
        "import sys\nimport mypkg\nfrom flask import Flask\n\napp = Flask(__name__)\n\n\n"
        "@app.route('/')\ndef index():\n    return sys.executable + ' ' + mypkg.VALUE\n")
    (d / "gust_settings.json").write_text(json.dumps(
        {"dev": {"app_function": "app.app", "python": python}}))
    run_gust(eng, "deploy", "dev", cwd=str(d))
    status, _, data = eng.request("GET", "/web/webenv-dev/")
    assert status == 200, data
    assert data.decode() == python + " mypkg of venvweb"


def test_environment_fields_are_checked(eng, tmp_path):
    """A function's GustPython and a job header's python are the client's
    input: a bad one is a 400 naming the field; a client from before
    environments is told to upgrade; `gust deploy --python ""` goes back to
    the engine's own interpreter."""
    status, headers, data = eng.request("POST", "/2015-03-31/functions", {
        "FunctionName": "badpython", "Runtime": "python3.11", "Role": "r",
        "Handler": "app.handler", "GustPython": "python3",
        "Code": {"ZipFile": "UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA=="}})
    assert status == 400, data
    assert headers.get("x-amzn-errortype") == "InvalidParameterValueException"
    assert "GustPython must be the absolute path of a Python interpreter" in \
        json.loads(data)["Message"]

    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text("def handler(e, c):\n    return 1\n")
    run_gust(eng, "deploy", "plainfn", str(code), "--handler", "app.handler",
             "--python", "venv/bin/python", cwd=str(tmp_path))
    assert function_config(eng, "plainfn")["GustPython"] == str(tmp_path / "venv/bin/python"), \
        "a relative --python is made absolute, not resolved"
    run_gust(eng, "deploy", "plainfn", str(code), "--python", "", cwd=str(tmp_path))
    assert "GustPython" not in function_config(eng, "plainfn")
    assert eng.invoke("plainfn", {})[0] == 200


def test_python_preload_flag_preloads_into_the_environments_zygote(envs, tmp_path):
    """`gust up --python-preload PYTHON=MODULES`: the environment's zygote
    imports mypkg once, so a task finds it in sys.modules before importing it
    (the module's engine, without the flag, does not: test (b) imports it).
    A malformed value is refused by name."""
    python = make_venv(DEBIAN_PYTHON, os.path.join(envs, "venvpre"), "mypkg of venvpre")
    code = ("import sys, gust\n"
            "def f(x):\n"
            "    import sys\n"
            "    return 'mypkg' in sys.modules\n"
            "ex = gust.FunctionExecutor(show_progress=False)\n"
            "print('RESULT', ex.get_result(ex.map(f, [1])))\n")
    with Engine(tmp_path / "state", extra_args=["--python-preload", python + "=mypkg"]) as e:
        env = dict(os.environ, GUST_URL=e.url, PYTHONPATH=os.path.join(REPO, "python"))
        out = subprocess.run([python, "-c", code], env=env, capture_output=True, text=True,
                             timeout=300)
        assert "RESULT [True]" in out.stdout, (out.stdout, out.stderr[-3000:], e.log()[-3000:])
    for bad in ("venv/bin/python=numpy", "/usr/bin/python3", "/usr/bin/python3="):
        out = subprocess.run([GUST, "up", "--python-preload", bad, "--state-dir",
                              str(tmp_path / "bad")], capture_output=True, text=True, timeout=60)
        assert out.returncode != 0
        assert "--python-preload '%s' is not PYTHON=MODULE" % bad in out.stderr + out.stdout


def test_trusted_python_owner_flag_is_checked(tmp_path):
    """`gust up --trusted-python-owner` takes uids only."""
    out = subprocess.run([GUST, "up", "--trusted-python-owner", "alice", "--state-dir",
                          str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert "--trusted-python-owner" in out.stderr + out.stdout
