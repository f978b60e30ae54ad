"""The S3-compatible object API (issue 16, docs/STORAGE.md) with the real
clients: boto3 (upload_file/download_file of 200 MB, multipart both ways),
both aws CLIs (`aws s3 mb/cp/ls/sync/rm/rb`), curl for malformed requests;
and a kill -9 in the middle of an upload that must leave no torn object."""
import hashlib
import os
import shutil
import signal
import socket
import subprocess

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from gust_e2e import Engine, SignedEngine

KEY, SECRET = "AKIAGUSTS3TEST", "s3-test-secret"
# The v1 CLI is the `aws` first on PATH (pyenv's), v2 is Debian's.
AWS_V2 = "/usr/bin/aws"
_FIRST_AWS = shutil.which("aws")
AWS_V1 = _FIRST_AWS if _FIRST_AWS and os.path.realpath(_FIRST_AWS) != AWS_V2 else None


@pytest.fixture(scope="module")
def eng(tmp_path_factory):
    with SignedEngine.requiring(tmp_path_factory.mktemp("gust-s3"), KEY, SECRET) as e:
        yield e


def client(eng, key=KEY, secret=SECRET):
    return boto3.client("s3", endpoint_url=eng.url + "/s3", region_name="us-east-1",
                        aws_access_key_id=key, aws_secret_access_key=secret,
                        config=Config(retries={"max_attempts": 0}, read_timeout=120))


@pytest.fixture
def s3(eng):
    return client(eng)


_n = [0]


@pytest.fixture
def bucket(s3):
    _n[0] += 1
    name = f"bkt-{os.getpid()}-{_n[0]}"
    s3.create_bucket(Bucket=name)
    return name


def code_of(excinfo):
    return excinfo.value.response["Error"]["Code"]


def test_buckets_are_created_listed_and_deleted_with_s3s_errors(s3):
    s3.create_bucket(Bucket="life-cycle")
    assert "life-cycle" in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    with pytest.raises(ClientError) as e:
        s3.create_bucket(Bucket="life-cycle")
    assert code_of(e) == "BucketAlreadyOwnedByYou"
    s3.head_bucket(Bucket="life-cycle")
    s3.put_object(Bucket="life-cycle", Key="k", Body=b"v")
    with pytest.raises(ClientError) as e:
        s3.delete_bucket(Bucket="life-cycle")
    assert code_of(e) == "BucketNotEmpty"
    s3.delete_object(Bucket="life-cycle", Key="k")
    s3.delete_bucket(Bucket="life-cycle")
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket="life-cycle", Key="k", Body=b"v")
    assert code_of(e) == "NoSuchBucket"
    with pytest.raises(ClientError) as e:
        s3.create_bucket(Bucket="Not_A_Bucket")
    assert code_of(e) == "InvalidBucketName"


def test_objects_keep_bytes_etag_type_metadata_and_serve_ranges(s3, bucket):
    body = bytes(range(256)) * 40
    put = s3.put_object(Bucket=bucket, Key="dir/data.bin", Body=body, ContentType="x/test",
                        Metadata={"color": "blue", "Owner": "me"})
    assert put["ETag"] == '"%s"' % hashlib.md5(body).hexdigest()
    got = s3.get_object(Bucket=bucket, Key="dir/data.bin")
    assert got["Body"].read() == body
    assert got["ContentType"] == "x/test"
    assert got["Metadata"] == {"color": "blue", "owner": "me"}
    head = s3.head_object(Bucket=bucket, Key="dir/data.bin")
    assert head["ContentLength"] == len(body) and head["ETag"] == put["ETag"]
    for spec, want in [("bytes=0-3", body[0:4]), ("bytes=-5", body[-5:]),
                       ("bytes=10000-", body[10000:]), ("bytes=5-999999", body[5:])]:
        part = s3.get_object(Bucket=bucket, Key="dir/data.bin", Range=spec)
        assert part["Body"].read() == want, spec
        assert part["ResponseMetadata"]["HTTPStatusCode"] == 206
        assert part["ContentRange"].endswith("/%d" % len(body))
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="dir/data.bin", Range="bytes=20000-")
    assert code_of(e) == "InvalidRange"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="missing")
    assert code_of(e) == "NoSuchKey"
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="missing")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_keys_with_any_bytes_stay_in_their_bucket(eng, s3, bucket):
    keys = ["../x", "../../../../escape", "a b+c%d&e", "ünïcödé/ключ", "dir/", "q?x=1#frag",
            "./dot", "tab\there", "//double"]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    for key in keys:
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == key.encode(), key
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert sorted(listed) == sorted(keys)
    # Nothing named by a key was created outside the bucket's files.
    for root, _, files in os.walk(eng.state_dir):
        for f in files:
            assert f not in ("x", "escape"), os.path.join(root, f)


