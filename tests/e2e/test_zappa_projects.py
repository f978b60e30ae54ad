"""Zappa projects as people wrote them (issue 14), through the real `gust`
binary and a real engine: an event-only cron bot whose function takes no
arguments, fired by a real schedule; schedules that follow the live version
through update, rollback and a failed update; the stage named only when the
settings file has several; the import check's network hint; per-version
status; `gust ls` without the engine's map functions; a map task's traceback."""
import json
import os
import subprocess
import sys
import time

import requests

from gust_e2e import REPO, flask_engine, stage_cli  # noqa: F401 -- fixtures

# The weather bot of the article: a cron job, no web app, a zero-argument function.
TWEET = '''
import datetime

def check_time_and_post():
    now = datetime.datetime.utcnow().isoformat()
    print("posting the weather at", now)
    return "posted " + now

def handle(event):
    return {"handled": event.get("x")}
'''

# A Flask app with a scheduled job that says which version ran it.
SHOP = '''
from flask import Flask
app = Flask(__name__)
VERSION = "{version}"
{broken}

@app.route("/version")
def version():
    return VERSION

def tick(event):
    print("tick of version", VERSION, event["time"])
    return VERSION
'''


def write_project(d, files, settings, kind="zappa_settings.json"):
    d.mkdir(exist_ok=True)
    for name, text in files.items():
        (d / name).write_text(text)
    (d / kind).write_text(json.dumps(settings))
    return d


def records(eng, function, since_ms=0):
    status, data = eng.get("/v1/invocations?function=%s&since=%d" % (function, since_ms))
    assert status == 200, data
    return json.loads(data)["invocations"]


def wait_records(eng, function, since_ms, count, timeout=15.0):
    """At least `count` invocation records of function started after since_ms."""
    deadline = time.time() + timeout
    while True:
        got = records(eng, function, since_ms)
        if len(got) >= count or time.time() > deadline:
            return got
        time.sleep(0.2)


def schedules_of(eng, group):
    return {s["name"]: s for s in
            json.loads(eng.get("/v1/schedules?group=" + group)[1])["schedules"]}


def now_ms():
    return int(time.time() * 1000)


def test_event_only_bot_with_a_zero_argument_function_runs_on_its_schedule(eng, gust, tmp_path):
    d = write_project(tmp_path / "bot", {"tweet.py": TWEET}, {"dev": {
        "project_name": "bot", "keep_warm": False, "s3_bucket": "zappa-bot",
        "events": [{"function": "tweet.check_time_and_post", "expression": "rate(1 second)"}]}})
    out = gust("deploy", cwd=d)  # one stage: no need to name it
    assert "deployed stage dev" in out.stdout
    assert "no web route: an event-only project" in out.stdout, out.stdout
    assert "import check: the events' functions (tweet.check_time_and_post)" in out.stdout
    # A real schedule fires the zero-argument function: no TypeError, every tick a success.
    got = wait_records(eng, "bot-dev", 0, 2)
    assert len(got) >= 2, got
    assert all(r["outcome"] == "Success" for r in got), got
    assert all(r["version"] == "1" for r in got), got  # the live version, not $LATEST
    log = eng.get("/v1/functions/bot-dev/logs?since=0")[1].decode()
    assert "posting the weather at" in log and "TypeError" not in log, log[-2000:]
    # The same rule on the invoke path.
    out = gust("invoke", "dev", "tweet.check_time_and_post", cwd=d)
    assert "posted " in out.stdout
    # No web route: the gateway's answer says what the stage is.
    r = requests.get(eng.url + "/web/bot-dev/", timeout=30)
    assert r.status_code == 502 and "event-only" in r.text, r.text
    status = gust("status", cwd=d).stdout
    assert "none (an event-only project" in status
    out = gust("undeploy", "--yes", cwd=d)
    assert "undeployed stage dev" in out.stdout and "1 schedule(s) removed" in out.stdout


def test_event_only_project_honours_lambda_handler(eng, gust, tmp_path):
    d = write_project(tmp_path / "hbot", {"tweet.py": TWEET}, {"dev": {
        "project_name": "hbot", "keep_warm": False, "lambda_handler": "tweet.handle",
        "events": [{"function": "tweet.check_time_and_post", "expression": "rate(1 hour)"}]}})
    gust("deploy", cwd=d)
    # Any other event (here an async one, as Lambda's Event invocations) goes to the
    # handler, called by the same signature rule: handle(event).
    out = gust("invoke", "hbot-dev", "--payload", '{"x": 7}', cwd=d)
    assert '"handled": 7' in out.stdout, out.stdout
    status, headers, _ = eng.request(
        "POST", "/2015-03-31/functions/hbot-dev/invocations?Qualifier=live",
        json.dumps({"x": 8}), {"X-Amz-Invocation-Type": "Event"})
    assert status == 202
    rid = headers["x-amzn-requestid"]
    deadline = time.time() + 15
    while time.time() < deadline:
        doc = json.loads(eng.get("/v1/async-invocations/" + rid)[1])
        if doc["Status"] in ("succeeded", "failed", "dead-lettered"):
            break
        time.sleep(0.1)
    assert doc["Status"] == "succeeded" and doc["Result"] == {"handled": 8}, doc
    gust("undeploy", "--yes", cwd=d)


