"""gust.storage (python/gust/storage.py) against real engines: one with
credentials (every request SigV4-signed for service s3, a wrong secret
refused) and the session's anonymous one. Each behaviour is checked against
the engine's own answer (boto3 reads back what gust.storage wrote, and the
other way round), so a client that only agreed with itself would fail."""
import hashlib
import io
import os
import socket
import threading

import boto3
import pytest
from botocore.config import Config

from gust import storage
from gust_e2e import SignedEngine

KEY, SECRET = "AKIAGUSTSTORAGE", "storage-client-secret"


@pytest.fixture(scope="module")
def signed(tmp_path_factory):
    with SignedEngine.requiring(tmp_path_factory.mktemp("gust-storage"), KEY, SECRET) as e:
        yield e


@pytest.fixture(scope="module", params=["signed", "anonymous"])
def eng(request, signed, engine):
    return signed if request.param == "signed" else engine


@pytest.fixture
def st(eng):
    return storage.Client(eng.url, credentials=(KEY, SECRET))


@pytest.fixture
def boto(eng):
    return boto3.client("s3", endpoint_url=eng.url + "/s3", region_name="us-east-1",
                        aws_access_key_id=KEY, aws_secret_access_key=SECRET,
                        config=Config(retries={"max_attempts": 0}))


_n = [0]


@pytest.fixture
def bucket(st):
    _n[0] += 1
    name = f"st-{os.getpid()}-{_n[0]}"
    st.create_bucket(name)
    return name


def test_buckets_create_list_head_delete_with_named_errors(st, bucket):
    assert bucket in st.list_buckets()
    with pytest.raises(storage.StorageError) as e:
        st.create_bucket(bucket)
    assert e.value.code == "BucketAlreadyOwnedByYou"
    st.create_bucket(bucket, exist_ok=True)
    st.put(bucket, "k", b"v")
    with pytest.raises(storage.StorageError) as e:
        st.delete_bucket(bucket)
    assert e.value.code == "BucketNotEmpty" and bucket in str(e.value)
    st.delete(bucket, "k")
    st.delete_bucket(bucket)
    assert not st.bucket_exists(bucket)
    with pytest.raises(storage.NoSuchBucket) as e:
        st.head_bucket(bucket)
    assert e.value.bucket == bucket and bucket in str(e.value)
    with pytest.raises(storage.NoSuchBucket):
        st.put(bucket, "k", b"v")


def test_put_get_range_head_with_metadata(st, boto, bucket):
    etag = st.put(bucket, "dir/a b+c.txt", "0123456789", content_type="text/plain",
                  metadata={"owner": "ana"})
    assert etag == hashlib.md5(b"0123456789").hexdigest()
    got = boto.get_object(Bucket=bucket, Key="dir/a b+c.txt")  # what the engine stored
    assert got["Body"].read() == b"0123456789" and got["Metadata"] == {"owner": "ana"}
    assert st.get(bucket, "dir/a b+c.txt") == b"0123456789"
    assert st.get(bucket, "dir/a b+c.txt", range=(1, 4)) == b"1234"
    assert st.get(bucket, "dir/a b+c.txt", range=(7, None)) == b"789"
    assert st.get(bucket, "dir/a b+c.txt", range="bytes=-2") == b"89"
    info = st.head(bucket, "dir/a b+c.txt")
    assert (info.size, info.etag, info.content_type, info.metadata) == (
        10, etag, "text/plain", {"owner": "ana"})
    boto.put_object(Bucket=bucket, Key="from-boto", Body=b"written by boto3")
    assert st.get(bucket, "from-boto") == b"written by boto3"
    with pytest.raises(storage.StorageError) as e:
        st.get(bucket, "from-boto", range=(100, 200))
    assert e.value.code == "InvalidRange" and e.value.status == 416
    with pytest.raises(ValueError, match="first must be"):
        st.get(bucket, "from-boto", range=(5, 2))


def test_missing_keys_and_buckets_are_named(st, bucket):
    with pytest.raises(storage.NoSuchKey) as e:
        st.get(bucket, "nope/x")
    assert (e.value.bucket, e.value.key) == (bucket, "nope/x")
    assert "nope/x" in str(e.value) and bucket in str(e.value)
    with pytest.raises(storage.NoSuchKey) as e:
        st.head(bucket, "nope/x")  # a HEAD has no body: the client names it
    assert e.value.key == "nope/x"
    with pytest.raises(storage.NoSuchBucket) as e:
        st.head("no-such-bucket-here", "x")
    assert e.value.bucket == "no-such-bucket-here"
    with pytest.raises(storage.NoSuchKey):
        st.open(bucket, "nope")
    assert not st.exists(bucket, "nope")
    st.delete(bucket, "nope")  # as S3: deleting a missing key is no error


