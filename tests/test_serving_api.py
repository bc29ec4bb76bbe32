"""The serving API against a real uvicorn server on loopback: simple /v1/predict, TF Serving REST,
the Open Inference Protocol v2 (JSON and binary tensors, through tritonclient), metrics, OpenAPI,
and a catalogue of bad requests that must each get an exact 4xx."""

import json

import numpy as np
import pytest
import requests
import tritonclient.http as triton
from serving_cases import BAD, MAX_BODY, catalogue_repo
from serving_support import FEATURES, ServerThread, credit_frame
from tritonclient.utils import InferenceServerException

import maasfin as mf
from maasfin.serving import create_app

TIMEOUT = 10


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    repo = tmp_path_factory.mktemp("repo")
    models = catalogue_repo(repo)
    app = create_app(repo, poll_seconds=0, max_body_bytes=MAX_BODY, max_latency_ms=1.0)
    with ServerThread(app) as server:
        with requests.Session() as s:
            yield server, s, models


def _post(s, url, body, **kw):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return s.post(url, data=data, timeout=TIMEOUT, **kw)


def _f32(x):
    return np.asarray(x, dtype=np.float64).astype(np.float32)


# -- predictions equal model.predict in-process, bit for bit ---------------------------------------
def test_simple_predict_records_and_rows(served):
    server, s, models = served
    df = credit_frame(64, seed=100)
    expected = models[("credit", 2)].predict(df)  # in-process, two full 32-row batches
    assert expected.shape == (64, 1)
    for i in (0, 7, 31, 32, 63):
        record = {c: float(df[c].iloc[i]) for c in FEATURES}
        r = _post(s, server.url + "/v1/predict", {"model_name": "credit", "input_data": record})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["model_name"] == "credit" and body["model_version"] == 2
        assert np.array_equal(_f32(body["predictions"]), expected[i : i + 1])
        assert len(r.headers["x-request-id"]) == 32
    records = df.iloc[10:30].to_dict(orient="records")
    r = _post(s, server.url + "/v1/predict", {"model_name": "credit", "input_data": records})
    assert np.array_equal(_f32(r.json()["predictions"]), expected[10:30])
    # rows in the model's feature order
    rows = df.to_numpy().tolist()
    r = _post(s, server.url + "/v1/predict", {"model_name": "credit", "input_data": rows})
    assert np.array_equal(_f32(r.json()["predictions"]), expected)
    # feature order in a record does not matter
    shuffled = {c: float(df[c].iloc[5]) for c in reversed(FEATURES)}
    r = _post(s, server.url + "/v1/predict", {"model_name": "credit", "input_data": [shuffled]})
    assert np.array_equal(_f32(r.json()["predictions"]), expected[5:6])


def test_versions_and_labels(served):
    server, s, models = served
    df = credit_frame(32, seed=101)
    e1, e2 = models[("credit", 1)].predict(df), models[("credit", 2)].predict(df)
    assert not np.array_equal(e1, e2)
    rows = df.to_numpy().tolist()
    for mv, version, expected in [
        (1, 1, e1),
        ("1", 1, e1),
        (2, 2, e2),
        ("stable", 1, e1),
        ("canary", 2, e2),
        (None, 2, e2),
    ]:
        body = {"model_name": "credit", "input_data": rows}
        if mv is not None:
            body["model_version"] = mv
        r = _post(s, server.url + "/v1/predict", body)
        assert r.status_code == 200 and r.json()["model_version"] == version
        assert np.array_equal(_f32(r.json()["predictions"]), expected)
    for path, expected in [
        ("/v1/models/credit:predict", e2),
        ("/v1/models/credit/versions/1:predict", e1),
        ("/v1/models/credit/labels/stable:predict", e1),
        ("/v1/models/credit/labels/canary:predict", e2),
    ]:
        r = _post(s, server.url + path, {"instances": rows})
        assert r.status_code == 200, r.text
        assert np.array_equal(_f32(r.json()["predictions"]), expected)


