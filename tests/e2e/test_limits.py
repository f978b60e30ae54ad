"""Limits of the machine, not of Lambda (issue 20): timeouts up to days and memory up to the
machine's, for functions (boto3, the aws CLIs v1 and v2, the gust CLI, settings files) and maps
(timeout=0: none of the task's own), under the ceilings the operator sets with
`gust up --max-timeout/--max-memory`, whose errors name them. Real engines, real sandboxes."""
import json
import os
import shutil
import subprocess
import threading
import time

import pytest

from gust_e2e import GUST, Engine, make_zip

import gust

AWS_ENV = dict(os.environ, AWS_ACCESS_KEY_ID="gust", AWS_SECRET_ACCESS_KEY="gust",
               AWS_DEFAULT_REGION="us-east-1", AWS_PAGER="")
WEEK_S = 7 * 86400

# The remaining time a handler sees is the timeout it was given.
REMAINING = "def handler(event, context):\n    return context.get_remaining_time_in_millis()\n"


def create(lam, name, **config):
    args = dict(FunctionName=name, Runtime="python3.11", Role="arn:aws:iam::0:role/r",
                Handler="app.handler", Code={"ZipFile": make_zip({"app.py": REMAINING})})
    args.update(config)
    return lam.create_function(**args)


@pytest.fixture(scope="module")
def walled(tmp_path_factory):
    """An engine whose operator set low ceilings: 16000 MB, 3 s."""
    e = Engine(tmp_path_factory.mktemp("gust-walled"),
               extra_args=["--max-memory", "16000", "--max-timeout", "3"])
    e.start()
    yield e
    e.stop()


def boto3_client(url):
    import boto3
    from botocore.config import Config
    return boto3.client(
        "lambda", endpoint_url=url, region_name="us-east-1", aws_access_key_id="gust",
        aws_secret_access_key="gust",
        config=Config(retries={"max_attempts": 0}, read_timeout=1500, connect_timeout=5))


def test_boto3_creates_and_updates_beyond_lambdas_limits(lam, fname):
    created = create(lam, fname, Timeout=3600, MemorySize=20480)
    assert (created["Timeout"], created["MemorySize"]) == (3600, 20480)
    # The sandbox runs with it: the handler's deadline is an hour away.
    out = lam.invoke(FunctionName=fname, Payload=b"{}")
    assert "FunctionError" not in out, out["Payload"].read()
    assert 3500_000 < json.loads(out["Payload"].read()) <= 3600_000
    updated = lam.update_function_configuration(FunctionName=fname, Timeout=WEEK_S)
    assert updated["Timeout"] == WEEK_S
    assert lam.get_function_configuration(FunctionName=fname)["Timeout"] == WEEK_S


