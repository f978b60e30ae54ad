"""The engine side of map jobs (docs/MAP.md), driven over raw HTTP: upload,
submit, results, retries, stragglers, cancel, and every bad input."""
import hashlib
import io
import json
import struct
import sys
import time
import zipfile

import cloudpickle

U32 = struct.Struct("<I")
# The job header's python: this interpreter's environment, as the client sends it.
PY = {"executable": sys.executable, "prefix": sys.prefix, "base_prefix": sys.base_prefix,
      "version": "%d.%d.%d" % sys.version_info[:3]}
# The sandbox cannot import this test module: ship its functions by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def code_zip(func, modules=None):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("_gust_job/function.pkl", cloudpickle.dumps(func))
        for name, src in (modules or {}).items():
            z.writestr(name, src)
    return buf.getvalue()


def upload(engine, code):
    digest = hashlib.sha256(code).hexdigest()
    status, _, data = engine.request("PUT", "/v1/blobs/" + digest, code)
    assert status in (200, 201), data
    return digest


def job_body(header, items):
    body = json.dumps(header).encode() + b"\n"
    for item in items:
        t = cloudpickle.dumps(((item,), {}))
        body += U32.pack(len(t)) + t
    return body


def submit(engine, func, items, **header):
    digest = upload(engine, code_zip(func))
    h = {"code": digest, "python": PY, "timeout": 30}
    h.update(header)
    status, _, data = engine.request("POST", "/v1/jobs", job_body(h, items))
    assert status == 201, data
    return dict(json.loads(data), digest=digest)


def decode(data):
    """[(meta, value)] of a results body (docs/MAP.md): per result a 72-byte head
    (u64 seq, u32 index, u32 status, f64 t_start, t_setup, t_done, t_queued,
    t_finished, u32 attempts, u32 flags, u32 meta length, u32 data length),
    then the meta JSON and the data. Decoded here independently of the client."""
    out, pos = [], 0
    names = ("t_start", "t_setup", "t_done", "t_queued", "t_finished")
    while pos < len(data):
        head = struct.unpack_from("<QIIdddddIIII", data, pos)
        seq, index, status = head[:3]
        attempts, flags, ml, dl = head[8:]
        pos += 72
        meta = json.loads(data[pos:pos + ml])
        meta.update(zip(names, head[3:8]))
        meta.update(seq=seq, index=index, status=("ok", "error", "cancelled")[status],
                    attempts=attempts, cold=bool(flags & 1))
        payload = data[pos + ml:pos + ml + dl]
        pos += ml + dl
        out.append((meta, cloudpickle.loads(payload) if payload else None))
    return out


def results(engine, job_id, n, deadline_s=120):
    got, after, deadline = {}, 0, time.time() + deadline_s
    while len(got) < n:
        assert time.time() < deadline, ("results missing", sorted(got))
        status, headers, data = engine.request(
            "GET", f"/v1/jobs/{job_id}/results?after={after}&wait=5")
        assert status == 200, data
        for meta, value in decode(data):
            got[meta["index"]] = (meta, value)
        after = int(headers["x-gust-last-seq"])
    return got


def square(x):
    return x * x


def test_map_runs_every_task_and_streams_results(engine):
    job = submit(engine, square, list(range(50)), chunksize=5, concurrency=4)
    assert job["Tasks"] == 50 and job["Function"].startswith("gust-map-")
    got = results(engine, job["JobId"], 50)
    assert {i: v for i, (m, v) in got.items()} == {i: i * i for i in range(50)}
    metas = [m for m, _ in got.values()]
    assert sorted(m["seq"] for m in metas) == list(range(1, 51))
    assert all(m["status"] == "ok" and m["t_start"] <= m["t_setup"] <= m["t_done"] for m in metas)
    # One streaming invocation per sandbox pulls chunk after chunk: at most
    # `concurrency` of them, each on one sandbox.
    sandboxes = {}
    for m in metas:
        sandboxes.setdefault(m["request_id"], set()).add(m["sandbox"])
    assert 1 <= len(sandboxes) <= 4 and all(len(s) == 1 for s in sandboxes.values())
    status, data = engine.get(f"/v1/jobs/{job['JobId']}")
    doc = json.loads(data)
    assert (doc["State"], doc["Done"], doc["Failed"], doc["Pending"]) == ("done", 50, 0, 0)
    # Reattach: everything can be read again from the start.
    status, headers, data = engine.request("GET", f"/v1/jobs/{job['JobId']}/results?after=0")
    assert len(decode(data)) == 50 and headers["x-gust-last-seq"] == "50"
    # Uploaded code is found by HEAD (a client skips the upload then).
    assert engine.request("HEAD", "/v1/blobs/" + job["digest"])[0] == 200
    assert engine.request("HEAD", "/v1/blobs/" + "0" * 64)[0] == 404


def test_remote_exception_is_the_tasks_result(engine):
    def picky(x):
        if x == 3:
            raise KeyError("no %d" % x)
        return x
    got = results(engine, submit(engine, picky, range(6))["JobId"], 6)
    meta, (exc, tb) = got[3]
    assert meta["status"] == "error" and meta["attempts"] == 1
    assert isinstance(exc, KeyError) and "no 3" in tb and "picky" in tb
    assert [got[i][1] for i in (0, 1, 2, 4, 5)] == [0, 1, 2, 4, 5]


