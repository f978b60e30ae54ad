"""The HTTP gateway (issue 4): a real Flask app in real sandboxes behind a real
engine, driven by http.client, requests and curl.

Apps are created through the Lambda API as `gust deploy STAGE` creates them
(handler gust_runtime.stage.handler, the app in GUST_APP_FUNCTION); the CLI
itself is tested in test_web_cli.py."""
import base64
import concurrent.futures
import http.client
import json
import os
import subprocess
import time

import pytest
import requests

from gust_e2e import Engine

ECHO_APP = r'''
import base64, os, time
from flask import Flask, Response, jsonify, request, url_for

app = Flask(__name__)

@app.route("/echo/<path:rest>", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
def echo(rest):
    return jsonify(method=request.method, path=request.path, rest=rest,
                   script_root=request.script_root, query=request.query_string.decode(),
                   args=request.args.to_dict(flat=False),
                   multi=request.headers.getlist("X-Multi"),
                   agent=request.headers.get("User-Agent"), cookies=request.cookies,
                   body=base64.b64encode(request.get_data()).decode(),
                   link=url_for("echo", rest="x"), remote=request.remote_addr)

@app.route("/respond")
def respond():
    body = bytes(range(256)) * int(request.args.get("times", "1"))
    resp = Response(body, status=int(request.args.get("status", "200")),
                    mimetype="application/octet-stream")
    resp.headers.add("X-Multi", "a")
    resp.headers.add("X-Multi", "b")
    resp.set_cookie("c1", "v1")
    resp.set_cookie("c2", "v2")
    return resp

@app.route("/reverse", methods=["POST"])
def reverse():
    return Response(request.get_data()[::-1], mimetype="application/octet-stream")

@app.route("/boom")
def boom():
    raise ValueError("kaboom " + request.args.get("tag", ""))

@app.route("/sleep")
def sleep():
    time.sleep(float(request.args["s"]))
    return "slept"

@app.route("/crash")
def crash():
    os._exit(3)

def count():
    print("counting in", os.environ["GUST_STAGE"])
    return {"n": 3}

def with_event(event):
    return sorted(event)

def tick(event, context):
    return {"tick": event["time"], "fn": context.function_name}
'''


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    eng = Engine(tmp_path_factory.mktemp("gust-web"),
                 extra_args=["--keep-alive", "60s", "--preload", "flask"])
    eng.start()
    yield eng
    eng.stop()


def deploy_app(engine, name, source=ECHO_APP, env=None, **config):
    variables = {"GUST_APP_FUNCTION": "app.app", "GUST_STAGE": "test"}
    variables.update(env or {})
    config.setdefault("Timeout", 10)
    return engine.create(name, {"app.py": source}, handler="gust_runtime.stage.handler",
                         Environment={"Variables": variables}, **config)


@pytest.fixture(scope="module")
def echo(web):
    deploy_app(web, "echo-dev")
    return "echo-dev"


def request(engine, method, path, body=None, headers=()):
    """http.client with repeatable headers: a list of (name, value) pairs."""
    conn = http.client.HTTPConnection("127.0.0.1", engine.port, timeout=60)
    conn.putrequest(method, path)
    for name, value in headers:
        conn.putheader(name, value)
    if body is not None:
        conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body)
    resp = conn.getresponse()
    data = resp.read()
    result = resp.status, resp.getheaders(), data
    conn.close()
    return result


def log_text(engine, name):
    time.sleep(0.3)  # the log writer batches every 200 ms
    return json.loads(engine.get(f"/v1/functions/{name}/logs")[1])["text"]


def test_request_round_trips(web, echo):
    body = bytes(range(256)) + b"\x00\xff tail"
    status, headers, data = request(
        web, "POST", f"/web/{echo}/echo/a%20b/c?x=1&x=2&name=J%C3%B6rg&flag",
        body=body, headers=[("X-Multi", "one"), ("X-Multi", "two"), ("User-Agent", "t/1"),
                            ("Cookie", "sid=abc; theme=dark"),
                            ("Content-Type", "application/octet-stream")])
    assert status == 200, data
    seen = json.loads(data)
    assert seen["method"] == "POST"
    assert seen["rest"] == "a b/c"  # the path arrives decoded
    assert seen["path"] == "/echo/a b/c"
    assert seen["script_root"] == f"/web/{echo}"
    assert seen["link"] == f"/web/{echo}/echo/x"  # url_for builds links under SCRIPT_NAME
    assert seen["query"] == "x=1&x=2&name=J%C3%B6rg&flag"
    assert seen["args"] == {"x": ["1", "2"], "name": ["Jörg"], "flag": [""]}
    assert seen["multi"] == ["one, two"]  # repeated headers joined, as WSGI servers do
    assert seen["agent"] == "t/1"
    assert seen["cookies"] == {"sid": "abc", "theme": "dark"}
    assert base64.b64decode(seen["body"]) == body
    assert seen["remote"] == "127.0.0.1"
    for method in ("PUT", "DELETE", "PATCH", "GET"):
        status, _, data = request(web, method, f"/web/{echo}/echo/m")
        assert status == 200 and json.loads(data)["method"] == method


