"""A FeatureSpace model (string features, missing values imputed in the model) behind a real
server: raw records in, the same predictions as in-process; bad records answered 400."""

import numpy as np
import pytest
import requests
from serving_support import ServerThread, put

import maasfin as mf
from maasfin.layers import Dense
from maasfin.models import Model, load_model
from maasfin.serving import create_app
from maasfin.utils import FeatureSpace


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    df = mf.datasets.load_credit().iloc[:500].reset_index(drop=True)
    x, y = df.drop(columns="Status"), (df["Status"] == "bad").to_numpy(np.float32)
    fs = FeatureSpace.from_dataframe(x)
    fs.adapt(x)
    model = Model(
        fs.get_inputs(), Dense(1, activation="sigmoid")(Dense(8, activation="relu")(fs.get_encoded_features()))
    )
    model.compile("adam", "binary_crossentropy")
    model.fit(x, y, epochs=2, verbose=0)
    repo = tmp_path_factory.mktemp("repo")
    put(str(repo), "fs", 1, model)
    loaded = load_model(str(repo / "fs" / "1" / "model.maas"))
    with ServerThread(create_app(str(repo), poll_seconds=0)) as s:
        yield s, loaded, x


def _records(frame):
    return [
        {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
        for r in frame.to_dict("records")
    ]


def test_raw_records_with_strings_and_missing_values(server):
    s, model, x = server
    rows = x.iloc[:40]
    assert rows.isna().any().any()
    expected = model.predict(rows).ravel().tolist()
    r = requests.post(s.url + "/v1/predict", json={"model_name": "fs", "input_data": _records(rows)}, timeout=30)
    assert r.status_code == 200, r.text
    np.testing.assert_allclose(np.ravel(r.json()["predictions"]), expected, rtol=1e-6, atol=1e-7)
    one = requests.post(
        s.url + "/v1/predict", json={"model_name": "fs", "input_data": _records(rows)[0]}, timeout=30
    ).json()["predictions"]
    assert np.ravel(one)[0] == pytest.approx(expected[0], rel=1e-6)


def test_tf_serving_instances_and_columns(server):
    s, model, x = server
    rows = x.iloc[10:15].fillna(0)
    expected = model.predict(rows).ravel()
    r = requests.post(s.url + "/v1/models/fs:predict", json={"instances": _records(rows)}, timeout=30)
    assert r.status_code == 200, r.text
    np.testing.assert_allclose(np.ravel(r.json()["predictions"]), expected, rtol=1e-6, atol=1e-7)
    cols = {k: list(v.values()) for k, v in rows.to_dict().items()}
    r = requests.post(s.url + "/v1/models/fs:predict", json={"inputs": cols}, timeout=30)
    assert r.status_code == 200, r.text
    np.testing.assert_allclose(np.ravel(r.json()["outputs"]), expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    "change, needle",
    [
        ({"Hobby": "golf"}, "unknown feature(s) ['Hobby']"),
        ({"Home": 3}, "['Home'] is a string feature"),
        ({"Income": "lots"}, "['Income'] is a numeric input"),
        ({"Income": 1e39}, "Income"),
        ("drop-Home", "missing input(s) ['Home']"),
    ],
)
def test_bad_records_are_400_naming_the_feature(server, change, needle):
    s, _, x = server
    rec = _records(x.iloc[:1])[0]
    if change == "drop-Home":
        del rec["Home"]
    else:
        rec.update(change)
    r = requests.post(s.url + "/v1/predict", json={"model_name": "fs", "input_data": [rec]}, timeout=30)
    assert r.status_code == 400 and needle in r.json()["error"], r.text


@pytest.mark.parametrize("data", [[], [[1.0] * 13], "rows", 3])
def test_non_records_are_400(server, data):
    s, _, _ = server
    r = requests.post(s.url + "/v1/predict", json={"model_name": "fs", "input_data": data}, timeout=30)
    assert r.status_code == 400, r.text


def test_open_inference_protocol_needs_one_tensor_per_raw_feature(server):
    s, _, x = server
    body = {"inputs": [{"name": "Seniority", "shape": [1, 1], "datatype": "FP32", "data": [1.0]}]}
    r = requests.post(s.url + "/v2/models/fs/infer", json=body, timeout=30)
    assert r.status_code == 400 and "missing input(s) ['Home', 'Time'" in r.json()["error"], r.text
