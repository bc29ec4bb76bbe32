"""The serving API against a real uvicorn server on loopback: simple /v1/predict, TF Serving REST,
the Open Inference Protocol v2 (JSON and binary tensors, through tritonclient), metrics, OpenAPI,
and a catalogue of bad requests that must each get an exact 4xx."""
import gzip
import json

import numpy as np
import pytest
import requests
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

import maasfin as mf
from maasfin.serving import create_app

from serving_support import FEATURES, ServerThread, credit_frame, credit_model, plain_model, put, put_labels, \
    two_input_model

TIMEOUT = 10


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    repo = tmp_path_factory.mktemp("repo")
    put(repo, "credit", 1, credit_model(seed=1))
    put(repo, "credit", 2, credit_model(seed=2, epochs=2))
    put_labels(repo, "credit", {"stable": 1, "canary": 2})
    put(repo, "plain", 1, plain_model(seed=3))
    put(repo, "joint", 1, two_input_model(seed=4))
    app = create_app(repo, poll_seconds=0, max_body_bytes=256 * 1024, max_latency_ms=1.0)
    models = {(n, v): mf.models.load_model(repo / n / str(v) / "model.maas", compile=False)
              for n, v in [("credit", 1), ("credit", 2), ("plain", 1), ("joint", 1)]}
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
        assert np.array_equal(_f32(body["predictions"]), expected[i:i + 1])
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
    for mv, version, expected in [(1, 1, e1), ("1", 1, e1), (2, 2, e2), ("stable", 1, e1), ("canary", 2, e2),
                                  (None, 2, e2)]:
        body = {"model_name": "credit", "input_data": rows}
        if mv is not None:
            body["model_version"] = mv
        r = _post(s, server.url + "/v1/predict", body)
        assert r.status_code == 200 and r.json()["model_version"] == version
        assert np.array_equal(_f32(r.json()["predictions"]), expected)
    for path, expected in [("/v1/models/credit:predict", e2), ("/v1/models/credit/versions/1:predict", e1),
                           ("/v1/models/credit/labels/stable:predict", e1),
                           ("/v1/models/credit/labels/canary:predict", e2)]:
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
    assert r.json() == {"model_version_status": [
        {"version": "2", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}},
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}
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
    client = triton.InferenceServerClient(f"127.0.0.1:{server.port}", connection_timeout=TIMEOUT,
                                          network_timeout=TIMEOUT)
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
        assert np.array_equal(res.as_numpy(mm_out_1 := client.get_model_metadata("credit", "1")["outputs"][0]["name"]),
                              models[("credit", 1)].predict(df.iloc[:32]))
        assert mm_out_1
        # gzip-compressed request
        inp = triton.InferInput("input_layer", list(x.shape), "FP32")
        inp.set_data_from_numpy(x)
        res = client.infer("credit", [inp], request_compression_algorithm="gzip")
        assert np.array_equal(res.as_numpy(out_name), expected)
        with pytest.raises(InferenceServerException, match=r"input 'input_layer' has shape \[64, 4\], but model "
                                                           r"'credit' expects \[-1, 5\]"):
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
    body = {"id": "j1", "inputs": [
        {"name": "bureau", "shape": [32, 2], "datatype": "FP32", "data": b.reshape(-1).tolist()},
        {"name": "applicant", "shape": [32, 3], "datatype": "FP32", "data": a.tolist()}]}
    r = _post(s, server.url + "/v2/models/joint/infer", body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["model_name"] == "joint" and out["model_version"] == "1" and out["id"] == "j1"
    assert out["outputs"][0]["name"] == "pd" and out["outputs"][0]["shape"] == [32, 1]
    assert np.array_equal(_f32(out["outputs"][0]["data"]).reshape(32, 1), expected)
    r = _post(s, server.url + "/v1/predict", {"model_name": "joint",
                                              "input_data": {"applicant": a.tolist(), "bureau": b.tolist()}})
    assert np.array_equal(_f32(r.json()["predictions"]), expected)
    r = _post(s, server.url + "/v1/models/joint:predict",
              {"instances": [{"applicant": a[i].tolist(), "bureau": b[i].tolist()} for i in range(32)]})
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
    assert "maasfin_model_loads_total{model=\"credit\"} 2.0" in text
    assert "maasfin_model_versions_loaded 4.0" in text
    doc = s.get(server.url + "/openapi.json", timeout=TIMEOUT).json()
    for path in ("/v1/predict", "/v1/models/{name}:predict", "/v1/models/{name}/labels/{label}:predict",
                 "/v2/models/{name}/infer", "/v2/health/ready", "/metrics"):
        assert path in doc["paths"], path
    assert doc["paths"]["/v1/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"] == \
        {"$ref": "#/components/schemas/SimplePredictRequest"}
    assert {"SimplePredictRequest", "TFPredictRequest", "V2InferRequest", "V2Tensor", "ErrorResponse"} <= \
        set(doc["components"]["schemas"])
    docs = s.get(server.url + "/docs", timeout=TIMEOUT)
    assert docs.status_code == 200 and "swagger-ui" in docs.text


# -- the catalogue of bad requests ------------------------------------------------------------------
REC = {"income": 0.5, "debt_ratio": 0.2, "age": 0.1, "utilisation": 0.3, "late_payments": 0.0}
ROW = [0.5, 0.2, 0.1, 0.3, 0.0]
SHAPE_MSG = ("input_data does not match input 'input_layer' of model 'credit', which takes shape (None, 5): "
             "rows of 5 number(s) expected, got rows of 4")
NAN_MSG = ": NaN and infinity are not allowed (JSON has no such numbers); impute or drop missing values before sending them"
FEATS = "the model's features are ['income', 'debt_ratio', 'age', 'utilisation', 'late_payments']"


def _binary(size_declared: int, payload: bytes):
    head = json.dumps({"inputs": [{"name": "input_layer", "shape": [1, 5], "datatype": "FP32",
                                   "parameters": {"binary_data_size": size_declared}}]}).encode()
    return head + payload, {"Inference-Header-Content-Length": str(len(head))}


def _v2(inputs, **extra):
    return {"inputs": inputs, **extra}


def _t(data, shape=(1, 5), dtype="FP32", name="input_layer"):
    return {"name": name, "shape": list(shape), "datatype": dtype, "data": data}


BAD = [
    # (id, path, body, headers, status, message)
    ("not-json", "/v1/predict", b"income=1", {}, 400, "request body is not valid JSON: Expecting value at line 1 column 1"),
    ("empty", "/v1/predict", b"", {}, 400, "request body is empty; send a JSON object"),
    ("not-utf8", "/v1/predict", b"\xff\xfe{}", {}, 400, "request body is not UTF-8 text (invalid byte at offset 0)"),
    ("array-body", "/v1/predict", [1, 2], {}, 400, "request body must be a JSON object, got an array"),
    ("truncated", "/v1/predict", b'{"model_name": "credit", "input_data": [[1,', {}, 400,
     "request body is not valid JSON: Expecting value at line 1 column 44"),
    ("no-model", "/v1/predict", {"input_data": [ROW]}, {}, 400, "the request has no 'model_name'"),
    ("model-number", "/v1/predict", {"model_name": 3, "input_data": [ROW]}, {}, 400,
     "model_name must be a non-empty string, got a number"),
    ("unknown-model", "/v1/predict", {"model_name": "nope", "input_data": [ROW]}, {}, 404,
     "model 'nope' is not in the repository"),
    ("unknown-field", "/v1/predict", {"model_name": "credit", "inputs": [ROW]}, {}, 400,
     "unknown field(s) ['inputs']; the request takes 'model_name', 'input_data' and optionally 'model_version' "
     "(a version number or a label)"),
    ("no-input", "/v1/predict", {"model_name": "credit"}, {}, 400,
     "the request has no 'input_data' (a record, a list of records or a list of rows)"),
    ("input-string", "/v1/predict", {"model_name": "credit", "input_data": "1,2,3"}, {}, 400,
     "input_data must be an object (one record), a list of records or a list of rows, got a string"),
    ("nan-record", "/v1/predict", b'{"model_name": "credit", "input_data": {"income": 0.5, "debt_ratio": NaN, '
                                  b'"age": 0.1, "utilisation": 0.3, "late_payments": 0.0}}', {}, 400,
     'input_data["debt_ratio"] is NaN' + NAN_MSG),
    ("inf-row", "/v1/predict", b'{"model_name": "credit", "input_data": [[0.5, 0.2, -Infinity, 0.3, 0.0]]}', {}, 400,
     "input_data[0][2] is -Infinity" + NAN_MSG),
    ("string-value", "/v1/predict", {"model_name": "credit", "input_data": [REC, {**REC, "age": "41"}]}, {}, 400,
     'input_data[1]["age"] is "41" (a string), expected a number'),
    ("bool-value", "/v1/predict", {"model_name": "credit", "input_data": [[0.5, True, 0.1, 0.3, 0.0]]}, {}, 400,
     "input_data[0][1] is true (a boolean), expected a number"),
    ("null-value", "/v1/predict", {"model_name": "credit", "input_data": {**REC, "income": None}}, {}, 400,
     'input_data["income"] is null, expected a number'),
    ("missing-feature", "/v1/predict", {"model_name": "credit", "input_data": [{k: v for k, v in REC.items() if k != "age"}]},
     {}, 400, f"input_data[0] is missing feature(s) ['age']; {FEATS}"),
    ("extra-feature", "/v1/predict", {"model_name": "credit", "input_data": {**REC, "zip": 1}}, {}, 400,
     f"input_data has unknown feature(s) ['zip']; {FEATS}"),
    ("mixed-records", "/v1/predict", {"model_name": "credit", "input_data": [REC, ROW]}, {}, 400,
     "input_data[1] is an array, but input_data[0] is a record: send all records as objects keyed by feature name"),
    ("narrow-rows", "/v1/predict", {"model_name": "credit", "input_data": [ROW[:4]]}, {}, 400, SHAPE_MSG),
    ("ragged-rows", "/v1/predict", {"model_name": "credit", "input_data": [ROW, ROW[:4]]}, {}, 400,
     "input_data is not a rectangular array: input_data[0] has 5 values but input_data[1] has 4 values"),
    ("flat-row", "/v1/predict", {"model_name": "credit", "input_data": ROW}, {}, 400,
     "input_data does not match input 'input_layer' of model 'credit', which takes shape (None, 5): a list of rows "
     "expected, got a flat list of 5 number(s); wrap one row in brackets: [[...]]"),
    ("no-rows", "/v1/predict", {"model_name": "credit", "input_data": []}, {}, 400,
     "input_data is empty: send at least one record or row"),
    ("too-big-number", "/v1/predict", {"model_name": "credit", "input_data": [[1e39, 0, 0, 0, 0]]}, {}, 400,
     "input_data[0][0] is 1e+39, outside the float32 range (about ±3.4e38) the model computes in"),
    ("records-no-names", "/v1/predict", {"model_name": "plain", "input_data": {"a": 1}}, {}, 400,
     "input_data holds records (objects), but model 'plain' has no feature names (it was not trained on a "
     "DataFrame): send rows instead, each a list of 3 number(s)"),
    ("bad-version", "/v1/predict", {"model_name": "credit", "model_version": 7, "input_data": [ROW]}, {}, 404,
     "model 'credit' has no available version 7; available versions: [1, 2]"),
    ("bad-label", "/v1/predict", {"model_name": "credit", "model_version": "beta", "input_data": [ROW]}, {}, 404,
     "model 'credit' has no label 'beta'; labels: ['canary', 'stable']"),
    ("bad-version-type", "/v1/predict", {"model_name": "credit", "model_version": 1.5, "input_data": [ROW]}, {}, 400,
     "model_version must be a version number or a label name, got 1.5"),
    ("oversized", "/v1/predict", {"model_name": "credit", "input_data": [ROW] * 20000}, {}, 413,
     "the request body is larger than the limit of 262144 bytes"),
    ("zip-bomb", "/v1/predict", gzip.compress(b" " * 1_000_000), {"Content-Encoding": "gzip"}, 413,
     "the decompressed request body is larger than the limit of 262144 bytes"),
    ("bad-encoding", "/v1/predict", {"model_name": "credit", "input_data": [ROW]}, {"Content-Encoding": "br"}, 415,
     "Content-Encoding 'br' is not supported (use gzip, deflate or none)"),
    # TF Serving
    ("tf-both", "/v1/models/credit:predict", {"instances": [ROW], "inputs": [ROW]}, {}, 400,
     "the request has both 'instances' and 'inputs'; send one of them"),
    ("tf-neither", "/v1/models/credit:predict", {"signature_name": "serving_default"}, {}, 400,
     "the request needs 'instances' (row format) or 'inputs' (columnar format)"),
    ("tf-instances-type", "/v1/models/credit:predict", {"instances": {"x": 1}}, {}, 400,
     "instances must be a list (one element per row), got an object"),
    ("tf-signature", "/v1/models/credit:predict", {"signature_name": "classify", "instances": [ROW]}, {}, 400,
     "signature_name \"classify\" (a string) is unknown; the only signature is 'serving_default'"),
    ("tf-version", "/v1/models/credit/versions/abc:predict", {"instances": [ROW]}, {}, 400,
     "version 'abc' in the URL is not a version number"),
    ("tf-unknown-model", "/v1/models/nope:predict", {"instances": [ROW]}, {}, 404, "model 'nope' is not in the repository"),
    ("tf-label", "/v1/models/credit/labels/beta:predict", {"instances": [ROW]}, {}, 404,
     "model 'credit' has no label 'beta'; labels: ['canary', 'stable']"),
    ("tf-columns", "/v1/models/credit:predict", {"inputs": {"income": [1, 2], "debt_ratio": [1], "age": [1],
                                                           "utilisation": [1], "late_payments": [1]}}, {}, 400,
     'inputs["debt_ratio"] has 1 values but inputs["income"] has 2: every column needs one value per row'),
    # Open Inference Protocol v2
    ("v2-shape", "/v2/models/credit/infer", _v2([_t([1, 2, 3, 4], shape=(1, 4))]), {}, 400,
     "input 'input_layer' has shape [1, 4], but model 'credit' expects [-1, 5]"),
    ("v2-rank", "/v2/models/credit/infer", _v2([_t(ROW, shape=(5,))]), {}, 400,
     "input 'input_layer' has shape [5], but model 'credit' expects [-1, 5]"),
    ("v2-bytes", "/v2/models/credit/infer", _v2([_t(["a"] * 5, dtype="BYTES")]), {}, 400,
     "input 'input_layer' has datatype 'BYTES', which is not a numeric datatype; model 'credit' takes FP32 "
     "(also accepted: FP64, FP16, INT8, INT16, INT32, INT64, UINT8, UINT16, UINT32, UINT64)"),
    ("v2-dtype", "/v2/models/credit/infer", _v2([_t(ROW, dtype="FLOAT")]), {}, 400,
     "input 'input_layer' has datatype 'FLOAT', which is not a known datatype; model 'credit' takes FP32 "
     "(also accepted: FP64, FP16, INT8, INT16, INT32, INT64, UINT8, UINT16, UINT32, UINT64)"),
    ("v2-count", "/v2/models/credit/infer", _v2([_t(ROW[:4])]), {}, 400,
     "input 'input_layer' has 4 values in 'data', but its shape [1, 5] needs 5"),
    ("v2-string-data", "/v2/models/credit/infer", _v2([_t([0.5, "x", 0, 0, 0])]), {}, 400,
     "input 'input_layer': data[1] is \"x\" (a string), expected a number"),
    ("v2-int-data", "/v2/models/credit/infer", _v2([_t([1, 2.5, 3, 4, 5], dtype="INT32")]), {}, 400,
     "input 'input_layer' is INT32, but data[1] is 2.5, not an integer"),
    ("v2-unknown-input", "/v2/models/credit/infer", _v2([_t(ROW, name="x")]), {}, 400,
     "unknown input 'x'; model 'credit' has input(s) ['input_layer']"),
    ("v2-missing-input", "/v2/models/joint/infer", _v2([_t([1, 2, 3], shape=(1, 3), name="applicant")]), {}, 400,
     "missing input(s) ['bureau']; model 'joint' has input(s) ['applicant', 'bureau']"),
    ("v2-rows-differ", "/v2/models/joint/infer", _v2([_t([1, 2, 3], shape=(1, 3), name="applicant"),
                                                       _t([1, 2, 3, 4], shape=(2, 2), name="bureau")]), {}, 400,
     "inputs: the inputs have different numbers of rows {'applicant': 1, 'bureau': 2}"),
    ("v2-no-inputs", "/v2/models/credit/infer", {"inputs": []}, {}, 400,
     "'inputs' must be a non-empty list of tensors {name, shape, datatype, data}"),
    ("v2-output", "/v2/models/credit/infer", _v2([_t(ROW)], outputs=[{"name": "logits"}]), {}, 400,
     "unknown output 'logits'; the model's output is 'pd'"),
    ("v2-binary-size", "/v2/models/credit/infer", *_binary(16, b"\0" * 16), 400,
     "input 'input_layer': binary_data_size is 16 bytes, but shape [1, 5] of FP32 needs 20"),
    ("v2-binary-nan", "/v2/models/credit/infer", *_binary(20, np.array([0, np.nan, 0, 0, 0], dtype="<f4").tobytes()),
     400,
     "input 'input_layer' contains NaN at row 0, column 1 (1 non-finite value(s) in total); impute or drop missing "
     "values before passing them to the model"),
    ("v2-binary-short", "/v2/models/credit/infer", *_binary(20, b"\0" * 8), 400,
     "input 'input_layer': the request's binary data ends after 8 bytes, but the inputs declare at least 20"),
    ("v2-binary-extra", "/v2/models/credit/infer", *_binary(20, b"\0" * 24), 400,
     "the request has 24 bytes of binary data, but its inputs declare 20"),
    ("v2-header-length", "/v2/models/credit/infer", _v2([_t(ROW)]), {"Inference-Header-Content-Length": "99999"}, 400,
     f"the Inference-Header-Content-Length header is 99999, but the body has {len(json.dumps(_v2([_t(ROW)])))} bytes; "
     "it must be the length of "
     "the JSON header within the body"),
    ("v2-header-length-text", "/v2/models/credit/infer", _v2([_t(ROW)]), {"Inference-Header-Content-Length": "ten"},
     400, "the Inference-Header-Content-Length header is 'ten', not a number of bytes"),
    ("v2-version", "/v2/models/credit/versions/3/infer", _v2([_t(ROW)]), {}, 404,
     "model 'credit' has no available version 3; available versions: [1, 2]"),
    ("v2-no-binary-header", "/v2/models/credit/infer",
     {"inputs": [{"name": "input_layer", "shape": [1, 5], "datatype": "FP32", "parameters": {"binary_data_size": 20}}]},
     {}, 400, "input 'input_layer': the request's binary data ends after 0 bytes, but the inputs declare at least 20"),
]


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
