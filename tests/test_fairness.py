"""maasfin.fairness.report against fairlearn, statsmodels, scikit-learn and hand computations."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    count,
    demographic_parity_ratio,
    equalized_odds_difference,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from scipy.stats import ks_2samp, norm
from sklearn.metrics import roc_auc_score
from statsmodels.stats.proportion import proportions_ztest

from maasfin import datasets, fairness, metrics

CUTOFF = 0.35


@pytest.fixture(scope="module")
def synthetic():
    rng = np.random.default_rng(11)
    n = 2000
    g = rng.choice(["a", "b", "c", "d"], n, p=[0.4, 0.3, 0.2, 0.1])
    shift = pd.Series(g).map({"a": 0.0, "b": 0.3, "c": -0.2, "d": 0.6}).to_numpy()
    p = 1.0 / (1.0 + np.exp(-(rng.normal(size=n) - 1.0 + shift)))
    y = (rng.uniform(size=n) < p).astype(np.float64)
    return y, p, g


@pytest.fixture(scope="module")
def credit():
    """The bundled data with a simple score: groups by marital status and home ownership."""
    df = datasets.load_credit()
    y = (df["Status"] == "bad").to_numpy(np.float64)
    z = (np.log1p(df["Debt"].fillna(0)) - np.log1p(df["Income"].fillna(df["Income"].median())) / 2) / 3
    p = 1.0 / (1.0 + np.exp(-(z - 0.5 + 0.8 * (df["Records"] == "yes"))))
    return y, p.to_numpy(), df[["Marital", "Home"]]


def test_rates_equal_fairlearns_metricframe(synthetic):
    y, p, g = synthetic
    r = fairness.report(y, p, g, CUTOFF).set_index("group")
    approved, denied = (p < CUTOFF).astype(int), (p >= CUTOFF).astype(int)
    mf = MetricFrame(
        metrics={"n": count, "approval_rate": selection_rate},
        y_true=y,
        y_pred=approved,
        sensitive_features=g,
    )
    err = MetricFrame(
        metrics={"tpr": true_positive_rate, "fpr": false_positive_rate}, y_true=y, y_pred=denied, sensitive_features=g
    )
    for col in ("approval_rate", "n"):
        np.testing.assert_allclose(r[col].to_numpy(float), mf.by_group[col].loc[r.index].to_numpy(float), atol=1e-12)
    for col in ("tpr", "fpr"):
        np.testing.assert_allclose(r[col].to_numpy(), err.by_group[col].loc[r.index].to_numpy(float), atol=1e-12)


@pytest.mark.parametrize("data", ["synthetic", "credit"])
def test_parity_ratio_and_equalized_odds_equal_fairlearns(data, request):
    y, p, groups = request.getfixturevalue(data)
    cols = groups if isinstance(groups, pd.DataFrame) else pd.DataFrame({"group": groups})
    r = fairness.report(y, p, cols, CUTOFF)
    for attribute in cols.columns:
        part = r[r.attribute == attribute]
        sf = cols[attribute].fillna(fairness.MISSING_GROUP).to_numpy()
        dpr = demographic_parity_ratio(y, (p < CUTOFF).astype(int), sensitive_features=sf)
        # the default reference is the most approved group, so the smallest AIR is the parity ratio
        assert part.air.min() == pytest.approx(dpr, abs=1e-12)
        eod = equalized_odds_difference(y, (p >= CUTOFF).astype(int), sensitive_features=sf)
        mine = max(part.tpr.max() - part.tpr.min(), part.fpr.max() - part.fpr.min())
        assert mine == pytest.approx(eod, abs=1e-12)


def test_air_and_z_tests_by_hand(synthetic):
    y, p, g = synthetic
    r = fairness.report(y, p, g, CUTOFF, reference="a").set_index("group")
    approved = p < CUTOFF
    na, xa = int((g == "a").sum()), int(approved[g == "a"].sum())
    assert r.loc["a", "is_reference"] and math.isnan(r.loc["a", "approval_p_value"])
    for k in "bcd":
        nk, xk = int((g == k).sum()), int(approved[g == k].sum())
        air = (xk / nk) / (xa / na)
        assert r.loc[k, "air"] == pytest.approx(air, abs=1e-12)
        assert r.loc[k, "four_fifths_flag"] == (air < 0.8)
        pooled = (xk + xa) / (nk + na)
        z = (xk / nk - xa / na) / math.sqrt(pooled * (1 - pooled) * (1 / nk + 1 / na))
        assert r.loc[k, "approval_z"] == pytest.approx(z, abs=1e-12)
        assert r.loc[k, "approval_p_value"] == pytest.approx(2 * norm.sf(abs(z)), abs=1e-12)
        z_sm, p_sm = proportions_ztest([xk, xa], [nk, na])
        assert r.loc[k, "approval_z"] == pytest.approx(z_sm, abs=1e-12)
        assert r.loc[k, "approval_p_value"] == pytest.approx(p_sm, abs=1e-12)
    assert r.four_fifths_flag.any() and not r.four_fifths_flag.all()  # the fixture exercises both


def test_per_group_ranking_calibration_and_smd(synthetic):
    y, p, g = synthetic
    r = fairness.report(y, p, g, CUTOFF, reference="b").set_index("group")
    ref = p[g == "b"]
    for k in "abcd":
        idx = g == k
        assert r.loc[k, "auc"] == pytest.approx(roc_auc_score(y[idx], p[idx]), abs=1e-12)
        ks = ks_2samp(p[idx][y[idx] == 1], p[idx][y[idx] == 0]).statistic
        assert r.loc[k, "ks"] == pytest.approx(ks, abs=1e-12)
        assert r.loc[k, "ece"] == metrics.expected_calibration_error(y[idx], p[idx])
        s = p[idx]
        pooled = ((s.size - 1) * s.var(ddof=1) + (ref.size - 1) * ref.var(ddof=1)) / (s.size + ref.size - 2)
        assert r.loc[k, "smd"] == pytest.approx((s.mean() - ref.mean()) / math.sqrt(pooled), abs=1e-12)
        assert r.loc[k, "tpr_diff"] == pytest.approx(r.loc[k, "tpr"] - r.loc["b", "tpr"], abs=1e-15)
        eo = max(abs(r.loc[k, "tpr_diff"]), abs(r.loc[k, "fpr_diff"]))
        assert r.loc[k, "equalized_odds_diff"] == eo


def test_without_labels_only_approval_metrics(synthetic):
    y, p, g = synthetic
    with_labels = fairness.report(y, p, g, CUTOFF)
    r = fairness.report(None, p, g, CUTOFF)
    same = ["group", "n", "air", "approval_p_value", "smd"]
    pd.testing.assert_frame_equal(r[same], with_labels[same])
    assert r.no_labels.all() and (r.n_labelled == 0).all()
    assert r[["bad_rate", "tpr", "fpr", "auc", "ks", "ece", "equalized_odds_diff"]].isna().all().all()


def test_missing_values_small_groups_one_class_and_missing_labels():
    p = np.r_[np.linspace(0.05, 0.9, 40), np.linspace(0.1, 0.6, 10), [0.2, 0.7, 0.3]]
    y = np.r_[np.tile([0.0, 1.0], 20), np.zeros(10), [np.nan, np.nan, np.nan]]
    g = np.array(["x"] * 40 + ["y"] * 10 + [None, np.nan, None], dtype=object)
    r = fairness.report(y, p, g, 0.5, reference="x").set_index("group")
    assert list(r.index) == [fairness.MISSING_GROUP, "x", "y"]
    miss = r.loc[fairness.MISSING_GROUP]
    assert miss.n == 3 and miss.missing_group and miss.small_group and miss.no_labels
    assert r.loc["y", "single_class"] and math.isnan(r.loc["y", "auc"]) and r.loc["y", "small_group"]
    assert math.isnan(r.loc["y", "tpr"]) and r.loc["y", "fpr"] == pytest.approx(np.mean(p[40:50] >= 0.5))
    assert not r.loc["x", "small_group"] and not r.loc["x", "single_class"]


def test_several_group_columns_equal_one_at_a_time(credit):
    y, p, cols = credit
    both = fairness.report(y, p, cols, CUTOFF, reference={"Marital": "married", "Home": "owner"})
    assert list(both.attribute.unique()) == ["Marital", "Home"]
    for attribute, ref in (("Marital", "married"), ("Home", "owner")):
        one = fairness.report(y, p, cols[attribute], CUTOFF, reference=ref)
        part = both[both.attribute == attribute].reset_index(drop=True)
        pd.testing.assert_frame_equal(part, one)
    assert both.missing_group.any()  # the bundled data has missing marital status / home values


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"cutoff": 0.0}, r"cutoff must be in \(0, 1\)"),
        ({"cutoff": 1.0}, r"cutoff must be in \(0, 1\)"),
        ({"cutoff": 1.5}, r"cutoff must be in \(0, 1\)"),
        ({"cutoff": True}, "cutoff must be a number"),
        ({"cutoff": "0.5"}, "cutoff must be a number"),
        ({"y_prob": np.r_[0.1, 1.2, 0.3, 0.4]}, r"y_prob must be probabilities .* 1.2 at index 1"),
        ({"y_prob": np.r_[0.1, np.nan, 0.3, 0.4]}, "y_prob must be probabilities"),
        ({"y_prob": np.zeros((4, 2))}, r"y_prob must be 1-D .* shape \(4, 2\)"),
        ({"y_true": [0, 1, 2, 0]}, "y_true must contain only 0, 1 .* 2.0 at index 2"),
        ({"y_true": [0, 1, 0]}, r"y_true has shape \(3,\) but y_prob has 4 values"),
        ({"groups": ["a", "b", "a"]}, r"group column 'group' has shape \(3,\) but y_prob has 4 values"),
        ({"reference": "z"}, "reference group 'z' does not occur in group column 'group'"),
        ({"groups": {"s": list("abab"), "t": list("aabb")}, "reference": "a"}, "reference must be a dict"),
        ({"groups": {"s": list("abab"), "t": list("aabb")}, "reference": {"s": "a"}}, "no entry for group column 't'"),
    ],
)
def test_bad_input_is_named(kwargs, match):
    args = {"y_true": [0, 1, 0, 1], "y_prob": [0.1, 0.6, 0.3, 0.7], "groups": ["a", "b", "a", "b"], "cutoff": 0.5}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        fairness.report(**args)


def test_default_reference_is_the_most_approved_group_ties_by_size_then_name():
    def reference(g, p):
        r = fairness.report(None, np.array(p), np.array(g), 0.5)
        return r.group[r.is_reference].item()

    assert reference(["a", "a", "ab", "ab", "ab"], [0.1, 0.9, 0.1, 0.1, 0.9]) == "ab"  # 2/3 beats 1/2
    assert reference(["a", "a", "b", "b", "b", "b"], [0.1, 0.9, 0.1, 0.9, 0.1, 0.9]) == "b"  # tie at 1/2: larger
    assert reference(["b", "b", "a", "a", "ab", "ab"], [0.1, 0.9] * 3) == "a"  # full tie: first by name


def test_z_test_of_identical_certain_groups():
    assert fairness.two_proportion_p_value(5, 5, 7, 7) == (0.0, 1.0)
