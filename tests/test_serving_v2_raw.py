"""OIP v2 for raw-feature models: a FeatureSpace network and a saved HistGradientBoosting pipeline,
queried with tritonclient (BYTES strings, NaN and null as missing values, binary and JSON tensors)
through the ASGI app and the Flask blueprint, give model.predict; bad tensors are 400 naming the field."""

import json
import os
import struct

import numpy as np
import pytest
import requests

pytest.importorskip("skl2onnx")
pytest.importorskip("onnxruntime")
httpclient = pytest.importorskip("tritonclient.http")
flask = pytest.importorskip("flask")

from serving_support import FlaskThread, ServerThread, free_socket, put  # noqa: E402
from sklearn.compose import ColumnTransformer  # noqa: E402
from sklearn.ensemble import HistGradientBoostingClassifier  # noqa: E402
from sklearn.impute import SimpleImputer  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import OneHotEncoder  # noqa: E402

import maasfin as mf  # noqa: E402
from maasfin.layers import Concatenate, Dense, Input  # noqa: E402
from maasfin.models import Model, load_model  # noqa: E402
from maasfin.saving import save_estimator  # noqa: E402
from maasfin.serving import create_app, flask_blueprint  # noqa: E402
from maasfin.utils import FeatureSpace  # noqa: E402

CAT = mf.datasets.CREDIT_CATEGORICAL_COLUMNS
NUM = mf.datasets.CREDIT_NUMERIC_COLUMNS


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    df = mf.datasets.load_credit()
    y = (df.pop("Status") == "bad").astype(int).to_numpy()
    x, y, rows = df.iloc[:600].reset_index(drop=True), y[:600], df.iloc[600:700].reset_index(drop=True)
    # the network: a FeatureSpace (strings looked up, missing values imputed) plus a "score" input
    # fed straight to a Dense layer, which therefore accepts no missing values
    mf.utils.set_random_seed(0)
    fs = FeatureSpace.from_dataframe(x)
    fs.adapt(x)
    score = Input(shape=(1,), name="score")
    h = Concatenate()([fs.get_encoded_features(), score])
    net = Model([*fs.get_inputs().values(), score], Dense(1, activation="sigmoid")(Dense(8, activation="relu")(h)))
    net.compile("adam", "binary_crossentropy")
    xs = x.assign(score=np.linspace(-1, 1, len(x)))
    net.fit(xs, y.astype(np.float32), epochs=1, verbose=0)
    pre = ColumnTransformer(
        [("num", SimpleImputer(strategy="median"), NUM), ("cat", OneHotEncoder(handle_unknown="ignore"), CAT)]
    )
    hgb = Pipeline([("pre", pre), ("clf", HistGradientBoostingClassifier(max_iter=30, random_state=0))]).fit(x, y)
    repo = str(tmp_path_factory.mktemp("repo"))
    put(repo, "net", 1, net)
    os.makedirs(os.path.join(repo, "hgb", "1"))
    save_estimator(hgb, os.path.join(repo, "hgb", "1", "model.maas"), x)
    loaded = load_model(os.path.join(repo, "net", "1", "model.maas"))
    rows = rows.assign(score=np.linspace(-0.5, 0.5, len(rows)))
    fapp = flask.Flask("v2raw")
    fapp.register_blueprint(flask_blueprint(repo, poll_seconds=0), url_prefix="/ml")
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    app = create_app(repo, poll_seconds=0, grpc_port=port, grpc_host="127.0.0.1")
    with ServerThread(app) as s, FlaskThread(fapp) as f:
        yield {"asgi": s.url, "flask": f.url + "/ml", "grpc": f"127.0.0.1:{port}"}, loaded, hgb, rows


def _float32(frame):
    out = frame.copy()
    out[NUM] = out[NUM].astype(np.float32)
    return out


def _tensors(frame, binary: bool):
    """tritonclient inputs, one [N, 1] tensor per column: strings BYTES, numbers FP64 (NaN missing)."""
    out = []
    for name in frame.columns:
        col = frame[name]
        if name in CAT:
            arr = np.array(col.tolist(), dtype=np.object_).reshape(-1, 1)
            t = httpclient.InferInput(name, list(arr.shape), "BYTES")
        else:
            arr = col.to_numpy(np.float64).reshape(-1, 1)
            t = httpclient.InferInput(name, list(arr.shape), "FP64")
        t.set_data_from_numpy(arr, binary_data=binary)
        out.append(t)
    return out


