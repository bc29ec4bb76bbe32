"""maasfin.credit.default_model: raw DataFrame in (strings, missing values), a calibrated model out;
deterministic per seed; saved and loaded bit for bit; bad input named; ranking at least the
logistic regression's on a held-out split."""

import numpy as np
import pandas as pd
import pytest
import requests
from serving_support import ServerThread, put
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import maasfin as mf
from maasfin.credit import default_model
from maasfin.credit.recipe import stratified_folds
from maasfin.layers import Calibration
from maasfin.metrics import expected_calibration_error
from maasfin.serving import create_app


@pytest.fixture(scope="module")
def credit():
    df = mf.datasets.load_credit()
    idx = np.random.default_rng(7).permutation(len(df))
    return df.iloc[idx[:3500]].reset_index(drop=True), df.iloc[idx[3500:]].reset_index(drop=True)


@pytest.fixture(scope="module")
def trained(credit):
    train, _ = credit
    return default_model(train, target="Status", positive="bad", seed=0)


def _features(df):
    return df.drop(columns="Status")


def _logistic_auc(train, test):
    num, cat = mf.datasets.CREDIT_NUMERIC_COLUMNS, mf.datasets.CREDIT_CATEGORICAL_COLUMNS
    pre = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), num),
            (
                "cat",
                make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")),
                cat,
            ),
        ]
    )
    lr = make_pipeline(pre, LogisticRegression(max_iter=5000)).fit(_features(train), train["Status"] == "bad")
    return roc_auc_score(test["Status"] == "bad", lr.predict_proba(_features(test))[:, 1])


def test_raw_frame_in_calibrated_probabilities_out(credit, trained):
    _, test = credit
    x = _features(test)
    assert x.isna().any().any() and not pd.api.types.is_numeric_dtype(x["Home"])  # raw: strings and missing values
    p = trained.predict(x, verbose=0)
    assert p.shape == (len(test), 1) and np.all((p > 0) & (p < 1))
    y = (test["Status"] == "bad").to_numpy(np.float64)
    # calibrated on out-of-fold predictions: the mean PD matches the held-out default rate and the
    # reliability error is small (an uncalibrated or wrongly calibrated model misses both)
    assert abs(p.mean() - y.mean()) < 0.03
    assert expected_calibration_error(y, p.ravel(), n_bins=10, strategy="quantile") < 0.05
    last = trained.layers[-1]
    assert isinstance(last, Calibration) and last.method == "platt" and last.parameters["slope"][0] > 0
    # the FeatureSpace is inside: every raw column is a named input of the model
    assert sorted(t.name for t in trained.inputs) == sorted(x.columns)
    # records with None predict like the DataFrame rows
    records = x.head(5).astype(object).where(x.head(5).notna(), None).to_dict("records")
    np.testing.assert_array_equal(trained.predict(records, verbose=0), p[:5])


def test_ranks_at_least_as_well_as_logistic_regression(credit, trained):
    train, test = credit
    auc = roc_auc_score(test["Status"] == "bad", trained.predict(_features(test), verbose=0).ravel())
    assert auc >= _logistic_auc(train, test) - 0.005
    assert auc > 0.8


def test_round_trips_maas(credit, trained, tmp_path):
    _, test = credit
    path = tmp_path / "pd.maas"
    trained.save(path)
    loaded = mf.load_model(path)
    x = _features(test)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), trained.predict(x, verbose=0))
    assert isinstance(loaded.layers[-1], Calibration)


def test_serves_raw_records_explains_and_reports_drift(credit, trained, tmp_path):
    _, test = credit
    x = _features(test).iloc[:40]
    records = [
        {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()} for r in x.to_dict("records")
    ]
    put(str(tmp_path), "pd", 1, trained)
    with ServerThread(create_app(str(tmp_path), poll_seconds=0)) as server:
        r = requests.post(server.url + "/v1/predict", json={"model_name": "pd", "input_data": records}, timeout=30)
    assert r.status_code == 200, r.text
    np.testing.assert_allclose(np.ravel(r.json()["predictions"]), trained.predict(x, verbose=0).ravel(), rtol=1e-6)
    # the attribution baseline and drift references were recorded on the training rows, as fit does
    attributions = trained.explain(x.iloc[:3])
    assert list(attributions.columns) == list(x.columns) and np.isfinite(attributions.to_numpy()).all()
    shifted = _features(test).assign(Income=_features(test)["Income"] * 3)
    report = trained.drift(shifted).set_index("feature")
    assert report.loc["Income", "psi"] > 0.25 and report.loc["Age", "psi"] < 0.1


