"""One map job on the engine: upload the code bundle, submit the tasks in one
streamed request, and resolve the futures from the results stream (docs/MAP.md).

A daemon thread per job long-polls GET /v1/jobs/{id}/results?after=S&wait=W and
resolves futures as results arrive. If the engine stops answering, every
unfinished future fails with EngineUnavailableError instead of hanging.
"""

from __future__ import annotations

import json
import math
import re
import pickle
import threading
import time
import weakref
from typing import Any, Iterable, Sequence

from . import wire
from .engine import client_python, connect, default_transport
from .errors import EngineError, EngineUnavailableError, VersionMismatchError
from .futures import _FINISHED, _PENDING, Received, ResponseFuture, resolve_batch
from .gcpause import gc_paused
from .packaging import CodeBundle
from .transport import Transport, check

# Long-poll length of one results request, and how long the engine may stay
# unreachable before the job's unfinished futures fail.
POLL_WAIT_S = 10
ENGINE_GRACE_S = 3.0
# With several nodes of a cluster (Transport.endpoints), how long every one of
# them may fail before the job's futures do: the nodes are tried in turn, and a
# job whose owner died is read from the others (docs/CLUSTER.md, "Step 5b").
CLUSTER_GRACE_S = 30.0
# Once a result is there, the engine waits this long for more before answering
# (the last result of a job is never held back): a fast map's results arrive in
# batches instead of one HTTP round trip each.
LINGER_S = 0.005

# An S3 bucket name (what the object API accepts: docs/STORAGE.md).
BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")

# Error types of POST /v1/jobs the client acts on (docs/MAP.md).
CODE_NOT_UPLOADED = "CodeNotUploadedException"
PYTHON_MISMATCH = "PythonVersionMismatchException"

_known_blobs: dict[str, set[str]] = {}  # engine URL -> set of code digests known to be stored there
_known_lock = threading.Lock()


def ensure_code(transport: Transport, bundle: CodeBundle, force: bool = False) -> bool:
    """Uploads the bundle unless the engine has it (HEAD before PUT, then
    remembered per engine so repeated maps of one function cost nothing)."""
    with _known_lock:
        known = _known_blobs.setdefault(transport.url, set())
        if bundle.digest in known and not force:
            return False
    path = "/v1/blobs/" + bundle.digest
    status, data = transport.request("HEAD", path)
    uploaded = False
    if status == 404 or force:
        status, data = transport.request("PUT", path, bundle.data,
                                         {"Content-Type": "application/zip"}, timeout=300)
        check(status, data, (200, 201), "PUT", path)
        uploaded = True
    else:
        check(status, data, (200,), "HEAD", path)
    with _known_lock:
        known.add(bundle.digest)
    return uploaded


def make_header(code_digest: str, memory: int = 256, timeout: float | None = 300,
                retries: int = 2, chunksize: int | None = None, concurrency: int | None = None,
                straggler_factor: float | None = None,
                ttl_s: float | None = None, network: bool = False,
                buckets: Sequence[str] | None = None) -> dict[str, Any]:
    """The JSON header line of POST /v1/jobs. timeout None or 0: none of the
    task's own (the engine's --max-timeout bounds it); a fraction of a second
    rounds up. buckets: the object store's buckets the tasks may use through
    their sandbox channel ("name" read-write, "name:ro" read-only; sent as
    "Buckets", only when there are some). TypeError when network is not a
    bool, memory not an int, timeout not a number or buckets not a list of
    names; ValueError when memory is below 128, timeout negative or a bucket
    grant malformed (the engine would refuse them after the upload; above
    its ceilings, it refuses naming them)."""
    grants = check_buckets(buckets)
    if not isinstance(network, bool):
        raise TypeError("network must be True or False, not %r" % (network,))
    if not isinstance(memory, int) or isinstance(memory, bool):
        raise TypeError("memory must be an int (MB), not %r" % (memory,))
    if memory < 128:
        raise ValueError("memory must be at least 128 (MB), not %d" % memory)
    if timeout is None:
        timeout = 0
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool):
        raise TypeError("timeout must be a number of seconds or None, not %r" % (timeout,))
    if not timeout >= 0:
        raise ValueError("timeout must be >= 0 seconds (0 or None: no timeout), not %r"
                         % (timeout,))
    header = {"code": code_digest, "python": client_python(), "memory": memory,
              "timeout": math.ceil(timeout), "retries": retries, "chunksize": chunksize,
              "concurrency": concurrency, "straggler_factor": straggler_factor, "ttl_s": ttl_s,
              "network": network}
    if grants:
        header["Buckets"] = grants
    return header


