"""Explanations of models whose inputs pass through lookups, hashing, discretization, embeddings or
imputation (FeatureSpace models, string inputs) or that have several inputs: integrated gradients
in the encoded space, summed per raw feature; drift over raw features, categories included."""

import numpy as np
import pandas as pd
import pytest
import requests

import maasfin as mf
from maasfin import _core
from maasfin.explain import monitoring
from maasfin.layers import Concatenate, Dense, Imputation, Input, Normalization, StringLookup
from maasfin.models import Model, load_model
from maasfin.utils import FeatureSpace


@pytest.fixture(scope="module")
def credit():
    df = mf.datasets.load_credit().iloc[:900].reset_index(drop=True)
    return df.drop(columns="Status"), (df["Status"] == "bad").to_numpy(np.float32)


@pytest.fixture(scope="module")
def fs_model(credit):
    """Every kind of encoding at once: one-hot lookups, an embedding, a discretized float, a
    hashed string, imputed floats (Income has missing values) and a cross."""
    x, y = credit
    mf.utils.set_random_seed(3)
    fs = FeatureSpace.from_dataframe(
        x,
        features={
            "Job": FeatureSpace.string_categorical(output_mode="embedding", embedding_dim=3),
            "Age": FeatureSpace.float_discretized(num_bins=5),
            "Marital": FeatureSpace.string_hashed(num_bins=8),
        },
        crosses=[FeatureSpace.cross(("Home", "Records"), 16)],
    )
    fs.adapt(x)
    out = Dense(1, activation="sigmoid")(Dense(8, activation="tanh")(fs.get_encoded_features()))
    model = Model(fs.get_inputs(), out)
    model.compile("adam", "binary_crossentropy")
    model.fit(x, y, epochs=4, verbose=0)
    return model


RAW = [
    "Seniority",
    "Home",
    "Time",
    "Age",
    "Marital",
    "Records",
    "Job",
    "Expenses",
    "Income",
    "Assets",
    "Debt",
    "Amount",
    "Price",
]


def test_attributions_are_per_raw_feature_and_complete_against_a_raw_baseline(fs_model, credit):
    x, _ = credit
    rows, ref = x.iloc[:40], x.iloc[[7]]
    assert rows["Income"].isna().any()  # imputed values are explained too
    a = fs_model.explain(rows, baseline=ref)
    assert list(a.columns) == RAW + ["Home_X_Records"]
    delta = fs_model.predict(rows).ravel() - fs_model.predict(ref).ravel()[0]
    np.testing.assert_allclose(a.to_numpy().sum(axis=1), delta, atol=1e-5)
    # The baseline row explains itself as nothing at all.
    np.testing.assert_array_equal(fs_model.explain(ref, baseline=ref).to_numpy(), 0.0)


def test_stored_baseline_is_the_mean_encoded_training_row(fs_model, credit):
    x, _ = credit
    z = _core.encode(fs_model._graph, fs_model._prepare_x(x))
    np.testing.assert_allclose(fs_model._explain_baseline, z.mean(axis=0), rtol=1e-5, atol=1e-6)
    a = fs_model.explain(x.iloc[:25]).to_numpy()
    # sum = f(x) - f(baseline): the same f(baseline) for every row.
    implied = fs_model.predict(x.iloc[:25]).ravel() - a.sum(axis=1)
    assert np.ptp(implied) < 1e-5
    # and it is the model evaluated at the baseline: explaining an exact zero path from it.
    again = fs_model.explain(x.iloc[:25], steps=128).to_numpy()
    np.testing.assert_allclose(again.sum(axis=1), a.sum(axis=1), atol=1e-5)


def test_deterministic_and_reproduced_after_save_and_load(fs_model, credit, tmp_path):
    x, _ = credit
    rows = x.iloc[100:130]
    first = fs_model.explain(rows).to_numpy()
    assert np.array_equal(first, fs_model.explain(rows).to_numpy())
    fs_model.save(tmp_path / "m.maas")
    loaded = load_model(tmp_path / "m.maas")
    assert loaded._explain_baseline == fs_model._explain_baseline
    assert np.array_equal(loaded.explain(rows).to_numpy(), first)
    assert np.array_equal(loaded.explain(rows.to_dict("records")).to_numpy(), first)


def _linear_model():
    """age -> Imputation(constant 40, indicator) -> Normalization(40, 100); home -> one-hot; Dense(1)."""
    age = Input(shape=(1,), name="age", dtype="float32")
    home = Input(shape=(1,), name="home", dtype="string")
    imp = Imputation(strategy="constant", fill_value=40.0, add_indicator=True, name="age_imp")
    lookup = StringLookup(vocabulary=["rent", "owner"], output_mode="one_hot", name="home_lookup")
    x = Concatenate()([Normalization(mean=40.0, variance=100.0, name="age_norm")(imp(age)), lookup(home)])
    model = Model({"age": age, "home": home}, Dense(1, name="out")(x))
    model.compile("sgd", "mse")
    model.build()
    # encoded: [age_norm(value), age_norm(indicator), oov, rent, owner]
    w = np.array([[0.5], [-2.0], [0.25], [1.5], [-1.0]], np.float32)
    model.get_layer("out").set_weights([w, np.array([0.1], np.float32)])
    return model, w.ravel()