@pytest.mark.parametrize("front", ["asgi", "flask"])
@pytest.mark.parametrize("binary", [True, False])
def test_tritonclient_strings_and_nan_give_model_predict(servers, front, binary):
    urls, net, hgb, rows = servers
    rows = rows.dropna(subset=CAT)  # BYTES carry strings; missing strings go as JSON null (below)
    if not binary:
        rows = rows.dropna()  # JSON cannot carry NaN; null is tested below
    assert rows[NUM].isna().any().any() or not binary
    client = httpclient.InferenceServerClient(urls[front].removeprefix("http://"))  # the blueprint: a path prefix
    result = client.infer("net", _tensors(rows, binary))
    want = net.predict(rows)
    got = result.as_numpy(net.signature.output.name)
    np.testing.assert_array_equal(got.astype(np.float32), want.astype(np.float32))
    result = client.infer("hgb", _tensors(rows.drop(columns="score"), binary))
    want = hgb.predict_proba(_float32(rows.drop(columns="score")))
    np.testing.assert_allclose(result.as_numpy("probabilities"), want, atol=1e-5, rtol=0)


def _json_inputs(frame, shape1=False):
    out = []
    for name in frame.columns:
        vals = [None if v != v else (v if isinstance(v, str) else float(v)) for v in frame[name]]
        out.append(
            {
                "name": name,
                "shape": [len(vals), 1] if shape1 else [len(vals)],
                "datatype": "BYTES" if name in CAT else "FP64",
                "data": vals,
            }
        )
    return out


@pytest.mark.parametrize("front", ["asgi", "flask"])
def test_json_null_strings_and_numbers_give_model_predict(servers, front):
    urls, net, hgb, rows = servers
    rows = rows.copy()
    rows.loc[[0, 5], "Job"] = np.nan
    rows.loc[[2], "Home"] = np.nan
    rows.loc[[3], "Income"] = np.nan
    assert rows[NUM].isna().any().any()
    url = urls[front]
    r = requests.post(url + "/v2/models/net/infer", json={"inputs": _json_inputs(rows)}, timeout=30)
    assert r.status_code == 200, r.text
    out = r.json()["outputs"][0]
    assert out["shape"] == [len(rows), 1]
    np.testing.assert_array_equal(np.float32(out["data"]), net.predict(rows).ravel().astype(np.float32))
    x = rows.drop(columns="score")
    r = requests.post(url + "/v2/models/hgb/infer", json={"inputs": _json_inputs(x, shape1=True)}, timeout=30)
    assert r.status_code == 200, r.text
    got = np.asarray(r.json()["outputs"][0]["data"]).reshape(len(x), -1)
    np.testing.assert_allclose(got, hgb.predict_proba(_float32(x)), atol=1e-5, rtol=0)


def test_metadata_describes_strings_as_bytes(servers):
    urls, net, _, rows = servers
    for front in ("asgi", "flask"):
        meta = requests.get(urls[front] + "/v2/models/hgb", timeout=30).json()
        assert {i["name"]: i["datatype"] for i in meta["inputs"]} == {
            c: ("BYTES" if c in CAT else "FP32") for c in rows.columns if c != "score"
        }
        meta = requests.get(urls[front] + "/v2/models/net", timeout=30).json()
        assert {i["name"]: i["datatype"] for i in meta["inputs"]}["Job"] == "BYTES"
        assert {i["name"]: i["datatype"] for i in meta["inputs"]}["score"] == "FP32"


def _binary_request(url, model, tensors):
    """A binary-extension request: (name, datatype, shape, raw bytes) per tensor."""
    header = {
        "inputs": [
            {"name": n, "datatype": d, "shape": s, "parameters": {"binary_data_size": len(b)}} for n, d, s, b in tensors
        ]
    }
    head = json.dumps(header).encode()
    body = head + b"".join(t[3] for t in tensors)
    return requests.post(
        url + f"/v2/models/{model}/infer",
        data=body,
        headers={"Inference-Header-Content-Length": str(len(head)), "Content-Type": "application/octet-stream"},
        timeout=30,
    )


def _bytes(*items: bytes) -> bytes:
    return b"".join(struct.pack("<I", len(s)) + s for s in items)