def test_listing_with_delimiter_and_pagination(s3, bucket):
    keys = [f"logs/2024/{i:02d}.txt" for i in range(7)] + \
        [f"logs/2025/{i:02d}.txt" for i in range(3)] + [f"top{i}" for i in range(5)] + \
        ["logs/readme"]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Delimiter="/", PaginationConfig={"PageSize": 2})
    got_keys, got_prefixes, n_pages = [], [], 0
    for page in pages:
        n_pages += 1
        assert page["KeyCount"] <= 2
        got_keys += [o["Key"] for o in page.get("Contents", [])]
        got_prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
    assert got_prefixes == ["logs/"]
    assert got_keys == [f"top{i}" for i in range(5)]
    assert n_pages == 3
    nested = s3.list_objects_v2(Bucket=bucket, Prefix="logs/", Delimiter="/")
    assert [p["Prefix"] for p in nested["CommonPrefixes"]] == ["logs/2024/", "logs/2025/"]
    assert [o["Key"] for o in nested["Contents"]] == ["logs/readme"]
    flat = []
    for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix="logs/2024/", PaginationConfig={"PageSize": 3}):
        flat += [o["Key"] for o in page["Contents"]]
    assert flat == sorted(k for k in keys if k.startswith("logs/2024/"))
    after = s3.list_objects_v2(Bucket=bucket, StartAfter="top2")
    assert [o["Key"] for o in after["Contents"]] == ["top3", "top4"]
    v1 = s3.list_objects(Bucket=bucket, Prefix="top", MaxKeys=2)
    assert [o["Key"] for o in v1["Contents"]] == ["top0", "top1"] and v1["IsTruncated"]


