"""POST /v1/explain on a real server: the same attributions and reasons as in-process."""

import json

import numpy as np
import pytest
import requests
from serving_support import FEATURES, ServerThread, credit_frame, credit_model, put

import maasfin as mf
from maasfin.serving import create_app


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    repo = tmp_path_factory.mktemp("repo")
    model = credit_model(seed=5, epochs=3)
    model.set_reason_codes(
        {"debt_ratio": ("R01", "Debt too high for income"), "income": ("R07", "Income insufficient")}
    )
    put(str(repo), "credit", 1, model)
    loaded = mf.models.load_model(str(repo / "credit" / "1" / "model.maas"))
    with ServerThread(create_app(str(repo), poll_seconds=0)) as s:
        yield s, loaded


def test_explain_returns_predictions_attributions_and_reasons(server):
    s, model = server
    df = credit_frame(8, seed=11)
    records = df.to_dict(orient="records")
    r = requests.post(
        s.url + "/v1/explain", json={"model_name": "credit", "input_data": records, "top_k": 2}, timeout=30
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model_version"] == 1 and len(body["predictions"]) == 8
    expected = model.explain(df)
    got = np.array([[row[f] for f in FEATURES] for row in body["attributions"]], dtype=np.float32)
    np.testing.assert_array_equal(got, expected[FEATURES].to_numpy())
    assert body["reasons"] == model.reasons(df, top_k=2)
    for reasons in body["reasons"]:
        assert len(reasons) <= 2 and all(x["contribution"] > 0 for x in reasons)
        for x in reasons:
            if x["feature"] == "debt_ratio":
                assert x["code"] == "R01"
    served = requests.post(
        s.url + "/v1/predict", json={"model_name": "credit", "input_data": records}, timeout=30
    ).json()["predictions"]
    assert body["predictions"] == served


@pytest.mark.parametrize(
    "extra, status, needle",
    [
        ({"top_k": 0}, 400, "top_k"),
        ({"steps": "many"}, 400, "steps"),
        ({"surprise": 1}, 400, "unknown field"),
        ({"model_name": "nope"}, 404, "nope"),
    ],
)
def test_bad_explain_requests_are_4xx(server, extra, status, needle):
    s, _ = server
    body = {"model_name": "credit", "input_data": [[0.0] * len(FEATURES)], **extra}
    r = requests.post(s.url + "/v1/explain", json=body, timeout=30)
    assert r.status_code == status and needle in r.json()["error"]


def test_tf_serving_style_explain_route_matches_the_simple_one(server):
    s, model = server
    df = credit_frame(4, seed=12)
    rows = df.to_numpy().tolist()
    simple = requests.post(s.url + "/v1/explain", json={"model_name": "credit", "input_data": rows}, timeout=30).json()
    for path in ("/v1/models/credit:explain", "/v1/models/credit/versions/1:explain"):
        r = requests.post(s.url + path, json={"instances": rows}, timeout=30)
        assert r.status_code == 200, r.text
        assert r.json() == simple
    r = requests.post(s.url + "/v1/models/credit:explain", json={"rows": rows}, timeout=30)
    assert r.status_code == 400 and "instances" in r.json()["error"]
    r = requests.post(s.url + "/v1/models/credit/versions/9:explain", json={"instances": rows}, timeout=30)
    assert r.status_code == 404


def _v2_body(rows, **params):
    body = {
        "id": "req-7",
        "inputs": [
            {"name": "input_layer", "shape": list(rows.shape), "datatype": "FP32", "data": rows.reshape(-1).tolist()}
        ],
    }
    if params:
        body["parameters"] = params
    return body


def test_open_inference_protocol_explain_extension(server):
    s, model = server
    df = credit_frame(5, seed=13)
    rows = df.to_numpy(np.float32)
    meta = requests.get(s.url + "/v2/models/credit", timeout=30).json()
    name = meta["inputs"][0]["name"]
    body = _v2_body(rows, top_k=2, steps=32)
    body["inputs"][0]["name"] = name
    for path in ("/v2/models/credit/explain", "/v2/models/credit/versions/1/explain"):
        r = requests.post(s.url + path, json=body, timeout=30)
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["id"] == "req-7" and out["model_version"] == "1"
        pred, attr, reasons = out["outputs"]
        assert attr["name"] == "attributions" and attr["parameters"]["feature_names"] == FEATURES
        assert attr["shape"] == [5, len(FEATURES)] and reasons["datatype"] == "BYTES" and reasons["shape"] == [5]
        expected = model.explain(df, steps=32)[FEATURES].to_numpy()
        np.testing.assert_array_equal(np.asarray(attr["data"], np.float32).reshape(5, -1), expected)
        assert [json.loads(x) for x in reasons["data"]] == model.reasons(df, top_k=2, steps=32)
        served = requests.post(s.url + "/v2/models/credit/infer", json=body, timeout=30).json()["outputs"][0]
        assert pred == served
    # the same request as binary tensors (the extension tritonclient uses)
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": name,
                    "shape": [5, len(FEATURES)],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": rows.nbytes},
                }
            ]
        }
    ).encode()
    r = requests.post(
        s.url + "/v2/models/credit/explain",
        data=header + rows.tobytes(),
        headers={"Inference-Header-Content-Length": str(len(header)), "Content-Type": "application/octet-stream"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    np.testing.assert_array_equal(
        np.asarray(r.json()["outputs"][1]["data"], np.float32).reshape(5, -1), model.explain(df)[FEATURES].to_numpy()
    )


@pytest.mark.parametrize(
    "params, needle",
    [({"top_k": 0}, "parameters.top_k"), ({"steps": 9999}, "parameters.steps"), ({"steps": "x"}, "parameters.steps")],
)
def test_v2_explain_bad_parameters_are_400(server, params, needle):
    s, _ = server
    name = requests.get(s.url + "/v2/models/credit", timeout=30).json()["inputs"][0]["name"]
    body = _v2_body(np.zeros((1, len(FEATURES)), np.float32), **params)
    body["inputs"][0]["name"] = name
    r = requests.post(s.url + "/v2/models/credit/explain", json=body, timeout=30)
    assert r.status_code == 400 and needle in r.json()["error"], r.text