def test_tfserving_row_and_columnar_formats(served):
    server, s, models = served
    df = credit_frame(32, seed=102)
    expected = models[("credit", 2)].predict(df)
    url = server.url + "/v1/models/credit:predict"
    forms = [
        ({"instances": df.to_numpy().tolist()}, "predictions"),
        ({"instances": df.to_dict(orient="records")}, "predictions"),
        ({"instances": [{"input_layer": row} for row in df.to_numpy().tolist()]}, "predictions"),
        ({"signature_name": "serving_default", "inputs": df.to_numpy().tolist()}, "outputs"),
        ({"inputs": {"input_layer": df.to_numpy().tolist()}}, "outputs"),
        ({"inputs": {c: df[c].tolist() for c in FEATURES}}, "outputs"),
    ]
    for body, key in forms:
        r = _post(s, url, body)
        assert r.status_code == 200, r.text
        assert list(r.json()) == [key]
        assert np.array_equal(_f32(r.json()[key]), expected)


def test_status_and_metadata(served):
    server, s, _ = served
    r = s.get(server.url + "/v1/models/credit", timeout=TIMEOUT)
    assert r.json() == {
        "model_version_status": [
            {"version": "2", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}},
            {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}},
        ]
    }
    r = s.get(server.url + "/v1/models/credit/versions/1", timeout=TIMEOUT)
    assert [v["version"] for v in r.json()["model_version_status"]] == ["1"]
    meta = s.get(server.url + "/v1/models/credit/metadata", timeout=TIMEOUT).json()
    assert meta["model_spec"] == {"name": "credit", "signature_name": "", "version": "2"}
    sd = meta["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert sd["inputs"]["input_layer"]["tensor_shape"]["dim"] == [{"size": "-1", "name": ""}, {"size": "5", "name": ""}]
    assert meta["maasfin"]["feature_names"] == FEATURES
    meta1 = s.get(server.url + "/v1/models/credit/labels/stable/metadata", timeout=TIMEOUT).json()
    assert meta1["model_spec"]["version"] == "1"


def test_v2_with_tritonclient_binary_and_json(served):
    server, s, models = served
    df = credit_frame(64, seed=103)
    expected = models[("credit", 2)].predict(df)
    x = df.to_numpy()
    client = triton.InferenceServerClient(
        f"127.0.0.1:{server.port}", connection_timeout=TIMEOUT, network_timeout=TIMEOUT
    )
    try:
        assert client.is_server_live() and client.is_server_ready()
        assert client.is_model_ready("credit") and client.is_model_ready("credit", "1")
        assert not client.is_model_ready("credit", "9")
        meta = client.get_server_metadata()
        assert meta == {"name": "maasfin", "version": mf.__version__, "extensions": ["binary_tensor_data"]}
        mm = client.get_model_metadata("credit")
        assert mm["name"] == "credit" and mm["versions"] == ["2", "1"] and mm["platform"] == "maasfin"
        assert mm["inputs"] == [{"name": "input_layer", "datatype": "FP32", "shape": [-1, 5]}]
        out_name = mm["outputs"][0]["name"]
        assert mm["outputs"][0]["shape"] == [-1, 1]
        for binary_in in (True, False):
            for binary_out in (True, False):
                inp = triton.InferInput("input_layer", list(x.shape), "FP32")
                inp.set_data_from_numpy(x, binary_data=binary_in)
                out = triton.InferRequestedOutput(out_name, binary_data=binary_out)
                res = client.infer("credit", [inp], outputs=[out], request_id="req-7")
                y = res.as_numpy(out_name)
                assert y.dtype == np.float32 and np.array_equal(y, expected)
                assert res.get_response()["model_version"] == "2" and res.get_response()["id"] == "req-7"
        # default: binary in, every output binary; a version; FP64 input converted
        inp = triton.InferInput("input_layer", [32, 5], "FP64")
        inp.set_data_from_numpy(x[:32].astype(np.float64))
        res = client.infer("credit", [inp], model_version="1")
        assert np.array_equal(
            res.as_numpy(mm_out_1 := client.get_model_metadata("credit", "1")["outputs"][0]["name"]),
            models[("credit", 1)].predict(df.iloc[:32]),
        )
        assert mm_out_1
        # gzip-compressed request
        inp = triton.InferInput("input_layer", list(x.shape), "FP32")
        inp.set_data_from_numpy(x)
        res = client.infer("credit", [inp], request_compression_algorithm="gzip")
        assert np.array_equal(res.as_numpy(out_name), expected)
        with pytest.raises(
            InferenceServerException,
            match=r"input 'input_layer' has shape \[64, 4\], but model "
            r"'credit' expects \[-1, 5\]",
        ):
            bad = triton.InferInput("input_layer", [64, 4], "FP32")
            bad.set_data_from_numpy(x[:, :4].copy())
            client.infer("credit", [bad])
    finally:
        client.close()


def test_v2_plain_json_and_multi_input(served):
    server, s, models = served
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(32, 3)).astype(np.float32), rng.normal(size=(32, 2)).astype(np.float32)
    expected = models[("joint", 1)].predict([a, b])
    body = {
        "id": "j1",
        "inputs": [
            {"name": "bureau", "shape": [32, 2], "datatype": "FP32", "data": b.reshape(-1).tolist()},
            {"name": "applicant", "shape": [32, 3], "datatype": "FP32", "data": a.tolist()},
        ],
    }
    r = _post(s, server.url + "/v2/models/joint/infer", body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["model_name"] == "joint" and out["model_version"] == "1" and out["id"] == "j1"
    assert out["outputs"][0]["name"] == "pd" and out["outputs"][0]["shape"] == [32, 1]
    assert np.array_equal(_f32(out["outputs"][0]["data"]).reshape(32, 1), expected)
    r = _post(
        s,
        server.url + "/v1/predict",
        {"model_name": "joint", "input_data": {"applicant": a.tolist(), "bureau": b.tolist()}},
    )
    assert np.array_equal(_f32(r.json()["predictions"]), expected)
    r = _post(
        s,
        server.url + "/v1/models/joint:predict",
        {"instances": [{"applicant": a[i].tolist(), "bureau": b[i].tolist()} for i in range(32)]},
    )
    assert np.array_equal(_f32(r.json()["predictions"]), expected)
    # a model without feature names takes rows
    x = rng.normal(size=(32, 3)).astype(np.float32)
    r = _post(s, server.url + "/v1/predict", {"model_name": "plain", "input_data": x.tolist()})
    assert np.array_equal(_f32(r.json()["predictions"]), models[("plain", 1)].predict(x))


def test_metrics_openapi_and_docs(served):
    server, s, _ = served
    _post(s, server.url + "/v1/predict", {"model_name": "credit", "input_data": [[0, 0, 0, 0, 0]]})
    _post(s, server.url + "/v1/predict", {"model_name": "credit", "input_data": [[0, 0, 0, 0]]})
    text = s.get(server.url + "/metrics", timeout=TIMEOUT).text
    assert 'maasfin_requests_total{code="200",model="credit",protocol="simple",version="2"}' in text
    assert 'maasfin_request_errors_total{code="400",model="credit",protocol="simple",version="2"}' in text
    assert 'maasfin_request_latency_seconds_bucket{le="0.5",model="credit",protocol="simple",version="2"}' in text
    assert 'maasfin_batch_rows_bucket{le="1.0",model="credit",version="2"}' in text
    assert 'maasfin_model_loads_total{model="credit"} 2.0' in text
    assert "maasfin_model_versions_loaded 4.0" in text
    doc = s.get(server.url + "/openapi.json", timeout=TIMEOUT).json()
    for path in (
        "/v1/predict",
        "/v1/models/{name}:predict",
        "/v1/models/{name}/labels/{label}:predict",
        "/v2/models/{name}/infer",
        "/v2/health/ready",
        "/metrics",
    ):
        assert path in doc["paths"], path
    assert doc["paths"]["/v1/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/SimplePredictRequest"
    }
    assert {"SimplePredictRequest", "TFPredictRequest", "V2InferRequest", "V2Tensor", "ErrorResponse"} <= set(
        doc["components"]["schemas"]
    )
    docs = s.get(server.url + "/docs", timeout=TIMEOUT)
    assert docs.status_code == 200 and "swagger-ui" in docs.text


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_bad_requests_get_exact_4xx(served, case):
    server, s, _ = served
    _, path, body, headers, status, message = case
    r = _post(s, server.url + path, body, headers=headers)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {"error": message}


def test_http_level_errors_are_json(served):
    server, s, _ = served
    r = s.get(server.url + "/v1/predict", timeout=TIMEOUT)
    assert (r.status_code, r.json()) == (405, {"error": "Method Not Allowed"})
    r = s.get(server.url + "/nowhere", timeout=TIMEOUT)
    assert (r.status_code, r.json()) == (404, {"error": "Not Found"})
    r = s.get(server.url + "/v1/models/nope", timeout=TIMEOUT)
    assert (r.status_code, r.json()) == (404, {"error": "model 'nope' is not in the repository"})
    r = s.get(server.url + "/v2/models/nope/ready", timeout=TIMEOUT)
    assert (r.status_code, r.json()) == (404, {"error": "model 'nope' is not in the repository"})