def test_lost_sandboxes_are_retried_then_reported(engine):
    def crashy(x):
        import os
        if x == 2:
            os._exit(3)  # every attempt dies
        return x
    job = submit(engine, crashy, range(8), chunksize=4, retries=2)
    got = results(engine, job["JobId"], 8)
    meta, value = got[2]
    assert meta["status"] == "error" and meta["error_type"] == "Runtime.ExitError", meta
    assert meta["attempts"] == 3  # the first try + 2 retries, each alone on a fresh sandbox
    assert all(got[i][0]["status"] == "ok" and got[i][1] == i for i in range(8) if i != 2)


def test_timeout_and_memory_are_task_errors(engine):
    def heavy(x):
        if x == "sleep":
            import time
            time.sleep(60)
        if x == "eat":
            blocks = []
            while True:
                blocks.append(bytearray(32 << 20))
        return x
    job = submit(engine, heavy, ["sleep", "eat", "fine"], timeout=2, memory=128, retries=0)
    got = results(engine, job["JobId"], 3)
    assert got[0][0]["error_type"] == "Sandbox.Timedout"
    assert got[1][0]["error_type"] == "Runtime.OutOfMemory"
    assert got[2][1] == "fine"


def test_straggler_gets_a_backup_copy(engine):
    def slow_first(args):
        import time
        index, submitted = args
        # The original copy starts at once and stalls; a copy started later
        # (the backup: after 3 x the siblings' 0.5 s) answers at once.
        if index == 0:
            time.sleep(25 if time.time() - submitted < 1.0 else 0.05)
        else:
            time.sleep(0.5)
        return index
    t0 = time.time()
    items = [(i, t0) for i in range(8)]
    job = submit(engine, slow_first, items, chunksize=1, concurrency=8, straggler_factor=3)
    got = results(engine, job["JobId"], 8)
    assert got[0][1] == 0
    assert time.time() - t0 < 20, "the straggler's result came from the slow copy"


def test_cancel_and_delete(engine):
    def nap(x):
        import time
        time.sleep(0.2)
        return x
    job = submit(engine, nap, range(40), chunksize=1, concurrency=1)
    assert engine.request("POST", f"/v1/jobs/{job['JobId']}/cancel", "{}")[0] == 200
    got = results(engine, job["JobId"], 40)
    statuses = [m["status"] for m, _ in got.values()]
    assert statuses.count("cancelled") >= 30 and "error" not in statuses
    assert engine.request("DELETE", f"/v1/jobs/{job['JobId']}")[0] == 204
    status, _, data = engine.request("GET", f"/v1/jobs/{job['JobId']}")
    assert status == 404 and job["JobId"] in json.loads(data)["Message"]


def test_bad_input(engine):
    code = code_zip(square)
    digest = hashlib.sha256(code).hexdigest()

    def post(header, items=(1,), raw=None):
        h = {"code": digest, "python": PY}
        h.update(header)
        status, _, data = engine.request("POST", "/v1/jobs", raw if raw is not None
                                         else job_body(h, items))
        return status, json.loads(data).get("Message", "")

    def error_type(header):
        h = {"code": digest, "python": PY}
        h.update(header)
        return engine.request("POST", "/v1/jobs", job_body(h, [1]))[1].get("x-amzn-errortype")

    # Uploads: the name must be the body's sha256, the body a zip.
    assert engine.request("PUT", "/v1/blobs/" + "0" * 64, code)[0] == 400
    assert engine.request("PUT", "/v1/blobs/xyz", code)[0] == 400
    not_zip = b"plain text"
    status, _, data = engine.request("PUT", "/v1/blobs/" + hashlib.sha256(not_zip).hexdigest(),
                                     not_zip)
    assert status == 400, data
    # Unknown code, before anything else is created.
    status, message = post({})
    assert status == 400 and "was not uploaded" in message
    assert error_type({}) == "CodeNotUploadedException"
    upload(engine, code)
    # A client from before environments sent "major.minor": told to upgrade.
    status, message = post({"python": "3.11"})
    assert status == 400 and "must name the client's Python environment" in message
    assert "older than this engine" in message
    # A Python the engine cannot run a map in.
    too_old = dict(PY, version="3.8.18")
    assert error_type({"python": too_old}) == "PythonVersionMismatchException"
    assert post({"python": too_old}) == (
        400, f"client Python 3.8 ({sys.executable}) is not supported: maps run in CPython 3.9 "
             f"or later")
    status, message = post({"memory": 64})
    assert status == 400 and "memory must be an integer from 128 to " in message
    status, message = post({"straggler_factor": 0.5})
    assert status == 400 and "straggler_factor" in message
    assert post({}, items=())[0] == 400
    header = json.dumps({"code": digest, "python": PY}).encode() + b"\n"
    status, message = post({}, raw=header + U32.pack(10) + b"abc")
    assert status == 400 and "task 0: 10 bytes announced, 3 present" in message
    status, message = post({}, raw=b"not json\n")
    assert status == 400 and "not a JSON object" in message
    big = json.dumps({"code": digest, "python": PY}).encode() + b"\n" + U32.pack(7 << 20)
    big += b"x" * (7 << 20)
    status, message = post({}, raw=big)
    assert status == 413 and "task 0 is 7340032 bytes" in message
    # Unknown jobs are 404.
    assert engine.request("GET", "/v1/jobs/job-nope/results")[0] == 404
    assert engine.request("POST", "/v1/jobs/job-nope/cancel", "{}")[0] == 404
