"""HTTPS (issue 11): `gust up --tls-cert --tls-key` serves the Lambda API,
the /v1 API and web apps over TLS, with credentials on, to the real clients:
curl --cacert, boto3 verify=, the aws CLI v1 and v2 --ca-bundle, the gust CLI
and the Python client (GUST_CA_BUNDLE). Each refuses an engine whose
certificate it was not told to trust; plain HTTP to the port gets a 400 that
says so; a bad certificate or key stops `gust up` naming the file."""
import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request

import boto3
import botocore.exceptions
import cloudpickle
import pytest
from botocore.config import Config

import gust
from gust import transport
from gust_e2e import GUST, SignedEngine, free_port, make_certificate

cloudpickle.register_pickle_by_value(sys.modules[__name__])

KEY = "GKTLSTESTKEY00000001"
SECRET = "tls/secret+key=0123456789abcdefghijklmnop"
HANDLER = ('def handler(event, context):\n'
           '    return {"statusCode": 200, "body": "hi " + event.get("rawPath", "?")}\n')


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("gust-tls-certs"))
    return {"engine": make_certificate(d, "engine", "IP:127.0.0.1,DNS:localhost"),
            "other": make_certificate(d, "other", "IP:127.0.0.1")}


@pytest.fixture(scope="module")
def eng(tmp_path_factory, certs):
    cert, key = certs["engine"]
    e = SignedEngine(tmp_path_factory.mktemp("gust-tls"), credentials=(KEY, SECRET), tls_ca=cert,
                     extra_args=["--keep-alive", "60s", "--access-key", KEY, "--secret-key", SECRET,
                                 "--tls-cert", cert, "--tls-key", key])
    e.start()
    e.create("tls-hello", {"app.py": HANDLER})
    yield e
    e.stop()


