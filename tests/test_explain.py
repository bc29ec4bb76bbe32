"""model.explain / reasons / drift and maasfin.explain.monitoring.psi."""

import math

import numpy as np
import pandas as pd
import pytest

import maasfin as mf
from maasfin.explain import monitoring
from maasfin.layers import Dense


@pytest.fixture
def frame():
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(400, 3)).astype(np.float32), columns=["income", "debt", "age"])
    y = ((df["debt"] - df["income"] + 0.3 * rng.normal(size=400)) > 0).astype(np.float32)
    return df, y


def _fit(df, y, hidden=True, seed=0):
    mf.utils.set_random_seed(seed)
    layers = ([Dense(8, activation="tanh", input_dim=3)] if hidden else []) + [
        Dense(1, activation="sigmoid" if hidden else None, **({} if hidden else {"input_dim": 3}))
    ]
    m = mf.Sequential(layers)
    m.compile(optimizer=mf.optimizers.Adam(0.05), loss="binary_crossentropy" if hidden else "mse")
    m.fit(df, y, epochs=5, batch_size=32, verbose=0)
    return m


def test_attributions_are_complete_against_the_stored_training_mean(frame):
    df, y = frame
    m = _fit(df, y)
    baseline = df.to_numpy().mean(axis=0, dtype=np.float64).astype(np.float32)
    np.testing.assert_allclose(m._explain_baseline, baseline, rtol=1e-6)
    a = m.explain(df.head(20))
    assert list(a.columns) == ["income", "debt", "age"]
    delta = m.predict(df.head(20)).ravel() - m.predict(baseline.reshape(1, -1)).ravel()
    np.testing.assert_allclose(a.sum(axis=1).to_numpy(), delta, atol=1e-4)


def test_linear_model_attributions_are_coefficient_times_difference(frame):
    df, y = frame
    m = _fit(df, y, hidden=False)
    kernel = m.get_weights()[0][:, 0]
    base = np.array([0.5, -1.0, 2.0], np.float32)
    a = m.explain(df.head(10), baseline=base).to_numpy()
    np.testing.assert_allclose(a, kernel * (df.head(10).to_numpy() - base), rtol=1e-5, atol=1e-6)


def test_explanations_are_deterministic_and_follow_columns_by_name(frame):
    df, y = frame
    m = _fit(df, y)
    a1 = m.explain(df.head(5))
    a2 = m.explain(df.head(5)[["age", "debt", "income"]])
    pd.testing.assert_frame_equal(a1, a2)


def test_reasons_report_only_adverse_features_with_codes(frame):
    df, y = frame
    m = _fit(df, y)
    m.set_reason_codes({"debt": ("R01", "Debt too high"), "income": {"code": "R07", "text": "Income too low"}})
    rows = df.head(30)
    a = m.explain(rows).to_numpy()
    out = m.reasons(rows, top_k=2)
    assert len(out) == 30
    for attrib, reasons in zip(a, out):
        positive = sorted(((v, n) for v, n in zip(attrib, ["income", "debt", "age"]) if v > 0), reverse=True)
        assert [r["feature"] for r in reasons] == [n for _, n in positive[:2]]
        for r in reasons:
            assert r["contribution"] > 0
            if r["feature"] == "debt":
                assert (r["code"], r["text"]) == ("R01", "Debt too high")
    favourable = m.reasons(rows, top_k=3, adverse="low")
    for attrib, reasons in zip(a, favourable):
        assert all(r["contribution"] < 0 for r in reasons)
        assert len(reasons) == int(np.sum(attrib < 0))


def test_reason_codes_are_validated(frame):
    df, y = frame
    m = _fit(df, y)
    with pytest.raises(ValueError, match="unknown feature"):
        m.set_reason_codes({"salary": ("R1", "x")})
    with pytest.raises(ValueError, match="code, text"):
        m.set_reason_codes({"debt": "R1"})


def test_psi_matches_a_hand_computation():
    rng = np.random.default_rng(1)
    ref, cur = rng.normal(size=5000), rng.normal(0.5, 1.2, size=3000)
    edges = np.quantile(ref, np.linspace(0, 1, 11)[1:-1])
    e = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=10) / ref.size
    a = np.bincount(np.searchsorted(edges, cur, side="right"), minlength=10) / cur.size
    expected = float(np.sum((a - e) * np.log(a / e)))
    assert monitoring.psi(ref, cur) == pytest.approx(expected, rel=1e-12)
    assert monitoring.psi(ref, ref) == pytest.approx(0.0, abs=1e-12)
    assert [monitoring.band(v) for v in (0.05, 0.1, 0.2, 0.25, 0.3, math.nan)] == [
        "stable",
        "watch",
        "watch",
        "watch",
        "act",
        "unknown",
    ]


def test_drift_moves_from_stable_to_act_when_a_feature_shifts(frame):
    df, y = frame
    m = _fit(df, y)
    report = m.drift(df)
    assert list(report["feature"]) == ["income", "debt", "age", "score"]
    assert (report["band"] == "stable").all()
    shifted = df.copy()
    shifted["debt"] += 1.0
    report = m.drift(shifted).set_index("feature")
    assert report.loc["debt", "band"] == "act" and report.loc["income", "band"] == "stable"
    assert report.loc["score", "psi"] > 0.1


def test_explain_rejects_bad_arguments(frame):
    df, y = frame
    m = _fit(df, y)
    with pytest.raises(ValueError, match="method"):
        m.explain(df.head(2), method="shap")
    with pytest.raises(ValueError, match="steps"):
        m.explain(df.head(2), steps=0)
    with pytest.raises(ValueError, match="baseline"):
        m.explain(df.head(2), baseline=np.zeros(5, np.float32))
    with pytest.raises(ValueError, match="missing column"):
        m.explain(df.head(2)[["income", "age"]])


def test_adaptive_integration_makes_relu_attributions_complete(frame):
    """ReLU gradients jump along the path: fixed points leave an error, the adaptive rule not."""
    df, y = frame
    mf.utils.set_random_seed(4)
    m = mf.Sequential(
        [Dense(32, activation="relu", input_dim=3), Dense(32, activation="relu"), Dense(1, activation="sigmoid")]
    )
    m.compile(optimizer=mf.optimizers.Adam(0.02), loss="binary_crossentropy")
    m.fit(df, y, epochs=5, verbose=0)
    rows = df.head(50)
    delta = m.predict(rows).ravel() - m.predict(np.asarray([m._explain_baseline], np.float32)).ravel()
    adaptive = m.explain(rows, tolerance=1e-6).sum(axis=1).to_numpy()
    np.testing.assert_allclose(adaptive, delta, atol=1e-4)
    fixed = m.explain(rows, steps=8).sum(axis=1).to_numpy()
    assert np.abs(fixed - delta).max() > np.abs(adaptive - delta).max()


def test_baseline_reason_codes_and_drift_reference_survive_save_and_load(frame, tmp_path):
    df, y = frame
    m = _fit(df, y)
    m.set_reason_codes({"debt": ("R01", "Debt too high")})
    path = tmp_path / "m.maas"
    m.save(path)
    loaded = mf.models.load_model(path)
    assert loaded._explain_baseline == pytest.approx(m._explain_baseline)
    assert loaded._reason_codes == m._reason_codes
    pd.testing.assert_frame_equal(loaded.explain(df.head(5)), m.explain(df.head(5)))
    assert loaded.reasons(df.head(5)) == m.reasons(df.head(5))
    pd.testing.assert_frame_equal(loaded.drift(df), m.drift(df))
