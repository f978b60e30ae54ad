"""Zappa's workflow through the real `gust` binary against a real engine (issue 4):
init, deploy STAGE, update, rollback, undeploy, status, tail, invoke STAGE mod.fn,
package; settings files (gust and zappa), virtualenv bundling, size limits,
deploy-time import checks."""
import base64
import hashlib
import json
import os
import subprocess
import threading
import time
import zipfile

import requests

from gust_e2e import GUST, flask_engine, stage_cli  # noqa: F401 -- fixtures

TIME_APP = '''
import datetime, time
from flask import Flask
app = Flask(__name__)
VERSION = "{version}"

@app.route("/time")
def now():
    return VERSION + " " + str(datetime.datetime.now())

@app.route("/slow")
def slow():
    time.sleep(2)
    return VERSION

@app.route("/boom")
def boom():
    raise RuntimeError("boom")

def count():
    print("counting rows")
    return {{"rows": 42}}

def fails():
    raise KeyError("missing")
'''


def project(tmp_path, name, version="v1", settings=None, kind="gust_settings.json"):
    d = tmp_path / name
    d.mkdir()
    (d / "app.py").write_text(TIME_APP.format(version=version))
    if settings is not None:
        (d / kind).write_text(json.dumps(settings))
    return d


def get(eng, path):
    return requests.get(eng.url + path, timeout=60)


def test_init_then_deploy_prints_a_url_that_serves(eng, gust, tmp_path):
    d = project(tmp_path, "timeapp")
    out = gust("init", "--yes", cwd=d)
    settings = json.loads((d / "gust_settings.json").read_text())
    assert settings["dev"]["app_function"] == "app.app"  # found the Flask app
    assert settings["dev"]["project_name"] == "timeapp"
    assert "gust deploy dev" in out.stdout

    out = gust("deploy", "dev", cwd=d)
    url = f"{eng.url}/web/timeapp-dev/"
    assert url in out.stdout
    assert f"http://timeapp-dev.localhost:{eng.port}/" in out.stdout
    assert "import check: app.app imports" in out.stdout
    assert "packaged 2 files" in out.stdout
    r = requests.get(url + "time")
    assert r.status_code == 200 and r.text.startswith("v1 ")

    again = gust("deploy", "dev", cwd=d, check=False)
    assert again.returncode == 2
    assert "already deployed" in again.stderr and "gust update dev" in again.stderr
    init_again = gust("init", "--yes", cwd=d, check=False)
    assert init_again.returncode == 2 and "already exists" in init_again.stderr


def test_init_asks_and_re_asks_a_bad_answer(gust, tmp_path):
    d = tmp_path / "asked"
    d.mkdir()
    (d / "service.py").write_text("from flask import Flask\napplication = Flask(__name__)\n")
    answers = "prod\n\nshop\nlots\n30\n" + "prod\n\nshop\n1024\n60\n"
    out = gust("init", cwd=d, input=answers)
    assert "Found a Flask app: service.application" in out.stdout
    assert "memory_size" in out.stdout and "try again" in out.stdout  # "lots" was refused
    settings = json.loads((d / "gust_settings.json").read_text())
    assert settings["prod"]["app_function"] == "service.application"
    assert settings["prod"]["memory_size"] == 1024
    assert settings["prod"]["timeout_seconds"] == 60
    assert settings["prod"]["project_name"] == "shop"


