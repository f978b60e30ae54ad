"""Schedules: the /v1 API, EventBridge Scheduled Events, keep-warm without the
handler, `gust schedule/unschedule/schedules` from gust_settings.json, and the
one catch-up tick after downtime — against a real engine."""
import calendar
import json
import subprocess
import time

import pytest

from gust_e2e import GUST, Engine

RECORDER = ("import json, time\n"
            "def handler(event, context):\n"
            "    print('FIRED', json.dumps({'event': event, 'now': time.time()}))\n"
            "    return 'ok'\n")
NEVER_CALL = ("print('init ran')\n"
              "def handler(event, context):\n"
              "    raise RuntimeError('keep-warm must not call the handler')\n")


def fired(engine, name, at_least, timeout=15):
    """The events the function printed, once at least `at_least` arrived."""
    deadline = time.time() + timeout
    found = []
    while time.time() < deadline:
        text = json.loads(engine.get(f"/v1/functions/{name}/logs")[1])["text"]
        found = [json.loads(line.split("FIRED ", 1)[1]) for line in text.splitlines()
                 if "FIRED " in line]
        if len(found) >= at_least:
            return found
        time.sleep(0.1)
    raise AssertionError(f"{name}: {len(found)} fires, wanted {at_least}")


def put(engine, name, body):
    status, headers, data = engine.request("PUT", f"/v1/schedules/{name}", body)
    return status, headers, json.loads(data) if data else None


def gust(engine, *args, cwd=None, check=True):
    out = subprocess.run([GUST, "--url", engine.url, *args], capture_output=True, text=True,
                         timeout=60, cwd=cwd)
    if check:
        assert out.returncode == 0, (out.returncode, out.stdout, out.stderr)
    return out


def test_rate_schedule_sends_scheduled_events_on_time(engine, fname):
    engine.create(fname, {"app.py": RECORDER})
    status, _, doc = put(engine, fname, {"function": fname, "expression": "rate(1 second)",
                                         "payload": {"gust_function": "jobs.tick",
                                                     "source": "not-overridden"}})
    assert status == 201, doc
    assert doc["next_fire_ms"] % 1000 == 0 and doc["kind"] == "invoke"
    events = fired(engine, fname, 3)
    engine.request("DELETE", f"/v1/schedules/{fname}")
    e = events[0]["event"]
    assert e["detail-type"] == "Scheduled Event" and e["source"] == "aws.events"
    assert e["resources"] == [f"arn:aws:events:us-east-1:000000000000:rule/{fname}"]
    assert e["version"] == "0" and e["detail"] == {} and e["account"] == "000000000000"
    assert e["gust_function"] == "jobs.tick"
    ticks = [calendar.timegm(time.strptime(x["event"]["time"], "%Y-%m-%dT%H:%M:%SZ"))
             for x in events]
    assert all(b - a == 1 for a, b in zip(ticks, ticks[1:])), ticks
    # Late by at most a generous bound here (a shared test machine); bench/events measures p50/p99.
    delays = [x["now"] - t for x, t in zip(events, ticks)]
    assert all(0 <= d < 1.0 for d in delays), delays
    listed = json.loads(engine.get(f"/v1/invocations?function={fname}")[1])["invocations"]
    assert listed and all(r["outcome"] == "Success" for r in listed)


def test_keep_warm_keeps_a_sandbox_without_calling_the_handler(engine, fname):
    engine.create(fname, {"app.py": NEVER_CALL})
    status, _, doc = put(engine, fname, {"function": fname, "expression": "rate(1 second)",
                                         "kind": "keep_warm"})
    assert status == 201, doc
    deadline = time.time() + 15
    while time.time() < deadline:
        doc = json.loads(engine.get(f"/v1/schedules/{fname}")[1])
        if doc["last_fire_ms"]:
            break
        time.sleep(0.1)
    sandboxes = [s for s in json.loads(engine.get("/v1/sandboxes")[1])["sandboxes"]
                 if s["function"] == fname]
    time.sleep(1.2)  # another tick reuses the same sandbox
    again = [s for s in json.loads(engine.get("/v1/sandboxes")[1])["sandboxes"]
             if s["function"] == fname]
    engine.request("DELETE", f"/v1/schedules/{fname}")
    assert doc["last_error"] == "" and len(sandboxes) == 1 and sandboxes[0]["state"] == "idle"
    assert [s["id"] for s in again] == [sandboxes[0]["id"]]
    assert json.loads(engine.get(f"/v1/invocations?function={fname}")[1])["invocations"] == []


