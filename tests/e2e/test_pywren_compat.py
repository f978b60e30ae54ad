"""gust.pywren (issue 13): the article's Pywren code (docs' "seed" article,
"Mapping functions over arguments with AWS Lambda and Pywren") runs on gust
with `import pywren` -> `from gust import pywren` and nothing else, and each
item of a map is passed whole, as Pywren does. Real sandboxes of the
session's engine; functions pickled by value (see test_map.py).
"""

import socket
import sys
import time

import cloudpickle
import pytest

import gust
from gust import pywren

cloudpickle.register_pickle_by_value(sys.modules[__name__])


def square(x):
    return x * x


def describe(point, verbose=False):
    return "point=%s verbose=%s" % (point, verbose)


def ident(x):
    return x


def scrape_abstract_for_one_paper(paper):
    return "abstract of " + paper["title"]     # the article scrapes; here no site


def scrape_batch(batch):
    for paper in batch:
        paper["abstract"] = scrape_abstract_for_one_paper(paper)
    return batch


def train_model(hyperparams):
    from sklearn.datasets import load_iris
    from sklearn.neighbors import KNeighborsClassifier
    Xtrain, ytrain = load_iris(return_X_y=True)
    classifier = KNeighborsClassifier(**hyperparams)
    classifier.fit(Xtrain, ytrain)
    return classifier


def nap(seconds):
    time.sleep(seconds)
    return seconds


@pytest.fixture
def pwex(engine, monkeypatch):
    # The article's default_executor() takes no argument: the engine comes from $GUST_URL.
    monkeypatch.setenv("GUST_URL", engine.url)
    return pywren.default_executor()


def test_article_square(pwex):
    args = [1, 2, 3, 4, 5, 36]
    futures = pwex.map(square, args)
    assert futures[0].result() == 1
    assert [f.result() for f in futures] == [1, 4, 9, 16, 25, 1296]


def test_article_scrape_batches(pwex):
    batches = [[{"title": "a"}, {"title": "b"}], [{"title": "c"}]]
    result = pywren.get_all_results(pwex.map(scrape_batch, batches))
    assert [[p["abstract"] for p in batch] for batch in result] == [
        ["abstract of a", "abstract of b"], ["abstract of c"]]


def test_article_hyperparameters(pwex):
    from sklearn.datasets import load_iris
    Xtest, ytest = load_iris(return_X_y=True)
    all_hyperparams = [{"n_neighbors": k} for k in range(1, 5)]
    futures = pwex.map(train_model, all_hyperparams)
    classifiers = pywren.get_all_results(futures)
    for hyperparams, classifier in zip(all_hyperparams, classifiers):
        assert classifier.n_neighbors == hyperparams["n_neighbors"]
        assert classifier.score(Xtest, ytest) > 0.9


def test_items_are_passed_whole(pwex):
    """The three wrong answers of issue 13 when items were unpacked."""
    assert pywren.get_all_results(pwex.map(describe, [(1.5, 2.5)])) == [
        "point=(1.5, 2.5) verbose=False"]
    assert pywren.get_all_results(pwex.map(ident, [{"x": 1}, {"y": 2}])) == [{"x": 1}, {"y": 2}]
    assert pywren.get_all_results(pwex.map(sum, [[1, 2, 3], [4, 5]])) == [6, 9]
    assert pwex.call_async(ident, (1, 2)).result() == (1, 2)


def test_wait_and_status(pwex):
    futures = pwex.map(nap, [0, 2])
    done, not_done = pywren.wait(futures, return_when=pywren.ANY_COMPLETED)
    assert futures[0] in done
    done, not_done = pywren.wait(futures, return_when=pywren.ALWAYS)
    assert len(done) + len(not_done) == 2
    done, not_done = pywren.wait(futures)                   # ALL_COMPLETED
    assert done == futures and not_done == []
    f = futures[1]
    assert f.done() and f.result() == 2                     # Pywren's methods
    assert f.result(check_only=True) == 2
    slow = pwex.call_async(nap, 3)
    t0 = time.monotonic()
    assert slow.result(check_only=True) is None             # not done: no wait
    assert time.monotonic() - t0 < 0.5
    assert slow.result() == 3
    run, invoke = f.run_status, f.invoke_status
    assert run["end_time"] - run["start_time"] >= 2 and run["exec_time"] >= 2
    assert run["host_submit_time"] == invoke["host_submit_time"] <= run["start_time"]
    assert invoke["download_output_timestamp"] >= run["end_time"] - 1
    reduced = pwex.reduce(sum, futures)
    assert reduced.result() == 2


def test_network_is_on_by_default(pwex):
    """Lambda gives functions the internet; the article's first example scrapes."""
    names = pwex.call_async(lambda _: sorted(n for _, n in socket.if_nameindex()), 0).result()
    assert names != ["lo"]
    assert pwex.gust_executor._core.config["network"] is True
    with pytest.raises(TypeError, match="colour"):
        pywren.default_executor(colour="red")


def test_gust_function_executor_still_unpacks(engine):
    """gust's own FunctionExecutor keeps Lithops' rules: a tuple is arguments."""
    ex = gust.FunctionExecutor(url=engine.url)
    assert ex.get_result(ex.map(describe, [(1.5, 2.5)])) == ["point=1.5 verbose=2.5"]