def test_deploy_fails_at_deploy_time_when_the_app_cannot_import(eng, gust, tmp_path):
    d = tmp_path / "broken"
    d.mkdir()
    (d / "app.py").write_text("import nosuchmodule_xyz\nfrom flask import Flask\n"
                              "app = Flask(__name__)\n")
    (d / "gust_settings.json").write_text(json.dumps({"dev": {"app_function": "app.app"}}))
    out = gust("deploy", "dev", cwd=d, check=False)
    assert out.returncode == 2
    assert "Runtime.ImportModuleError" in out.stderr
    assert "No module named 'nosuchmodule_xyz'" in out.stderr
    assert "nothing was deployed" in out.stderr
    assert get(eng, "/web/broken-dev/").status_code == 404  # not at the first request

    (d / "app.py").write_text("from flask import Flask\napplication = Flask(__name__)\n")
    out = gust("deploy", "dev", cwd=d, check=False)
    assert out.returncode == 2
    assert "Runtime.HandlerNotFound" in out.stderr and "'app'" in out.stderr


def test_update_switches_atomically_and_rollback_goes_back(eng, gust, tmp_path):
    d = project(tmp_path, "flip", settings={"dev": {"app_function": "app.app"}})
    gust("deploy", "dev", cwd=d)
    assert get(eng, "/web/flip-dev/time").text.startswith("v1 ")

    # A request in flight on v1 finishes on v1 while the update switches traffic to v2.
    slow = {}
    t = threading.Thread(target=lambda: slow.update(r=get(eng, "/web/flip-dev/slow")))
    t.start()
    time.sleep(0.5)
    (d / "app.py").write_text(TIME_APP.format(version="v2"))
    out = gust("update", "dev", cwd=d)
    assert "live -> version 2 (was 1)" in out.stdout
    assert get(eng, "/web/flip-dev/time").text.startswith("v2 ")
    t.join()
    assert slow["r"].status_code == 200 and slow["r"].text == "v1"

    # An update that does not import publishes a version but moves no traffic.
    (d / "app.py").write_text("import not_installed_anywhere\n")
    bad = gust("update", "dev", cwd=d, check=False)
    assert bad.returncode == 2
    assert "not_installed_anywhere" in bad.stderr and "live still serves version 2" in bad.stderr
    assert get(eng, "/web/flip-dev/time").text.startswith("v2 ")

    out = gust("rollback", "dev", "-n", "1", cwd=d)
    assert "live -> version 1 (was 2)" in out.stdout
    assert get(eng, "/web/flip-dev/time").text.startswith("v1 ")
    too_far = gust("rollback", "dev", "-n", "3", cwd=d, check=False)
    assert too_far.returncode == 2 and "cannot go back 3 versions" in too_far.stderr

    status = gust("status", "dev", cwd=d).stdout
    assert "live version:   1" in status
    assert "versions kept:  1 2 3" in status


def test_status_reports_the_last_24_hours(eng, gust, tmp_path):
    d = project(tmp_path, "stat", settings={"dev": {"app_function": "app.app",
                                                    "memory_size": 256, "timeout_seconds": 7}})
    gust("deploy", "dev", cwd=d)
    for _ in range(5):
        assert get(eng, "/web/stat-dev/time").status_code == 200
    assert get(eng, "/web/stat-dev/boom").status_code == 502
    out = gust("status", "dev", cwd=d).stdout
    assert f"URL:            {eng.url}/web/stat-dev/" in out
    assert "app:            app.app (WSGI)" in out
    assert "memory:         256 MB" in out and "timeout:        7 s" in out
    line = next(ln for ln in out.splitlines() if ln.startswith("last 24 h:"))
    # 6 requests; the deploy's import check started the sandbox, so none was a cold start.
    assert "6 invocations, 1 errors, 0 cold starts" in line
    assert "p50" in line and "p99" in line


