"""The article's deploy walk-throughs (examples/web_walkthrough.py, also run by
`make demo`) against a real engine: the time app from its zappa_settings.json
with update and rollback, and the model server whose classifier comes from a
hyperparameter search run with gust's map."""
import os
import sys

import pytest

from gust_e2e import GUST, Engine, REPO

sys.path.insert(0, os.path.join(REPO, "examples"))


@pytest.fixture(scope="module")
def eng(tmp_path_factory):
    e = Engine(tmp_path_factory.mktemp("gust-walkthrough"),
               extra_args=["--keep-alive", "60s", "--preload", "flask,numpy,sklearn"])
    e.start()
    yield e
    e.stop()


def test_article_walkthroughs(eng, tmp_path):
    import web_walkthrough
    result = web_walkthrough.run(GUST, eng.url, str(tmp_path))
    time_app = result["time_app"]
    assert time_app["tz"].endswith("(Europe/Paris)")
    assert "(" not in time_app["rolled_back"]
    served = result["model_serving"]
    assert served["best"]["n_neighbors"] in range(1, 9)
    assert served["score"] > 0.8
    assert served["article"] in ("purple blob", "yellow blob")
    assert set(served["answers"]) == {"purple blob", "yellow blob"}
    assert 1 <= served["loads"] < served["requests"]  # unpickled once per sandbox