@pytest.mark.parametrize("aws", [shutil.which("aws"), "/usr/bin/aws"], ids=["v1-on-path", "v2"])
def test_aws_clis_send_timeouts_and_memory_beyond_lambdas(engine, fname, aws, tmp_path):
    if not aws or not os.path.exists(aws):
        pytest.skip("no aws CLI at %r" % aws)
    code = tmp_path / "f.zip"
    code.write_bytes(make_zip({"app.py": REMAINING}))

    def run(*args):
        out = subprocess.run([aws, "lambda", *args, "--endpoint-url", engine.url,
                              "--output", "json"],
                             env=AWS_ENV, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    made = run("create-function", "--function-name", fname, "--runtime", "python3.11",
               "--role", "arn:aws:iam::0:role/r", "--handler", "app.handler",
               "--zip-file", "fileb://%s" % code, "--timeout", "3600", "--memory-size", "20480")
    assert (made["Timeout"], made["MemorySize"]) == (3600, 20480)
    updated = run("update-function-configuration", "--function-name", fname,
                  "--timeout", str(WEEK_S), "--memory-size", "20480")
    assert (updated["Timeout"], updated["MemorySize"]) == (WEEK_S, 20480)


def test_errors_name_the_operators_ceilings(walled, fname):
    from botocore.exceptions import ClientError
    lam = boto3_client(walled.url)
    with pytest.raises(ClientError) as memory:
        create(lam, fname, MemorySize=20480)
    assert memory.value.response["Error"]["Code"] == "ValidationException"
    assert ("MemorySize 20480 is above this engine's --max-memory of 16000 MB "
            "(set by gust up --max-memory)") in str(memory.value)
    with pytest.raises(ClientError) as timeout:
        create(lam, fname, Timeout=3600)
    assert ("Timeout 3600 is above this engine's --max-timeout of 3 seconds "
            "(set by gust up --max-timeout)") in str(timeout.value)
    # Up to the ceiling is fine, and so is an update up to it; past it, named again.
    create(lam, fname, MemorySize=16000, Timeout=3)
    with pytest.raises(ClientError) as update:
        lam.update_function_configuration(FunctionName=fname, MemorySize=16001)
    assert "--max-memory of 16000 MB" in str(update.value)
    # A map, through the client library: the engine's message reaches the caller.
    ex = gust.FunctionExecutor(url=walled.url, show_progress=False)
    with pytest.raises(gust.EngineError, match="memory 20480 is above this engine's "
                                               "--max-memory of 16000 MB"):
        ex.map(abs, [1], memory=20480)
    with pytest.raises(gust.EngineError, match="--max-timeout of 3 seconds"):
        ex.map(abs, [1], timeout=60)
    # The client refuses what no engine accepts before uploading anything.
    with pytest.raises(ValueError, match="at least 128"):
        ex.map(abs, [1], memory=64)
    with pytest.raises(ValueError, match=">= 0 seconds"):
        ex.map(abs, [1], timeout=-1)
    with pytest.raises(TypeError, match="memory must be an int"):
        ex.map(abs, [1], memory="12G")


def test_gust_cli_deploy_beyond_lambda_and_above_the_ceiling(engine, walled, fname, tmp_path):
    d = tmp_path / "fn"
    d.mkdir()
    (d / "app.py").write_text(REMAINING)

    def deploy(eng):
        return subprocess.run([GUST, "deploy", fname, str(d), "--handler", "app.handler",
                               "--memory", "20480", "--timeout", "86400"],
                              env=dict(os.environ, GUST_URL=eng.url), capture_output=True,
                              text=True, timeout=120)

    ok = deploy(engine)
    assert ok.returncode == 0, ok.stderr
    assert "20480 MB, 86400 s timeout" in ok.stdout
    refused = deploy(walled)
    assert refused.returncode != 0
    assert "--max-memory of 16000 MB (set by gust up --max-memory)" in refused.stderr


FLASK_APP = "from flask import Flask\napp = Flask(__name__)\n\n@app.route('/')\ndef hi():\n" \
            "    return 'hi'\n"


def test_settings_file_beyond_lambdas_limits(engine, walled, tmp_path):
    d = tmp_path / "zap"
    d.mkdir()
    (d / "app.py").write_text(FLASK_APP)
    (d / "zappa_settings.json").write_text(json.dumps({"big": {
        "app_function": "app.app", "project_name": "limits", "memory_size": 20480,
        "timeout_seconds": 86400}}))

    def deploy(eng):
        return subprocess.run([GUST, "deploy", "big"], cwd=d,
                              env=dict(os.environ, GUST_URL=eng.url), capture_output=True,
                              text=True, timeout=120)

    ok = deploy(engine)
    assert ok.returncode == 0, ok.stderr
    cfg = json.loads(engine.get("/2015-03-31/functions/limits-big/configuration")[1])
    assert (cfg["MemorySize"], cfg["Timeout"]) == (20480, 86400)
    refused = deploy(walled)
    assert refused.returncode != 0
    assert "--max-memory of 16000 MB" in refused.stderr


def test_gust_up_refuses_a_ceiling_out_of_range(tmp_path):
    for args, words in ((["--max-timeout", "400d"], "from 1s to 365d"),
                        (["--max-timeout", "0"], "from 1s to 365d"),
                        (["--max-memory", "64"], "below a sandbox's least, 128 MB")):
        out = subprocess.run([GUST, "up", "--state-dir", str(tmp_path / "s"), "--port", "1"] + args,
                             capture_output=True, text=True, timeout=60)
        assert out.returncode != 0 and words in out.stderr, (args, out.stderr)
    helped = subprocess.run([GUST, "up", "--help"], capture_output=True, text=True, timeout=60)
    assert "--max-timeout" in helped.stdout and "--max-memory" in helped.stdout


def nap(seconds):
    time.sleep(seconds)
    return seconds


def test_map_timeout_zero_is_no_timeout_of_the_tasks_own(engine, walled):
    # The executor's 2 s stop a 4 s task; timeout=0 for the map lifts it.
    ex = gust.FunctionExecutor(url=engine.url, show_progress=False, timeout=2, retries=0)
    with pytest.raises(gust.TaskTimeoutError):
        ex.get_result(ex.map(nap, [4]))
    assert ex.get_result(ex.map(nap, [4], timeout=0)) == [4]
    # timeout=None for the executor means the same.
    none = gust.FunctionExecutor(url=engine.url, show_progress=False, timeout=None)
    assert none.get_result(none.call_async(nap, 3)) == 3
    # The engine's --max-timeout still bounds it, and the error says how long.
    capped = gust.FunctionExecutor(url=walled.url, show_progress=False, retries=0)
    with pytest.raises(gust.TaskTimeoutError, match="after 3.00 seconds"):
        capped.get_result(capped.map(nap, [6], timeout=0))


def hog(gib):
    # b"\x01" * n writes every page (a zero-filled bytearray would stay untouched pages).
    block = b"\x01" * (gib << 30)
    size = len(block)
    del block
    return size


def test_map_task_gets_more_memory_than_lambda_allows(engine):
    ex = gust.FunctionExecutor(url=engine.url, show_progress=False, retries=0)
    # The limit is real: 3 GiB in 2048 MB is an out-of-memory kill...
    with pytest.raises(gust.TaskOutOfMemoryError):
        ex.get_result(ex.call_async(hog, 3, memory=2048))
    # ... and 11 GiB fit in 12288 MB, more than Lambda's 10240 (one such task; freed at once).
    assert ex.get_result(ex.call_async(hog, 11, memory=12288)) == 11 << 30


def long_task(seconds, step):
    """Sleeps `seconds`, printing its progress every `step`; returns what it saw."""
    start = time.time()
    ticks = 0
    while time.time() - start < seconds:
        time.sleep(min(step, seconds - (time.time() - start)))
        ticks += 1
        print("progress: %d s of %d" % (time.time() - start, seconds), flush=True)
    return {"pid": os.getpid(), "elapsed": time.time() - start, "ticks": ticks}


TWENTY_MIN = 1200
SLOW_FUNCTION = ("import time\n"
                 "def handler(event, context):\n"
                 "    start = time.time()\n"
                 "    while time.time() - start < event['seconds']:\n"
                 "        time.sleep(60)\n"
                 "        print('progress', int(time.time() - start), flush=True)\n"
                 "    return {'elapsed': time.time() - start,\n"
                 "            'remaining_ms': context.get_remaining_time_in_millis()}\n")


@pytest.mark.slow
def test_twenty_minute_task_completes_untouched(tmp_path):
    """A map task (timeout=0) and a Lambda function (Timeout=1500, invoked synchronously through
    boto3) each run 20 minutes on an engine whose keep-alive, HTTP idle timeout and job TTL are
    all seconds long: nothing may stop, retry or duplicate either while it runs."""
    e = Engine(tmp_path / "state", extra_args=["--keep-alive", "2s", "--http-idle-timeout", "5s",
                                               "--job-ttl", "5s"])
    e.start()
    try:
        lam = boto3_client(e.url)
        create(lam, "slow", Timeout=1500, MemorySize=256,
               Code={"ZipFile": make_zip({"app.py": SLOW_FUNCTION})})
        sync = {}

        def invoke():
            out = lam.invoke(FunctionName="slow",
                             Payload=json.dumps({"seconds": TWENTY_MIN}).encode())
            sync["error"] = out.get("FunctionError")
            sync["result"] = json.loads(out["Payload"].read())

        caller = threading.Thread(target=invoke)
        started = time.time()
        caller.start()
        # retries=0: a sandbox stopped by anything would fail the task, not rerun it.
        ex = gust.FunctionExecutor(url=e.url, show_progress=False, timeout=0, retries=0)
        fs = ex.map(long_task, [(TWENTY_MIN, 60)])
        result = ex.get_result(fs)[0]
        caller.join(timeout=600)
        took = time.time() - started
        assert not caller.is_alive()
        assert result["elapsed"] >= TWENTY_MIN and result["ticks"] == TWENTY_MIN // 60
        assert took < TWENTY_MIN + 120  # ran once, not again after a loss
        assert sync["error"] is None, sync
        assert sync["result"]["elapsed"] >= TWENTY_MIN
        assert sync["result"]["remaining_ms"] > 200_000  # 1500 s given, ~1200 used
        print("LIMITS-SLOW: both 20-minute tasks done in %.0f s" % took)
    finally:
        e.stop()