def test_tail_filters_and_follows(eng, gust, tmp_path):
    d = project(tmp_path, "tailed", settings={"dev": {"app_function": "app.app"}})
    gust("deploy", "dev", cwd=d)
    get(eng, "/web/tailed-dev/time?mark=first")
    get(eng, "/web/tailed-dev/boom")
    time.sleep(0.4)
    http_only = gust("tail", "dev", "--http", "--no-follow", cwd=d).stdout.splitlines()
    assert len(http_only) == 2 and all("[HTTP] " in ln for ln in http_only)
    assert '"GET /web/tailed-dev/time?mark=first HTTP/1.1" 200' in http_only[0]
    non_http = gust("tail", "dev", "--non-http", "--no-follow", cwd=d).stdout
    assert "[HTTP]" not in non_http and "START RequestId" in non_http
    assert "RuntimeError: boom" in non_http
    filtered = gust("tail", "dev", "--filter", "RuntimeError", "--no-follow", cwd=d).stdout
    assert filtered.strip() and all("RuntimeError" in ln for ln in filtered.splitlines())
    both = gust("tail", "dev", "--http", "--non-http", cwd=d, check=False)
    assert both.returncode == 2  # mutually exclusive

    # Live: a request made after tail started shows up while it runs.
    follower = subprocess.Popen([GUST, "tail", "dev", "--since", "1s", "--http"], cwd=d,
                                stdout=subprocess.PIPE, text=True,
                                env=dict(os.environ, GUST_URL=eng.url))
    try:
        time.sleep(0.5)
        get(eng, "/web/tailed-dev/time?mark=live")
        seen = ""
        deadline = time.time() + 15
        while "mark=live" not in seen and time.time() < deadline:
            seen += follower.stdout.readline()
        assert "mark=live" in seen
    finally:
        follower.terminate()
        follower.wait(10)


def test_invoke_runs_a_function_of_the_app(eng, gust, tmp_path):
    d = project(tmp_path, "inv", settings={"dev": {"app_function": "app.app"}})
    gust("deploy", "dev", cwd=d)
    out = gust("invoke", "dev", "app.count", cwd=d)
    assert json.loads(out.stdout) == {"rows": 42}
    assert "counting rows" in out.stderr  # the invocation's log
    failed = gust("invoke", "dev", "app.fails", cwd=d, check=False)
    assert failed.returncode == 1 and "KeyError" in failed.stdout
    raw = gust("invoke", "dev", "--raw", "print(40 + 2)", cwd=d)
    assert "42" in raw.stderr
    # The engine-core forms still work beside the stage forms.
    plain = gust("invoke", "inv-dev", "--payload", '{"command": "app.count"}', cwd=d)
    assert json.loads(plain.stdout) == {"rows": 42}


def make_wheel(path):
    """A pure-Python wheel, built by hand (there is no PyPI here)."""
    files = {"tinyfmt/__init__.py": b'def shout(s):\n    return s.upper() + "!"\n',
             "tinyfmt-1.2.dist-info/METADATA": b"Metadata-Version: 2.1\nName: tinyfmt\n"
                                               b"Version: 1.2\n",
             "tinyfmt-1.2.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: gust-test\n"
                                            b"Root-Is-Purelib: true\nTag: py3-none-any\n"}
    record = "".join(
        f"{p},sha256={base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b'=').decode()},"
        f"{len(d)}\n" for p, d in files.items()) + "tinyfmt-1.2.dist-info/RECORD,,\n"
    with zipfile.ZipFile(path, "w") as z:
        for p, d in files.items():
            z.writestr(p, d)
        z.writestr("tinyfmt-1.2.dist-info/RECORD", record)


