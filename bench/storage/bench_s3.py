"""The S3 API's cost (issue 16): PutObject/GetObject throughput of one 200 MB
object and ops/s of 4 KB objects through boto3 and through gust.storage
(python/gust/storage.py: 16 MiB parts one after the other, a streamed GET)
against an engine, next to the same bytes written (temp file, fsync, rename,
as the store does) and read directly on the same disk in the same run: the
peers. --runs runs of each, interleaved; min/median/max.

    GUST_BIN=build/bin /usr/bin/python3 bench/storage/bench_s3.py [--runs 3] [--small 300]
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
import common  # noqa: E402 -- sys.path set above

import boto3  # noqa: E402 -- after the path, as the other imports
from botocore.config import Config  # noqa: E402 -- likewise

sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))
from gust import storage  # noqa: E402 -- python/ is on the path from here

BIG = 200 << 20
SMALL = 4096


def direct_put(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)


def direct_get(path):
    with open(path, "rb") as f:
        return f.read()


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def gust_runs(st, bucket, big, small, n_small):
    """The same operations through gust.storage."""
    out = {}
    out["gust_put_big_MBps"] = BIG / 2**20 / timed(lambda: st.put(bucket, "gbig", big))

    def get_big():
        with st.open(bucket, "gbig") as f:
            while f.read(1 << 20):
                pass
    out["gust_get_big_MBps"] = BIG / 2**20 / timed(get_big)

    def small_puts():
        for i in range(n_small):
            st.put(bucket, f"gsmall/{i}", small)

    def small_gets():
        for i in range(n_small):
            st.get(bucket, f"gsmall/{i}")
    out["gust_put_small_ops"] = n_small / timed(small_puts)
    out["gust_get_small_ops"] = n_small / timed(small_gets)
    return out


def one_run(s3, bucket, scratch, big, small, n_small):
    out = {}
    # Single 200 MB PutObject would exceed the request limit: put it as
    # upload_fileobj does (8 MB parts), read it with one GetObject.
    from boto3.s3.transfer import TransferConfig
    cfg = TransferConfig(max_concurrency=4)
    import io
    out["s3_put_big_MBps"] = BIG / 2**20 / timed(
        lambda: s3.upload_fileobj(io.BytesIO(big), bucket, "big", Config=cfg))
    out["s3_get_big_MBps"] = BIG / 2**20 / timed(
        lambda: s3.get_object(Bucket=bucket, Key="big")["Body"].read())
    path = os.path.join(scratch, "big")
    out["disk_put_big_MBps"] = BIG / 2**20 / timed(lambda: direct_put(path, big))
    out["disk_get_big_MBps"] = BIG / 2**20 / timed(lambda: direct_get(path))

    def s3_small_puts():
        for i in range(n_small):
            s3.put_object(Bucket=bucket, Key=f"small/{i}", Body=small)

    def s3_small_gets():
        for i in range(n_small):
            s3.get_object(Bucket=bucket, Key=f"small/{i}")["Body"].read()

    def disk_small_puts():
        for i in range(n_small):
            direct_put(os.path.join(scratch, f"s{i}"), small)

    def disk_small_gets():
        for i in range(n_small):
            direct_get(os.path.join(scratch, f"s{i}"))

    out["s3_put_small_ops"] = n_small / timed(s3_small_puts)
    out["s3_get_small_ops"] = n_small / timed(s3_small_gets)
    out["disk_put_small_ops"] = n_small / timed(disk_small_puts)
    out["disk_get_small_ops"] = n_small / timed(disk_small_gets)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--small", type=int, default=300, help="4 KB objects per run")
    args = ap.parse_args()
    print("machine:", common.machine())
    print("load before:", open("/proc/loadavg").read().strip())
    big = os.urandom(BIG)
    small = os.urandom(SMALL)
    with tempfile.TemporaryDirectory(dir=os.environ.get("GUST_BENCH_DIR")) as d:
        scratch = os.path.join(d, "direct")
        os.makedirs(scratch)
        with common.Engine(os.path.join(d, "state")) as eng:
            s3 = boto3.client("s3", endpoint_url=eng.url + "/s3", region_name="us-east-1",
                              aws_access_key_id="k", aws_secret_access_key="s",
                              config=Config(retries={"max_attempts": 0}, read_timeout=300))
            s3.create_bucket(Bucket="bench")
            st = storage.Client(eng.url, credentials=("k", "s"))  # signed, as boto3's
            runs = [dict(one_run(s3, "bench", scratch, big, small, args.small),
                         **gust_runs(st, "bench", big, small, args.small))
                    for _ in range(args.runs)]
    print("load after:", open("/proc/loadavg").read().strip())
    print(f"{'measure':22} {'min':>9} {'median':>9} {'max':>9}")
    for name in runs[0]:
        values = [r[name] for r in runs]
        print(f"{name:22} {min(values):9.1f} {statistics.median(values):9.1f} "
              f"{max(values):9.1f}")
    subprocess.run(["df", "-h", d if os.path.exists(d) else "/tmp"], check=False)


if __name__ == "__main__":
    main()