def _small():
    df = mf.datasets.load_credit().iloc[:800].reset_index(drop=True)
    return df.assign(Status=(df["Status"] == "bad").astype(int))  # a 0/1 target: positive defaults to 1


def test_deterministic_for_a_seed():
    df = _small()
    a = default_model(df, "Status", towers=2, seed=3).predict(_features(df), verbose=0)
    b = default_model(df, "Status", towers=2, seed=3).predict(_features(df), verbose=0)
    c = default_model(df, "Status", towers=2, seed=4).predict(_features(df), verbose=0)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_towers_are_averaged_then_calibrated():
    model = default_model(_small(), "Status", towers=3, seed=1)
    names = [layer.name for layer in model.layers]
    assert [n for n in names if n.endswith("_probability")] == ["t0_probability", "t1_probability", "t2_probability"]
    assert names[-2:] == ["average", "calibration"]
    # three different towers (each trained on its own folds; the AUC test shows their weights are trained ones)
    assert len({model.get_layer(f"t{k}_deep").get_weights()[0].tobytes() for k in range(3)}) == 3


def test_features_selects_columns():
    df = _small()
    model = default_model(df, "Status", features=["Income", "Home", "Age"], towers=2)
    assert sorted(t.name for t in model.inputs) == ["Age", "Home", "Income"]


def test_many_valued_string_column_keeps_its_most_frequent_values():
    df = _small()
    rng = np.random.default_rng(0)
    # 300 distinct employers, "acme" the most frequent: the lookup keeps 63 values + the OOV slot
    employer = np.where(
        rng.random(len(df)) < 0.3, "acme", np.array([f"employer{i}" for i in rng.integers(0, 300, len(df))])
    )
    model = default_model(df.assign(Employer=employer), "Status", features=["Income", "Employer"], towers=2)
    lookup = model.get_layer("Employer_lookup")
    assert lookup.vocabulary_size() == 64 and "acme" in lookup.get_vocabulary()


def test_stratified_folds_balance_each_class():
    y = np.r_[np.zeros(103), np.ones(17)]
    fold = stratified_folds(y, 5, seed=0)
    for cls in (0, 1):
        counts = np.bincount(fold[y == cls], minlength=5)
        assert counts.max() - counts.min() <= 1
    assert np.bincount(fold).max() - np.bincount(fold).min() <= 1
    np.testing.assert_array_equal(fold, stratified_folds(y, 5, seed=0))


@pytest.mark.parametrize(
    "change, kwargs, message",
    [
        (lambda d: d, {"target": "Default"}, "target 'Default' is not a column"),
        (lambda d: d.assign(Status="good"), {"positive": "bad"}, "positive label 'bad' does not occur"),
        (lambda d: d.assign(Status="bad"), {"positive": "bad"}, "exactly two classes, found only one class"),
        (lambda d: d, {"positive": "default"}, "positive label 'default' does not occur"),
        (lambda d: d, {}, "pass positive="),
        (lambda d: d.assign(Status=d["Status"].where(d.index != 4)), {"positive": "bad"}, "1 missing value"),
        (lambda d: d, {"positive": "bad", "features": ["Income", "Salary"]}, "features ['Salary'] are not columns"),
        (lambda d: d, {"positive": "bad", "features": ["Income", "Status"]}, "target 'Status' is also listed"),
        (lambda d: d, {"positive": "bad", "towers": 1}, "towers must be an integer >= 2"),
        (lambda d: d, {"positive": "bad", "seed": -1}, "seed must be an integer >= 0"),
        (lambda d: d.iloc[:30], {"positive": "bad"}, "need at least 10 of each"),
        (lambda d: d.rename(columns={"Age": 3}), {"positive": "bad"}, "names must be strings"),
        (lambda d: d.rename(columns={"Age": "Income"}), {"positive": "bad"}, "['Income'] appear more than once"),
        (
            lambda d: d.assign(Status=np.where(d.index < 3, "a", np.where(d.index < 6, "b", "c"))),
            {"positive": "a"},
            "3 classes",
        ),
    ],
)
def test_bad_input_is_named(change, kwargs, message):
    df = change(mf.datasets.load_credit().iloc[:200].copy())
    kwargs = {"target": "Status", **kwargs}
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        default_model(df, **kwargs)


def test_not_a_dataframe():
    with pytest.raises(TypeError, match="df must be a pandas DataFrame"):
        default_model(pd.DataFrame({"a": [1]}).to_dict("list"), target="a")