def test_package_bundles_the_virtualenv_and_honours_excludes(eng, gust, tmp_path):
    d = tmp_path / "withvenv"
    d.mkdir()
    (d / "app.py").write_text("from flask import Flask\nimport tinyfmt\napp = Flask(__name__)\n"
                              "@app.route('/')\ndef home():\n    return tinyfmt.shout('hi')\n")
    (d / "notebook.ipynb").write_text("{}")
    (d / "data").mkdir()
    (d / "data" / "raw.csv").write_text("a,b\n")
    (d / "gust_settings.json").write_text(json.dumps(
        {"dev": {"app_function": "app.app", "exclude": ["*.ipynb", "data/"]}}))
    # A virtualenv made from the system Python, a pure-Python package installed with its pip.
    subprocess.run(["/usr/bin/python3", "-m", "venv", str(d / "venv")], check=True)
    make_wheel(tmp_path / "tinyfmt-1.2-py3-none-any.whl")
    subprocess.run([str(d / "venv" / "bin" / "pip"), "install", "-q", "--no-index",
                    str(tmp_path / "tinyfmt-1.2-py3-none-any.whl")], check=True)

    out = gust("package", "dev", "-o", str(tmp_path / "bundle.zip"), cwd=d)
    assert "from the virtualenv" in out.stdout and "tinyfmt 1.2" in out.stdout
    names = set(zipfile.ZipFile(tmp_path / "bundle.zip").namelist())
    assert {"app.py", "gust_settings.json", "tinyfmt/__init__.py"} <= names
    assert not any(n.startswith(("pip/", "setuptools/", "venv/", "data/")) for n in names)
    assert "notebook.ipynb" not in names
    assert not any("flask" in n.lower() for n in names)  # the system's: provided by the runtime

    gust("deploy", "dev", cwd=d)
    r = get(eng, "/web/withvenv-dev/")
    assert r.status_code == 200 and r.text == "HI!"


def test_over_limit_bundle_is_refused_with_its_size(eng, gust, tmp_path):
    d = project(tmp_path, "huge", settings={"dev": {"app_function": "app.app"}})
    with open(d / "weights.bin", "wb") as f:
        f.truncate(300 * 1024 * 1024)  # sparse: 300 MiB without using the disk
    for cmd in (["deploy", "dev"], ["package", "dev"]):
        out = gust(*cmd, cwd=d, check=False)
        assert out.returncode == 2
        assert "300.0 MiB" in out.stderr and "over the limit" in out.stderr
        assert "weights.bin" in out.stderr
    assert get(eng, "/web/huge-dev/time").status_code == 404


def test_zappa_settings_are_read_as_is(eng, gust, tmp_path):
    d = project(tmp_path, "zap", kind="zappa_settings.json", settings={"production": {
        "app_function": "app.app", "aws_region": "us-east-1", "s3_bucket": "zappa-abc",
        "slim_handler": True, "keep_warm": True, "keep_warm_expression": "rate(4 minutes)",
        "events": [{"function": "app.count", "expression": "rate(1 hour)"}],
        "memory_size": 256, "timeout_seconds": 20, "project_name": "zap",
        "environment_variables": {"GREETING": "hello"}, "frobnicate": 1}})
    out = gust("deploy", "production", cwd=d)
    assert "zappa_settings.json" in out.stderr
    assert '"slim_handler"' in out.stderr and "ignored" in out.stderr
    assert '"frobnicate"' in out.stderr  # unknown keys are named
    assert "keep_warm" not in out.stderr and "events" not in out.stderr  # read without complaint
    assert get(eng, "/web/zap-production/time").status_code == 200
    cfg = json.loads(eng.get("/2015-03-31/functions/zap-production/configuration")[1])
    assert cfg["MemorySize"] == 256 and cfg["Timeout"] == 20
    assert cfg["Environment"]["Variables"]["GREETING"] == "hello"


def test_undeploy_asks_first(eng, gust, tmp_path):
    d = project(tmp_path, "gone", settings={"dev": {"app_function": "app.app"}})
    gust("deploy", "dev", cwd=d)
    no = gust("undeploy", "dev", cwd=d, input="n\n", check=False)
    assert no.returncode == 1 and "not undeployed" in no.stdout
    assert get(eng, "/web/gone-dev/time").status_code == 200
    gust("undeploy", "dev", "--yes", cwd=d)
    assert get(eng, "/web/gone-dev/time").status_code == 404
    missing = gust("status", "dev", cwd=d, check=False)
    assert missing.returncode == 2 and "not deployed" in missing.stderr