def test_a_linear_model_gets_weight_times_encoded_difference_summed_per_raw_feature():
    model, w = _linear_model()
    rows = pd.DataFrame({"age": [30.0, np.nan, 55.0], "home": ["owner", "rent", "boat"]})
    base = pd.DataFrame({"age": [50.0], "home": ["rent"]})
    a = model.explain(rows, baseline=base)
    assert list(a.columns) == ["age", "home"]

    # Normalization runs after the frontier: (v - 40) / 10; the indicator column is normalized too.
    def enc_age(v):
        missing = np.isnan(v)
        value = 40.0 if missing else v
        return np.array([(value - 40.0) / 10.0, (float(missing) - 40.0) / 10.0])

    onehot = {"rent": [0, 1, 0], "owner": [0, 0, 1]}
    for i, (age, home) in enumerate(zip(rows["age"], rows["home"])):
        h = np.array(onehot.get(home, [1, 0, 0]), np.float64) - np.array(onehot["rent"], np.float64)
        exp_age = w[:2] @ (enc_age(age) - enc_age(50.0))
        exp_home = w[2:] @ h
        assert a["age"][i] == pytest.approx(exp_age, abs=1e-6)
        assert a["home"][i] == pytest.approx(exp_home, abs=1e-6)


def test_frontier_of_the_linear_model_sits_after_the_lookups():
    model, _ = _linear_model()
    fr = _core.frontier(model._graph)
    assert [f["width"] for f in fr] == [2, 3]
    assert [f["inputs"] for f in fr] == [[0], [1]]
    assert fr[0]["sources"] == [(0, 0), (0, 0)]  # value and indicator both come from age


def test_two_numeric_inputs_are_explained_per_value():
    a_in, b_in = Input(shape=(2,), name="a"), Input(shape=(1,), name="b")
    model = Model(
        [a_in, b_in], Dense(1, activation="tanh", name="out")(Dense(4, activation="tanh")(Concatenate()([a_in, b_in])))
    )
    model.compile("sgd", "mse")
    rng = np.random.default_rng(0)
    xa, xb = rng.normal(size=(64, 2)).astype(np.float32), rng.normal(size=(64, 1)).astype(np.float32)
    model.fit([xa, xb], rng.normal(size=(64, 1)).astype(np.float32), epochs=1, verbose=0)
    np.testing.assert_allclose(model._explain_baseline, np.r_[xa.mean(0), xb.mean(0)], rtol=1e-5, atol=1e-6)
    a = model.explain([xa[:5], xb[:5]], baseline="zeros")
    assert list(a.columns) == ["a[0]", "a[1]", "b"]
    zero = model.predict([np.zeros((1, 2), np.float32), np.zeros((1, 1), np.float32)]).ravel()[0]
    np.testing.assert_allclose(a.to_numpy().sum(1), model.predict([xa[:5], xb[:5]]).ravel() - zero, atol=1e-6)


def test_reason_codes_by_raw_feature_name(fs_model, credit):
    x, _ = credit
    fs_model.set_reason_codes(
        {
            "Home": ("R02", "Housing status"),
            "Job": ("R11", "Employment type"),
            "Home_X_Records": ("R20", "Housing and payment record"),
        }
    )
    with pytest.raises(ValueError, match="unknown feature"):
        fs_model.set_reason_codes({"Hobby": ("R99", "no such column")})
    rows = x.iloc[:30]
    a = fs_model.explain(rows)
    for i, reasons in enumerate(fs_model.reasons(rows, top_k=4)):
        adverse = a.iloc[i][a.iloc[i] > 0].sort_values(ascending=False)
        assert [r["feature"] for r in reasons] == list(adverse.index[:4])
        for r in reasons:
            assert r["contribution"] > 0
            if r["feature"] == "Home":
                assert r["code"] == "R02"


def test_drift_of_a_string_feature_uses_one_bin_per_category(fs_model, credit):
    x, _ = credit
    shifted = x.iloc[:600].copy()
    shifted["Home"] = "rent"
    report = fs_model.drift(shifted).set_index("feature")
    assert list(report.index) == RAW + ["score"]
    assert report.loc["Home", "band"] == "act" and report.loc["Seniority", "band"] == "stable"
    # By hand: category codes of the training data vs the shifted data.
    home = fs_model._prepare_x(x)[RAW.index("Home")].ravel()
    now = fs_model._prepare_x(shifted)[RAW.index("Home")].ravel()
    codes, counts = np.unique(home, return_counts=True)
    ref = np.maximum(counts / counts.sum(), 1e-4)
    cur = np.maximum(np.array([(now == c).mean() for c in codes]), 1e-4)
    assert report.loc["Home", "psi"] == pytest.approx(np.sum((cur - ref) * np.log(cur / ref)), rel=1e-9)
    assert monitoring.reference_categories([2, 2, 5, 7]) == {"edges": [3.5, 6.0], "proportions": [0.5, 0.25, 0.25]}


