#!/usr/bin/python3
"""Writes the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/).

Binary seeds are made with the code that writes those bytes in production:
the client's job framing (python/gust/wire.py), the runtime's frames
(runtimes/python/gust_runtime/protocol.py) and the map worker's answer layout
(map_worker.py's structs), and zips with zipfile as `zip` makes them. Text
seeds are realistic bodies as boto3, the aws CLI, curl and the gust client
send them. Idempotent: rerun after editing; commit the result.
"""
import base64
import io
import json
import os
import pickle
import sys
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path[:0] = [os.path.join(ROOT, "python"), os.path.join(ROOT, "runtimes", "python")]
from gust import wire  # noqa: E402 -- sys.path set above
from gust_runtime import protocol  # noqa: E402 -- sys.path set above
from gust_runtime.map_worker import ANSWER_HEAD, ENTRY_HEAD  # noqa: E402 -- sys.path set above

CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus")
DICT = os.path.join(ROOT, "tests", "fuzz", "dict")

# JSON-reading targets: the member names each one reads. Their dictionaries
# get every name with a value of every JSON type (',"memory":"x"' ...), so the
# fuzzer tries each field with each wrong type: the usual way a parser of
# untrusted JSON crashes (nlohmann's value()/get<T>() throw on a mismatch).
JSON_KEYS = {
    "lambda_body": ["FunctionName", "Runtime", "Handler", "Role", "Description", "MemorySize",
                    "Timeout", "EphemeralStorage", "Size", "Environment", "Variables", "Network",
                    "KeepAliveSeconds", "PackageType", "Publish", "DryRun", "RevisionId", "ZipFile",
                    "Code", "Name", "FunctionVersion", "ReservedConcurrentExecutions"],
    "jobs": ["code", "python", "executable", "prefix", "base_prefix", "version", "memory", "timeout", "retries", "chunksize", "concurrency", "ttl_s",
             "straggler_factor", "network", "tasks"],
    "events_body": ["MaximumRetryAttempts", "MaximumEventAgeInSeconds", "DestinationConfig",
                    "OnSuccess", "OnFailure", "Destination", "request_ids"],
    "schedules_body": ["function", "qualifier", "expression", "timezone", "enabled", "kind", "group",
                       "payload", "schedules", "name"],
    "settings": ["extends", "app_function", "lambda_handler", "memory_size", "timeout_seconds",
                 "concurrency", "keep_alive", "network", "runtime", "environment_variables",
                 "aws_environment_variables", "keep_warm", "keep_warm_expression", "events",
                 "function", "expression", "name", "enabled", "exclude", "venv", "project_name"],
    "web_response": ["statusCode", "headers", "multiValueHeaders", "cookies", "body",
                     "isBase64Encoded"],
}
JSON_VALUES = ['1', '-1', '1.5', '"x"', '""', 'true', 'false', 'null', '[]', '[1]', '{}',
               '18446744073709551615']


def dict_escape(text):
    out = ""
    for ch in text.encode():
        out += "\\\\" if ch == 0x5C else '\\"' if ch == 0x22 else chr(ch) if 32 <= ch < 127 else "\\x%02x" % ch
    return '"' + out + '"'


def json_dicts():
    for target, keys in JSON_KEYS.items():
        path = os.path.join(DICT, target + ".dict")
        with open(path) as f:
            lines = [line for line in f.read().splitlines() if line and not line.startswith("#")]
        generated = [dict_escape(',"%s":%s' % (k, v)) for k in keys for v in JSON_VALUES]
        lines = [line for line in lines if line not in generated]
        with open(path, "w") as f:
            f.write("# hand-written tokens, then every member with a value of each JSON type\n")
            f.write("\n".join(lines + generated) + "\n")


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def http(method, target, headers, body=b""):
    head = "%s %s HTTP/1.1\r\n" % (method, target)
    for k, v in headers:
        head += "%s: %s\r\n" % (k, v)
    if body:
        head += "Content-Length: %d\r\n" % len(body)
    return head.encode() + b"\r\n" + body


def zip_bytes(entries):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data, mode in entries:
            info = zipfile.ZipInfo(name, date_time=(2025, 1, 1, 0, 0, 0))
            info.external_attr = mode << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    return buf.getvalue()