def check_buckets(buckets: Sequence[str] | None) -> list[str]:
    """buckets as the job header's "Buckets" list: each "name" or
    "name:ro"/"name:rw", a name being an S3 bucket name (3-63 of a-z, 0-9,
    '.', '-'); duplicates dropped, order kept. None: []. TypeError for a
    single string or a non-string item, ValueError naming a malformed one."""
    if buckets is None:
        return []
    if not isinstance(buckets, (list, tuple, set, frozenset)):
        raise TypeError("buckets must be a list of bucket names (\"name\" or \"name:ro\"), "
                        "not %r" % (buckets,))
    out: list[str] = []
    for grant in buckets:
        if not isinstance(grant, str):
            raise TypeError("buckets: each grant must be a string, not %r" % (grant,))
        name, _, mode = grant.partition(":")
        if not BUCKET_NAME.fullmatch(name) or mode not in ("", "ro", "rw"):
            raise ValueError("buckets: %r is not a bucket grant; write \"name\" (read-write) "
                             "or \"name:ro\" (read-only), a name being 3-63 of a-z, 0-9, "
                             "'.' and '-'" % grant)
        if grant not in out:
            out.append(grant)
    return out


def submit(transport: Transport, bundle: CodeBundle, tasks: Sequence[bytes],
           futures: Sequence[ResponseFuture] | None = None, **config: Any) -> Job:
    """Uploads the code if needed, submits every task in one request and returns
    the running Job. `tasks` are the pickled (args, kwargs) of each task;
    `futures` (optional) are already handed-out futures to resolve, one per task."""
    header = make_header(bundle.digest, **config)  # checked before anything is uploaded
    ensure_code(transport, bundle)
    job: Job | None = None

    def make_job() -> None:
        # Runs once the body is sent, while the engine reads it: a big map's
        # futures are built in time the client would otherwise spend waiting.
        nonlocal job
        if job is None:
            job = Job(transport, None, len(tasks), futures=futures, code_digest=bundle.digest)

    for attempt in (0, 1):
        host_submit = time.time()
        status, data, headers = transport.request(
            "POST", "/v1/jobs", wire.SubmitBody(header, tasks),
            {"Content-Type": "application/x-gust-job"}, timeout=300, chunked=True,
            with_headers=True, before_response=make_job)
        error_type = headers.get("x-amzn-errortype", "")
        if error_type == CODE_NOT_UPLOADED and attempt == 0:
            # The engine lost the code this client remembered uploading (restarted
            # on a new state dir, or the blob was cleaned): upload again, once.
            ensure_code(transport, bundle, force=True)
            continue
        break
    if error_type == PYTHON_MISMATCH:
        raise VersionMismatchError(json.loads(data).get("Message", data.decode("utf-8", "replace")))
    check(status, data, (200, 201), "POST", "/v1/jobs")
    doc = json.loads(data)
    make_job()
    assert job is not None  # made by make_job
    n_tasks = int(doc.get("Tasks", len(tasks)))
    if n_tasks != len(tasks):
        raise EngineError("the engine took %d tasks of the %d submitted (job %s)"
                          % (n_tasks, len(tasks), doc["JobId"]))
    job.job_id = doc["JobId"]
    job.function = doc.get("Function")
    job.host_submit = host_submit
    return job.start()