def test_served_explanations_and_drift_of_a_featurespace_model(fs_model, credit, tmp_path):
    from serving_support import ServerThread, put

    from maasfin.serving import create_app

    x, _ = credit
    put(str(tmp_path), "fs", 1, fs_model)
    loaded = load_model(str(tmp_path / "fs" / "1" / "model.maas"))
    rows = x.iloc[200:206]
    records = [
        {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
        for r in rows.to_dict("records")
    ]
    with ServerThread(create_app(str(tmp_path), poll_seconds=0)) as s:
        r = requests.post(s.url + "/v1/explain", json={"model_name": "fs", "input_data": records}, timeout=30)
        assert r.status_code == 200, r.text
        body = r.json()
        expected = loaded.explain(rows)
        got = pd.DataFrame(body["attributions"])[list(expected.columns)].to_numpy(np.float32)
        np.testing.assert_array_equal(got, expected.to_numpy())
        assert body["reasons"] == loaded.reasons(rows)
        for _ in range(3):
            shifted = [dict(rec, Home="rent") for rec in records] * 50
            assert (
                requests.post(
                    s.url + "/v1/predict", json={"model_name": "fs", "input_data": shifted}, timeout=30
                ).status_code
                == 200
            )
        drift = requests.get(s.url + "/v1/models/fs/drift", timeout=30).json()
        bands = {f["feature"]: f["band"] for f in drift["features"]}
        assert set(bands) == set(RAW) and bands["Home"] == "act"


def test_imputed_wide_input_is_explained_per_column_by_name():
    """Sequential([Imputation(indicator), Dense(1)]) on a DataFrame with gaps: per column,
    w_value * (filled - baseline) + w_indicator * (missing - baseline share)."""
    rng = np.random.default_rng(1)
    df = pd.DataFrame(rng.normal(size=(200, 3)), columns=["income", "debt", "age"]).astype(np.float32)
    df.iloc[::7, 0] = np.nan
    df.iloc[::5, 2] = np.nan
    imp = Imputation(strategy="mean", add_indicator=True)
    imp.adapt(df.to_numpy(np.float32))
    model = mf.Sequential([Input(shape=(3,)), imp, Dense(1, name="out")])
    model.compile("sgd", "mse")
    model.fit(df, rng.normal(size=200).astype(np.float32), epochs=1, verbose=0)
    w = model.get_layer("out").get_weights()[0].ravel()
    rows = df.iloc[:12]
    a = model.explain(rows)
    assert list(a.columns) == ["income", "debt", "age"]
    fill = np.nanmean(df.to_numpy(np.float64), axis=0)
    filled = np.where(np.isnan(df.to_numpy(np.float64)), fill, df.to_numpy(np.float64))
    missing = np.isnan(df.to_numpy(np.float64)).astype(np.float64)
    base_v, base_m = filled.mean(0), missing.mean(0)
    expected = w[:3] * (filled[:12] - base_v) + w[3:] * (missing[:12] - base_m)
    np.testing.assert_allclose(a.to_numpy(), expected, rtol=1e-4, atol=1e-5)


def test_an_input_used_raw_and_discretized_gets_both_contributions():
    from maasfin.layers import Discretization

    x_in = Input(shape=(1,), name="amount")
    binned = Discretization(bin_boundaries=[0.0, 1.0], output_mode="one_hot")(x_in)
    model = Model(x_in, Dense(1, activation="tanh", name="out")(Concatenate()([x_in, binned])))
    model.compile("sgd", "mse")
    model.build()
    model.get_layer("out").set_weights([np.array([[0.5], [0.1], [0.2], [-0.4]], np.float32), np.zeros(1, np.float32)])
    rows = np.array([[-2.0], [0.5], [3.0]], np.float32)
    base = np.array([[0.2]], np.float32)
    a = model.explain(rows, baseline=base)
    assert list(a.columns) == ["amount"]
    np.testing.assert_allclose(
        a["amount"].to_numpy(), model.predict(rows).ravel() - model.predict(base).ravel()[0], atol=1e-6
    )


def test_token_sequence_through_an_embedding_is_explained_per_position():
    from maasfin.layers import Embedding, GlobalAveragePooling1D

    model = mf.Sequential(
        [Input(shape=(5,)), Embedding(10, 4), GlobalAveragePooling1D(), Dense(1, activation="sigmoid")]
    )
    model.compile("adam", "binary_crossentropy")
    rng = np.random.default_rng(2)
    tokens = rng.integers(0, 10, size=(64, 5)).astype(np.float32)
    model.fit(tokens, (tokens[:, 0] > 4).astype(np.float32), epochs=2, verbose=0)
    a = model.explain(tokens[:4], baseline=np.zeros((1, 5), np.float32) + 3)
    assert a.shape == (4, 5)  # one attribution per position (its embedding vector summed)
    delta = model.predict(tokens[:4]).ravel() - model.predict(np.full((1, 5), 3, np.float32)).ravel()[0]
    np.testing.assert_allclose(np.asarray(a).sum(axis=1), delta, atol=1e-6)
    same = tokens[:4] == 3  # a position holding the baseline token contributes nothing
    assert np.all(np.asarray(a)[same] == 0)