def test_copy_and_delete_objects(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"payload", Metadata={"a": "1"},
                  ContentType="text/plain")
    s3.copy_object(Bucket=bucket, Key="same-meta", CopySource={"Bucket": bucket, "Key": "src"})
    got = s3.get_object(Bucket=bucket, Key="same-meta")
    assert got["Body"].read() == b"payload" and got["Metadata"] == {"a": "1"}
    s3.copy_object(Bucket=bucket, Key="new meta", CopySource=f"{bucket}/src",
                   MetadataDirective="REPLACE", Metadata={"b": "2"}, ContentType="x/y")
    head = s3.head_object(Bucket=bucket, Key="new meta")
    assert head["Metadata"] == {"b": "2"} and head["ContentType"] == "x/y"
    assert s3.get_object_tagging(Bucket=bucket, Key="new meta")["TagSet"] == []
    with pytest.raises(ClientError) as e:
        s3.put_object_acl(Bucket=bucket, Key="new meta", ACL="private")
    assert code_of(e) == "NotImplemented"
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="d", CopySource={"Bucket": bucket, "Key": "nope"})
    assert code_of(e) == "NoSuchKey"
    out = s3.delete_objects(Bucket=bucket, Delete={"Objects": [
        {"Key": "src"}, {"Key": "same-meta"}, {"Key": "never-was"}]})
    assert sorted(d["Key"] for d in out["Deleted"]) == ["never-was", "same-meta", "src"]
    quiet = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "new meta"}],
                                                     "Quiet": True})
    assert "Deleted" not in quiet
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_multipart_errors_and_abort(s3, bucket):
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    e1 = s3.upload_part(Bucket=bucket, Key="mp", UploadId=up, PartNumber=1, Body=b"small")["ETag"]
    e2 = s3.upload_part(Bucket=bucket, Key="mp", UploadId=up, PartNumber=2, Body=b"tail")["ETag"]
    parts = s3.list_parts(Bucket=bucket, Key="mp", UploadId=up)["Parts"]
    assert [(p["PartNumber"], p["Size"]) for p in parts] == [(1, 5), (2, 4)]
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=up, MultipartUpload={
            "Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
    assert code_of(e) == "EntityTooSmall"
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=up, MultipartUpload={
            "Parts": [{"PartNumber": 1, "ETag": '"0000"'}]})
    assert code_of(e) == "InvalidPart"
    one = s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=up, MultipartUpload={
        "Parts": [{"PartNumber": 2, "ETag": e2}]})
    md5 = hashlib.md5(bytes.fromhex(e2.strip('"'))).hexdigest()
    assert one["ETag"] == f'"{md5}-1"'
    assert s3.get_object(Bucket=bucket, Key="mp")["Body"].read() == b"tail"
    up2 = s3.create_multipart_upload(Bucket=bucket, Key="gone")["UploadId"]
    s3.abort_multipart_upload(Bucket=bucket, Key="gone", UploadId=up2)
    with pytest.raises(ClientError) as e:
        s3.upload_part(Bucket=bucket, Key="gone", UploadId=up2, PartNumber=1, Body=b"x")
    assert code_of(e) == "NoSuchUpload"