class Job:
    """One map on the engine: its futures (one per task, by index) and the
    thread that polls its results.

    Attributes: job_id (the engine's id; "" until the submission is answered),
    n_tasks, futures (list of ResponseFuture, by task index), function (the
    engine's function name for the map), code_digest (sha256 of the code
    bundle), host_submit (when the job was sent, epoch s), all_resolved (a
    threading.Event set once every future is done), error (the exception that
    stopped the polling early, else None).
    """

    def __init__(self, transport: Transport, job_id: str | None, n_tasks: int,
                 function: str | None = None, host_submit: float | None = None,
                 futures: Sequence[ResponseFuture] | None = None,
                 code_digest: str | None = None) -> None:
        self.transport = transport
        self.job_id: str = job_id or ""
        self.n_tasks = n_tasks
        self.function = function
        self.code_digest = code_digest  # sha256 of the uploaded code bundle
        # When the job was sent; the futures' stats read it from here.
        self.host_submit = host_submit
        # Futures handed out before the job existed (Executor.submit) may have
        # been cancelled meanwhile; the job's own cannot have been.
        self._handed_out = futures is not None
        # Shared by the futures the job makes (see ResponseFuture); handed-out
        # futures keep their own.
        self._condition = threading.Condition()
        if futures is not None:
            for i, f in enumerate(futures):
                f.job, f.index = self, i
            self.futures = list(futures)
        else:
            self.futures = ResponseFuture.many(self, n_tasks, self._condition)
        self.after = 0  # seq of the last result received
        # Cluster mode (docs/MAP.md, "Reading results in a cluster"): the job's
        # owner as its node last named it ("NODE:EPOCH") and how many of its
        # results it had stored. Results arrive before they are stored; after
        # a takeover, seqs past the stored ones may belong to other tasks, so a
        # read that changes node or finds a new owner resumes after the stored
        # ones, and the futures already resolved ignore their tasks' repeats.
        self._owner: str | None = None
        self._stored = 0
        # Set once every future has its outcome (all results in, or polling failed).
        self.all_resolved = threading.Event()
        self.error: BaseException | None = None  # why polling stopped early, if it did
        self._stop = threading.Event()
        self._stop_reason: str | None = None  # set by stop_polling()
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        done = sum(f.done() for f in self.futures)
        return "<gust.Job %s: %d/%d done>" % (self.job_id, done, self.n_tasks)

    def start(self) -> Job:
        """Starts polling the job's results (once); returns the job."""
        if self._handed_out:
            early = [f.index for f in self.futures if f.cancelled()]
            if early:  # cancelled by the user before the job was submitted
                self.cancel_tasks(early)
        if self._thread is None and self.n_tasks:
            self._thread = threading.Thread(target=self._poll, name="gust-" + self.job_id,
                                            daemon=True)
            self._thread.start()
            _polling.add(self)
        return self

    def stop_polling(self, reason: str) -> None:
        """Stops reading results (after the poll in flight, at most
        POLL_WAIT_S); the futures still unfinished then fail with
        EngineError(reason). The job itself runs on."""
        self._stop_reason = reason
        self._stop.set()

    def _unfinished(self) -> list[ResponseFuture]:
        return [f for f in self.futures if not f.done()]

    def _poll(self) -> None:
        path = "/v1/jobs/%s/results" % self.job_id
        down_since: float | None = None
        # Every task ends with exactly one result (seq 1..n), so the stream is
        # complete when seq n has arrived; futures cancelled locally still get
        # theirs (ignored). No scan of the futures per poll: a 100k-task job
        # would pay O(n) per request.
        while not self._stop.is_set() and self.after < self.n_tasks:
            query = "%s?after=%d&wait=%d&linger=%g" % (path, self.after, POLL_WAIT_S, LINGER_S)
            several = len(self.transport.endpoints) > 1
            try:
                status, data, headers = self.transport.request(
                    "GET", query, timeout=POLL_WAIT_S + 30, with_headers=True)
                if status == 503 and several:  # that node cannot read PostgreSQL: another may
                    raise EngineUnavailableError("the gust engine at %s answered 503: %s"
                                                 % (self.transport.url, data[:200]))
                check(status, data, (200,), "GET", query)
            except EngineUnavailableError as e:
                self._resume_from_stored()
                down_since = down_since or time.monotonic()
                if time.monotonic() - down_since < (CLUSTER_GRACE_S if several
                                                    else ENGINE_GRACE_S):
                    if several:
                        self._next_endpoint()
                    time.sleep(0.2)
                    continue
                self._fail_all(EngineUnavailableError(
                    "the gust engine at %s stopped answering while job %s had %d of %d tasks "
                    "unfinished: %s" % (self.transport.url, self.job_id,
                                        len(self._unfinished()), self.n_tasks, e)))
                return
            except EngineError as e:
                self._fail_all(EngineError("cannot read the results of job %s: %s"
                                           % (self.job_id, e), e.status, e.body))
                return
            down_since = None
            owner = headers.get("x-gust-owner")
            if owner is not None:
                if self._owner is not None and owner != self._owner and self.after > self._stored:
                    # Taken over: this answer followed seqs that may now be other tasks.
                    self._owner = owner
                    self._resume_from_stored()
                    continue
                self._owner = owner
                try:
                    self._stored = max(self._stored, int(headers.get("x-gust-stored", "0")))
                except ValueError:
                    pass  # a malformed count only costs a longer resume
            try:
                with gc_paused():
                    self._take(data)
            except ValueError as e:
                self._fail_all(EngineError("malformed results stream for job %s: %s"
                                           % (self.job_id, e)))
                return
        if self.after >= self.n_tasks:
            self.all_resolved.set()
        elif self._stop_reason is not None:
            self._fail_all(EngineError(self._stop_reason))

    def _resume_from_stored(self) -> None:
        """Cluster mode: the next read starts after the results the owner had
        stored (and received), which every node serves the same; embedded
        engines (no owner named) resume where they were."""
        if self._owner is not None:
            self.after = min(self.after, self._stored)

    def _next_endpoint(self) -> None:
        """Moves the results stream to the next of the cluster's nodes (the
        caller resumed from the stored results first)."""
        endpoints = self.transport.endpoints
        at = endpoints.index(self.transport.url) if self.transport.url in endpoints else -1
        self.transport = self.transport.sibling(endpoints[(at + 1) % len(endpoints)])

    def _take(self, body: bytes) -> None:
        """Resolves the futures of one results body (docs/MAP.md frames).

        The common case, a value that unpickles, is routed by the frame's
        binary head and the future completed in the same pass, under the
        Condition its job's futures share (what set_result does, once per
        body instead of once per future); the future keeps its frame's offset
        and the body's Received for its stats, read only when asked for.
        Errors, cancellations, undecodable values and futures handed out
        before the job existed (each with its own Condition) go through
        resolve_batch."""
        n = len(body)
        pos = 0
        route = wire.RESULT_ROUTE.unpack_from
        head_bytes = wire.RESULT_HEAD_BYTES
        names = wire.STATUS_NAMES
        futures, n_tasks = self.futures, self.n_tasks
        shared = not self._handed_out
        loads = pickle.loads
        received = Received(body, time.time())
        after = self.after
        others: list[tuple[ResponseFuture, str, Any, bytes]] = []
        callbacks: list[ResponseFuture] = []
        with self._condition:
            while pos < n:
                if n - pos < head_bytes:
                    raise ValueError("results body ends inside a frame header at byte %d" % pos)
                seq, index, status, meta_len, data_len = route(body, pos)
                data_at = pos + head_bytes + meta_len
                end = data_at + data_len
                if end > n:
                    raise ValueError("results body ends inside result %d" % seq)
                if status > 2:
                    raise ValueError("result %d has unknown status %d" % (seq, status))
                if seq > after:
                    after = seq
                if index < n_tasks:
                    f = futures[index]
                    if status == 0 and shared and f._state == _PENDING:
                        try:
                            # Unpickling runs the value's own code: under the
                            # lock, which is reentrant for this thread.
                            f._result = loads(body[data_at:end])
                        except Exception:  # noqa: B902 -- resolve_batch names the failure
                            others.append((f, "ok", (received, pos), body[data_at:end]))
                        else:
                            f._state = _FINISHED
                            f._meta = pos
                            f._returned = received
                            for waiter in f._w:
                                waiter.add_result(f)
                            if f._cb:
                                callbacks.append(f)
                    else:
                        others.append((f, names[status], (received, pos), body[data_at:end]))
                pos = end
            self.after = after
            self._condition.notify_all()
        for f in callbacks:
            f._invoke_callbacks()
        if others:
            resolve_batch(others)

    def _fail_all(self, exc: BaseException) -> None:
        self.error = exc
        for f in self._unfinished():
            f.fail(exc)
        self.all_resolved.set()

    def status(self) -> dict[str, Any]:
        """GET /v1/jobs/{id}: Tasks, Done, Failed, Running, Pending, Cancelled, State."""
        return self.transport.json("GET", "/v1/jobs/" + self.job_id)

    def cancel_tasks(self, indexes: Iterable[int] | None = None) -> None:
        """Cancels pending tasks (all when indexes is None). Best effort: a task
        already running finishes, and its result is then ignored."""
        body: dict[str, Any] = {} if indexes is None else {"tasks": list(indexes)}
        try:
            self.transport.json("POST", "/v1/jobs/%s/cancel" % self.job_id, body,
                                expect=(200, 202, 204))
        except (EngineError, EngineUnavailableError):
            pass

    def cancel(self) -> None:
        """Cancels every unfinished task of the job."""
        for f in self._unfinished():
            cf_cancel = super(ResponseFuture, f).cancel
            if cf_cancel():
                f.set_running_or_notify_cancel()
        self.cancel_tasks(None)

    def delete(self) -> None:
        """DELETE /v1/jobs/{id}: cancels what is pending and forgets the results."""
        self._stop.set()
        self.transport.json("DELETE", "/v1/jobs/" + self.job_id, expect=(200, 202, 204))
        # Nothing more will arrive: what is unfinished is cancelled, not left hanging.
        for f in self._unfinished():
            if super(ResponseFuture, f).cancel():
                f.set_running_or_notify_cancel()
        self.all_resolved.set()

    def results(self, timeout: float | None = None, throw_except: bool = True) -> list[Any]:
        """Every task's result, in task order: gust.get_all_results of the job's futures."""
        from .futures import get_all_results
        return get_all_results(self.futures, timeout=timeout, throw_except=throw_except)


