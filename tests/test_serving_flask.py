"""The Flask blueprint inside an existing Flask app, on a threaded Werkzeug server on loopback:
under 16 concurrent clients, the Open Inference Protocol v2 through tritonclient, /metrics, the
catalogue of bad requests (the same exact 4xx as the ASGI app), and byte-for-byte parity with the
ASGI server."""

import json
import re

import numpy as np
import pytest
import requests
import tritonclient.http as triton
from flask import Flask
from serving_cases import BAD, MAX_BODY, catalogue_repo
from serving_support import (
    FEATURES,
    FlaskThread,
    ServerThread,
    credit_frame,
    credit_model,
    put,
    put_labels,
    run_threads,
)
from tritonclient.utils import InferenceServerException

import maasfin as mf
from maasfin.serving import add_key, create_app, flask_blueprint
from maasfin.serving.app import DOCS_PATHS

TIMEOUT = 10


def _f32(x):
    return np.asarray(x, dtype=np.float64).astype(np.float32)


def test_flask_blueprint_under_concurrent_clients(tmp_path):
    repo = tmp_path / "repo"
    put(repo, "credit", 1, credit_model(seed=81))
    put(repo, "credit", 2, credit_model(seed=82))
    put_labels(repo, "credit", {"stable": 1})
    keys = tmp_path / "keys.json"
    key = add_key(keys, "web", ["credit"])
    other = add_key(keys, "other", ["fraud"])
    audit = tmp_path / "audit.jsonl"
    df = credit_frame(64, seed=300)
    expected = {v: mf.models.load_model(repo / f"credit/{v}/model.maas", compile=False).predict(df) for v in (1, 2)}
    records = df.to_dict(orient="records")

    app = Flask("existing_app")

    @app.get("/hello")
    def hello():  # the host app's own routes keep working
        return "hello"

    bp = flask_blueprint(str(repo), api_keys=str(keys), audit_log=str(audit), poll_seconds=0, max_body_bytes=64 * 1024)
    app.register_blueprint(bp, url_prefix="/ml")
    h = {"Authorization": "Bearer " + key}
    with FlaskThread(app) as server:
        u = server.url + "/ml"
        assert requests.get(server.url + "/hello", timeout=TIMEOUT).text == "hello"
        sent = []

        def client(i):
            with requests.Session() as s:
                for k in range(20):
                    row = (i * 20 + k) % 64
                    if k % 3 == 0:
                        r = s.post(
                            u + "/v1/predict",
                            json={"model_name": "credit", "input_data": records[row]},
                            headers=h,
                            timeout=TIMEOUT,
                        )
                        version, preds = r.json()["model_version"], r.json()["predictions"]
                    elif k % 3 == 1:
                        r = s.post(
                            u + "/v1/models/credit/labels/stable:predict",
                            json={"instances": [records[row]]},
                            headers=h,
                            timeout=TIMEOUT,
                        )
                        version, preds = 1, r.json()["predictions"]
                    else:
                        r = s.post(
                            u + "/v1/models/credit/versions/2:predict",
                            json={"inputs": [df.iloc[row].tolist()]},
                            headers=h,
                            timeout=TIMEOUT,
                        )
                        version, preds = 2, r.json()["outputs"]
                    assert r.status_code == 200, r.text
                    assert np.array_equal(_f32(preds), expected[version][row : row + 1]), (i, k)
                    sent.append(r.headers["X-Request-ID"])

        run_threads(16, client)
        assert len(sent) == 320
        with requests.Session() as s:
            r = s.get(u + "/v1/models/credit", headers=h, timeout=TIMEOUT)
            assert [v["version"] for v in r.json()["model_version_status"]] == ["2", "1"]
            meta = s.get(u + "/v1/models/credit/metadata", headers=h, timeout=TIMEOUT).json()
            assert meta["maasfin"]["feature_names"] == FEATURES
            bad = [
                (
                    s.post(u + "/v1/predict", json={"model_name": "credit", "input_data": records[0]}, timeout=TIMEOUT),
                    401,
                    "missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
                ),
                (
                    s.post(
                        u + "/v1/predict",
                        json={"model_name": "credit", "input_data": records[0]},
                        headers={"X-API-Key": other},
                        timeout=TIMEOUT,
                    ),
                    403,
                    "API key 'other' may not use model 'credit'",
                ),
                (
                    s.post(
                        u + "/v1/predict",
                        data=b'{"model_name": "credit", "input_data": [[NaN, 0, 0, 0, 0]]}',
                        headers=h,
                        timeout=TIMEOUT,
                    ),
                    400,
                    "input_data[0][0] is NaN: NaN and infinity are not allowed (JSON has no such numbers); impute "
                    "or drop missing values before sending them",
                ),
                (
                    s.post(
                        u + "/v1/predict",
                        json={"model_name": "credit", "input_data": {"income": 1}},
                        headers=h,
                        timeout=TIMEOUT,
                    ),
                    400,
                    "input_data is missing feature(s) ['debt_ratio', 'age', 'utilisation', 'late_payments']; the "
                    "model's features are ['income', 'debt_ratio', 'age', 'utilisation', 'late_payments']",
                ),
                (
                    s.post(
                        u + "/v1/predict",
                        json={"model_name": "credit", "input_data": [[1.0] * 5] * 5000},
                        headers=h,
                        timeout=TIMEOUT,
                    ),
                    413,
                    "the request body is larger than the limit of 65536 bytes",
                ),
                (
                    s.post(
                        u + "/v1/models/credit/versions/9:predict",
                        json={"instances": [[0] * 5]},
                        headers=h,
                        timeout=TIMEOUT,
                    ),
                    404,
                    "model 'credit' has no available version 9; available versions: [1, 2]",
                ),
            ]
            for r, status, message in bad:
                assert (r.status_code, r.json()) == (status, {"error": message})
    lines = [json.loads(line) for line in audit.read_text().splitlines()]
    assert len(lines) == 320 + 2 + 6  # the two read requests are audited too
    reads = lines[320:322]
    assert [(x["method"], x["path"], x["status"], x["model"]) for x in reads] == [
        ("GET", "/ml/v1/models/credit", 200, "credit"),
        ("GET", "/ml/v1/models/credit/metadata", 200, "credit"),
    ]
    lines = lines[:320] + lines[322:]
    assert {x["request_id"] for x in lines[:320]} == set(sent)
    assert {x["key"] for x in lines[:320]} == {"web"}
    assert [x["status"] for x in lines[-6:]] == [401, 403, 400, 400, 413, 404]

    # the ASGI server answers the same bytes
    asgi = create_app(repo, poll_seconds=0)
    body = json.dumps({"model_name": "credit", "input_data": records[:40]})
    app2 = Flask("no_auth")
    app2.register_blueprint(flask_blueprint(repo, poll_seconds=0))
    with ServerThread(asgi) as s1, FlaskThread(app2) as s2:
        for path, payload in [
            ("/v1/predict", body),
            ("/v1/models/credit:predict", json.dumps({"instances": df.to_numpy().tolist()})),
            ("/v1/predict", '{"model_name": "credit", "input_data": [[1, 2]]}'),
        ]:
            a = requests.post(s1.url + path, data=payload, timeout=TIMEOUT)
            b = requests.post(s2.url + path, data=payload, timeout=TIMEOUT)
            ida, idb = (r.headers["x-request-id"].encode() for r in (a, b))  # the one byte difference
            assert (a.status_code, a.content.replace(ida, b"")) == (b.status_code, b.content.replace(idb, b""))


