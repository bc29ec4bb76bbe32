"""One client's bad input never fails another's: per-request isolation in batching, on both front ends."""

import json
import threading

import numpy as np
import pytest
import requests
from flask import Flask
from serving_support import FlaskThread, ServerThread, put, run_threads

import maasfin as mf
from maasfin.layers import CategoryEncoding, Dense, Embedding, Flatten, Input
from maasfin.models import Model
from maasfin.serving import create_app, flask_blueprint

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
        message = results[0].json()["error"]
        assert message.startswith(f"input 'idx' does not fit model '{model}'" if model == "emb" else "input 'code'")
        assert str(bad) in message
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