def test_list_prefix_delimiter_and_pagination(st, boto, bucket):
    keys = [f"p/{i:03d}" for i in range(25)] + ["p/sub/x", "p/sub/y", "q/z"]
    for k in keys:
        st.put(bucket, k, k)
    assert [o.key for o in st.list(bucket, prefix="p/", page_size=7)] == sorted(keys[:27])
    page = st.list_page(bucket, prefix="p/", delimiter="/", max_keys=10)
    assert len(page.objects) == 10 and page.next_token
    rest = st.list_page(bucket, prefix="p/", delimiter="/", token=page.next_token)
    assert [o.key for o in page.objects + rest.objects] == keys[:25]
    assert rest.common_prefixes == ["p/sub/"] and rest.next_token is None
    assert st.list_prefixes(bucket) == ["p/", "q/"]
    objs = {o.key: o for o in st.list(bucket)}
    listed = boto.list_objects_v2(Bucket=bucket, Prefix="q/")["Contents"][0]
    assert objs["q/z"].etag == listed["ETag"].strip('"') and objs["q/z"].size == 3


def test_copy_and_delete_many(st, boto, bucket, monkeypatch):
    st.put(bucket, "src", b"payload", metadata={"m": "1"})
    st.copy(bucket, "src", bucket, "dst/copy")
    assert st.get(bucket, "dst/copy") == b"payload"
    assert st.head(bucket, "dst/copy").metadata == {"m": "1"}
    monkeypatch.setattr(storage, "DELETE_BATCH", 4)  # 3 DeleteObjects requests, not 1000 puts
    for i in range(10):
        boto.put_object(Bucket=bucket, Key=f"many/{i}", Body=b"")
    assert st.delete_many(bucket, [f"many/{i}" for i in range(10)] + ["absent"]) == []
    assert list(st.list(bucket, prefix="many/")) == []
    with pytest.raises(storage.NoSuchKey):
        st.copy(bucket, "absent", bucket, "x")


def test_big_objects_go_multipart_and_stream_back(st, boto, bucket, monkeypatch):
    # Parts of 5 MiB (S3's minimum) keep the test's data small: 12 MiB in 3 parts.
    monkeypatch.setattr(storage, "PART_SIZE", 5 << 20)
    monkeypatch.setattr(storage, "MULTIPART_THRESHOLD", 5 << 20)
    data = os.urandom(1 << 20) * 12
    etag = st.put(bucket, "big-file", io.BytesIO(data))
    assert etag.endswith("-3")  # S3's multipart ETag: the engine assembled 3 parts
    assert st.put(bucket, "big-bytes", data) == etag
    assert boto.head_object(Bucket=bucket, Key="big-file")["ContentLength"] == len(data)
    digest = hashlib.sha256()
    with st.open(bucket, "big-file") as f:
        while True:
            block = f.read(1 << 20)
            if not block:
                break
            digest.update(block)
    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()
    with st.open(bucket, "big-bytes", range=(len(data) - 10, None)) as f:
        assert f.read() == data[-10:]
    st.put(bucket, "lines", b"a\nbb\nccc\n")
    with st.open(bucket, "lines") as f:
        assert list(f) == [b"a\n", b"bb\n", b"ccc\n"]
    # A failed part aborts its upload: no upload is left behind.
    with pytest.raises(storage.NoSuchBucket):
        st.put("no-such-bucket-here", "k", io.BytesIO(data))


def test_upload_and_download_file(st, bucket, tmp_path):
    src = tmp_path / "in.bin"
    src.write_bytes(os.urandom(300_000))
    st.upload_file(str(src), bucket, "f")
    st.download_file(bucket, "f", str(tmp_path / "out.bin"))
    assert (tmp_path / "out.bin").read_bytes() == src.read_bytes()


def test_bad_input_is_a_specific_error(st):
    with pytest.raises(ValueError, match="bucket name"):
        st.get("", "k")
    with pytest.raises(ValueError, match="object key"):
        st.get("b", "")
    with pytest.raises(TypeError, match="body must be"):
        st.put("b", "k", 42)
    with pytest.raises(storage.StorageError) as e:
        st.create_bucket("Bad_Name!")
    assert e.value.code == "InvalidBucketName"


def test_a_wrong_secret_is_refused(signed):
    bad = storage.Client(signed.url, credentials=(KEY, "wrong"))
    with pytest.raises(storage.StorageError) as e:
        bad.list_buckets()
    assert e.value.status == 403 and e.value.code == "SignatureDoesNotMatch"


def _pump(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


@pytest.fixture
def unix_relay(engine, tmp_path):
    """A unix socket relayed byte for byte to the anonymous engine's port: what
    a task's GUST_ENDPOINT is, without the channel's own checks."""
    path = str(tmp_path / "engine.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(8)

    def serve():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", engine.port))
            for a, b in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=_pump, args=(a, b), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    yield "unix://" + path
    listener.close()


def test_over_a_unix_socket_as_in_a_sandbox(unix_relay, monkeypatch):
    """As in a task: GUST_ENDPOINT a unix socket, requests unsigned (the
    channel knows the caller by its pid), the same API."""
    monkeypatch.delenv("GUST_URL", raising=False)
    monkeypatch.setenv("GUST_ENDPOINT", unix_relay)
    st = storage.Client()
    assert st.url == unix_relay and st.transport.credentials is None
    st.create_bucket("via-unix", exist_ok=True)
    st.put("via-unix", "k", b"over the socket")
    assert st.get("via-unix", "k", range=(5, 7)) == b"the"
    with st.open("via-unix", "k") as f:
        assert f.read() == b"over the socket"
    assert [o.key for o in st.list("via-unix")] == ["k"]
    st.delete("via-unix", "k")
    st.delete_bucket("via-unix")