def test_response_round_trips(web, echo):
    r = requests.get(f"{web.url}/web/{echo}/respond?status=201&times=3")
    assert r.status_code == 201
    assert r.content == bytes(range(256)) * 3  # binary, byte for byte
    assert r.headers["Content-Type"] == "application/octet-stream"
    assert r.cookies.get("c1") == "v1" and r.cookies.get("c2") == "v2"
    status, headers, _ = request(web, "GET", f"/web/{echo}/respond")
    assert [v for k, v in headers if k == "X-Multi"] == ["a", "b"]  # multi-value headers
    assert len([v for k, v in headers if k == "Set-Cookie"]) == 2
    assert any(k == "X-Gust-Request-Id" for k, v in headers)
    # curl, as the article uses it
    out = subprocess.run(["curl", "-s", "-i", f"{web.url}/web/{echo}/respond?status=418"],
                         capture_output=True, check=True)
    head = out.stdout.split(b"\r\n\r\n", 1)[0].decode()
    assert head.startswith("HTTP/1.1 418")
    assert "Set-Cookie: c1=v1" in head and "X-Multi: b" in head


def test_host_routing_puts_the_app_at_the_root(web, echo):
    out = subprocess.run(["curl", "-s", "-H", f"Host: {echo}.localhost:{web.port}",
                          f"http://127.0.0.1:{web.port}/echo/q?z=9"],
                         capture_output=True, check=True, text=True)
    seen = json.loads(out.stdout)
    assert seen["script_root"] == ""
    assert seen["link"] == "/echo/x"
    assert seen["args"] == {"z": ["9"]}
    # The engine's own API is untouched by the gateway.
    assert web.get("/v1/health")[0] == 200


def test_large_bodies_up_to_the_limit(web, echo):
    big = bytes(range(256)) * (5 * 1024 * 4)  # 5 MiB of every byte value
    r = requests.post(f"{web.url}/web/{echo}/reverse", data=big)
    assert r.status_code == 200 and r.content == big[::-1]
    r = requests.get(f"{web.url}/web/{echo}/respond?times=20000")  # 5.1 MB response
    assert r.status_code == 200 and len(r.content) == 256 * 20000
    too_big = b"x" * (6 * 1024 * 1024 + 1)
    r = requests.post(f"{web.url}/web/{echo}/reverse", data=too_big)
    assert r.status_code == 413
    assert "6291457 bytes" in r.json()["message"] and "6291456" in r.json()["message"]


def test_app_exception_is_502_with_traceback_in_the_log(web, echo):
    r = requests.get(f"{web.url}/web/{echo}/boom?tag=t42")
    assert r.status_code == 502
    doc = r.json()
    assert doc["errorType"] == "ValueError"
    assert "kaboom t42" in doc["message"]
    assert "Traceback" not in doc["message"]  # tracebacks go to the log, not to clients
    log = log_text(web, echo)
    assert "[ERROR] ValueError: kaboom t42" in log
    assert 'File "/var/task/app.py"' in log and 'raise ValueError("kaboom "' in log
    assert f'[HTTP] 127.0.0.1 "GET /web/{echo}/boom?tag=t42 HTTP/1.1" 502' in log
    # The app keeps serving.
    assert requests.get(f"{web.url}/web/{echo}/echo/ok").status_code == 200


def test_unknown_app_is_404_naming_it(web):
    r = requests.get(f"{web.url}/web/no-such-app/x")
    assert r.status_code == 404
    assert "'no-such-app'" in r.json()["message"]
    r = requests.get(f"{web.url}/x", headers={"Host": f"ghost.localhost:{web.port}"})
    assert r.status_code == 404 and "'ghost'" in r.json()["message"]
    time.sleep(0.3)
    logs = os.listdir(os.path.join(web.state_dir, "logs"))
    assert not any(n.startswith(("no-such-app", "ghost")) for n in logs)  # scans leave no files


