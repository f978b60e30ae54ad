"""Lithops' data-processing maps on gust: functions with an `obj`, `storage`
or `id` parameter (lithops/job/partitioner.py and worker/jobrunner.py are
the reference; this is gust's own code).

- `storage`: the task gets a gust.lithops Storage, connected in the sandbox
  through its channel.
- `id`: the task gets its call's index in the map.
- `obj`: each item names objects of the storage: "bucket/prefix/",
  "bucket/key", "<backend>://bucket/..." or a CloudObject. partition() lists
  them in the client (one task per object, or per byte range with
  obj_chunk_size / obj_chunk_number, ranges reaching past the chunk by
  CHUNK_THRESHOLD so that a line cut by a boundary is read whole by the
  chunk it starts in, Lithops' newline rule); the task reads its range and
  gets the CloudObject with data_stream (read from the engine as it is
  consumed), data_byte_range, chunk_size, part and total_parts set. URLs
  and local paths (Lithops reads those too) are not taken here: ValueError
  naming them.

Pure functions and picklable closures; thread-safe.
"""

from __future__ import annotations

import inspect
import io
from typing import IO, Any, Callable, Iterator

from .storage import Storage, open_stream
from .storage.utils import CloudObject
from .utils import split_object_url

CHUNK_THRESHOLD = 128 * 1024  # how far a range reads past its chunk (Lithops')
RESERVED = ("storage", "id")  # parameters the task fills in, not the items


def parameters(func: Callable[..., Any]) -> set[str]:
    try:
        return set(inspect.signature(func).parameters)
    except (TypeError, ValueError):
        return set()


def needs_wrapping(func: Callable[..., Any]) -> bool:
    """Whether func takes one of Lithops' injected parameters (obj, storage, id)."""
    return bool(parameters(func) & {"obj", "storage", "id"})


def item_dicts(func: Callable[..., Any], items: list[Any]) -> list[dict[str, Any]]:
    """Each item as a dict of func's parameters, storage and id left out
    (Lithops' verify_args): a dict as it is, a tuple as positional
    arguments, anything else as the first argument. Raises TypeError naming
    an item that does not fit."""
    sig = inspect.signature(func)
    bindable = sig.replace(parameters=[p for n, p in sig.parameters.items()
                                       if n not in RESERVED])
    out = []
    for i, item in enumerate(items):
        if isinstance(item, dict):
            out.append(dict(item))
            continue
        try:
            bound = bindable.bind(*item) if isinstance(item, tuple) else bindable.bind(item)
        except TypeError as e:
            raise TypeError("item %d (%r) does not fit %s%s: %s"
                            % (i, item, getattr(func, "__name__", "the function"),
                               bindable, e)) from e
        out.append(dict(bound.arguments))
    return out


def chunk_ranges(obj_size: int, chunk_size: int | None, chunk_number: int | None,
                 newline: str | None) -> list[tuple[tuple[int, int] | None, int]]:
    """The (byte range or None for the whole object, chunk size) of each part
    of an object of obj_size bytes, by Lithops' rules: chunk_number parts of
    equal size, else parts of chunk_size, else one; with a newline a middle
    range starts a byte early (to see whether the previous chunk ended a
    line) and reads CHUNK_THRESHOLD past its end (to finish its last line).
    As Lithops, an object of 0 or 1 bytes has no parts."""
    if chunk_number:
        rest = obj_size % chunk_number
        size = obj_size // chunk_number + round(rest / chunk_number + 0.5)
    else:
        size = chunk_size or obj_size
    parts: list[tuple[tuple[int, int] | None, int]] = []
    done = 0
    while done < obj_size - 1:
        if obj_size <= size:
            parts.append((None, obj_size))
            size = obj_size
        elif newline is None:
            parts.append(((done, done + size - 1), size))
        elif done + size < obj_size:
            parts.append(((done - 1 if done else 0, done + size + CHUNK_THRESHOLD), size))
        else:
            size = obj_size - done
            parts.append(((done - 1, obj_size - 1), size))
        done += size
    return parts


def partition(storage: Storage, entries: list[dict[str, Any]], chunk_size: int | None,
              chunk_number: int | None, newline: str | None
              ) -> tuple[list[dict[str, Any]], list[int], set[str]]:
    """(one entry per task, the number of parts of each object in order,
    the buckets read) for entries whose "obj" names objects. Raises
    ValueError for a URL or a local path, an entry without "obj", or when
    nothing is found; StorageNoSuchKeyError for a missing object."""
    tasks: list[dict[str, Any]] = []
    parts_per_object: list[int] = []
    buckets: set[str] = set()
    for entry in entries:
        if "obj" not in entry:
            raise ValueError("an obj function's item must give obj, not %r" % (entry,))
        spec = entry["obj"]
        if isinstance(spec, CloudObject):
            spec = "%s://%s/%s" % (spec.backend, spec.bucket, spec.key)
        if not isinstance(spec, str) or spec.startswith(("http://", "https://", "/")):
            raise ValueError("obj %r: gust.lithops reads objects of its storage only "
                             "(\"bucket/prefix/\", \"bucket/key\", \"<backend>://...\" or a "
                             "CloudObject), not URLs or local paths (docs/COMPAT.md)" % (spec,))
        backend, bucket, prefix, name = split_object_url(spec)
        backend = backend or storage.backend
        if name:
            key = prefix + "/" + name if prefix else name
            found = [(key, int(storage.head_object(bucket, key)["content-length"]))]
        else:
            found = [(o["Key"], o["Size"]) for o in
                     storage.list_objects(bucket, prefix + "/" if prefix else None)]
        buckets.add(bucket)
        for key, size in found:
            if key.endswith("/"):
                continue  # a "folder" marker
            parts = chunk_ranges(size, chunk_size, chunk_number, newline)
            for n, (byte_range, csize) in enumerate(parts, 1):
                obj = CloudObject(backend, bucket, key)
                obj.data_byte_range = byte_range
                obj.chunk_size = csize
                obj.part = n
                obj.total_parts = len(parts)
                obj.newline = newline
                tasks.append(dict(entry, obj=obj))
            parts_per_object.append(len(parts))
    if not tasks:
        raise ValueError("no objects found under %s"
                         % ", ".join(repr(str(e["obj"])) for e in entries))
    return tasks, parts_per_object, buckets


