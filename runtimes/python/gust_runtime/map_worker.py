"""The map worker: the handler of every map job's function (docs/MAP.md).

The engine invokes it with a raw bytes event holding a chunk of tasks:

    u32 count, then per task: u32 index + u32 length + task bytes
    (task bytes = pickle of (args tuple, kwargs dict))

and it answers bytes:

    u32 count + u32 exec_us (time spent on these tasks, from the chunk's
    arrival or its previous part), then per task: u32 index + u32 status
    (0 ok, 1 error) + f64 t_start + f64 t_setup + f64 t_done (epoch s) +
    u32 meta length + u32 data length + meta + data

meta is empty for a task that returned, and a JSON object
{"error_type","error_message"} for one that raised; data is the pickle of the
return value (status "ok"), or of (exception, traceback text) when the
function raised (status "error"). All integers and floats are little-endian.
The timestamps travel in binary so a task costs no float formatting.

A streaming invocation (the engine's map jobs; the runtime then gives the
context a `gust_yield`) pulls more work instead of returning: the answer of
each chunk goes back with context.gust_yield(answer), which returns the next
chunk, or None when the engine has no more for this sandbox; the handler then
returns an empty answer. So a sandbox runs chunk after chunk of one job, one
round trip each, without a new invocation per chunk.

The function and extra_args (/var/task/_gust_job/*.pkl) are unpickled once per
sandbox and cached, keyed by the code files' identity. Values are pickled with
the C pickler and fall back to cloudpickle for what only it can carry
(lambdas, classes defined in __main__, ...). The zygote preloads cloudpickle;
this module imports it only when needed (tests load the worker bare).
"""

from __future__ import annotations

import errno
import json
import os
import pickle
import struct
import sys
import time
import traceback

# typing only for the type checker: the runtime does not import it (import
# time in every sandbox that does not preload it).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

U32 = struct.Struct("<I")
TASK_REF = struct.Struct("<II").unpack_from  # index, length of a task in a chunk
JOB_DIR = "_gust_job"

# The engine's sandbox channel and the gust client library, where the sandbox
# root offers them (src/sandbox/rootfs.h): a task may use gust itself, and
# gust.FunctionExecutor() finds the engine through GUST_ENDPOINT (docs/MAP.md,
# "Maps from a task").
CHANNEL_SOCKET = "/run/gust/engine.sock"
CLIENT_DIR = "/var/gust"

# code key -> (function, extra_args); a sandbox serves one code bundle, so this
# holds one entry in practice.
_cache: dict[str, tuple[Any, Any]] = {}


def task_root():
    """Where the code bundle is unpacked: $LAMBDA_TASK_ROOT (set by the runtime;
    tests point it at a temporary directory), else /var/task."""
    return os.environ.get("LAMBDA_TASK_ROOT") or "/var/task"


def _code_key(root):
    """Identity of the bundle's pickles: path, inode, size and mtime of each."""
    key = [root]
    for name in ("function.pkl", "extra_args.pkl"):
        try:
            st = os.stat(os.path.join(root, JOB_DIR, name))
            key.append((name, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))
        except FileNotFoundError:
            key.append((name, None))
    return tuple(key)


def offer_gust():
    """Sets GUST_ENDPOINT to the channel and puts the gust client on sys.path
    (after everything else: a gust shipped in the bundle wins), when the
    sandbox has them."""
    if os.path.exists(CHANNEL_SOCKET):
        os.environ.setdefault("GUST_ENDPOINT", "unix://" + CHANNEL_SOCKET)
    if CLIENT_DIR not in sys.path and os.path.exists(CLIENT_DIR + "/gust/__init__.py"):
        sys.path.append(CLIENT_DIR)


def import_cloudpickle():
    """cloudpickle from this sandbox's Python environment, or an ImportError naming it.

    The client pickled the function with its environment's cloudpickle, so the
    sandbox (which runs in that same environment) needs one there too.
    """
    try:
        import cloudpickle
    except ImportError as e:
        raise ImportError(
            "cloudpickle is missing from the Python environment %s (%s): install cloudpickle "
            "there, as in the client's environment (%s)" % (sys.prefix, sys.executable, e)
        ) from e
    return cloudpickle