def test_reserved_concurrency_queues_instead_of_429(web):
    deploy_app(web, "one-dev")
    status, _, data = web.request("PUT", "/2017-10-31/functions/one-dev/concurrency",
                                  {"ReservedConcurrentExecutions": 1})
    assert status == 200, data
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(
            lambda i: requests.get(f"{web.url}/web/one-dev/sleep?s=0.3", timeout=30), range(4)))
    assert [r.status_code for r in answers] == [200] * 4  # one at a time, none refused
    # With no concurrency at all, nothing can run: 429 without waiting.
    web.request("PUT", "/2017-10-31/functions/one-dev/concurrency",
                {"ReservedConcurrentExecutions": 0})
    t0 = time.time()
    r = requests.get(f"{web.url}/web/one-dev/sleep?s=0", timeout=30)
    assert r.status_code == 429 and r.headers["Retry-After"] == "1"
    assert time.time() - t0 < 5


def test_timeout_is_504_and_does_not_block_others(web):
    deploy_app(web, "slow-dev", Timeout=1)
    # More hanging requests than the gateway runs at once per app before
    # queueing (the core count): new sandboxes take the other requests.
    hanging = (os.cpu_count() or 2) + 1
    with concurrent.futures.ThreadPoolExecutor(hanging + 2) as pool:
        slow = [pool.submit(requests.get, f"{web.url}/web/slow-dev/sleep?s=5", timeout=30)
                for _ in range(hanging)]
        crash = pool.submit(requests.get, f"{web.url}/web/slow-dev/crash", timeout=30)
        time.sleep(0.2)
        # While some requests hang and another kills its sandbox, others are served.
        for _ in range(10):
            t0 = time.time()
            r = requests.get(f"{web.url}/web/slow-dev/sleep?s=0", timeout=30)
            assert r.status_code == 200 and r.text == "slept"
            assert time.time() - t0 < 0.9  # well inside the 1 s the slow one takes
        for r in (f.result() for f in slow):
            assert r.status_code == 504
            assert r.json()["errorType"] == "Sandbox.Timedout"
        c = crash.result()
        assert c.status_code == 502 and c.json()["errorType"] == "Runtime.ExitError"
    assert "Task timed out after 1.00 seconds" in log_text(web, "slow-dev")


def test_concurrent_requests_all_served(web, echo):
    with concurrent.futures.ThreadPoolExecutor(24) as pool:
        results = list(pool.map(
            lambda i: requests.get(f"{web.url}/web/{echo}/echo/c{i}").json()["rest"], range(96)))
    assert results == [f"c{i}" for i in range(96)]


PLAIN_HANDLER = r'''
import base64, json

def handler(event, context):
    path = event["rawPath"]
    if path == "/bare":
        return "just a string"
    if path == "/dict":
        return {"no": "statusCode"}
    return {"statusCode": 201,
            "headers": {"Content-Type": "application/json", "X-Seen": event["routeKey"]},
            "cookies": ["a=1", "b=2"],
            "body": base64.b64encode(json.dumps(event).encode()).decode(),
            "isBase64Encoded": True}
'''


def check_v2_event(event, app):
    assert event["version"] == "2.0" and event["routeKey"] == "$default"
    assert event["rawPath"] == "/items/7"
    assert event["rawQueryString"] == "q=1&q=2"
    assert event["queryStringParameters"] == {"q": "1,2"}
    assert event["cookies"] == ["s=1", "t=2"]
    assert event["headers"]["x-custom"] == "yes"
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["requestContext"]["http"]["sourceIp"] == "127.0.0.1"
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\xff\x00binary"


def test_plain_function_gets_api_gateway_v2_events(web):
    web.create("plain-fn", {"app.py": PLAIN_HANDLER}, handler="app.handler")
    r = requests.post(f"{web.url}/web/plain-fn/items/7?q=1&q=2", data=b"\xff\x00binary",
                      headers={"X-Custom": "yes", "Cookie": "s=1; t=2"})
    assert r.status_code == 201
    assert r.headers["X-Seen"] == "$default"
    assert r.cookies.get("a") == "1" and r.cookies.get("b") == "2"
    check_v2_event(r.json(), "plain-fn")
    r = requests.get(f"{web.url}/web/plain-fn/bare")
    assert r.status_code == 200 and r.text == "just a string"
    r = requests.get(f"{web.url}/web/plain-fn/dict")
    assert r.status_code == 200 and r.json() == {"no": "statusCode"}


