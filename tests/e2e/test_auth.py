"""Authentication (issue 11): an engine with credentials refuses every API
request that is not signed (AWS SigV4) with them, and the real clients sign:
boto3, the aws CLI v1 and v2, curl --aws-sigv4, the gust CLI and the Python
client (credentials from the environment or the state dir's file). Web apps
are public unless their stage says "authorization": "sigv4". `gust up` on a
non-loopback address refuses to start without credentials."""
import datetime
import datetime as datetime_module
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import urllib.error
import urllib.request

import boto3
import botocore.auth
import cloudpickle
import pytest
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

try:
    from botocore.crt import auth as crt_auth
except ImportError:  # no awscrt: botocore signs in Python
    crt_auth = None

import gust
import gust_e2e
from gust import transport
from gust_e2e import GUST, Engine, free_port, rootless_engine

cloudpickle.register_pickle_by_value(sys.modules[__name__])

KEY = "GKTESTACCESSKEY00001"
SECRET = "tEsT/secret+key=0123456789abcdefghijklm"
HANDLER = ('def handler(event, context):\n'
           '    return {"statusCode": 200, "body": "hi " + event.get("rawPath", "?")}\n')


SNOOP = """
def handler(event, context):
    try:
        with open(event["path"]) as f:
            return "read: " + f.read()
    except OSError as e:
        return "refused: " + repr(e)
"""


def square(x):
    return x * x


class SignedEngine(gust_e2e.SignedEngine):
    """Signs with this module's KEY and SECRET unless told otherwise."""

    def __init__(self, *args, credentials=(KEY, SECRET), **kwargs):
        super().__init__(*args, credentials=credentials, **kwargs)


@pytest.fixture(scope="module")
def eng(tmp_path_factory):
    e = SignedEngine(tmp_path_factory.mktemp("gust-auth"),
                     extra_args=["--keep-alive", "60s", "--access-key", KEY,
                                 "--secret-key", SECRET])
    e.start()
    yield e
    e.stop()


def lam(eng, key=KEY, secret=SECRET):
    return boto3.client("lambda", endpoint_url=eng.url, region_name="us-east-1",
                        aws_access_key_id=key, aws_secret_access_key=secret,
                        config=Config(retries={"max_attempts": 0}, connect_timeout=5,
                                      read_timeout=120))