def client_env(**extra):
    """An environment without the caller's AWS settings, signing with KEY."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GUST_"))}
    env.update(AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null",
               AWS_DEFAULT_REGION="us-east-1", AWS_PAGER="", AWS_ACCESS_KEY_ID=KEY,
               AWS_SECRET_ACCESS_KEY=SECRET)
    env.update(extra)
    return env


def test_the_engine_says_it_serves_https(eng):
    assert eng.url.startswith("https://")
    assert "gust engine listening on https://127.0.0.1:%d" % eng.port in eng.log()
    assert "tls: on (certificate " in eng.log()


def curl(eng, *args, path="/2015-03-31/functions/"):
    out = subprocess.run(["curl", "-sS", "-o", "-", "-w", "\n%{http_code}", *args,
                          eng.url + path], capture_output=True, text=True, timeout=60)
    body, _, code = out.stdout.rpartition("\n")
    return out.returncode, code, body, out.stderr


def test_curl_with_cacert(eng, certs):
    sigv4 = ["--aws-sigv4", "aws:amz:us-east-1:lambda", "--user", f"{KEY}:{SECRET}"]
    rc, code, body, err = curl(eng, "--cacert", certs["engine"][0], *sigv4)
    assert (rc, code) == (0, "200"), err
    assert "tls-hello" in body
    # Not trusted: curl refuses before sending anything (exit 60).
    rc, code, body, err = curl(eng, "--cacert", certs["other"][0], *sigv4)
    assert rc == 60, (rc, err)
    # Web apps over HTTPS too (public: no signature).
    rc, code, body, err = curl(eng, "--cacert", certs["engine"][0], path="/web/tls-hello/page")
    assert (rc, code, body) == (0, "200", "hi /page"), err


def lam(eng, verify):
    return boto3.client("lambda", endpoint_url=eng.url, region_name="us-east-1",
                        aws_access_key_id=KEY, aws_secret_access_key=SECRET, verify=verify,
                        config=Config(retries={"max_attempts": 0}, connect_timeout=5,
                                      read_timeout=120))


def test_boto3_verify(eng, certs):
    client = lam(eng, verify=certs["engine"][0])
    out = client.invoke(FunctionName="tls-hello", Payload=b'{"rawPath": "/boto3"}')
    assert json.loads(out["Payload"].read())["body"] == "hi /boto3"
    with pytest.raises(botocore.exceptions.SSLError):
        lam(eng, verify=True).list_functions()  # the system's CAs do not know it
    with pytest.raises(botocore.exceptions.SSLError):
        lam(eng, verify=certs["other"][0]).list_functions()


@pytest.mark.parametrize("aws", [shutil.which("aws"), "/usr/bin/aws"], ids=["v1-on-path", "v2"])
def test_aws_cli_ca_bundle(eng, certs, aws):
    if not aws or not os.path.exists(aws):
        pytest.skip("no aws CLI at %r" % aws)
    cmd = [aws, "lambda", "list-functions", "--endpoint-url", eng.url, "--output", "json"]
    ok = subprocess.run(cmd + ["--ca-bundle", certs["engine"][0]], capture_output=True,
                        text=True, timeout=120, env=client_env())
    assert ok.returncode == 0, ok.stderr
    assert any(f["FunctionName"] == "tls-hello" for f in json.loads(ok.stdout)["Functions"])
    via_env = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                             env=client_env(AWS_CA_BUNDLE=certs["engine"][0]))
    assert via_env.returncode == 0, via_env.stderr
    bad = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=client_env())
    assert bad.returncode != 0
    assert "CERTIFICATE_VERIFY_FAILED" in bad.stderr or "certificate verify failed" in bad.stderr, \
        bad.stderr


def run_gust(*args, env):
    return subprocess.run([GUST] + list(args), capture_output=True, text=True, timeout=180,
                          env=env)


def test_gust_cli_trusts_gust_ca_bundle(eng, certs, tmp_path):
    env = client_env(GUST_URL=eng.url, GUST_STATE_DIR=str(tmp_path),
                     GUST_CA_BUNDLE=certs["engine"][0])
    out = run_gust("invoke", "tls-hello", "--payload", '{"rawPath": "/cli"}', env=env)
    assert out.returncode == 0, out.stderr
    assert "hi /cli" in out.stdout
    # AWS_CA_BUNDLE is read too (one setting for boto3, the aws CLI and gust).
    env.pop("GUST_CA_BUNDLE")
    out = run_gust("ls", env=dict(env, AWS_CA_BUNDLE=certs["engine"][0]))
    assert out.returncode == 0, out.stderr
    assert "tls-hello" in out.stdout
    out = run_gust("ls", env=env)
    assert out.returncode != 0
    assert "TLS handshake with %s failed: the server's certificate is not trusted" % eng.url \
        in out.stderr, out.stderr
    assert "GUST_CA_BUNDLE" in out.stderr


def square(x):
    return x * x


def test_python_client_maps_over_https(eng, certs, monkeypatch, tmp_path):
    monkeypatch.setenv("GUST_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("GUST_CA_BUNDLE", certs["engine"][0])
    with gust.FunctionExecutor(url=eng.url) as ex:
        assert ex.get_result(ex.map(square, range(20))) == [x * x for x in range(20)]
    # (A new Transport: the executor's is cached per URL with its context.)
    monkeypatch.setenv("GUST_CA_BUNDLE", certs["other"][0])
    with pytest.raises(gust.EngineUnavailableError) as info:
        transport.Transport(eng.url).json("GET", "/v1/health")
    assert "CERTIFICATE_VERIFY_FAILED" in str(info.value), info.value
    assert "GUST_CA_BUNDLE" in str(info.value)


def test_plain_http_to_the_https_port_is_told_so(eng):
    try:
        urllib.request.urlopen("http://127.0.0.1:%d/v1/health" % eng.port, timeout=30)
        raise AssertionError("expected a 400")
    except urllib.error.HTTPError as e:
        assert e.code == 400
        assert "this port speaks HTTPS" in e.read().decode()
    assert eng.get("/v1/health")[0] == 200  # and the engine serves on


def gust_up(tmp_path, *args):
    return subprocess.run([GUST, "up", "--port", str(free_port()), "--state-dir",
                           str(tmp_path / "state"), *args],
                          capture_output=True, text=True, timeout=60)


def test_gust_up_names_what_is_wrong_with_the_certificate(tmp_path, certs):
    cert, key = certs["engine"]
    out = gust_up(tmp_path, "--tls-cert", cert)
    assert out.returncode == 2 and "--tls-cert and --tls-key go together" in out.stderr
    out = gust_up(tmp_path, "--tls-cert", cert, "--tls-key", str(tmp_path / "missing.key"))
    assert out.returncode != 0 and "missing.key" in out.stderr, out.stderr
    out = gust_up(tmp_path, "--tls-cert", cert, "--tls-key", certs["other"][1])
    assert out.returncode == 3, out.stderr
    assert "the TLS private key %s cannot be used with %s" % (certs["other"][1], cert) \
        in out.stderr, out.stderr
    assert "mismatch" in out.stderr
    out = gust_up(tmp_path, "--tls-cert", key, "--tls-key", key)
    assert out.returncode == 3 and "is not a PEM certificate chain" in out.stderr, out.stderr


def test_gust_up_detached_probes_its_https_engine(tmp_path, certs):
    cert, key = certs["engine"]
    port = free_port()
    state = str(tmp_path / "state")
    env = client_env(GUST_STATE_DIR=state)
    up = subprocess.run([GUST, "up", "-d", "--port", str(port), "--state-dir", state,
                         "--tls-cert", cert, "--tls-key", key, "--access-key", KEY,
                         "--secret-key", SECRET], capture_output=True, text=True, timeout=60,
                        env=env)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert "gust engine running at https://127.0.0.1:%d" % port in up.stdout, up.stdout
        assert "tls: on" in up.stdout
    finally:
        down = subprocess.run([GUST, "down", "--state-dir", state], capture_output=True,
                              text=True, timeout=60, env=env)
    assert down.returncode == 0, down.stderr