SIGV4 = ("AWS4-HMAC-SHA256 Credential=test/20251124/us-east-1/lambda/aws4_request, "
         "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64)
APP_ZIP = zip_bytes([("app.py", b"def handler(event, context):\n    return {'ok': True}\n", 0o100644)])
CREATE = {"FunctionName": "hello", "Runtime": "python3.11", "Role": "arn:aws:iam::000000000000:role/x",
          "Handler": "app.handler", "Code": {"ZipFile": base64.b64encode(APP_ZIP).decode()},
          "Timeout": 30, "MemorySize": 256, "Environment": {"Variables": {"STAGE": "dev"}},
          "EphemeralStorage": {"Size": 512}, "Publish": True, "Description": "hello"}


def http_requests():
    common = [("Host", "127.0.0.1:7700"), ("User-Agent", "Boto3/1.26.27 md/Botocore#1.29.27"),
              ("X-Amz-Date", "20251124T101500Z"), ("Authorization", SIGV4)]
    write("http_request", "invoke", http("POST", "/2015-03-31/functions/hello/invocations",
                                         common + [("X-Amz-Invocation-Type", "RequestResponse"),
                                                   ("X-Amz-Log-Type", "Tail")], b'{"x": 1}'))
    write("http_request", "invoke_arn_qualifier",
          http("POST", "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Ahello/"
               "invocations?Qualifier=live", common, b"{}"))
    write("http_request", "create_function", http("POST", "/2015-03-31/functions", common,
                                                  json.dumps(CREATE).encode()))
    write("http_request", "list_functions", http("GET", "/2015-03-31/functions/?MaxItems=50&Marker=abc",
                                                 common))
    write("http_request", "alias", http("GET", "/2015-03-31/functions/hello/aliases/live", common))
    write("http_request", "schedule_group_chunked",
          b"PUT /v1/schedule-groups/g1 HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n"
          b"Content-Type: application/json\r\n\r\n"
          b"10\r\n{\"schedules\": []\r\n1\r\n}\r\n0\r\n\r\n")
    write("http_request", "results_query", http("GET", "/v1/jobs/j-123/results?after=10&wait=20&linger=0.05",
                                                [("Host", "localhost"), ("Connection", "keep-alive")]))
    write("http_request", "code_rest", http("GET", "/v1/code/a/b%2Fc/d.py?x=a+b&x=%zz", [("Host", "h")]))
    write("http_request", "expect_continue", http("PUT", "/v1/blobs/" + "a" * 64,
                                                  [("Host", "h"), ("Expect", "100-continue")], APP_ZIP))
    write("http_request", "http10_head", b"HEAD /v1/health HTTP/1.0\r\n\r\n")


def lambda_bodies():
    write("lambda_body", "create_function", json.dumps(CREATE))
    write("lambda_body", "update_configuration", json.dumps(
        {"Handler": "app.other", "Timeout": 900, "MemorySize": 10240, "KeepAliveSeconds": 60,
         "Network": True, "Environment": {"Variables": {"A": "1", "B": ""}}, "RevisionId": "r-1"}))
    write("lambda_body", "update_code", json.dumps({"ZipFile": base64.b64encode(APP_ZIP).decode(),
                                                    "Publish": False, "DryRun": True}))
    write("lambda_body", "alias", json.dumps({"Name": "live", "FunctionVersion": "3",
                                              "Description": "prod"}))
    write("lambda_body", "concurrency", json.dumps({"ReservedConcurrentExecutions": 10}))
    write("lambda_body", "function_arn", "arn:aws:lambda:us-east-1:000000000000:function:hello:live")
    write("lambda_body", "partial_arn", "000000000000:function:hello")
    write("lambda_body", "client_context", base64.b64encode(json.dumps({"custom": {"a": 1}}).encode()))


def job_bodies():
    env = {"executable": "/usr/bin/python3", "prefix": "/usr", "base_prefix": "/usr",
           "version": "3.11.2"}
    header = {"code": "0" * 64, "python": env, "memory": 512, "timeout": 60, "retries": 1,
              "chunksize": 4, "concurrency": 8, "straggler_factor": 2.0, "network": False,
              "ttl_s": 600}
    tasks = [pickle.dumps((i, "x" * i), 5) for i in range(3)]
    write("jobs", "submit", b"".join(wire.iter_submit_body(header, tasks)))
    write("jobs", "submit_minimal", b"".join(wire.iter_submit_body({"code": "a" * 64, "python": dict(env, executable="/v/bin/python", prefix="/v")},
                                                                   [b"\x80\x05K\x01."])))
    write("jobs", "cancel_some", json.dumps({"tasks": [0, 5, 17]}))
    write("jobs", "cancel_all", b"")


def events_bodies():
    write("events_body", "config", json.dumps(
        {"MaximumRetryAttempts": 1, "MaximumEventAgeInSeconds": 3600,
         "DestinationConfig": {"OnSuccess": {},
                               "OnFailure": {"Destination":
                                             "arn:aws:lambda:us-east-1:000000000000:function:dlq"}}}))
    write("events_body", "redrive", json.dumps({"request_ids": ["a1b2", "c3d4"]}))
    write("events_body", "empty", b"")


def schedules_bodies():
    write("schedules_body", "schedule", json.dumps(
        {"function": "hello", "qualifier": "live", "expression": "cron(0 12 ? * MON-FRI *)",
         "timezone": "Europe/Berlin", "enabled": True, "kind": "invoke", "payload": {"a": [1, 2]}}))
    write("schedules_body", "keep_warm", json.dumps(
        {"function": "hello", "expression": "rate(4 minutes)", "kind": "keep_warm", "group": "stage-dev"}))
    write("schedules_body", "group", json.dumps({"schedules": [
        {"name": "a", "function": "f", "expression": "rate(1 minute)"},
        {"name": "b", "function": "f", "expression": "cron(0/15 * * * ? *)", "timezone": "UTC"}]}))


def expressions():
    for i, e in enumerate(["rate(5 minutes)", "rate(1 hour)", "rate(30 seconds)", "rate(7 days)",
                           "cron(0 12 * * ? *)", "cron(0 18 ? * MON-FRI *)", "cron(15 10 ? * 6L 2022-2030)",
                           "cron(0 0 LW * ? *)", "cron(0 8 ? * 2#1 *)", "cron(0/15 * 1W * ? *)",
                           "cron(0 0 L-3 JAN,JUL ? *)", "cron(5,35 14 ? * FRI-MON *)",
                           "cron(0 2 29 2 ? *)"]):
        write("schedule_expression", "e%02d" % i, e)


def settings():
    write("settings", "gust", json.dumps({
        "dev": {"app_function": "app.app", "project_name": "shop", "memory_size": 256, "timeout_seconds": 30,
                "environment_variables": {"DB": "sqlite:///x"}, "keep_warm": False, "exclude": ["*.csv"],
                "events": [{"function": "tasks.nightly", "expression": "cron(0 2 * * ? *)"}]},
        "prod": {"extends": "dev", "memory_size": 1024, "keep_warm": True,
                 "keep_warm_expression": "rate(5 minutes)", "concurrency": 10, "keep_alive": 60}}, indent=2))
    write("settings", "zappa", json.dumps({
        "dev": {"app_function": "app.app", "aws_region": "us-east-1", "s3_bucket": "x",
                "runtime": "python3.11", "slim_handler": False}}, indent=2))
    write("settings", "handler", json.dumps({"prod": {"lambda_handler": "main.handler", "memory_size": 128}}))


def bundles():
    write("code_bundle", "app", APP_ZIP)
    write("code_bundle", "tree", zip_bytes([
        ("pkg/", b"", 0o40755), ("pkg/__init__.py", b"", 0o100644),
        ("pkg/mod.py", b"X = 1\n" * 50, 0o100644), ("bin/run", b"#!/bin/sh\necho hi\n", 0o100755),
        ("app.py", b"import pkg.mod\n", 0o100644)]))
    write("code_bundle", "symlink_inside", zip_bytes([
        ("data/real.txt", b"x", 0o100644), ("data/link.txt", b"real.txt", 0o120777),
        ("app.py", b"", 0o100644)]))
    stored = io.BytesIO()
    with zipfile.ZipFile(stored, "w", zipfile.ZIP_STORED) as z:
        z.writestr("a.py", "x = 1\n")
    write("code_bundle", "stored", stored.getvalue())


def web_requests():
    write("web_request", "get_path", http("GET", "/web/shop/items/42?color=red&size=m", [
        ("Host", "127.0.0.1:7700"), ("Accept", "text/html"), ("Cookie", "a=1; b=2"), ("Cookie", "c=3"),
        ("X-Forwarded-For", "10.0.0.1")]))
    write("web_request", "post_form", http("POST", "/web/shop/cart", [
        ("Host", "127.0.0.1:7700"), ("Content-Type", "application/x-www-form-urlencoded")], b"item=42&qty=2"))
    write("web_request", "host_routing", http("PUT", "/api/v1/x%20y", [
        ("Host", "shop.localhost:7700"), ("Content-Type", "application/octet-stream")], bytes(range(256))))
    write("web_request", "root", http("GET", "/web/shop", [("Host", "h")]))


def web_responses():
    write("web_response", "v2_full", json.dumps(
        {"statusCode": 201, "headers": {"Content-Type": "text/plain", "X-A": 1},
         "multiValueHeaders": {"X-B": ["1", "2"]}, "cookies": ["a=1; Path=/", "b=2"],
         "body": "created", "isBase64Encoded": False}))
    write("web_response", "v2_base64", json.dumps(
        {"statusCode": "200", "body": base64.b64encode(b"\x89PNG\r\n").decode(), "isBase64Encoded": True,
         "headers": {"content-type": "image/png"}}))
    write("web_response", "bare", json.dumps({"hello": "world"}))
    write("web_response", "bare_string", json.dumps("just text"))
    write("web_response", "wsgi", b"200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
                                  b"Set-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n<h1>hi</h1>")
    write("web_response", "wsgi_redirect", b"302 FOUND\r\nLocation: /login\r\nContent-Length: 0\r\n\r\n")


def map_answers():
    def entry(index, status, meta=b"", data=b""):
        return ENTRY_HEAD.pack(index, status, 1764000000.1, 1764000000.2, 1764000000.3, len(meta),
                               len(data)) + meta + data
    ok = [entry(i, 0, data=pickle.dumps(i * i, 5)) for i in range(3)]
    write("map_framing", "ok3", ANSWER_HEAD.pack(3, 1234) + b"".join(ok))
    err = entry(7, 1, json.dumps({"error_type": "KeyError", "error_message": "'x'"},
                                 separators=(",", ":")).encode(), pickle.dumps(KeyError("x"), 5))
    write("map_framing", "error", ANSWER_HEAD.pack(1, 99) + err)
    write("map_framing", "empty", ANSWER_HEAD.pack(0, 0))


def runtime_frames():
    f = protocol.encode_frame
    write("runtime_frames", "ready", f(protocol.READY, json.dumps({"init_ms": 12.5}).encode()))
    write("runtime_frames", "ready_result", f(protocol.READY, b'{"init_ms": 1.0}') +
          f(protocol.RESULT, b'{"statusCode": 200, "body": "hi"}'))
    write("runtime_frames", "error", f(protocol.ERROR, json.dumps(
        {"errorType": "ZeroDivisionError", "errorMessage": "division by zero",
         "stackTrace": ["  File \"app.py\", line 2"]}).encode()))
    write("runtime_frames", "init_error", f(protocol.INIT_ERROR, json.dumps(
        {"errorType": "Runtime.ImportModuleError", "errorMessage": "No module named 'app'"}).encode()))
    write("runtime_frames", "yield_resume", f(protocol.YIELD, ANSWER_HEAD.pack(0, 0)) +
          f(protocol.YIELD, b"") + f(protocol.RESULT, b""))


if __name__ == "__main__":
    for fn in (http_requests, lambda_bodies, job_bodies, events_bodies, schedules_bodies, expressions,
               settings, bundles, web_requests, web_responses, map_answers, runtime_frames,
               json_dicts):
        fn()
    print("seeds written under", CORPUS)
