"""The hostile-request suite: every class of bad request, on both front ends (the ASGI app on a
real uvicorn server, the Flask blueprint on a real Werkzeug server), sent while valid clients keep
predicting beside it: 0 5xx, every error a documented 4xx with a JSON {"error": ...} body, and
every concurrent valid request answered 200 with its exact predictions."""

import json
import threading

import numpy as np
import pytest
import requests
from flask import Flask
from serving_cases import BAD, MAX_BODY, ROW, catalogue_repo
from serving_support import FlaskThread, ServerThread, credit_frame, put
from test_serving_isolation import embedding_model

from maasfin.serving import create_app, flask_blueprint

TIMEOUT = 30
DOCUMENTED_4XX = {400, 401, 403, 404, 408, 413, 415, 431}  # docs/serving.md, "Errors"


def _extra_cases():
    """Classes of the issue not in serving_cases.BAD: (id, method, path, body, headers, status, message
    or None when only the status and a JSON error are asserted)."""
    return [
        ("bad-index-embedding", "POST", "/v1/predict", {"model_name": "emb", "input_data": [[57.0]]}, {}, 400, None),
        (
            "bad-index-embedding-v2",
            "POST",
            "/v2/models/emb/infer",
            {"inputs": [{"name": "idx", "shape": [2, 1], "datatype": "FP32", "data": [1, -3]}]},
            {},
            400,
            None,
        ),
        (
            "lone-surrogate-model",
            "POST",
            "/v1/predict",
            b'{"model_name": "\\ud800", "input_data": [[0.5, 0.2, 0.1, 0.3, 0.0]]}',
            {},
            404,
            None,
        ),
        (
            "huge-model-name",
            "POST",
            "/v1/predict",
            {"model_name": "m" * 200_000, "input_data": [ROW]},
            {},
            404,
            None,
        ),
        ("nul-model-name", "POST", "/v1/predict", {"model_name": "cre\x00dit", "input_data": [ROW]}, {}, 404, None),
        ("path-model-name", "POST", "/v1/predict", {"model_name": "../credit", "input_data": [ROW]}, {}, 404, None),
        ("deep-nesting", "POST", "/v1/predict", b"[" * 100_000 + b"]" * 100_000, {}, 400, None),
        (
            "many-keys",
            "POST",
            "/v1/predict",
            json.dumps({f"k{i}": i for i in range(10_000)}).encode(),
            {},
            400,
            None,
        ),
        (
            "huge-version",
            "POST",
            "/v1/predict",
            {"model_name": "credit", "model_version": "9" * 30, "input_data": [ROW]},
            {},
            400,
            None,
        ),
        ("huge-url-version", "GET", "/v1/models/credit/versions/" + "9" * 30, None, {}, 400, None),
        ("arabic-digit-read", "GET", "/v2/models/credit/versions/\u0661/ready", None, {}, 400, None),
        ("unknown-model-read", "GET", "/v1/models/nope/metadata", None, {}, 404, None),
        (
            "content-length-not-a-number",
            "POST",
            "/v1/predict",
            json.dumps({"model_name": "credit", "input_data": [ROW]}).encode(),
            {"Content-Encoding": "br"},
            415,
            None,
        ),
    ]


def _all_cases():
    cases = [(c[0], "POST", c[1], c[2], c[3], c[4], c[5]) for c in BAD]
    return cases + _extra_cases()


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    repo = tmp_path_factory.mktemp("repo")
    models = catalogue_repo(repo)
    put(repo, "emb", 1, embedding_model())
    return repo, models


@pytest.fixture(params=["asgi", "flask"], scope="module")
def front(request, repo):
    path, models = repo
    options = dict(poll_seconds=0, max_body_bytes=MAX_BODY)
    if request.param == "asgi":
        # a generous max_latency_ms so that hostile and valid requests are merged into one batch
        runner = ServerThread(create_app(path, max_latency_ms=20.0, **options))
    else:
        app = Flask("hostile")
        app.register_blueprint(flask_blueprint(path, **options))
        runner = FlaskThread(app)
    with runner as server:
        yield server.url, models


def _send(session, url, method, body, headers):
    if body is None:
        return session.request(method, url, headers=headers, timeout=TIMEOUT)
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return session.request(method, url, data=data, headers=headers, timeout=TIMEOUT)


def test_hostile_requests_beside_valid_traffic(front):
    url, models = front
    x = credit_frame(8, seed=77).to_numpy(np.float32)
    expected = models[("credit", 2)].predict(x)  # the newest version serves /v1/predict
    stop = threading.Event()
    valid: list = []
    failures: list = []

    def valid_client(k):
        with requests.Session() as s:
            i = 0
            while not stop.is_set():
                row = (k + i) % len(x)
                r = s.post(
                    url + "/v1/predict",
                    json={"model_name": "credit", "input_data": [x[row].tolist()]},
                    timeout=TIMEOUT,
                )
                got = r.json().get("predictions") if r.status_code == 200 else None
                if got is None or not np.array_equal(np.asarray(got, np.float32), expected[row : row + 1]):
                    failures.append((r.status_code, r.text[:200]))
                valid.append(r.status_code)
                i += 1

    clients = [threading.Thread(target=valid_client, args=(k,)) for k in range(4)]
    for t in clients:
        t.start()
    answers = []
    try:
        with requests.Session() as s:
            for case in _all_cases():
                name, method, path, body, headers, status, message = case
                r = _send(s, url + path, method, body, headers)
                answers.append((name, status, message, r))
    finally:
        stop.set()
        for t in clients:
            t.join(TIMEOUT)
    wrong = []
    for name, status, message, r in answers:
        ok = r.status_code == status and r.status_code in DOCUMENTED_4XX
        ok = ok and r.headers.get("content-type", "").startswith("application/json")
        if ok:
            doc = r.json()
            ok = isinstance(doc, dict) and list(doc) == ["error"] and isinstance(doc["error"], str)
            ok = ok and (message is None or doc["error"] == message)
        if not ok:
            wrong.append((name, status, r.status_code, r.text[:200]))
    assert wrong == []
    assert failures == [] and len(valid) > 0 and set(valid) == {200}