# The jobs whose results are being polled (Job.start), for stop_polling_all.
_polling: weakref.WeakSet[Job] = weakref.WeakSet()


def stop_polling_all(url: str, reason: str) -> None:
    """Job.stop_polling(reason) for every job of this process still polled
    on the engine at url. The map worker calls it with the sandbox channel's
    url when an invocation's tasks are done: the maps a task started and did
    not wait for (it returned their futures to its caller, who polls them
    itself) would otherwise keep a thread reading their results in the idle
    sandbox."""
    for job in list(_polling):
        if job.transport.url == url.rstrip("/"):
            job.stop_polling(reason)


# (engine URL, job id) -> the Job that unpickled futures of it share: one
# results poller per job however many of its futures arrive.
_restored: weakref.WeakValueDictionary[tuple[str, str], Job] = weakref.WeakValueDictionary()
_restored_lock = threading.Lock()


def restore_future(job_id: str, n_tasks: int, index: int) -> ResponseFuture:
    """What an unpickled ResponseFuture becomes (ResponseFuture.__reduce__):
    the future of task `index` of job `job_id` on this process's engine (the
    one it last connected to, else the one connect() finds: url-less
    FunctionExecutor's), whose results it polls. Raises
    EngineUnavailableError when no engine answers."""
    transport = default_transport()
    key = (transport.url, job_id)
    with _restored_lock:
        job = _restored.get(key)
        if job is None:
            job = Job(transport, job_id, n_tasks)
            _restored[key] = job
            job.start()
    if not 0 <= index < job.n_tasks:
        raise ValueError("job %s has %d tasks, not a task %d" % (job_id, job.n_tasks, index))
    return job.futures[index]


def get_job(job_id: str, url: str | None = None) -> Job:
    """Reattaches to a job by id (after a client restart or disconnect).

    job_id: the engine's id (Job.job_id, ResponseFuture.job_id). url: the
    engine (default: $GUST_URL, else the local engine). Returns a running Job
    whose futures are resolved again from the results the engine keeps (for
    its --job-ttl). Raises EngineError (e.g. HTTP 404 for an unknown or expired
    job) and EngineUnavailableError (no engine answers)."""
    transport = connect(url)
    doc = transport.json("GET", "/v1/jobs/" + job_id)
    job = Job(transport, job_id, int(doc["Tasks"]))
    return job.start()
