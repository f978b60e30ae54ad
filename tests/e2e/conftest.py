"""Fixtures for end-to-end tests (helpers in gust_e2e.py)."""
import pytest

from gust_e2e import Engine


@pytest.fixture(scope="session")
def engine(tmp_path_factory):
    eng = Engine(tmp_path_factory.mktemp("gust-state"), extra_args=["--keep-alive", "60s"])
    eng.start()
    yield eng
    eng.stop()


@pytest.fixture
def lam(engine):
    import boto3
    from botocore.config import Config
    return boto3.client(
        "lambda", endpoint_url=engine.url, region_name="us-east-1",
        aws_access_key_id="gust", aws_secret_access_key="gust",
        config=Config(retries={"max_attempts": 0}, read_timeout=300, connect_timeout=5))


_counter = [0]


@pytest.fixture
def fname(request):
    """A function name unique to this test."""
    _counter[0] += 1
    import re
    base = re.sub(r"[^a-zA-Z0-9-]+", "-", request.node.name).strip("-")
    return f"{base[:48]}-{_counter[0]}"