@pytest.mark.parametrize("body,status,needle", [
    ({"function": "F", "expression": "rate(5 minute)"}, 400,
     'invalid schedule expression "rate(5 minute)": position 8: a value above 1 takes the plural'),
    ({"function": "F", "expression": "cron(0 25 * * ? *)"}, 400,
     "position 8: hour 25 is out of range 0-23"),
    ({"function": "F", "expression": "cron(0 12 * * * *)"}, 400,
     "position 15: one of day-of-month and day-of-week must be '?'"),
    ({"function": "F", "expression": "every day"}, 400, "position 1: expected rate(...) or cron"),
    ({"function": "no-such-function", "expression": "rate(1 hour)"}, 404, "Function not found"),
    ({"function": "F", "qualifier": "7", "expression": "rate(1 hour)"}, 404, "Function not found"),
    ({"function": "F", "expression": "rate(1 hour)", "kind": "ping"}, 400,
     "kind 'ping' is not one of invoke, keep_warm"),
    ({"function": "F", "expression": "rate(1 hour)", "payload": [1]}, 400,
     "'payload' must be a JSON object"),
    ({"function": "F"}, 400, "'expression' is required"),
    ({"function": "F", "expression": "cron(0 9 * * ? *)", "timezone": "Mars/Base"}, 400,
     "unknown time zone 'Mars/Base'"),
    ({"expression": "rate(1 hour)"}, 400, "'function' is required"),
    ({"function": "F", "expression": "rate(1 hour)", "enabled": "yes"}, 400,
     "field 'enabled' must be"),
])
def test_bad_schedules_are_refused_and_nothing_changes(engine, fname, body, status, needle):
    engine.create(fname, {"app.py": RECORDER})
    body = {k: (fname if v == "F" else v) for k, v in body.items()}
    got, _, doc = put(engine, fname, body)
    assert got == status and needle in doc["Message"], doc
    assert engine.get(f"/v1/schedules/{fname}")[0] == 404


def test_cron_in_a_time_zone(engine, fname):
    engine.create(fname, {"app.py": RECORDER})
    status, _, doc = put(engine, fname, {"function": fname, "expression": "cron(30 0 * * ? *)",
                                         "timezone": "Asia/Kolkata"})
    engine.request("DELETE", f"/v1/schedules/{fname}")
    assert status == 201, doc
    # 00:30 in Kolkata (UTC+5:30, no daylight saving) is 19:00 UTC the day before.
    assert doc["timezone"] == "Asia/Kolkata" and doc["next_fire"].endswith("T19:00:00.000Z")


def test_bad_schedule_names_and_deletes(engine, fname):
    engine.create(fname, {"app.py": RECORDER})
    got, _, doc = put(engine, "bad%20name", {"function": fname, "expression": "rate(1 hour)"})
    assert got == 400 and "name" in doc["Message"]
    assert engine.request("DELETE", "/v1/schedules/nothing-here")[0] == 404
    status, _, data = engine.request("DELETE", "/v1/schedules")
    assert status == 400 and b"group" in data


SETTINGS = {
    "dev": {"app_function": "app.app", "project_name": "shop", "keep_warm": True,
            "keep_warm_expression": "rate(4 minutes)",
            "events": [{"function": "jobs.nightly", "expression": "cron(0 3 * * ? *)"},
                       {"function": "jobs.hourly", "expression": "rate(1 hour)",
                        "name": "shop-hourly", "enabled": False}]},
}