@pytest.mark.parametrize("front", ["asgi", "flask"])
def test_bad_inputs_are_400_naming_the_field(servers, front):
    urls, _, _, rows = servers
    url = urls[front]
    good = _json_inputs(rows.iloc[:3].fillna({c: "x" for c in CAT}).fillna(1.0))

    def post(inputs):
        return requests.post(url + "/v2/models/net/infer", json={"inputs": inputs}, timeout=30)

    def err(r):
        assert r.status_code == 400, r.text
        return r.json()["error"]

    nulls = [dict(t, data=[1.0, None, 2.0]) if t["name"] == "score" else t for t in good]
    msg = err(post(nulls))
    assert "input 'score'" in msg and "row 1" in msg and "missing" in msg
    wrong = [dict(t, datatype="FP32", data=[1.0, 2.0, 3.0]) if t["name"] == "Job" else t for t in good]
    msg = err(post(wrong))
    assert "input 'Job'" in msg and "'FP32'" in msg and "BYTES" in msg
    wrong = [dict(t, data=["a", 3, "b"]) if t["name"] == "Job" else t for t in good]
    assert "input 'Job'" in (msg := err(post(wrong))) and "row 1" in msg
    wrong = [dict(t, datatype="BYTES", data=["a", "b", "c"]) if t["name"] == "Age" else t for t in good]
    assert "input 'Age'" in (msg := err(post(wrong))) and "'BYTES'" in msg and "FP32" in msg
    wrong = [dict(t, shape=[3, 2]) if t["name"] == "Age" else t for t in good]
    assert "input 'Age' has shape [3, 2]" in (msg := err(post(wrong))) and "[-1, 1]" in msg
    short = [dict(t, shape=[2], data=t["data"][:2]) if t["name"] == "Age" else t for t in good]
    msg = err(post(short))
    assert "input 'Age' has shape [2]" in msg and "[3]" in msg
    assert "missing input(s) ['Job']" in err(post([t for t in good if t["name"] != "Job"]))
    wrong = [dict(t, data=[1.5, 2.0, 3.0]) if t["name"] == "Age" else t for t in good]
    wrong = [dict(t, datatype="INT32") if t["name"] == "Age" else t for t in wrong]
    assert "input 'Age' is INT32, but row 0 is 1.5" in err(post(wrong))
    # binary: NaN where missing values are refused, and BYTES elements that do not fit their size
    n = 2
    rest = [
        (c, "FP64", [n], np.full(n, 1.0).tobytes()) if c not in CAT else (c, "BYTES", [n], _bytes(b"rent", b"owner"))
        for c in rows.columns
        if c != "score"
    ]
    r = _binary_request(url, "net", [*rest, ("score", "FP32", [n, 1], np.float32([0.5, np.nan]).tobytes())])
    msg = err(r)
    assert "input 'score'" in msg and "row 1" in msg
    bad = [(c, d, s, b[:-2] if c == "Job" else b) for c, d, s, b in rest]
    r = _binary_request(url, "net", [*bad, ("score", "FP32", [n], np.float32([0.5, 0.1]).tobytes())])
    msg = err(r)
    assert "input 'Job'" in msg and "element 1" in msg
    ok = _binary_request(url, "net", [*rest, ("score", "FP32", [n], np.float32([0.5, 0.1]).tobytes())])
    assert ok.status_code == 200, ok.text


def test_json_literals_and_ranges_are_400_naming_the_row(servers):
    urls, _, _, rows = servers
    x = rows.drop(columns="score").iloc[:3].fillna({c: "rent" for c in CAT}).fillna(1.0)
    inputs = [dict(t, data=[1.0, "NAN-LITERAL", 2.0]) if t["name"] == "Age" else t for t in _json_inputs(x)]
    body = json.dumps({"inputs": inputs}).replace('"NAN-LITERAL"', "NaN")
    r = requests.post(urls["asgi"] + "/v2/models/hgb/infer", data=body, timeout=30)
    assert r.status_code == 400 and "input 'Age': row 1" in r.json()["error"], r.text
    inputs = [dict(t, datatype="INT8", data=[1, 300, 2]) if t["name"] == "Age" else t for t in _json_inputs(x)]
    r = requests.post(urls["asgi"] + "/v2/models/hgb/infer", json={"inputs": inputs}, timeout=30)
    assert r.status_code == 400 and "input 'Age': row 1 is 300, outside the range of INT8" in r.json()["error"]


def test_explain_a_raw_estimator_through_v2(servers):
    urls, _, hgb, rows = servers
    x = rows.drop(columns="score").iloc[:4]
    r = requests.post(
        urls["asgi"] + "/v2/models/hgb/explain",
        json={"inputs": _json_inputs(x), "parameters": {"top_k": 2}},
        timeout=60,
    )
    assert r.status_code == 200, r.text
    out = {o["name"]: o for o in r.json()["outputs"]}
    got = np.asarray(out["probabilities"]["data"]).reshape(len(x), -1)
    np.testing.assert_allclose(got, hgb.predict_proba(_float32(x)), atol=1e-5, rtol=0)
    assert out["attributions"]["shape"] == [len(x), len(x.columns)]
    assert out["attributions"]["parameters"]["feature_names"] == list(x.columns)


def test_grpc_tritonclient_raw_contents_give_model_predict(servers):
    tgrpc = pytest.importorskip("tritonclient.grpc")
    urls, net, hgb, rows = servers
    rows = rows.dropna(subset=CAT)
    client = tgrpc.InferenceServerClient(urls["grpc"])
    inputs = []
    for name in rows.columns:
        if name in CAT:
            arr = np.array(rows[name].tolist(), dtype=np.object_).reshape(-1, 1)
            t = tgrpc.InferInput(name, list(arr.shape), "BYTES")
        else:
            arr = rows[name].to_numpy(np.float64).reshape(-1, 1)
            t = tgrpc.InferInput(name, list(arr.shape), "FP64")
        t.set_data_from_numpy(arr)
        inputs.append(t)
    got = client.infer("net", inputs).as_numpy(net.signature.output.name)
    np.testing.assert_array_equal(got, net.predict(rows).astype(np.float32))
    meta = client.get_model_metadata("hgb")
    assert {i.name: i.datatype for i in meta.inputs}["Job"] == "BYTES"
    client.close()