# -- the v2 protocol, /metrics and the bad-request catalogue on the Flask side ----------------------
@pytest.fixture(scope="module")
def flask_served(tmp_path_factory):
    repo = tmp_path_factory.mktemp("repo")
    models = catalogue_repo(repo)
    app = Flask("catalogue")
    app.register_blueprint(flask_blueprint(repo, poll_seconds=0, max_body_bytes=MAX_BODY))
    with FlaskThread(app) as server, requests.Session() as s:
        yield server, s, models


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_flask_bad_requests_get_exact_4xx(flask_served, case):
    server, s, _ = flask_served
    _, path, body, headers, status, message = case
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    r = s.post(server.url + path, data=data, headers=headers, timeout=TIMEOUT)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {"error": message}


def test_flask_v2_with_tritonclient(flask_served):
    server, _, models = flask_served
    df = credit_frame(48, seed=310)
    x = df.to_numpy()
    expected = models[("credit", 2)].predict(df)
    client = triton.InferenceServerClient(
        f"127.0.0.1:{server.server.server_port}", connection_timeout=TIMEOUT, network_timeout=TIMEOUT
    )
    try:
        assert client.is_server_live() and client.is_server_ready()
        assert client.is_model_ready("credit") and client.is_model_ready("credit", "1")
        assert not client.is_model_ready("credit", "9")
        assert client.get_server_metadata() == {
            "name": "maasfin",
            "version": mf.__version__,
            "extensions": ["binary_tensor_data"],
        }
        mm = client.get_model_metadata("credit")
        assert mm["versions"] == ["2", "1"] and mm["inputs"] == [
            {"name": "input_layer", "datatype": "FP32", "shape": [-1, 5]}
        ]
        out_name = mm["outputs"][0]["name"]
        for binary_in in (True, False):
            for binary_out in (True, False):
                inp = triton.InferInput("input_layer", list(x.shape), "FP32")
                inp.set_data_from_numpy(x, binary_data=binary_in)
                res = client.infer(
                    "credit",
                    [inp],
                    request_id=f"f-{binary_in}-{binary_out}",
                    outputs=[triton.InferRequestedOutput(out_name, binary_data=binary_out)],
                )
                y = res.as_numpy(out_name)
                assert y.dtype == np.float32 and np.array_equal(y, expected)
                assert res.get_response()["id"] == f"f-{binary_in}-{binary_out}"
        inp = triton.InferInput("input_layer", [16, 5], "FP64")
        inp.set_data_from_numpy(x[:16].astype(np.float64))
        res = client.infer("credit", [inp], model_version="1", request_compression_algorithm="gzip")
        assert res.get_response()["model_version"] == "1"
        assert np.array_equal(res.as_numpy(out_name), models[("credit", 1)].predict(df.iloc[:16]))
        with pytest.raises(
            InferenceServerException,
            match=r"input 'input_layer' has shape \[48, 4\], but model "
            r"'credit' expects \[-1, 5\]",
        ):
            bad = triton.InferInput("input_layer", [48, 4], "FP32")
            bad.set_data_from_numpy(x[:, :4].copy())
            client.infer("credit", [bad])
    finally:
        client.close()