def load_function(root=None):
    """(function, extra_args) of the bundle at root, unpickled once and cached."""
    root = root or task_root()
    key = _code_key(root)
    cached = _cache.get(key)
    if cached is not None:
        return cached
    offer_gust()  # before unpickling: the function may refer to gust
    cloudpickle = import_cloudpickle()
    if root not in sys.path:
        sys.path.insert(0, root)  # the bundle's local modules import from here
    with open(os.path.join(root, JOB_DIR, "function.pkl"), "rb") as f:
        func = cloudpickle.loads(f.read())
    extra_args = None
    extra_path = os.path.join(root, JOB_DIR, "extra_args.pkl")
    if os.path.exists(extra_path):
        with open(extra_path, "rb") as f:
            extra_args = cloudpickle.loads(f.read())
    _cache.clear()
    _cache[key] = (func, extra_args)
    return func, extra_args


def decode_chunk(event):
    """[(index, task bytes)] from a chunk payload; ValueError if malformed."""
    view = memoryview(event)
    n = len(view)
    if n < 4:
        raise ValueError("chunk payload of %d bytes has no task count" % n)
    (count,) = U32.unpack_from(view, 0)
    pos = 4
    tasks: list[Any] = []
    append = tasks.append
    for i in range(count):
        if pos + 8 > n:
            raise ValueError("chunk truncated in the header of task %d of %d" % (i, count))
        index, length = TASK_REF(view, pos)
        pos += 8
        end = pos + length
        if end > n:
            raise ValueError("chunk truncated in task %d (index %d): %d bytes announced, %d left"
                             % (i, index, length, n - pos))
        append((index, view[pos:end]))
        pos = end
    if pos != n:
        raise ValueError("%d trailing bytes after %d tasks" % (n - pos, count))
    return tasks


def _apply_extra_args(args, kwargs, extra_args):
    """Lithops' rule: a dict updates the kwargs, a tuple/list extends the args."""
    if not extra_args:
        return args, kwargs
    if isinstance(extra_args, dict):
        kwargs = dict(kwargs)
        kwargs.update(extra_args)
        return args, kwargs
    return tuple(args) + tuple(extra_args), kwargs


# How much of a failed task's argument its note shows.
NOTE_REPR_CHARS = 80


def task_note(index, args, kwargs):
    """"gust: task 3 failed; its argument: 7": which item of a map raised,
    with a short repr of what it was called with (the client's traceback
    otherwise says what went wrong, not for which item)."""
    if len(args) == 1 and not kwargs:
        what, shown = "argument", _safe_repr(args[0])
    else:
        what = "arguments"
        shown = ", ".join([_safe_repr(a) for a in args] +
                          ["%s=%s" % (k, _safe_repr(v)) for k, v in kwargs.items()])
    if len(shown) > NOTE_REPR_CHARS:
        shown = shown[:NOTE_REPR_CHARS - 3] + "..."
    return "gust: task %d failed; its %s: %s" % (index, what, shown)


def _pickle_error(exc, note=None):
    """(exception, traceback text) pickled; an exception that cannot be pickled
    (or unpickled: e.g. a custom __init__ signature) becomes a RuntimeError
    carrying its repr. `note` is added to the exception after its remote
    traceback text is made, so the client prints it once, under the error."""
    tb_text = format_traceback(exc)
    if note is not None:
        try:
            exc.add_note(note)
        except Exception:  # noqa: B902 -- a note must never replace the task's own error
            pass
    try:
        data = dumps((exc, tb_text))
        _pickle_loads(data)  # exceptions with odd __init__ fail only here
        return data
    except Exception:  # noqa: B902 -- pickling runs arbitrary code
        substitute = RuntimeError("%s (the original exception could not be pickled)" % (
            _safe_repr(exc),))
        return dumps((substitute, tb_text))