def unsigned(eng, method, path, body=None):
    req = urllib.request.Request(eng.url + path, data=body, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def error_code(call):
    with pytest.raises(ClientError) as info:
        call()
    err = info.value.response
    return err["ResponseMetadata"]["HTTPStatusCode"], err["Error"]["Code"], err["Error"]["Message"]


def client_env(**extra):
    """An environment without AWS credentials or config of the caller's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null",
               AWS_DEFAULT_REGION="us-east-1", AWS_PAGER="")
    env.update(extra)
    return env


def test_boto3_signs_and_wrong_keys_are_refused_by_name(eng):
    eng.create("auth-hello", {"app.py": HANDLER})
    out = lam(eng).invoke(FunctionName="auth-hello", Payload=b'{"rawPath": "/x"}')
    assert json.loads(out["Payload"].read())["body"] == "hi /x"
    assert any(f["FunctionName"] == "auth-hello" for f in lam(eng).list_functions()["Functions"])

    status, code, message = error_code(lambda: lam(eng, secret="wrong").list_functions())
    assert (status, code) == (403, "InvalidSignatureException")
    assert "does not match the signature you provided" in message
    status, code, message = error_code(lambda: lam(eng, key="GKNOBODY").list_functions())
    assert (status, code) == (403, "UnrecognizedClientException")
    assert message == "The security token included in the request is invalid."


@pytest.mark.parametrize("method,path", [("GET", "/2015-03-31/functions/"),
                                         ("GET", "/v1/health"),
                                         ("POST", "/2015-03-31/functions/auth-hello/invocations"),
                                         ("POST", "/v1/jobs")])
def test_unsigned_requests_are_refused(eng, method, path):
    status, headers, body = unsigned(eng, method, path, b"{}" if method == "POST" else None)
    assert status == 403
    assert headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    assert json.loads(body)["Message"] == "Missing Authentication Token"


def test_a_tampered_body_is_refused(eng):
    host = f"127.0.0.1:{eng.port}"
    path = "/2015-03-31/functions/auth-hello/invocations"
    headers = transport.sign((KEY, SECRET), "POST", path, host,
                             hashlib.sha256(b'{"rawPath": "/a"}').hexdigest(), {})
    headers["Host"] = host
    status, resp_headers, _ = Engine.request(eng, "POST", path, b'{"rawPath": "/b"}', headers)
    assert status == 403 and resp_headers["x-amzn-errortype"] == "InvalidSignatureException"


@pytest.mark.parametrize("minutes,wording", [(-20, "Signature expired"),
                                             (20, "Signature not yet current")])
def test_a_skewed_clock_is_refused_with_aws_wording(eng, monkeypatch, minutes, wording):
    skewed = datetime.datetime.utcnow() + datetime.timedelta(minutes=minutes)

    class SkewedDatetime(datetime.datetime):
        @classmethod
        def utcnow(cls):
            return skewed

    class SkewedModule:
        datetime = SkewedDatetime
        timezone = datetime_module.timezone

    # botocore signs in botocore.auth, or in botocore.crt.auth when awscrt is
    # installed (as here): skew both clocks.
    monkeypatch.setattr(botocore.auth, "datetime", SkewedModule)
    if crt_auth is not None:
        monkeypatch.setattr(crt_auth, "datetime", SkewedModule)
    status, code, message = error_code(lambda: lam(eng).list_functions())
    assert (status, code) == (403, "InvalidSignatureException")
    assert message.startswith(wording), message
    # 10 minutes off is within AWS's 15.
    skewed = datetime.datetime.utcnow() + datetime.timedelta(minutes=minutes // 2)
    assert "Functions" in lam(eng).list_functions()


def test_presigned_url(eng):
    req = AWSRequest(method="GET", url=eng.url + "/2015-03-31/functions/?MaxItems=5")
    botocore.auth.SigV4QueryAuth(Credentials(KEY, SECRET), "lambda", "us-east-1",
                                 expires=60).add_auth(req)
    status, _, body = unsigned(eng, "GET", req.url[len(eng.url):])
    assert status == 200, body
    status, _, _ = unsigned(eng, "GET", req.url[len(eng.url):].replace("MaxItems=5", "MaxItems=6"))
    assert status == 403


@pytest.mark.parametrize("aws", [shutil.which("aws"), "/usr/bin/aws"], ids=["v1-on-path", "v2"])
def test_aws_cli(eng, aws):
    if not aws or not os.path.exists(aws):
        pytest.skip("no aws CLI at %r" % aws)
    cmd = [aws, "lambda", "list-functions", "--endpoint-url", eng.url, "--output", "json"]
    ok = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                        env=client_env(AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET))
    assert ok.returncode == 0, ok.stderr
    assert any(f["FunctionName"] == "auth-hello" for f in json.loads(ok.stdout)["Functions"])
    bad = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                         env=client_env(AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY="nope"))
    assert bad.returncode != 0 and "InvalidSignatureException" in bad.stderr, bad.stderr


def test_curl_aws_sigv4(eng):
    def curl(user):
        out = subprocess.run(["curl", "-sS", "-o", "-", "-w", "\n%{http_code}",
                              "--aws-sigv4", "aws:amz:us-east-1:lambda", "--user", user,
                              eng.url + "/2015-03-31/functions/"],
                             capture_output=True, text=True, timeout=60)
        body, _, code = out.stdout.rpartition("\n")
        return int(code), body

    code, body = curl(f"{KEY}:{SECRET}")
    assert code == 200, body
    assert "auth-hello" in body
    code, body = curl(f"{KEY}:wrong")
    assert code == 403 and "does not match" in body


def run_gust(*args, env, cwd=None):
    return subprocess.run([GUST] + list(args), capture_output=True, text=True, timeout=180,
                          env=env, cwd=cwd)


def test_gust_cli_signs_with_env_credentials(eng, tmp_path):
    (tmp_path / "app.py").write_text(HANDLER)
    empty = tmp_path / "no-state"
    env = client_env(GUST_URL=eng.url, GUST_STATE_DIR=str(empty),
                     AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET)
    out = run_gust("deploy", "auth-cli", str(tmp_path), "--handler", "app.handler", env=env)
    assert out.returncode == 0, out.stderr
    out = run_gust("invoke", "auth-cli", "--payload", '{"rawPath": "/cli"}', env=env)
    assert out.returncode == 0, out.stderr
    assert "hi /cli" in out.stdout

    env.pop("AWS_ACCESS_KEY_ID")
    env.pop("AWS_SECRET_ACCESS_KEY")
    out = run_gust("ls", env=env)
    assert out.returncode == 2
    assert "MissingAuthenticationTokenException: Missing Authentication Token" in out.stderr


def test_python_client_signs_with_env_credentials(eng, monkeypatch, tmp_path):
    monkeypatch.setenv("GUST_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    with gust.FunctionExecutor(url=eng.url) as ex:
        assert ex.get_result(ex.map(square, range(6))) == [0, 1, 4, 9, 16, 25]
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    with pytest.raises(gust.EngineError) as info:
        transport.Transport(eng.url).json("GET", "/v1/health")
    assert "HTTP 403: Missing Authentication Token" in str(info.value)
    # Connecting says why, instead of "is it running?".
    from gust import engine as engine_mod
    with pytest.raises(gust.EngineError) as info:
        engine_mod._alive(transport.Transport(eng.url))
    assert "refused the request: Missing Authentication Token" in str(info.value)


def test_auth_init_file_serves_engine_and_clients(tmp_path, monkeypatch):
    state = tmp_path / "state"
    env = client_env(GUST_STATE_DIR=str(state))
    out = run_gust("auth", "init", env=env)
    assert out.returncode == 0, out.stderr
    path = state / "credentials"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    key = out.stdout.split("access key id:")[1].split()[0]
    assert key.startswith("GK") and str(path) in out.stdout
    again = run_gust("auth", "init", env=env)
    assert again.returncode == 2 and "already exists" in again.stderr and "--force" in again.stderr
    assert key in path.read_text()

    import configparser
    cp = configparser.ConfigParser()
    cp.read(path)
    creds = (cp["default"]["aws_access_key_id"], cp["default"]["aws_secret_access_key"])
    assert creds[0] == key and len(creds[1]) == 40 and creds[1] not in out.stdout
    e = SignedEngine(state, extra_args=["--keep-alive", "30s"], credentials=creds)
    e.start()  # no flags: the state dir's file
    try:
        assert unsigned(e, "GET", "/2015-03-31/functions/")[0] == 403
        # The gust CLI reads the file of GUST_STATE_DIR.
        (tmp_path / "app.py").write_text(HANDLER)
        env["GUST_URL"] = e.url
        out = run_gust("deploy", "auth-file", str(tmp_path), "--handler", "app.handler", env=env)
        assert out.returncode == 0, out.stderr
        out = run_gust("invoke", "auth-file", "--payload", '{"rawPath": "/file"}', env=env)
        assert out.returncode == 0 and "hi /file" in out.stdout, out.stderr
        # So does the Python client.
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("GUST_STATE_DIR", str(state))
        with gust.FunctionExecutor(url=e.url) as ex:
            assert ex.get_result(ex.map(square, [3, 4])) == [9, 16]
        # A function cannot read the engine's secret.
        e.create("auth-snoop", {"app.py": SNOOP})
        status, _, body = e.invoke("auth-snoop", {"path": str(path)})
        assert status == 200 and json.loads(body).startswith("refused:"), body
        # And boto3 / the aws CLI can use the file as it is.
        ok = subprocess.run(["/usr/bin/aws", "lambda", "list-functions", "--endpoint-url", e.url],
                            capture_output=True, text=True, timeout=120,
                            env=client_env(AWS_SHARED_CREDENTIALS_FILE=str(path)))
        assert ok.returncode == 0 and "auth-file" in ok.stdout, ok.stderr
    finally:
        e.stop()


def test_non_loopback_needs_credentials_or_insecure_flag(tmp_path):
    port = free_port()
    env = client_env(GUST_STATE_DIR=str(tmp_path / "s"))
    out = run_gust("up", "--host", "0.0.0.0", "--port", str(port), "--state-dir",
                   str(tmp_path / "s"), env=env)
    assert out.returncode == 3
    assert "refusing to serve 0.0.0.0 without credentials" in out.stderr
    assert "gust auth init" in out.stderr and "--insecure-no-auth" in out.stderr

    out = run_gust("up", "-d", "--host", "0.0.0.0", "--port", str(port), "--state-dir",
                   str(tmp_path / "s"), "--insecure-no-auth", env=env)
    try:
        assert out.returncode == 0, out.stderr
        assert "auth: OFF" in out.stdout and "WARNING: --insecure-no-auth" in out.stdout
        log = (tmp_path / "s" / "engine.log").read_text()
        assert "--insecure-no-auth: serving 0.0.0.0 without credentials" in log
    finally:
        run_gust("down", "--state-dir", str(tmp_path / "s"), env=env)


def test_loopback_prints_whether_auth_is_on(eng, tmp_path):
    # The module's engine (foreground) printed its summary into its log.
    assert f"auth: on (AWS SigV4, access key {KEY})" in eng.log()


def signed_get(url, service, creds=(KEY, SECRET)):
    req = AWSRequest(method="GET", url=url)
    botocore.auth.SigV4Auth(Credentials(*creds), service, "us-east-1").add_auth(req)
    r = urllib.request.Request(url, headers=dict(req.headers.items()))
    try:
        with urllib.request.urlopen(r, timeout=60) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_web_apps_are_public_unless_the_function_asks_for_sigv4(eng):
    eng.create("auth-web-public", {"app.py": HANDLER})
    eng.create("auth-web-signed", {"app.py": HANDLER},
               Environment={"Variables": {"GUST_WEB_AUTHORIZATION": "sigv4"}})
    status, _, body = unsigned(eng, "GET", "/web/auth-web-public/p")
    assert status == 200 and body == b"hi /p"

    status, headers, body = unsigned(eng, "GET", "/web/auth-web-signed/p")
    assert status == 403 and headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    for service in ("execute-api", "lambda"):
        assert signed_get(eng.url + "/web/auth-web-signed/p", service) == (200, b"hi /p")
    status, body = signed_get(eng.url + "/web/auth-web-signed/p", "lambda", (KEY, "bad"))
    assert status == 403 and b"does not match" in body


FLASK_APP = '''
from flask import Flask
app = Flask(__name__)

@app.route("/")
def home():
    return "private"
'''


def test_stage_authorization_sigv4(eng, tmp_path):
    d = tmp_path / "priv"
    d.mkdir()
    (d / "app.py").write_text(FLASK_APP)
    (d / "gust_settings.json").write_text(json.dumps(
        {"dev": {"app_function": "app.app", "authorization": "sigv4"},
         "bad": {"app_function": "app.app", "authorization": "iam"}}))
    env = client_env(GUST_URL=eng.url, AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET)
    out = run_gust("deploy", "bad", env=env, cwd=d)
    assert out.returncode == 2 and "authorization" in out.stderr and '"sigv4"' in out.stderr
    out = run_gust("deploy", "dev", env=env, cwd=d)
    assert out.returncode == 0, out.stderr
    assert unsigned(eng, "GET", "/web/priv-dev/")[0] == 403
    assert signed_get(eng.url + "/web/priv-dev/", "execute-api") == (200, b"private")


def test_engine_without_credentials_still_accepts_anything_on_loopback(engine, lam):
    # The session engine of the other tests: no credentials, no check (their
    # boto3 clients sign with "gust"/"gust"; unsigned requests pass too).
    assert "Functions" in lam.list_functions()
    assert engine.get("/v1/health")[0] == 200


def test_rootless_function_cannot_read_the_credentials_file(tmp_path):
    """Rootless, a sandbox's uid maps to the engine's user, so file modes do
    not protect the secret: the file must be out of the sandbox's view."""
    def write_credentials(state):
        path = os.path.join(state, "credentials")
        with open(path, "w") as f:
            f.write("[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n"
                    % (KEY, SECRET))
        os.chmod(path, 0o600)

    with rootless_engine(["--keep-alive", "30s"], engine_class=SignedEngine,
                         prepare=write_credentials) as e:
        path = os.path.join(e.state_dir, "credentials")
        assert "ROOTLESS" in e.log() or "rootless" in e.log().lower()
        assert unsigned(e, "GET", "/2015-03-31/functions/")[0] == 403
        e.create("auth-snoop-rootless", {"app.py": SNOOP})
        status, _, body = e.invoke("auth-snoop-rootless", {"path": path})
        assert status == 200 and json.loads(body).startswith("refused:"), body