def test_event_only_project_with_a_missing_function_fails_the_import_check(eng, gust, tmp_path):
    d = write_project(tmp_path / "nobot", {"tweet.py": TWEET}, {"dev": {
        "project_name": "nobot", "keep_warm": False,
        "events": [{"function": "tweet.no_such_function", "expression": "rate(1 hour)"}]}})
    out = gust("deploy", cwd=d, check=False)
    assert out.returncode != 0 and "no_such_function" in out.stderr, out.stderr
    assert "nothing was deployed" in out.stderr


def test_schedules_follow_the_live_version(eng, gust, tmp_path):
    settings = {"dev": {"app_function": "app.app", "project_name": "shop", "keep_warm": True,
                        "keep_warm_expression": "rate(1 second)",
                        "events": [{"function": "app.tick", "expression": "rate(1 second)"}]}}
    d = write_project(tmp_path / "shop", {"app.py": SHOP.format(version="v1", broken="")},
                      settings, kind="gust_settings.json")
    gust("deploy", "dev", cwd=d)
    got = schedules_of(eng, "shop-dev")
    assert got["shop-dev-app.tick"]["qualifier"] == "live"
    assert got["shop-dev-keep-warm"]["qualifier"] == "live"  # keep-warm warms live's code too
    assert {r["version"] for r in wait_records(eng, "shop-dev", 0, 1)} == {"1"}

    # Version 2 has another expression; after update its ticks run version 2.
    settings["dev"]["events"][0]["expression"] = "rate(2 seconds)"
    (d / "gust_settings.json").write_text(json.dumps(settings))
    (d / "app.py").write_text(SHOP.format(version="v2", broken=""))
    gust("update", "dev", cwd=d)
    updated = now_ms()
    assert schedules_of(eng, "shop-dev")["shop-dev-app.tick"]["expression"] == "rate(2 seconds)"
    got = wait_records(eng, "shop-dev", updated, 1)
    assert got and {r["version"] for r in got} == {"2"}, got

    # Rollback: live serves version 1, the ticks run version 1 with version 1's expression.
    out = gust("rollback", "dev", "-n", "1", cwd=d)
    assert "live -> version 1" in out.stdout
    rolled = now_ms()
    assert requests.get(eng.url + "/web/shop-dev/version", timeout=30).text == "v1"
    assert schedules_of(eng, "shop-dev")["shop-dev-app.tick"]["expression"] == "rate(1 second)"
    got = wait_records(eng, "shop-dev", rolled, 2)
    assert len(got) >= 2 and {r["version"] for r in got} == {"1"}, got
    log = eng.get("/v1/functions/shop-dev/logs?since=0")[1].decode()
    assert "WARM Version: 1" in log and "WARM Version: $LATEST" not in log, log[-3000:]

    # A failed update (its import check fails) keeps live and applies no new schedule.
    settings["dev"]["events"][0]["expression"] = "rate(3 seconds)"
    (d / "gust_settings.json").write_text(json.dumps(settings))
    (d / "app.py").write_text(SHOP.format(version="v3", broken="import no_such_module"))
    bad = gust("update", "dev", cwd=d, check=False)
    assert bad.returncode != 0 and "live still serves version 1" in bad.stderr, bad.stderr
    failed = now_ms()
    assert schedules_of(eng, "shop-dev")["shop-dev-app.tick"]["expression"] == "rate(1 second)"
    got = wait_records(eng, "shop-dev", failed, 2)
    assert len(got) >= 2 and {r["version"] for r in got} == {"1"}, got
    gust("undeploy", "dev", "--yes", cwd=d)


def test_the_stage_is_named_only_when_there_are_several(eng, gust, tmp_path):
    d = write_project(tmp_path / "two", {"app.py": SHOP.format(version="v1", broken="")},
                      {"dev": {"app_function": "app.app"}, "prod": {"extends": "dev"}})
    for command in (["deploy"], ["update"], ["status"], ["tail", "--no-follow"],
                    ["rollback"], ["undeploy", "--yes"], ["package"], ["schedule"]):
        out = gust(*command, cwd=d, check=False)
        assert out.returncode != 0, command
        assert "which stage? " in out.stderr and "has dev, prod" in out.stderr, \
            (command, out.stderr)