def test_gust_schedule_stage_from_settings(engine, tmp_path):
    engine.create("shop-dev", {"app.py": RECORDER})
    (tmp_path / "gust_settings.json").write_text(json.dumps(SETTINGS))
    out = gust(engine, "schedule", "dev", "--project", str(tmp_path))
    assert "scheduled 3 for dev (group shop-dev)" in out.stdout, out.stdout
    listed = gust(engine, "schedules", "--group", "shop-dev").stdout
    for name in ("shop-dev-keep-warm", "shop-dev-jobs.nightly", "shop-hourly"):
        assert name in listed, listed
    assert "keep_warm" in listed and "cron(0 3 * * ? *)" in listed
    docs = {s["name"]: s for s in
            json.loads(engine.get("/v1/schedules?group=shop-dev")[1])["schedules"]}
    assert docs["shop-dev-jobs.nightly"]["next_fire"].endswith("T03:00:00.000Z")
    assert docs["shop-dev-jobs.nightly"]["payload"] == {"gust_function": "jobs.nightly"}
    assert docs["shop-hourly"]["enabled"] is False and docs["shop-hourly"]["next_fire"] is None

    # Re-applying changed settings replaces the group whole.
    SETTINGS_2 = {"dev": dict(SETTINGS["dev"], keep_warm=False,
                              events=[SETTINGS["dev"]["events"][0]])}
    (tmp_path / "gust_settings.json").write_text(json.dumps(SETTINGS_2))
    gust(engine, "schedule", "dev", "--project", str(tmp_path))
    names = [s["name"] for s in json.loads(engine.get("/v1/schedules?group=shop-dev")[1])
             ["schedules"]]
    assert names == ["shop-dev-jobs.nightly"]

    # An invalid expression is refused with its position, and nothing changes.
    bad = {"dev": dict(SETTINGS["dev"], events=[{"function": "jobs.x",
                                                 "expression": "cron(0 3 * *)"}])}
    (tmp_path / "gust_settings.json").write_text(json.dumps(bad))
    out = gust(engine, "schedule", "dev", "--project", str(tmp_path), check=False)
    assert out.returncode == 2 and "cron takes 6 fields" in out.stderr and "position" in out.stderr
    names = [s["name"] for s in json.loads(engine.get("/v1/schedules?group=shop-dev")[1])
             ["schedules"]]
    assert names == ["shop-dev-jobs.nightly"]

    out = gust(engine, "unschedule", "dev", "--project", str(tmp_path))
    assert "removed 1 schedule(s)" in out.stdout
    assert json.loads(engine.get("/v1/schedules?group=shop-dev")[1])["schedules"] == []
    missing = gust(engine, "schedule", "prod", "--project", str(tmp_path), check=False)
    assert missing.returncode == 2 and "prod" in missing.stderr


def test_schedules_survive_a_restart_and_catch_up_once(tmp_path):
    eng = Engine(tmp_path / "state").start()
    try:
        eng.create("ticker", {"app.py": RECORDER})
        status, _, doc = put(eng, "ticker", {"function": "ticker", "expression": "rate(1 second)",
                                             "group": "g1"})
        assert status == 201, doc
        fired(eng, "ticker", 2)
        eng.stop()
        down_from = time.time()
        time.sleep(4)  # about four ticks pass while the engine is down
        down_to = time.time()
        eng.start()
        stored = json.loads(eng.get("/v1/schedules/ticker")[1])
        assert stored["group"] == "g1" and stored["created_ms"] == doc["created_ms"]
        assert stored["last_fire_ms"] is not None
        events = fired(eng, "ticker", 5)
        eng.request("DELETE", "/v1/schedules/ticker")
        assert "schedule ticker: catching up the tick" in eng.log()
    finally:
        eng.stop()
    ticks = sorted(calendar.timegm(time.strptime(x["event"]["time"], "%Y-%m-%dT%H:%M:%SZ"))
                   for x in events)
    missed = [t for t in ticks if down_from + 1 < t < down_to - 1]
    assert len(missed) <= 1, (missed, down_from, down_to)  # one catch-up at most, no burst
    assert len(ticks) == len(set(ticks))  # no tick ran twice