def test_upload_and_download_200_mb_file_multipart_both_ways(s3, bucket, tmp_path):
    src = tmp_path / "big.bin"
    with open(src, "wb") as f:
        for _ in range(200):
            f.write(os.urandom(1 << 20))
    s3.upload_file(str(src), bucket, "big.bin")
    head = s3.head_object(Bucket=bucket, Key="big.bin")
    assert head["ContentLength"] == 200 << 20
    assert head["ETag"].endswith('-25"'), head["ETag"]  # 25 parts of 8 MB: multipart
    dst = tmp_path / "back.bin"
    s3.download_file(bucket, "big.bin", str(dst))
    assert file_sha256(dst) == file_sha256(src)
    # One GetObject of all 200 MB: streamed from the file by the engine (http::FileBody).
    h = hashlib.sha256()
    for chunk in s3.get_object(Bucket=bucket, Key="big.bin")["Body"].iter_chunks(1 << 20):
        h.update(chunk)
    assert h.hexdigest() == file_sha256(src)
    s3.delete_object(Bucket=bucket, Key="big.bin")


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@pytest.mark.parametrize("cli", [AWS_V1, AWS_V2], ids=["aws-v1", "aws-v2"])
def test_aws_cli_cp_ls_sync_rm(eng, cli, tmp_path):
    if cli is None or not os.path.exists(cli):
        pytest.skip(f"no aws CLI at {cli}")
    env = dict(os.environ, AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET,
               AWS_DEFAULT_REGION="us-east-1", AWS_CONFIG_FILE=str(tmp_path / "none"),
               AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"), AWS_PAGER="")

    def aws(*args):
        done = subprocess.run([cli, "--endpoint-url", eng.url + "/s3", "s3", *args], env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done.stdout

    name = "cli-" + os.path.basename(cli) + ("1" if cli == AWS_V1 else "2")
    aws("mb", f"s3://{name}")
    local = tmp_path / "tree"
    (local / "sub").mkdir(parents=True)
    (local / "a.txt").write_bytes(b"alpha")
    (local / "sub" / "b.txt").write_bytes(b"beta")
    with open(local / "big.bin", "wb") as f:
        f.write(os.urandom(20 << 20))  # over the CLIs' 8 MB threshold: multipart
    aws("cp", str(local / "a.txt"), f"s3://{name}/one/a.txt")
    assert "a.txt" in aws("ls", f"s3://{name}/one/")
    aws("sync", str(local), f"s3://{name}/tree")
    listing = aws("ls", "--recursive", f"s3://{name}/tree")
    for rel in ("tree/a.txt", "tree/sub/b.txt", "tree/big.bin"):
        assert rel in listing, listing
    back = tmp_path / "back"
    aws("sync", f"s3://{name}/tree", str(back))
    for rel in ("a.txt", "sub/b.txt", "big.bin"):
        assert file_sha256(back / rel) == file_sha256(local / rel), rel
    # A second sync finds nothing to do.
    assert aws("sync", str(local), f"s3://{name}/tree").strip() == ""
    aws("cp", f"s3://{name}/tree/big.bin", f"s3://{name}/copied.bin")
    aws("cp", f"s3://{name}/copied.bin", str(tmp_path / "copied.bin"))
    assert file_sha256(tmp_path / "copied.bin") == file_sha256(local / "big.bin")
    aws("rm", "--recursive", f"s3://{name}/")
    assert aws("ls", "--recursive", f"s3://{name}/").strip() == ""
    aws("rb", f"s3://{name}")


def test_signatures_are_checked(eng, bucket):
    with pytest.raises(ClientError) as e:
        client(eng, secret="wrong").list_objects_v2(Bucket=bucket)
    assert code_of(e) == "SignatureDoesNotMatch"
    with pytest.raises(ClientError) as e:
        client(eng, key="AKIAUNKNOWN").list_buckets()
    assert code_of(e) == "InvalidAccessKeyId"
    status, _, body = Engine.request(eng, "GET", f"/s3/{bucket}")  # unsigned
    assert status == 403 and b"<Code>AccessDenied</Code>" in body
    # Presigned URLs are SigV4's (boto3 1.26 presigns S3 with SigV2 unless told s3v4).
    s3v4 = boto3.client("s3", endpoint_url=eng.url + "/s3", region_name="us-east-1",
                        aws_access_key_id=KEY, aws_secret_access_key=SECRET,
                        config=Config(signature_version="s3v4"))
    s3v4.put_object(Bucket=bucket, Key="shared file", Body=b"for curl")
    url = s3v4.generate_presigned_url("get_object", Params={"Bucket": bucket,
                                                            "Key": "shared file"})
    done = subprocess.run(["curl", "-s", url], capture_output=True, timeout=30)
    assert done.stdout == b"for curl"
    done = subprocess.run(["curl", "-s", url.replace("shared", "other")], capture_output=True,
                          timeout=30)
    assert b"<Code>SignatureDoesNotMatch</Code>" in done.stdout


@pytest.fixture(scope="module")
def anon(tmp_path_factory):
    e = Engine(tmp_path_factory.mktemp("gust-s3-anon"))
    e.start()
    yield e
    e.stop()


def curl(eng, *args):
    done = subprocess.run(["curl", "-s", "-w", "\n%{http_code}", *args], capture_output=True,
                          timeout=30)
    body, _, code = done.stdout.rpartition(b"\n")
    return int(code), body


def test_anonymous_without_credentials_and_malformed_requests(anon):
    s3 = client(anon, key="anything", secret="anything")
    s3.create_bucket(Bucket="anon")
    s3.put_object(Bucket="anon", Key="k", Body=b"v")
    base = anon.url + "/s3/anon"
    assert curl(anon, base + "/k") == (200, b"v")
    code, body = curl(anon, "-X", "POST", "--data-binary", "<Delete><Object><Key>k</Key>",
                      base + "?delete")
    assert code == 400 and b"<Code>MalformedXML</Code>" in body, body
    code, body = curl(anon, "-X", "PUT", "-H", "Content-MD5: not-base64!", "--data-binary", "x",
                      base + "/k2")
    assert code == 400 and b"<Code>InvalidDigest</Code>" in body, body
    code, body = curl(anon, "-X", "PUT", "-H", "Content-MD5: AAAAAAAAAAAAAAAAAAAAAA==",
                      "--data-binary", "x", base + "/k2")
    assert code == 400 and b"<Code>BadDigest</Code>" in body, body
    code, body = curl(anon, "-X", "PUT", base + "/k3?partNumber=0&uploadId=zz")
    assert code == 400 and b"<Code>InvalidArgument</Code>" in body, body
    code, body = curl(anon, base + "?list-type=2&max-keys=lots")
    assert code == 400 and b"<Code>InvalidArgument</Code>" in body, body
    code, body = curl(anon, "-X", "PATCH", base + "/k")
    assert code == 501 and b"<Code>NotImplemented</Code>" in body, body
    code, body = curl(anon, "-X", "POST", "--data-binary",
                      "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>x</ETag>"
                      "</Part></CompleteMultipartUpload>", base + "/k?uploadId=../../x")
    assert code == 404 and b"<Code>NoSuchUpload</Code>" in body, body
    # The engine still serves.
    assert s3.get_object(Bucket="anon", Key="k")["Body"].read() == b"v"


def test_kill_9_mid_upload_leaves_no_torn_object(tmp_path):
    eng = Engine(tmp_path / "state")
    eng.start()
    try:
        s3 = client(eng, key="a", secret="b")
        s3.create_bucket(Bucket="durable")
        old = os.urandom(1 << 20)
        s3.put_object(Bucket="durable", Key="obj", Body=old)
        # A PUT of 64 MB that overwrites obj, killed with half its body sent.
        size = 64 << 20
        sock = socket.create_connection(("127.0.0.1", eng.port))
        sock.sendall(b"PUT /s3/durable/obj HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                     % size)
        chunk = os.urandom(1 << 20)
        for _ in range(32):
            sock.sendall(chunk)
        # A multipart upload with a part in.
        up = s3.create_multipart_upload(Bucket="durable", Key="mp")["UploadId"]
        s3.upload_part(Bucket="durable", Key="mp", UploadId=up, PartNumber=1,
                       Body=os.urandom(5 << 20))
        # And a whole 64 MB PUT of `new` over obj, killed as its last byte is sent: the engine
        # is then reading it, writing it to disk or renaming it into place.
        new = os.urandom(1 << 20) * 64
        whole = socket.create_connection(("127.0.0.1", eng.port))
        whole.sendall(b"PUT /s3/durable/obj HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                      % len(new) + new)
        eng.proc.send_signal(signal.SIGKILL)
        eng.proc.wait()
        sock.close()
        whole.close()
        eng.start()
        s3 = client(eng, key="a", secret="b")
        got = s3.get_object(Bucket="durable", Key="obj")["Body"].read()
        assert got == old or got == new, "torn object: %d bytes" % len(got)
        assert [o["Key"] for o in s3.list_objects_v2(Bucket="durable")["Contents"]] == ["obj"]
        with pytest.raises(ClientError) as e:
            s3.head_object(Bucket="durable", Key="mp")
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
        # The upload survives the restart and completes.
        e1 = s3.upload_part(Bucket="durable", Key="mp", UploadId=up, PartNumber=1,
                            Body=b"p" * (5 << 20))["ETag"]
        s3.complete_multipart_upload(Bucket="durable", Key="mp", UploadId=up, MultipartUpload={
            "Parts": [{"PartNumber": 1, "ETag": e1}]})
        assert s3.head_object(Bucket="durable", Key="mp")["ContentLength"] == 5 << 20
        tmp = os.path.join(eng.state_dir, "objects", "buckets", "durable", "tmp")
        assert os.listdir(tmp) == []
    finally:
        eng.stop()