def test_stage_with_lambda_handler_gets_v2_events(web):
    web.create("plainstage-dev", {"app.py": PLAIN_HANDLER}, handler="gust_runtime.stage.handler",
               Environment={"Variables": {"GUST_LAMBDA_HANDLER": "app.handler"}})
    r = requests.post(f"{web.url}/web/plainstage-dev/items/7?q=1&q=2", data=b"\xff\x00binary",
                      headers={"X-Custom": "yes", "Cookie": "s=1; t=2"})
    assert r.status_code == 201
    check_v2_event(r.json(), "plainstage-dev")


def invoke(engine, name, event):
    status, headers, data = engine.invoke(name, event)
    assert status == 200
    return headers.get("x-amz-function-error"), json.loads(data)


def test_stage_handler_dispatches_by_event_shape(web, echo):
    # Zappa's `invoke`: {"command": "mod.fn"}, fn() or fn(event).
    assert invoke(web, echo, {"command": "app.count"}) == (None, {"n": 3})
    assert invoke(web, echo, {"command": "app.with_event"}) == (None, ["command"])
    err, doc = invoke(web, echo, {"command": "app.nothing"})
    assert err == "Unhandled" and doc["errorType"] == "Runtime.HandlerNotFound"
    # A schedule's event (issue 5 sends these) calls mod.fn(event, context).
    scheduled = {"detail-type": "Scheduled Event", "source": "aws.events",
                 "time": "2026-11-30T12:00:00Z", "gust_function": "app.tick"}
    assert invoke(web, echo, scheduled) == (None, {"tick": "2026-11-30T12:00:00Z", "fn": echo})
    keep_warm = {"detail-type": "Scheduled Event", "source": "aws.events"}
    assert invoke(web, echo, keep_warm) == (None, {"warm": True})
    # An API Gateway proxy event sent through the Lambda API reaches the WSGI app.
    v2 = {"version": "2.0", "routeKey": "$default", "rawPath": "/echo/v2", "rawQueryString": "k=v",
          "headers": {"host": "example.com"}, "cookies": ["a=b"],
          "requestContext": {"http": {"method": "PUT", "sourceIp": "10.1.2.3"},
                             "stage": "$default"},
          "body": "aGk=", "isBase64Encoded": True}
    err, out = invoke(web, echo, v2)
    assert err is None and out["statusCode"] == 200 and out["isBase64Encoded"] is False
    seen = json.loads(out["body"])
    assert (seen["method"], seen["rest"], seen["args"], seen["cookies"], seen["remote"]) == (
        "PUT", "v2", {"k": ["v"]}, {"a": "b"}, "10.1.2.3")
    assert base64.b64decode(seen["body"]) == b"hi"
    v1 = {"httpMethod": "GET", "path": "/respond", "queryStringParameters": {"status": "202"},
          "headers": {"Host": "example.com"}, "body": None, "isBase64Encoded": False}
    err, out = invoke(web, echo, v1)
    assert out["statusCode"] == 202 and out["multiValueHeaders"]["X-Multi"] == ["a", "b"]
    assert base64.b64decode(out["body"]) == bytes(range(256))
    # Anything else has nowhere to go on a WSGI stage.
    err, doc = invoke(web, echo, {"hello": 1})
    assert err == "Unhandled" and "does not handle" in doc["errorMessage"]


def test_app_scales_from_zero_and_back(web):
    deploy_app(web, "zero-dev", KeepAliveSeconds=1)

    def sandboxes():
        return [s for s in json.loads(web.get("/v1/sandboxes")[1])["sandboxes"]
                if s["function"] == "zero-dev"]

    def last_record():
        records = json.loads(web.get("/v1/invocations?function=zero-dev&limit=1")[1])
        return records["invocations"][0]

    assert sandboxes() == []
    assert requests.get(f"{web.url}/web/zero-dev/echo/one").status_code == 200
    assert last_record()["cold"] is True
    assert requests.get(f"{web.url}/web/zero-dev/echo/two").status_code == 200
    assert last_record()["cold"] is False
    deadline = time.time() + 10
    while sandboxes() and time.time() < deadline:
        time.sleep(0.2)
    assert sandboxes() == []  # idle past its keep-alive: scaled to zero
    assert requests.get(f"{web.url}/web/zero-dev/echo/three").status_code == 200
    assert last_record()["cold"] is True
