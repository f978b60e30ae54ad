"""The map worker: the handler of every map job's function (docs/MAP.md).

The engine invokes it with a raw bytes event holding a chunk of tasks:

    u32 count, then per task: u32 index + u32 length + task bytes
    (task bytes = cloudpickle of (args tuple, kwargs dict))

and it answers bytes:

    u32 count, then per task: u32 meta length + meta JSON
    {"index","status","t_start","t_setup","t_done","error_type","error_message"}
    + u32 data length + data

data is the cloudpickle of the return value (status "ok"), or of
(exception, traceback text) when the function raised (status "error"). The
function and extra_args (/var/task/_gust_job/*.pkl) are unpickled once per
sandbox and cached, keyed by the code files' identity, so a warm sandbox pays
setup once. All integers are little-endian. Nothing heavy is imported at
module level: cloudpickle is imported on the first chunk.
"""

import json
import os
import struct
import sys
import time
import traceback

U32 = struct.Struct("<I")
JOB_DIR = "_gust_job"

# code key -> (function, extra_args); a sandbox serves one code bundle, so this
# holds one entry in practice.
_cache = {}


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


def load_function(root=None):
    """(function, extra_args) of the bundle at root, unpickled once and cached."""
    root = root or task_root()
    key = _code_key(root)
    cached = _cache.get(key)
    if cached is not None:
        return cached
    import cloudpickle
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
    if len(view) < 4:
        raise ValueError("chunk payload of %d bytes has no task count" % len(view))
    (count,) = U32.unpack_from(view, 0)
    pos = 4
    tasks = []
    for i in range(count):
        if pos + 8 > len(view):
            raise ValueError("chunk truncated in the header of task %d of %d" % (i, count))
        index, length = struct.unpack_from("<II", view, pos)
        pos += 8
        if pos + length > len(view):
            raise ValueError("chunk truncated in task %d (index %d): %d bytes announced, %d left"
                             % (i, index, length, len(view) - pos))
        tasks.append((index, view[pos:pos + length]))
        pos += length
    if pos != len(view):
        raise ValueError("%d trailing bytes after %d tasks" % (len(view) - pos, count))
    return tasks


def encode_results(results):
    """The answer payload from [(meta dict, data bytes)]."""
    parts = [U32.pack(len(results))]
    for meta, data in results:
        meta_bytes = json.dumps(meta, separators=(",", ":")).encode()
        parts += [U32.pack(len(meta_bytes)), meta_bytes, U32.pack(len(data)), data]
    return b"".join(parts)


def _apply_extra_args(args, kwargs, extra_args):
    """Lithops' rule: a dict updates the kwargs, a tuple/list extends the args."""
    if not extra_args:
        return args, kwargs
    if isinstance(extra_args, dict):
        kwargs = dict(kwargs)
        kwargs.update(extra_args)
        return args, kwargs
    return tuple(args) + tuple(extra_args), kwargs


def _pickle_error(cloudpickle, exc):
    """(exception, traceback text) pickled; an exception that cannot be pickled
    (or unpickled: e.g. a custom __init__ signature) becomes a RuntimeError
    carrying its repr."""
    tb_text = format_traceback(exc)
    try:
        data = cloudpickle.dumps((exc, tb_text))
        cloudpickle.loads(data)  # exceptions with odd __init__ fail only here
        return data
    except Exception:  # noqa: BLE001
        substitute = RuntimeError("%s (the original exception could not be pickled)" % (
            _safe_repr(exc),))
        return cloudpickle.dumps((substitute, tb_text))


def format_traceback(exc):
    """The exception's traceback text without the worker's own frames."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


def _safe_str(exc):
    try:
        return str(exc)[:4096]
    except Exception:  # noqa: BLE001 - a broken __str__ must not lose the error
        return _safe_repr(exc)


def _safe_repr(obj):
    try:
        return repr(obj)
    except Exception:  # noqa: BLE001
        return "<%s>" % type(obj).__name__


def run_task(cloudpickle, func, extra_args, index, task, t_start, t_setup_base=None):
    """Runs one task; returns (meta, data). Never raises for the function's errors."""
    meta = {"index": index, "status": "ok", "t_start": t_start}
    try:
        args, kwargs = cloudpickle.loads(task)
        args, kwargs = _apply_extra_args(args, kwargs, extra_args)
        meta["t_setup"] = time.time()
        value = func(*args, **kwargs)
        data = cloudpickle.dumps(value)
    except Exception as exc:  # noqa: BLE001 - the function's exception is the task's result
        meta.setdefault("t_setup", time.time())
        meta["status"] = "error"
        meta["error_type"] = type(exc).__name__
        meta["error_message"] = _safe_str(exc)
        data = _pickle_error(cloudpickle, exc)
    meta["t_done"] = time.time()
    return meta, data


def handler(event, context=None):
    """Runs a chunk of tasks (raw bytes event) and returns the encoded results."""
    t_enter = time.time()
    if isinstance(event, str):
        event = event.encode("latin-1")
    tasks = decode_chunk(event)
    func, extra_args = load_function()
    import cloudpickle
    results = []
    t_start = t_enter  # the first task's start includes the function's setup
    for index, task in tasks:
        meta, data = run_task(cloudpickle, func, extra_args, index, task, t_start)
        results.append((meta, data))
        t_start = time.time()
    return encode_results(results)