def test_flask_metrics_and_explain(flask_served):
    server, s, models = flask_served
    u = server.url
    row = credit_frame(1, seed=311).to_numpy().tolist()
    before = _samples(s.get(u + "/metrics", timeout=TIMEOUT).text)
    for _ in range(3):
        assert s.post(u + "/v1/predict", json={"model_name": "credit", "input_data": row}, timeout=TIMEOUT).ok
    r = s.post(
        u + "/v2/models/joint/infer",
        timeout=TIMEOUT,
        json={
            "inputs": [
                {"name": "applicant", "shape": [1, 3], "datatype": "FP32", "data": [0.1, 0.2, 0.3]},
                {"name": "bureau", "shape": [1, 2], "datatype": "FP32", "data": [0.4, 0.5]},
            ]
        },
    )
    assert r.status_code == 200, r.text
    expected = models[("joint", 1)].predict(
        [np.array([[0.1, 0.2, 0.3]], np.float32), np.array([[0.4, 0.5]], np.float32)]
    )
    assert np.array_equal(_f32(r.json()["outputs"][0]["data"]).reshape(1, 1), expected)
    df = credit_frame(3, seed=312)
    r = s.post(
        u + "/v1/explain",
        json={"model_name": "credit", "input_data": df.to_dict(orient="records"), "top_k": 2},
        timeout=TIMEOUT,
    )
    assert r.status_code == 200, r.text
    got = np.array([[a[f] for f in FEATURES] for a in r.json()["attributions"]], dtype=np.float32)
    np.testing.assert_array_equal(got, models[("credit", 2)].explain(df)[FEATURES].to_numpy())
    assert r.json()["reasons"] == models[("credit", 2)].reasons(df, top_k=2)
    r2 = s.post(
        u + "/v1/models/credit/versions/2:explain",
        json={"instances": df.to_numpy().tolist(), "top_k": 2},
        timeout=TIMEOUT,
    )
    assert r2.status_code == 200 and r2.json() == r.json()
    r3 = s.post(u + "/v1/models/credit/versions/x:explain", json={"instances": [[0] * 5]}, timeout=TIMEOUT)
    assert (r3.status_code, r3.json()) == (400, {"error": "version 'x' in the URL is not a version number"})
    m = s.get(u + "/metrics", timeout=TIMEOUT)
    assert m.status_code == 200 and m.headers["content-type"].startswith("text/plain")
    after = _samples(m.text)

    def added(sample):
        return after.get(sample, 0.0) - before.get(sample, 0.0)

    assert added('maasfin_requests_total{code="200",model="credit",protocol="simple",version="2"}') == 4.0
    assert added('maasfin_requests_total{code="200",model="credit",protocol="tfserving",version="2"}') == 1.0
    assert added('maasfin_requests_total{code="200",model="joint",protocol="v2",version="1"}') == 1.0
    assert added('maasfin_request_errors_total{code="400",model="",protocol="tfserving",version=""}') == 1.0
    assert added('maasfin_request_latency_seconds_count{model="joint",protocol="v2",version="1"}') == 1.0
    assert added('maasfin_predicted_rows_total{model="credit",version="2"}') == 3 + 3 + 3
    assert added('maasfin_batch_requests_count{model="credit",version="2"}') == 5  # one request per call
    assert after["maasfin_model_versions_loaded"] == 4.0


def _samples(text: str) -> dict:
    """Prometheus text format -> {"name{labels}": value}."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            sample, value = line.rsplit(" ", 1)
            out[sample] = float(value)
    return out


def test_flask_blueprint_serves_every_endpoint_of_the_asgi_app(tmp_path):
    """Both front ends register routes.ENDPOINTS; this catches a route added to one only."""
    put(tmp_path, "credit", 1, credit_model(seed=5))
    asgi = {
        (m, r.path)
        for r in create_app(tmp_path, poll_seconds=0).routes
        for m in getattr(r, "methods", ())
        if m != "HEAD" and r.path not in DOCS_PATHS
    }
    app = Flask("parity")
    app.register_blueprint(flask_blueprint(tmp_path, poll_seconds=0))
    flask = {
        (m, re.sub(r"<([a-z_]+)>", r"{\1}", rule.rule))
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("maasfin.")
        for m in rule.methods
        if m not in ("HEAD", "OPTIONS")
    }
    assert (
        len(asgi) == 35 and flask == asgi
    )  # 26 + two model-card routes + the console (3 files, 1 status) + outcomes (3)
