"""One client's bad input never fails another's: per-request isolation in batching, on both front ends."""

import asyncio
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests
from flask import Flask
from serving_support import FlaskThread, ServerThread, put, run_threads

import maasfin as mf
from maasfin.layers import CategoryEncoding, Dense, Embedding, Flatten, Input
from maasfin.models import Model
from maasfin.serving import create_app, flask_blueprint
from maasfin.serving.batching import Batcher

TIMEOUT = 20


def embedding_model():
    mf.utils.set_random_seed(5)
    i = Input(shape=(1,), name="idx")
    o = Dense(1, name="score")(Flatten()(Embedding(10, 4)(i)))
    return Model(inputs=i, outputs=o)


def category_model():
    mf.utils.set_random_seed(6)
    i = Input(shape=(1,), name="code")
    o = Dense(1, name="score")(CategoryEncoding(num_tokens=6, output_mode="one_hot")(i))
    return Model(inputs=i, outputs=o)


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    repo = tmp_path_factory.mktemp("repo")
    put(repo, "emb", 1, embedding_model())
    put(repo, "cat", 1, category_model())
    return repo


@pytest.fixture(params=["asgi", "flask"])
def front(request, repo):
    if request.param == "asgi":
        # a generous max_latency_ms so that concurrent requests are merged into one batch
        with ServerThread(create_app(repo, poll_seconds=0, max_latency_ms=30.0, predict_threads=1)) as server:
            yield server.url
    else:
        app = Flask("isolation")
        app.register_blueprint(flask_blueprint(repo, poll_seconds=0))
        with FlaskThread(app) as server:
            yield server.url


@pytest.mark.parametrize("model, bad, limit", [("emb", 57, 10), ("cat", 9, 6)])
def test_bad_index_fails_only_its_own_request(front, model, bad, limit):
    good_rows = [[float(i % limit)] for i in range(40)]
    results: dict[int, requests.Response] = {}
    barrier = threading.Barrier(25)

    def client(i):
        barrier.wait()
        rows = [[float(bad)]] if i == 0 else good_rows[i : i + 2]
        results[i] = requests.post(
            front + "/v1/predict", json={"model_name": model, "input_data": rows}, timeout=TIMEOUT
        )

    for _ in range(3):
        results.clear()
        run_threads(25, client)
        assert results[0].status_code == 400, results[0].text
        layer = "embedding" if model == "emb" else "category_encoding"
        assert (
            results[0]
            .json()["error"]
            .startswith(
                f"input '{'idx' if model == 'emb' else 'code'}' row 0 holds {bad}, not an index in [0, {limit}) "
                f"(layer '{layer}"
            )
        )
        for i in range(1, 25):
            assert results[i].status_code == 200, (i, results[i].text)
            assert len(results[i].json()["predictions"]) == 2


def test_bad_index_on_every_protocol(front):
    r = requests.post(front + "/v1/models/emb:predict", json={"instances": [[3.0], [57.0]]}, timeout=TIMEOUT)
    assert r.status_code == 400 and "57" in r.json()["error"]
    body = {"inputs": [{"name": "idx", "shape": [1, 1], "datatype": "INT32", "data": [57]}]}
    r = requests.post(front + "/v2/models/emb/infer", data=json.dumps(body), timeout=TIMEOUT)
    assert r.status_code == 400 and "57" in r.json()["error"]
    body["inputs"][0]["data"] = [3]
    r = requests.post(front + "/v2/models/emb/infer", data=json.dumps(body), timeout=TIMEOUT)
    assert r.status_code == 200
    assert np.isfinite(r.json()["outputs"][0]["data"]).all()


def test_failed_merged_batch_is_retried_per_request():
    """The batcher's own isolation, for failures no pre-check catches: a merged batch whose predict
    raises is run again one request at a time, so only the failing request gets the error."""
    calls = []

    def predict(xs):
        calls.append(xs[0].shape[0])
        if (xs[0] < 0).any():
            raise ValueError("negative row")
        return xs[0] * 2

    async def main():
        with ThreadPoolExecutor(1) as pool:
            b = Batcher(predict, pool, max_batch_size=256, max_latency_ms=50.0, max_concurrency=1)
            busy = asyncio.ensure_future(b.submit([np.ones((1, 1), np.float32)]))  # later ones queue
            await asyncio.sleep(0)
            xs = [np.full((1, 1), -1.0 if i == 3 else float(i), np.float32) for i in range(8)]
            out = await asyncio.gather(*(b.submit([x]) for x in xs), return_exceptions=True)
            await busy
            b.close()
            return out

    out = asyncio.run(main())
    assert isinstance(out[3], ValueError)
    for i in (0, 1, 2, 4, 5, 6, 7):
        assert out[i].tolist() == [[2.0 * i]]
    assert 8 in calls  # the merged batch was tried first, then each request alone