def format_traceback(exc):
    """The exception's traceback text without the worker's own frames."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


def _safe_str(exc):
    try:
        return str(exc)[:4096]
    except Exception:  # noqa: B902 -- a broken __str__ must not lose the error
        return _safe_repr(exc)


def _safe_repr(obj):
    try:
        return repr(obj)
    except Exception:  # noqa: B902 -- a broken __repr__ must not lose the error
        return "<%s>" % type(obj).__name__


# What a network call fails with in a sandbox without network: connect() to
# any other host has no route (ENETUNREACH), name resolution no resolver
# (socket.gaierror), and 127.0.0.1 is the sandbox's own loopback, where
# nothing listens (ECONNREFUSED): the host's services are not there.
_NO_ROUTE_ERRNOS = frozenset((errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL,
                              errno.ECONNREFUSED))
NO_NETWORK_NOTE = ("gust: this task's sandbox has no network (the default: only a loopback of "
                   "its own); pass network=True to FunctionExecutor, map, call_async, "
                   "map_reduce or Executor to give it one (docs/MAP.md, \"Network\")")
_has_network: bool | None = None  # cached: a sandbox never gains or loses its network


def sandbox_has_network():
    """Whether this process sees a network interface other than loopback."""
    global _has_network
    if _has_network is None:
        import socket
        try:
            _has_network = any(name != "lo" for _, name in socket.if_nameindex())
        except OSError:
            _has_network = False
    return _has_network


def _network_failure(exc):
    """Whether exc, or an exception it wraps (URLError.reason, __cause__,
    __context__), is a failure to reach the network."""
    import socket
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, socket.gaierror) or (
                isinstance(exc, OSError) and exc.errno in _NO_ROUTE_ERRNOS):
            return True
        reason = getattr(exc, "reason", None)  # urllib's URLError
        if isinstance(reason, BaseException):
            exc = reason
            continue
        exc = exc.__cause__ or exc.__context__
    return False


def is_no_network_failure(exc):
    """Whether exc is a failure to reach the network (or the host's services)
    in a sandbox that has none: what gust can explain and name the fix of."""
    return _network_failure(exc) and not sandbox_has_network()


def note_no_network(exc):
    """Adds NO_NETWORK_NOTE to exc (shown under its traceback, and kept through
    pickling) when it is a network failure in a sandbox without network: the
    bare "[Errno 101] Network is unreachable" does not say what to do. Called
    only for a failed task, so a map of tasks that succeed pays nothing."""
    try:
        if is_no_network_failure(exc) and \
                NO_NETWORK_NOTE not in getattr(exc, "__notes__", ()):
            exc.add_note(NO_NETWORK_NOTE)
    except Exception:  # noqa: B902 -- a hint must never replace the task's own error
        pass


# A result must fit one frame to the engine (6 MB, as a Lambda response);
# answers are sent in parts of about PART_BYTES when streaming.
MAX_RESULT_BYTES = 6 * 1024 * 1024
PART_BYTES = 4 * 1024 * 1024
# index, status, t_start, t_setup, t_done, meta length, data length
ENTRY_HEAD = struct.Struct("<IIdddII")
STATUS_OK, STATUS_ERROR = 0, 1
ANSWER_HEAD = struct.Struct("<II")  # count, exec_us
EMPTY_ANSWER = ANSWER_HEAD.pack(0, 0)
_pickle_dumps = pickle.dumps
_pickle_loads = pickle.loads


def dumps(value):
    """Pickles value: the C pickler when its output is loadable elsewhere
    (it refers to no __main__ of this process), else cloudpickle."""
    try:
        data = _pickle_dumps(value, 5)
        if b"__main__" not in data:
            return data
    except Exception:  # noqa: B902 -- lambdas, local classes...: cloudpickle's job
        pass
    return import_cloudpickle().dumps(value)


def _error_entry(index, t_start, t_setup, t_done, error_type, message, data=b""):
    meta = json.dumps({"error_type": error_type, "error_message": message},
                      separators=(",", ":")).encode()
    return ENTRY_HEAD.pack(index, STATUS_ERROR, t_start, t_setup, t_done, len(meta),
                           len(data)) + meta + data


def _too_large_entry(index, size, t_start, t_setup):
    """A task whose result cannot travel (no data: the client raises a
    TaskError naming the size)."""
    return _error_entry(index, t_start, t_setup, time.time(), "Map.ResultTooLarge",
                        "the result is %d bytes pickled, over the limit of %d bytes per "
                        "result; return less (e.g. write big data to a file or a store the "
                        "client can read)" % (size, MAX_RESULT_BYTES))


def run_chunk(func, extra_args, tasks, t_enter, exchange=None):
    """The answer payload of decoded tasks (see the module docstring). With
    exchange (streaming), answers over PART_BYTES are sent ahead in parts; the
    engine answers each part with an empty chunk (go on). None if the engine
    ended the invocation meanwhile. Never raises for the function's errors:
    they are the tasks' results.

    The task loop is written out here (no run_task per task): at ~2 us per
    no-op task, each extra call per task is a visible share of the worker's
    time (bench/map/bench_worker.py)."""
    out = bytearray()  # the entries of this answer (or part)
    done = 0  # tasks in out
    t_start = t_enter  # the first task's start includes the function's setup
    clock = time.perf_counter
    now = time.time
    loads, pack = _pickle_loads, ENTRY_HEAD.pack
    t_part = clock()  # the engine weighs CPU use against this (map_scaler.h)
    last = len(tasks) - 1
    for n, (index, task) in enumerate(tasks):
        t_setup = None
        try:
            args, kwargs = loads(task)
            if extra_args:
                args, kwargs = _apply_extra_args(args, kwargs, extra_args)
            t_setup = now()
            data = dumps(func(*args, **kwargs))
        except Exception as exc:  # noqa: B902 -- the function's exception is the task's result
            t_done = now()
            note_no_network(exc)
            note = None if t_setup is None else task_note(index, args, kwargs)
            out += _error_entry(index, t_start, t_done if t_setup is None else t_setup, t_done,
                                type(exc).__name__, _safe_str(exc), _pickle_error(exc, note))
        else:
            t_done = now()
            if len(data) <= MAX_RESULT_BYTES:
                out += pack(index, STATUS_OK, t_start, t_setup, t_done, 0, len(data))
                out += data
            else:
                out += _too_large_entry(index, len(data), t_start, t_setup)
        done += 1
        t_start = t_done
        if exchange is not None and len(out) > PART_BYTES and n < last:
            reply = exchange(_answer(done, out, clock() - t_part))
            if reply is None:
                return None
            if decode_chunk(reply):
                raise ValueError("the engine sent new tasks before this chunk was done")
            out, done = bytearray(), 0
            t_part = clock()
    return _answer(done, out, clock() - t_part)


def _answer(count, entries, seconds):
    exec_us = min(int(seconds * 1e6), 0xFFFFFFFF)
    return ANSWER_HEAD.pack(count, exec_us) + entries


def stop_gust_pollers():
    """Stops the result pollers of the maps this invocation's tasks started
    and did not wait for (a task that returns its futures: its caller polls
    them), so the warm sandbox runs nothing between invocations. A future of
    such a map kept inside the sandbox fails with the reason below."""
    job = sys.modules.get("gust.job")
    if job is not None:
        job.stop_polling_all("unix://" + CHANNEL_SOCKET,
                             "the map task that submitted this job has ended; its futures "
                             "are read where they were returned to, not in its sandbox")


def handler(event, context=None):
    """Runs a chunk of tasks (raw bytes event); in a streaming invocation,
    pulls and runs chunks until the engine has no more. Returns the answer
    (bytes) of the chunk, or an empty answer when streaming."""
    t_enter = time.time()
    if isinstance(event, str):
        event = event.encode("latin-1")
    tasks = decode_chunk(event)  # a malformed chunk fails before the function is loaded
    func, extra_args = load_function()
    exchange = getattr(context, "gust_yield", None)
    try:
        while True:
            answer = run_chunk(func, extra_args, tasks, t_enter, exchange)
            if exchange is None:
                return answer
            if answer is None:
                return EMPTY_ANSWER
            chunk = exchange(answer)
            if chunk is None:
                return EMPTY_ANSWER
            t_enter = time.time()
            tasks = decode_chunk(chunk)
    finally:
        stop_gust_pollers()
