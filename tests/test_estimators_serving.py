"""Estimators served beside a network by `maasfin serve`'s app: raw records with strings and missing
values give predict_proba to 1e-5 through /v1/predict, TF-Serving REST and OIP v2 (tritonclient)."""

import os

import numpy as np
import pytest
import requests

pytest.importorskip("skl2onnx")
pytest.importorskip("onnxruntime")

from serving_support import ServerThread, credit_model, put  # noqa: E402
from sklearn.compose import ColumnTransformer  # noqa: E402
from sklearn.ensemble import HistGradientBoostingClassifier  # noqa: E402
from sklearn.impute import SimpleImputer  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import OneHotEncoder, StandardScaler  # noqa: E402

import maasfin as mf  # noqa: E402
from maasfin.saving import save_estimator  # noqa: E402
from maasfin.serving import create_app  # noqa: E402

CAT = mf.datasets.CREDIT_CATEGORICAL_COLUMNS
NUM = mf.datasets.CREDIT_NUMERIC_COLUMNS


def _records(frame):
    return [{k: (None if v != v else v) for k, v in r.items()} for r in frame.to_dict("records")]


def _float32(frame):
    out = frame.copy()
    out[NUM] = out[NUM].astype(np.float32)
    return out


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    df = mf.datasets.load_credit()
    y = (df.pop("Status") == "bad").astype(int).to_numpy()
    x, y, rows = df.iloc[:800].reset_index(drop=True), y[:800], df.iloc[800:900].reset_index(drop=True)
    pre = ColumnTransformer(
        [
            ("num", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]), NUM),
            ("cat", OneHotEncoder(handle_unknown="ignore"), CAT),
        ]
    )
    lr = Pipeline([("pre", pre), ("clf", LogisticRegression(max_iter=2000))]).fit(x, y)
    gbm = HistGradientBoostingClassifier(max_iter=40, random_state=0).fit(x[NUM], y)  # NaN handled natively
    repo = str(tmp_path_factory.mktemp("repo"))
    for name, est, example in (("scorecard", lr, x), ("gbm", gbm, x[NUM])):
        os.makedirs(os.path.join(repo, name, "1"))
        save_estimator(est, os.path.join(repo, name, "1", "model.maas"), example)
    net = credit_model(0)
    put(repo, "net", 1, net)
    with ServerThread(create_app(repo, poll_seconds=0)) as s:
        s.net, s.repo = net, repo
        yield s, lr, gbm, rows


def test_v1_predict_raw_records_with_strings_and_missing_values(server):
    s, lr, _, rows = server
    assert rows.isna().any().any()
    want = lr.predict_proba(_float32(rows))
    r = requests.post(s.url + "/v1/predict", json={"model_name": "scorecard", "input_data": _records(rows)}, timeout=30)
    assert r.status_code == 200, r.text
    np.testing.assert_allclose(np.asarray(r.json()["predictions"]), want, atol=1e-5, rtol=0)
    one = requests.post(
        s.url + "/v1/predict", json={"model_name": "scorecard", "input_data": _records(rows)[3]}, timeout=30
    )
    np.testing.assert_allclose(np.asarray(one.json()["predictions"])[0], want[3], atol=1e-5, rtol=0)


def test_tf_serving_instances_and_columns(server):
    s, lr, _, rows = server
    want = lr.predict_proba(_float32(rows))
    r = requests.post(s.url + "/v1/models/scorecard:predict", json={"instances": _records(rows)}, timeout=30)
    assert r.status_code == 200, r.text
    np.testing.assert_allclose(np.asarray(r.json()["predictions"]), want, atol=1e-5, rtol=0)
    cols = {k: [None if v != v else v for v in rows[k]] for k in rows.columns}
    r = requests.post(s.url + "/v1/models/scorecard:predict", json={"inputs": cols}, timeout=30)
    assert r.status_code == 200, r.text
    np.testing.assert_allclose(np.asarray(r.json()["outputs"]), want, atol=1e-5, rtol=0)


def test_open_inference_protocol_v2_with_tritonclient(server):
    httpclient = pytest.importorskip("tritonclient.http")
    s, _, gbm, rows = server
    rows = rows[NUM]
    assert rows.isna().any().any()  # NaN in binary FP32 data: a missing value
    x = rows.to_numpy(np.float32)
    want = gbm.predict_proba(rows.astype(np.float32))
    client = httpclient.InferenceServerClient(s.url.removeprefix("http://"))
    inputs = []
    for j, name in enumerate(NUM):
        t = httpclient.InferInput(name, [len(x), 1], "FP32")
        t.set_data_from_numpy(np.ascontiguousarray(x[:, j : j + 1]), binary_data=True)
        inputs.append(t)
    result = client.infer("gbm", inputs)
    np.testing.assert_allclose(result.as_numpy("probabilities"), want, atol=1e-5, rtol=0)


