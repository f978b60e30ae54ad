"""What the shuffle examples (wordcount.py, matmul.py) share: where their
objects live and what runs their tasks, each in two kinds so that the same
task functions run on gust and, as the benchmark's peer, on one machine.

    store = open_store(("bucket", "shuffle"))   # gust.storage, on the client or in a task
    store = open_store(("dir", "/tmp/x"))        # files in a directory (the peer)
    store.put("k", b"..."); store.get("k"); with store.open("k") as f: ...
    store.delete_prefix("run-1/")

    runner = GustRunner(gust.FunctionExecutor(...), "shuffle", memory=512)
    runner = PoolRunner(multiprocessing.Pool(2))
    results = runner.map(fn, [(arg, ...), ...])  # fn(*item) for each item, in order

A store spec (a tuple) travels to each task rather than a store: a task
opens its own (gust.storage.Client() in a sandbox goes through the sandbox
channel, docs/STORAGE.md "From a function"). Task functions of these modules
are pickled by value (cloudpickle), so a sandbox needs none of these files.
"""
import os
import sys

import cloudpickle

cloudpickle.register_pickle_by_value(sys.modules[__name__])


class BucketStore:
    """Objects in one bucket of the engine's object store (gust.storage)."""

    def __init__(self, bucket, client=None):
        from gust import storage
        self.bucket = bucket
        self.client = client or storage.Client()

    def put(self, key, data):
        self.client.put(self.bucket, key, data)

    def get(self, key):
        return self.client.get(self.bucket, key)

    def open(self, key):
        return self.client.open(self.bucket, key)

    def delete_prefix(self, prefix):
        """Deletes every object under prefix; raises if one could not be."""
        keys = [o.key for o in self.client.list(self.bucket, prefix=prefix)]
        failed = self.client.delete_many(self.bucket, keys)
        if failed:
            raise RuntimeError("could not delete %d objects of %r, e.g. %r"
                               % (len(failed), self.bucket, failed[0]))


class DirStore:
    """Objects as files under a directory (keys may hold '/'); written to a
    temporary name and renamed, as the engine's store commits an object."""

    def __init__(self, root):
        self.root = root

    def _path(self, key):
        return os.path.join(self.root, key)

    def put(self, key, data):
        path = self._path(key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path + ".tmp", "wb") as f:
            f.write(data)
        os.rename(path + ".tmp", path)

    def get(self, key):
        with open(self._path(key), "rb") as f:
            return f.read()

    def open(self, key):
        return open(self._path(key), "rb")

    def delete_prefix(self, prefix):
        import shutil
        path = self._path(prefix)
        if os.path.isdir(path):
            shutil.rmtree(path)


def open_store(spec):
    """The store of a spec: ("bucket", name) or ("dir", path)."""
    kind, where = spec
    if kind == "bucket":
        return BucketStore(where)
    if kind == "dir":
        return DirStore(where)
    raise ValueError("a store spec is ('bucket', name) or ('dir', path), not %r" % (spec,))


def run_on_gust(url, bucket, concurrency, work):
    """Returns work(GustRunner) run on the engine at url (None: the client's default) in
    bucket, which is made if missing and then removed again."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                    "python"))
    import gust
    from gust import storage
    if url:  # the client's BucketStores (storage.Client()) go to the same engine
        os.environ["GUST_URL"] = url
    client = storage.Client(url)
    made = not client.bucket_exists(bucket)
    client.create_bucket(bucket, exist_ok=True)
    try:
        return work(GustRunner(gust.FunctionExecutor(url=url, concurrency=concurrency), bucket))
    finally:
        if made:
            client.delete_bucket(bucket)


class GustRunner:
    """Runs a stage's tasks as one gust map granted the bucket (read-write),
    one item per sandbox round trip (chunksize=1: each task is seconds of work)."""

    name = "gust"

    def __init__(self, executor, bucket, memory=512):
        self.executor = executor
        self.bucket = bucket
        self.memory = memory

    def map(self, fn, items):
        fs = self.executor.map(fn, list(items), chunksize=1, memory=self.memory,
                               buckets=[self.bucket])
        return self.executor.get_result(fs)


class PoolRunner:
    """Runs a stage's tasks on a multiprocessing.Pool (the peer)."""

    name = "multiprocessing"

    def __init__(self, pool):
        self.pool = pool

    def map(self, fn, items):
        return self.pool.starmap(fn, list(items), chunksize=1)


def parse_size(text):
    """Bytes of "8M", "1G", "512K" or a plain number (binary units)."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = str(text).strip().upper().rstrip("B").rstrip("I")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)
