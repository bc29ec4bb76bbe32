"""Scorecard on the bundled credit data: points sum to the scaled score, the logistic fit against
scikit-learn, predict_proba equals the model, .maas round trip, a served scorecard, reasons, bad input."""

import math

import numpy as np
import pytest
import requests
from serving_support import ServerThread, put

import maasfin as mf
from maasfin.credit import Scorecard
from maasfin.serving import create_app


@pytest.fixture(scope="module")
def fitted():
    df = mf.datasets.load_credit()
    y = (df["Status"] == "bad").to_numpy(np.float64)
    x = df.drop(columns="Status")
    card = Scorecard(pdo=20, base_score=600, base_odds=50, binning={"max_n_bins": 6, "Income": {"max_n_bins": 4}})
    card.fit(x, y)
    return card, x, y


def _woe_matrix(card, x):
    return np.column_stack([card.layers[f](x[f]).reshape(-1).astype(np.float64) for f in card.features])


def test_points_sum_to_the_scaled_score(fitted):
    card, x, _ = fitted
    score = card.score(x)
    z = _woe_matrix(card, x) @ card.coefficients + card.intercept
    p = 1 / (1 + np.exp(-z))
    expected = 600 + 20 / math.log(2) * (np.log((1 - p) / p) - math.log(50))
    np.testing.assert_allclose(score, expected, rtol=0, atol=1e-9)
    np.testing.assert_allclose(card.points(x).sum(axis=1).to_numpy(), score, rtol=0, atol=1e-9)
    # each row's points are the points table's entries of its bins
    table = card.points_table()
    pts = card.points(x.iloc[:50])
    for f in card.features:
        assert set(np.round(pts[f], 9)) <= set(np.round(table.loc[table["Feature"] == f, "Points"], 9))
    # doubling the odds of good adds pdo points
    assert card.offset - card.factor * (-math.log(2 * 50)) == pytest.approx(620.0)


def test_logistic_fit_and_predict_proba(fitted):
    card, x, y = fitted
    from sklearn.linear_model import LogisticRegression

    w = _woe_matrix(card, x)
    ref = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000).fit(w, y)
    np.testing.assert_allclose(card.coefficients, ref.coef_.ravel(), rtol=1e-3, atol=1e-4)
    assert card.intercept == pytest.approx(ref.intercept_[0], abs=1e-4)
    z = w @ card.coefficients + card.intercept
    np.testing.assert_allclose(card.predict_proba(x), 1 / (1 + np.exp(-z)), rtol=1e-5, atol=1e-6)
    assert card.predict_proba(x).tobytes() == card.model.predict(x, verbose=0).reshape(-1).astype(float).tobytes()


def test_reasons_in_points_lost(fitted):
    card, x, _ = fitted
    rows = x.iloc[:20]
    reasons = card.reasons(rows, n=3)
    pts = card.points(rows)
    table = card.points_table()
    best = table[table["Count"] > 0].groupby("Feature")["Points"].max()
    for i in range(len(rows)):
        lost = (best[card.features] - pts.iloc[i][card.features]).sort_values(ascending=False, kind="stable")
        top = reasons.iloc[i]
        assert top["reason_1"] == lost.index[0]
        assert top["points_lost_1"] == pytest.approx(lost.iloc[0])
        assert top["points_lost_1"] >= top["points_lost_2"] >= top["points_lost_3"] >= 0


def test_model_round_trip_and_server(fitted, tmp_path):
    card, x, _ = fitted
    rows = x.iloc[:64]
    before = card.model.predict(rows, verbose=0)
    path = tmp_path / "card.maas"
    card.model.save(str(path))
    loaded = mf.load_model(str(path))
    assert loaded.predict(rows, verbose=0).tobytes() == before.tobytes()
    repo = tmp_path / "repo"
    put(str(repo), "card", 1, card.model)
    records = [
        {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
        for r in rows.to_dict("records")
    ]
    assert any(v is None for r in records for v in r.values())
    with ServerThread(create_app(str(repo), poll_seconds=0)) as s:
        r = requests.post(s.url + "/v1/predict", json={"model_name": "card", "input_data": records}, timeout=30)
    assert r.status_code == 200, r.text
    served = np.ravel(r.json()["predictions"])
    np.testing.assert_allclose(served, card.predict_proba(rows), rtol=1e-6, atol=1e-7)
    p = served.astype(np.float64)
    score = 600 + 20 / math.log(2) * (np.log((1 - p) / p) - math.log(50))
    np.testing.assert_allclose(score, card.score(rows), atol=1e-3)


def test_explanations_of_the_scorecard_model(fitted):
    card, x, _ = fitted
    rows = x.iloc[:5]
    attr = card.model.explain(rows)
    assert list(attr.columns) == card.features
    # integrated gradients in the WoE space: completeness against the stored baseline (the mean WoE)
    base = np.asarray(card.model._explain_baseline, np.float64)
    f_base = 1 / (1 + np.exp(-(base @ card.coefficients + card.intercept)))
    np.testing.assert_allclose(attr.sum(axis=1), card.predict_proba(rows) - f_base, atol=1e-4)


def test_bad_input_names_the_feature():
    df = mf.datasets.load_credit().iloc[:800]
    y = (df["Status"] == "bad").to_numpy(np.float64)
    x = df.drop(columns="Status")
    with pytest.raises(ValueError, match="unknown feature.*'Hobby'"):
        Scorecard().fit(x, y, features=["Income", "Hobby"])
    with pytest.raises(ValueError, match="'Hobby'"):
        Scorecard(binning={"Hobby": {"max_n_bins": 3}}).fit(x, y)
    with pytest.raises(ValueError, match="feature 'Flat'.*constant"):
        Scorecard().fit(x.assign(Flat=1.0), y)
    with pytest.raises(ValueError, match="feature 'Income'.*one class"):
        Scorecard().fit(x[["Income"]], np.ones(len(x)))
    with pytest.raises(ValueError, match="feature 'Income'.*NaN"):
        Scorecard().fit(x[["Income"]], np.r_[y[:-1], np.nan])
    with pytest.raises(ValueError, match="pdo"):
        Scorecard(pdo=0)
    card = Scorecard().fit(x[["Income", "Home"]], y)
    with pytest.raises(ValueError, match=r"lacks feature\(s\) \['Home'\]"):
        card.score(x[["Income"]])