def test_estimators_and_a_network_side_by_side(server):
    s, _, gbm, rows = server
    want = gbm.predict_proba(rows[NUM].astype(np.float32))
    r = requests.post(s.url + "/v1/predict", json={"model_name": "gbm", "input_data": _records(rows[NUM])}, timeout=30)
    np.testing.assert_allclose(np.asarray(r.json()["predictions"]), want, atol=1e-5, rtol=0)
    feats = ["income", "debt_ratio", "age", "utilisation", "late_payments"]
    rec = dict.fromkeys(feats, 0.5)
    r = requests.post(s.url + "/v1/predict", json={"model_name": "net", "input_data": [rec]}, timeout=30)
    assert r.status_code == 200, r.text
    want = s.net.predict(np.full((1, len(feats)), 0.5, np.float32))
    np.testing.assert_allclose(np.ravel(r.json()["predictions"]), np.ravel(want), rtol=1e-6)


def test_unseen_category_is_400_naming_the_feature(server):
    s, _, _, rows = server
    rec = _records(rows.iloc[:1])[0]
    rec["Job"] = "astronaut"
    r = requests.post(s.url + "/v1/predict", json={"model_name": "scorecard", "input_data": [rec]}, timeout=30)
    assert r.status_code == 400 and "['Job'] row 0 holds 'astronaut'" in r.json()["error"], r.text


def test_explain_a_linear_scorecard_gives_exact_contributions(server):
    s, lr, _, rows = server
    rows = rows.iloc[:8]
    r = requests.post(
        s.url + "/v1/explain", json={"model_name": "scorecard", "input_data": _records(rows), "top_k": 3}, timeout=30
    )
    assert r.status_code == 200, r.text
    got = np.array([[row[f] for f in rows.columns] for row in r.json()["attributions"]])
    margin = lr.decision_function(_float32(rows))
    local = mf.load_model(os.path.join(s.repo, "scorecard", "1", "model.maas"))
    expected = local.shap_values(rows)
    np.testing.assert_allclose(got, expected[:, :-1], atol=1e-5, rtol=0)
    np.testing.assert_allclose(expected.sum(axis=1), margin, atol=1e-5, rtol=0)


def test_drift_report_names_the_raw_features(server):
    s, _, _, rows = server
    requests.post(s.url + "/v1/predict", json={"model_name": "scorecard", "input_data": _records(rows)}, timeout=30)
    r = requests.get(s.url + "/v1/models/scorecard/drift", timeout=30)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["reference"] is True
    assert [f["feature"] for f in body["features"]] == list(rows.columns)


def test_explain_a_tree_estimator_gives_its_treeshap_attributions_and_reasons(server):
    s, _, gbm, rows = server
    rows = rows[NUM].iloc[:8]
    r = requests.post(
        s.url + "/v1/explain", json={"model_name": "gbm", "input_data": _records(rows), "top_k": 2}, timeout=30
    )
    assert r.status_code == 200, r.text
    body = r.json()
    local = mf.load_model(os.path.join(s.repo, "gbm", "1", "model.maas"))
    want = local.explain(rows)
    got = np.array([[row[f] for f in NUM] for row in body["attributions"]])
    shap = pytest.importorskip("shap")
    ref = np.asarray(shap.TreeExplainer(gbm).shap_values(rows.to_numpy(np.float32)))
    np.testing.assert_allclose(got, ref, atol=1e-5, rtol=0)
    np.testing.assert_allclose(want.to_numpy(), ref, atol=1e-5, rtol=0)
    assert [[d["feature"] for d in row] for row in body["reasons"]] == [
        [d["feature"] for d in row] for row in local.reasons(rows, top_k=2)
    ]


def test_an_example_that_misses_tree_nodes_gives_only_interventional_treeshap(server, tmp_path):
    _, _, gbm, rows = server
    save_estimator(gbm, tmp_path / "g.maas", rows[NUM].iloc[:8])
    model = mf.load_model(tmp_path / "g.maas")
    with pytest.raises(ValueError, match="has no node covers"):
        model.explain(rows[NUM].iloc[:2])
    phi = model.shap_values(rows[NUM].iloc[:2], feature_perturbation="interventional")
    np.testing.assert_allclose(phi.sum(axis=1), model.margin(rows[NUM].iloc[:2]), atol=1e-9)