def test_yaml_and_toml_settings(eng, gust, tmp_path):
    d = project(tmp_path, "yamlapp")
    (d / "gust_settings.yaml").write_text(
        "dev:\n  app_function: app.app\n  memory_size: 256\n  exclude:\n    - '*.md'\n")
    (d / "README.md").write_text("left out")
    gust("deploy", "dev", cwd=d)
    assert get(eng, "/web/yamlapp-dev/time").status_code == 200
    cfg = json.loads(eng.get("/2015-03-31/functions/yamlapp-dev/configuration")[1])
    assert cfg["MemorySize"] == 256

    t = project(tmp_path, "tomlapp")
    (t / "zappa_settings.toml").write_text(
        '[prod]\napp_function = "app.app"\nproject_name = "tomlapp"\ns3_bucket = "x"\n')
    out = gust("package", "prod", "-o", str(tmp_path / "t.zip"), cwd=t)
    assert "zappa_settings.toml" in out.stderr and '"s3_bucket"' in out.stderr
    (t / "zappa_settings.toml").write_text("[prod\nbroken")
    bad = gust("package", "prod", cwd=t, check=False)
    assert bad.returncode == 2 and "could not be read as TOML" in bad.stderr


def schedules_of(eng, group):
    status, data = eng.get("/v1/schedules?group=" + group)
    assert status == 200, data
    return {s["name"]: s for s in json.loads(data)["schedules"]}


def test_deploy_update_undeploy_carry_the_stage_schedules(eng, gust, tmp_path):
    settings = {"dev": {"app_function": "app.app", "keep_warm": True,
                        "keep_warm_expression": "rate(5 minutes)",
                        "events": [{"function": "app.count", "expression": "rate(1 hour)"}]}}
    d = project(tmp_path, "sched", settings=settings)
    out = gust("deploy", "dev", cwd=d)
    assert "scheduled sched-dev-keep-warm: rate(5 minutes)" in out.stdout
    got = schedules_of(eng, "sched-dev")
    assert set(got) == {"sched-dev-keep-warm", "sched-dev-app.count"}
    assert got["sched-dev-keep-warm"]["kind"] == "keep_warm"
    assert got["sched-dev-app.count"]["expression"] == "rate(1 hour)"

    # update applies the settings' schedules even when the code is unchanged.
    settings["dev"]["keep_warm"] = False
    settings["dev"]["events"][0]["expression"] = "cron(0 3 * * ? *)"
    (d / "gust_settings.json").write_text(json.dumps(settings))
    gust("update", "dev", cwd=d)
    got = schedules_of(eng, "sched-dev")
    assert set(got) == {"sched-dev-app.count"}
    assert got["sched-dev-app.count"]["expression"] == "cron(0 3 * * ? *)"

    # A bad expression on update changes nothing and names the problem.
    settings["dev"]["events"][0]["expression"] = "rate(0 minutes)"
    (d / "gust_settings.json").write_text(json.dumps(settings))
    bad = gust("update", "dev", cwd=d, check=False)
    assert bad.returncode != 0 and "rate(0 minutes)" in bad.stderr
    assert schedules_of(eng, "sched-dev")["sched-dev-app.count"]["expression"] == \
        "cron(0 3 * * ? *)"

    out = gust("undeploy", "dev", "--yes", cwd=d)
    assert "1 schedule(s) removed" in out.stdout
    assert schedules_of(eng, "sched-dev") == {}


def test_deploy_with_a_bad_schedule_deploys_nothing(eng, gust, tmp_path):
    d = project(tmp_path, "badsched", settings={"dev": {
        "app_function": "app.app",
        "events": [{"function": "app.count", "expression": "every day"}]}})
    out = gust("deploy", "dev", cwd=d, check=False)
    assert out.returncode != 0
    assert "every day" in out.stderr and "nothing was deployed" in out.stderr
    assert get(eng, "/web/badsched-dev/time").status_code == 404
    assert schedules_of(eng, "badsched-dev") == {}
