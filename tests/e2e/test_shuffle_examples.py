"""The shuffle examples (issue 16; examples/shuffle, docs/STORAGE.md
"Shuffles") at small sizes against a real engine: an 8 MB word count
(generate -> map to partition objects -> reduce) and a 512x512 blocked
multiply over stored blocks, each checked by the example itself against the
known answer (the generators' counts; numpy's A @ B), and leaving no object
behind. And that those checks catch a wrong answer: a reduce that loses a
word, a block multiplied wrong."""
import os
import sys

import pytest

import gust
from gust import storage
from gust_e2e import REPO

sys.path.insert(0, os.path.join(REPO, "examples", "shuffle"))
import matmul  # noqa: E402 -- examples/shuffle is on the path from here
import runner  # noqa: E402 -- likewise
import wordcount  # noqa: E402 -- likewise

BUCKET = "shuffle-test"


@pytest.fixture(scope="module")
def gust_runner(engine):
    client = storage.Client(engine.url)
    client.create_bucket(BUCKET, exist_ok=True)
    ex = gust.FunctionExecutor(url=engine.url, show_progress=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GUST_URL", engine.url)  # the examples' own storage.Client() on this side
        yield runner.GustRunner(ex, BUCKET)
    assert [o.key for o in client.list(BUCKET)] == [], "the examples left objects behind"
    client.delete_bucket(BUCKET)


def test_wordcount_8mb(gust_runner):
    r = wordcount.run(gust_runner, ("bucket", BUCKET), 8 << 20, part_size=2 << 20, reducers=4)
    assert r["parts"] == 4 and r["bytes"] == 8 << 20
    # The vocabulary is 50,000 words drawn ~1/(rank + 10): ~1.2 M words, nearly all of them seen.
    assert r["words"] > 1_000_000 and r["distinct"] > 45_000, r
    assert r["top"][0][1] > r["top"][-1][1]


def test_matmul_512(gust_runner):
    r = matmul.run(gust_runner, ("bucket", BUCKET), n=512, block=128)
    assert r["tasks"] == 16 and r["multiply_s"] > 0


class Serial:
    """Runs a stage's tasks in this process; `spoil` alters one stage's results."""

    def __init__(self, spoil=None):
        self.spoil = spoil or (lambda fn, results: results)

    def map(self, fn, items):
        return self.spoil(fn, [fn(*item) for item in items])


def test_wordcount_check_catches_a_lost_word(tmp_path):
    def lose_one(fn, results):
        if fn is wordcount.merge:
            results[0].pop(next(iter(results[0])))
        return results
    with pytest.raises(AssertionError, match="total words"):
        wordcount.run(Serial(lose_one), ("dir", str(tmp_path)), 64 << 10,
                      part_size=16 << 10, reducers=2)
    assert os.listdir(tmp_path) == []


def test_matmul_check_catches_a_wrong_block(tmp_path):
    def wrong(spec, prefix, i, j, g, b):
        cost = matmul.multiply_block(spec, prefix, i, j, g, b)
        if (i, j) == (1, 0):
            store = runner.open_store(spec)
            key = matmul.block_key(prefix, "C", i, j)
            store.put(key, (matmul.load_block(store, key, b) * 1.001).tobytes())
        return cost

    class Wrong(Serial):
        def map(self, fn, items):
            return [wrong(*item) for item in items]
    with pytest.raises(AssertionError, match="differs from numpy"):
        matmul.run(Wrong(), ("dir", str(tmp_path)), n=64, block=16)
    with pytest.raises(ValueError, match="must divide"):
        matmul.run(Serial(), ("dir", str(tmp_path)), n=64, block=24)