def test_import_check_names_the_network_fix(eng, gust, tmp_path):
    # A gust file: no network by default. The app resolves a name as it imports.
    app = "import socket\nsocket.getaddrinfo('api.example.com', 443)\napp = None\n"
    d = write_project(tmp_path / "net", {"app.py": app}, {"dev": {"app_function": "app.app"}},
                      kind="gust_settings.json")
    out = gust("deploy", cwd=d, check=False)
    assert out.returncode != 0
    assert "gaierror" in out.stderr and '"network": true' in out.stderr, out.stderr
    # Connection refused: 127.0.0.1 is the sandbox's own loopback.
    app = ("import socket\nsocket.create_connection(('127.0.0.1', %d), timeout=5)\napp = None\n"
           % eng.port)
    (d / "app.py").write_text(app)
    out = gust("deploy", cwd=d, check=False)
    assert out.returncode != 0
    assert "ConnectionRefusedError" in out.stderr and '"network": true' in out.stderr, out.stderr

    # A zappa file gives the stage the network, as Lambda does.
    z = write_project(tmp_path / "znet", {"app.py": SHOP.format(version="v1", broken="")},
                      {"dev": {"app_function": "app.app", "project_name": "znet",
                               "keep_warm": False}})
    gust("deploy", cwd=z)
    cfg = json.loads(eng.get("/2015-03-31/functions/znet-dev/configuration")[1])
    assert cfg["Network"] is True
    gust("undeploy", "--yes", cwd=z)


def test_status_counts_per_version(eng, gust, tmp_path):
    app = SHOP + '''
@app.route("/boom")
def boom():
    raise RuntimeError("boom")
'''
    d = write_project(tmp_path / "stat", {"app.py": app.format(version="v1", broken="")},
                      {"dev": {"app_function": "app.app", "project_name": "vstat"}},
                      kind="gust_settings.json")
    gust("deploy", cwd=d)
    assert requests.get(eng.url + "/web/vstat-dev/boom", timeout=30).status_code == 502
    assert requests.get(eng.url + "/web/vstat-dev/version", timeout=30).status_code == 200
    (d / "app.py").write_text(app.format(version="v2", broken=""))
    gust("update", cwd=d)
    assert requests.get(eng.url + "/web/vstat-dev/version", timeout=30).text == "v2"
    out = gust("status", cwd=d).stdout
    assert "2 invocations, 1 errors" in [ln for ln in out.splitlines()
                                         if ln.strip().startswith("version 1 ")][0], out
    v2 = [ln for ln in out.splitlines() if ln.strip().startswith("version 2 ")][0]
    assert "1 invocations, 0 errors" in v2 and "(live)" in v2, out
    gust("undeploy", "--yes", cwd=d)


def test_ls_hides_map_functions_and_a_map_error_names_its_item(eng, gust, tmp_path):
    # The function lives in a module of the client's; the sandbox has no copy of the file.
    mod = tmp_path / "mapmod"
    mod.mkdir()
    (mod / "scaled.py").write_text(
        "def inverse(x):\n    scale = 10\n    return scale / (x - 3)\n")
    script = tmp_path / "run_map.py"
    script.write_text(f'''
import sys, traceback
sys.path[:0] = [{str(mod)!r}, {os.path.join(REPO, "python")!r}]
import gust, scaled
ex = gust.FunctionExecutor(url={eng.url!r})
try:
    ex.get_result(ex.map(scaled.inverse, range(6)))
except ZeroDivisionError:
    traceback.print_exc()
''')
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=120)
    tb = out.stderr
    assert "ZeroDivisionError: division by zero" in tb, (out.stdout, tb)
    assert "gust: task 3 failed; its argument: 3" in tb, tb       # the failing item
    assert "    return scale / (x - 3)" in tb, tb                  # the remote source line
    local = tb.split("The above exception was the direct cause")[1]
    gust_frames = [ln for ln in local.splitlines()
                   if ln.startswith("  File ") and "/python/gust/" in ln]
    assert len(gust_frames) == 1, local                            # gust's frames once
    assert tb.count("gust: task 3 failed") == 1, tb

    listed = gust("ls", cwd=tmp_path).stdout
    assert "gust-map-" not in listed.split("(")[0], listed
    assert "internal map function" in listed and "gust ls --all" in listed, listed
    assert "gust-map-" in gust("ls", "--all", cwd=tmp_path).stdout