def chunk_lines(f: IO[bytes], starts_early: bool, chunk_size: int, newline: str,
                block: int = 256 << 10) -> Iterator[bytes]:
    """A chunk's lines, read from f (the bytes of its range, chunk_ranges)
    block by block: with starts_early the first byte is the previous
    chunk's last, and unless it is the newline the first (partial) line
    belongs to the previous chunk and is skipped; the chunk ends with the
    newline of the line that reaches its chunk_size-th byte (or at the end
    of f). Never holds more than a block and a newline in memory."""
    nl = newline.encode()
    keep = len(nl) - 1  # bytes kept back: a newline may straddle two blocks
    limit = max(chunk_size - 1, 0)  # the line ending at or after this offset is the last
    # base: the offset of buf[0] in the chunk (-1: the early byte). The skipped line ends
    # with the first newline starting at the early byte or after, which is where the
    # previous chunk stopped (for a newline of two bytes too: Lithops compares one byte).
    buf, base, eof = b"", -1 if starts_early else 0, False
    skipping = starts_early
    while True:
        if not eof:
            more = f.read(block)
            eof = not more
            buf += more
        if skipping:
            i = buf.find(nl)
            if i < 0:
                if eof:
                    return
                base, buf = base + len(buf) - keep, buf[len(buf) - keep:] if keep else b""
                continue
            if base + i >= limit:
                return  # the skipped line is also the one that ends this chunk
            base, buf, skipping = base + i + len(nl), buf[i + len(nl):], False
        j = buf.find(nl, max(limit - base, 0))
        if j >= 0:
            yield buf[:j + len(nl)]
            return
        if eof:
            if buf:
                yield buf
            return
        cut = len(buf) - keep
        if cut > 0:
            yield buf[:cut]
            base, buf = base + cut, buf[cut:]


class _IterRaw(io.RawIOBase):
    """An iterator of byte strings as a raw stream; closing it closes source."""

    def __init__(self, parts: Iterator[bytes], source: IO[bytes]) -> None:
        self._parts = parts
        self._source = source
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self._pending:
            self._pending = next(self._parts, b"")
            if not self._pending:
                return 0
        n = min(len(b), len(self._pending))
        b[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def close(self) -> None:
        if not self.closed:
            self._source.close()
        super().close()


def load(storage: Storage, obj: CloudObject) -> None:
    """Sets obj.data_stream to its chunk's data (as Lithops' jobrunner),
    and obj.data_byte_range to the chunk's own bytes."""
    byte_range = getattr(obj, "data_byte_range", None)
    newline = getattr(obj, "newline", "\n")
    chunk = int(getattr(obj, "chunk_size", 0) or 0)
    if byte_range is None:
        obj.data_stream = open_stream(storage, obj.bucket, obj.key, None)
        obj.data_byte_range = (0, chunk - 1)
        return
    source = open_stream(storage, obj.bucket, obj.key, byte_range)
    if newline is None:
        obj.data_stream = source
    else:
        lines = chunk_lines(source, byte_range[0] > 0, chunk, newline)
        obj.data_stream = io.BufferedReader(_IterRaw(lines, source))
    first, last = byte_range
    if last - first > chunk:
        obj.data_byte_range = (first, first + chunk - 1)


def with_injection(func: Callable[..., Any], storage_config: dict[str, Any]
                   ) -> Callable[..., Any]:
    """func called with its Lithops extras: a Storage (storage_config's,
    connected in the task) for a `storage` parameter, and an `obj`
    CloudObject's data loaded first. The wrapper's signature is func's
    without `storage`, so items bind as for func. A closure: cloudpickle
    sends it by value, gust.lithops is imported in the sandbox."""
    params = parameters(func)
    wants_storage = "storage" in params

    def lithops_task(*args: Any, **kwargs: Any) -> Any:
        storage = None
        if wants_storage or isinstance(kwargs.get("obj"), CloudObject):
            storage = Storage(storage_config=storage_config)
        if isinstance(kwargs.get("obj"), CloudObject):
            load(storage, kwargs["obj"])  # type: ignore[arg-type]
        if wants_storage:
            kwargs["storage"] = storage
        return func(*args, **kwargs)

    try:
        sig = inspect.signature(func)
        lithops_task.__signature__ = sig.replace(  # type: ignore[attr-defined]
            parameters=[p for n, p in sig.parameters.items() if n != "storage"])
    except (TypeError, ValueError):
        pass
    lithops_task.__name__ = getattr(func, "__name__", "lithops_task")
    return lithops_task
