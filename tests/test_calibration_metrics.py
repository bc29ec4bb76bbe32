"""Calibration metrics (maasfin.metrics): the functions against scikit-learn and SciPy references
computed here, the stateful BrierScore / ExpectedCalibrationError against the functions inside
fit/evaluate, the gains table against ks_statistic, and the errors on bad input."""

import numpy as np
import pytest
from scipy import stats
from sklearn.calibration import calibration_curve as sk_calibration_curve
from sklearn.metrics import brier_score_loss

import maasfin as mf
from maasfin import metrics as M
from maasfin.layers import Dense
from maasfin.metrics import distributions


def _data(n=2000, seed=0, power=1.4):
    """Probabilities and outcomes drawn from p**power: a miscalibrated score."""
    rng = np.random.default_rng(seed)
    p = rng.random(n)
    y = (rng.random(n) < p**power).astype(np.float64)
    return y, p


def _ties(n=600, seed=1):
    """Probabilities on a grid of 1/20 (ties, and values exactly on the uniform bin edges)."""
    rng = np.random.default_rng(seed)
    p = rng.integers(0, 21, n) / 20.0
    return (rng.random(n) < p).astype(np.float64), p


# -- functions against scikit-learn -------------------------------------------------------------------
@pytest.mark.parametrize("data", [_data, _ties])
def test_brier_score_equals_sklearn(data):
    y, p = data()
    w = np.random.default_rng(5).random(y.size)
    assert abs(M.brier_score(y, p) - brier_score_loss(y, p)) <= 1e-7
    assert abs(M.brier_score(y, p, sample_weight=w) - brier_score_loss(y, p, sample_weight=w)) <= 1e-7
    assert M.brier_score(y, p) != pytest.approx(M.brier_score(y, p, sample_weight=w), abs=1e-6)


@pytest.mark.parametrize("data", [_data, _ties])
@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
@pytest.mark.parametrize("n_bins", [1, 3, 5, 10, 17])
def test_calibration_curve_equals_sklearn(data, strategy, n_bins):
    y, p = data()
    got_true, got_pred = M.calibration_curve(y, p, n_bins=n_bins, strategy=strategy)
    want_true, want_pred = sk_calibration_curve(y, p, n_bins=n_bins, strategy=strategy)
    assert got_true.shape == want_true.shape
    np.testing.assert_allclose(got_true, want_true, rtol=0, atol=1e-7)
    np.testing.assert_allclose(got_pred, want_pred, rtol=0, atol=1e-7)


def _ece_reference(y, p, n_bins, strategy, w=None):
    """ECE from scikit-learn's bins: the bin of each p found by comparing it with every edge."""
    edges = (
        np.linspace(0, 1, n_bins + 1) if strategy == "uniform" else np.percentile(p, np.linspace(0, 100, n_bins + 1))
    )
    w = np.ones_like(p) if w is None else w
    total = 0.0
    for b in range(n_bins):
        lo = -np.inf if b == 0 else edges[b]
        hi = np.inf if b == n_bins - 1 else edges[b + 1]
        inside = (p > lo) & (p <= hi)  # searchsorted side="left" on the interior edges
        if inside.any():
            total += abs(np.sum(w[inside] * y[inside]) - np.sum(w[inside] * p[inside]))
    return total / w.sum()


@pytest.mark.parametrize("data", [_data, _ties])
@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_expected_calibration_error_matches_its_definition(data, strategy):
    y, p = data()
    w = np.random.default_rng(2).random(y.size)
    for n_bins in (1, 5, 10):
        assert M.expected_calibration_error(y, p, n_bins, strategy) == pytest.approx(
            _ece_reference(y, p, n_bins, strategy), abs=1e-12
        )
        assert M.expected_calibration_error(y, p, n_bins, strategy, sample_weight=w) == pytest.approx(
            _ece_reference(y, p, n_bins, strategy, w), abs=1e-12
        )
    # Through calibration_curve: the per-bin gaps weighted by the bins' counts.
    prob_true, prob_pred = M.calibration_curve(y, p, n_bins=10, strategy=strategy)
    ids = np.searchsorted(
        np.linspace(0, 1, 11)[1:-1] if strategy == "uniform" else np.percentile(p, np.linspace(0, 100, 11))[1:-1], p
    )
    counts = np.bincount(ids, minlength=10)
    counts = counts[counts > 0]
    assert M.expected_calibration_error(y, p, 10, strategy) == pytest.approx(
        np.sum(counts * np.abs(prob_true - prob_pred)) / y.size, abs=1e-12
    )


def test_ece_is_zero_for_perfect_bins_and_the_gap_otherwise():
    p = np.array([0.2] * 5 + [0.8] * 5)
    y = np.array([1, 0, 0, 0, 0, 1, 1, 1, 1, 0], dtype=float)
    assert M.expected_calibration_error(y, p) == pytest.approx(0.0, abs=1e-15)
    y2 = np.array([1, 1, 0, 0, 0, 1, 1, 1, 1, 1], dtype=float)  # 0.4 observed at 0.2, 1.0 at 0.8
    assert M.expected_calibration_error(y2, p) == pytest.approx(0.5 * 0.2 + 0.5 * 0.2)


# -- functions against SciPy --------------------------------------------------------------------------
def _hl_reference(y, p, groups):
    order = np.argsort(p, kind="stable")
    stat = 0.0
    for idx in np.array_split(order, groups):
        o1, e1 = y[idx].sum(), p[idx].sum()
        o0, e0 = idx.size - o1, idx.size - e1
        stat += (o1 - e1) ** 2 / e1 + (o0 - e0) ** 2 / e0  # the textbook form, events and non-events
    return stat, stats.chi2.sf(stat, groups - 2)


@pytest.mark.parametrize("power", [1.0, 1.15, 1.6])
@pytest.mark.parametrize("groups", [3, 10, 20])
def test_hosmer_lemeshow_equals_scipy_reference(power, groups):
    y, p = _data(n=1500, seed=3, power=power)
    p = np.clip(p, 0.01, 0.99)
    stat, p_value = M.hosmer_lemeshow(y, p, groups=groups)
    want_stat, want_p = _hl_reference(y, p, groups)
    assert stat == pytest.approx(want_stat, rel=1e-12)
    assert abs(p_value - want_p) <= 1e-9
    assert M.hosmer_lemeshow(y, p, groups).p_value == p_value


def test_hosmer_lemeshow_tells_calibrated_from_miscalibrated():
    rng = np.random.default_rng(11)
    p = rng.uniform(0.02, 0.98, 20000)
    y = (rng.random(p.size) < p).astype(float)
    assert M.hosmer_lemeshow(y, p).p_value > 0.01
    assert M.hosmer_lemeshow(y, np.clip(p * 1.2, 0, 1)).p_value < 1e-6


def test_binomial_test_by_grade_equals_scipy_reference():
    rng = np.random.default_rng(7)
    grades = rng.choice(["A", "B", "C", "D"], 3000, p=[0.4, 0.3, 0.2, 0.1])
    pd_by_grade = {"A": 0.01, "B": 0.04, "C": 0.12, "D": 0.3}
    p = np.array([pd_by_grade[g] for g in grades]) * rng.uniform(0.8, 1.2, grades.size)
    truth = {"A": 0.01, "B": 0.04, "C": 0.2, "D": 0.3}  # grade C's PD is too low
    y = (rng.random(grades.size) < np.array([truth[g] for g in grades])).astype(float)
    table = M.binomial_test_by_grade(y, p, grades)
    assert list(table["grade"]) == ["A", "B", "C", "D"]
    for row in table.itertuples():
        idx = grades == row.grade
        n, d = int(idx.sum()), int(y[idx].sum())
        assert (row.count, row.defaults) == (n, d)
        assert row.mean_pd == pytest.approx(p[idx].mean(), abs=1e-15)
        assert abs(row.lower - stats.beta.ppf(0.025, d + 0.5, n - d + 0.5)) <= 1e-9
        assert abs(row.upper - stats.beta.ppf(0.975, d + 0.5, n - d + 0.5)) <= 1e-9
        assert abs(row.p_value - stats.beta.cdf(row.mean_pd, d + 0.5, n - d + 0.5)) <= 1e-9
        assert row.inside == (row.lower <= row.mean_pd <= row.upper)
    assert not table.set_index("grade").loc["C", "inside"]
    assert table.set_index("grade").loc["C", "p_value"] < 1e-3  # the PD is too low for the defaults seen
    assert (table.set_index("grade").loc[["A", "B", "D"], "p_value"] > 0.01).all()
    narrow = M.binomial_test_by_grade(y, p, grades, confidence=0.5).set_index("grade")
    assert (narrow["upper"] - narrow["lower"] < table.set_index("grade")["upper"] - table["lower"].values).all()


@pytest.mark.parametrize("n,d", [(1, 0), (1, 1), (10, 0), (10, 10), (250, 3), (5000, 400), (200000, 1234)])
def test_beta_and_chi2_functions_equal_scipy(n, d):
    a, b = d + 0.5, n - d + 0.5
    for q in (1e-6, 0.025, 0.5, 0.975, 1 - 1e-6):
        assert abs(distributions.beta_ppf(q, a, b) - stats.beta.ppf(q, a, b)) <= 1e-10
    for x in (1e-4, 0.01, 0.3, 0.9):
        assert abs(distributions.beta_cdf(x, a, b) - stats.beta.cdf(x, a, b)) <= 1e-12
    for df in (1, 2, 8, 18, 100):
        for x in (0.0, 0.5, df, 3.0 * df + 10):
            assert abs(distributions.chi2_sf(x, df) - stats.chi2.sf(x, df)) <= 1e-12


# -- gains table -----------------------------------------------------------------------------------
@pytest.mark.parametrize("data", [_data, _ties])
@pytest.mark.parametrize("n_bins", [1, 4, 10, 1000])
def test_gains_table_max_ks_equals_ks_statistic(data, n_bins):
    y, p = data()
    table = M.gains_table(y, p, n_bins=n_bins)
    assert table["max_ks"].max() == pytest.approx(M.ks_statistic(y, p), abs=1e-12)
    assert (table["ks"] <= table["max_ks"] + 1e-15).all()
    assert table["count"].sum() == y.size and table["bads"].sum() == y.sum()
    assert len(table) <= n_bins
    # cumulative captures and KS at each bin's end, recomputed from the counts
    cb = np.cumsum(table["bads"]) / y.sum()
    cg = np.cumsum(table["goods"]) / (y.size - y.sum())
    np.testing.assert_allclose(table["cum_bads_pct"], cb, atol=1e-12)
    np.testing.assert_allclose(table["ks"], np.abs(cb - cg), atol=1e-12)
    np.testing.assert_allclose(table["lift"], table["bad_rate"] / y.mean(), atol=1e-12)
    np.testing.assert_allclose(table["cum_lift"], cb / (np.cumsum(table["count"]) / y.size), atol=1e-12)
    # descending risk, and tied probabilities never split across bins
    assert (table["min_prob"].values[:-1] > table["max_prob"].values[1:]).all()


def test_gains_table_deciles_and_ks_on_cut_offs():
    rng = np.random.default_rng(4)
    p = rng.permutation(np.arange(1000) / 1000.0)
    y = (rng.random(1000) < p).astype(float)
    table = M.gains_table(y, p)
    assert list(table["count"]) == [100] * 10
    assert list(table["bin"]) == list(range(1, 11))
    order = np.argsort(-p)
    assert list(table["bads"]) == [int(y[order[k * 100 : (k + 1) * 100]].sum()) for k in range(10)]
    # max_ks of a bin is the largest gap at any cut-off inside it
    cb, cg = np.cumsum(y[order]) / y.sum(), np.cumsum(1 - y[order]) / (1000 - y.sum())
    for k in range(10):
        assert table["max_ks"][k] == pytest.approx(np.max(np.abs(cb - cg)[k * 100 : (k + 1) * 100]), abs=1e-12)


# -- stateful metrics -------------------------------------------------------------------------------
@pytest.mark.parametrize("data", [_data, _ties])
@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_stateful_metrics_equal_the_functions(data, strategy):
    y, p = data()
    p32 = p.astype(np.float32)
    w = np.random.default_rng(1).random(y.size).astype(np.float32)
    brier, ece = M.BrierScore(), M.ExpectedCalibrationError(n_bins=7, strategy=strategy)
    ece10 = M.ExpectedCalibrationError(n_bins=10, strategy=strategy)  # probabilities on its bin edges
    for chunk in np.array_split(np.arange(y.size), 5):  # state accumulates over batches
        brier.update_state(y[chunk], p32[chunk])
        ece.update_state(y[chunk], p32[chunk])
        ece10.update_state(y[chunk], p32[chunk])
    assert ece10.result() == pytest.approx(M.expected_calibration_error(y, p32, 10, strategy), abs=1e-6)
    assert brier.result() == pytest.approx(M.brier_score(y, p32), abs=1e-6)
    assert ece.result() == pytest.approx(M.expected_calibration_error(y, p32, 7, strategy), abs=1e-6)
    brier.reset_state()
    ece.reset_state()
    brier.update_state(y, p32, sample_weight=w)
    ece.update_state(y, p32, sample_weight=w)
    assert brier.result() == pytest.approx(M.brier_score(y, p32, sample_weight=w), abs=1e-6)
    assert ece.result() == pytest.approx(M.expected_calibration_error(y, p32, 7, strategy, sample_weight=w), abs=1e-6)
    assert M.get("ece").get_config() == {"name": "ece", "n_bins": 10, "strategy": "uniform"}


def _credit_model(metrics, weighted_metrics=None):
    mf.utils.set_random_seed(12)
    rng = np.random.default_rng(12)
    x = rng.normal(size=(1200, 6)).astype(np.float32)
    y = (rng.random(1200) < 1 / (1 + np.exp(-(x[:, 0] - 0.5 * x[:, 1] - 1)))).astype(np.float32)
    model = mf.Sequential([Dense(8, activation="relu", input_dim=6), Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=metrics, weighted_metrics=weighted_metrics)
    return model, x, y


def test_metrics_in_fit_and_evaluate_equal_the_functions():
    model, x, y = _credit_model(
        ["brier_score", M.ExpectedCalibrationError(n_bins=10, strategy="quantile", name="ece_q")],
        weighted_metrics=[M.BrierScore(name="wbrier")],
    )
    w = np.random.default_rng(3).random(y.size).astype(np.float32)
    hist = model.fit(x[:900], y[:900], epochs=3, batch_size=64, verbose=0, validation_data=(x[900:], y[900:]))
    p_val = model.predict(x[900:]).ravel()
    assert hist.history["val_brier_score"][-1] == pytest.approx(M.brier_score(y[900:], p_val), abs=1e-6)
    assert hist.history["val_ece_q"][-1] == pytest.approx(
        M.expected_calibration_error(y[900:], p_val, 10, "quantile"), abs=1e-6
    )
    logs = model.evaluate(x, y, sample_weight=w, verbose=0, return_dict=True)
    p = model.predict(x).ravel()
    assert logs["brier_score"] == pytest.approx(M.brier_score(y, p), abs=1e-6)
    assert logs["ece_q"] == pytest.approx(M.expected_calibration_error(y, p, 10, "quantile"), abs=1e-6)
    assert logs["wbrier"] == pytest.approx(M.brier_score(y, p, sample_weight=w), abs=1e-6)
    assert logs["wbrier"] != pytest.approx(logs["brier_score"], abs=1e-6)


def test_stateful_metrics_refuse_values_that_are_not_probabilities():
    model, x, y = _credit_model(["ece"])
    with pytest.raises(ValueError, match=r"expected_calibration_error: labels must be in \[0, 1\], got 2"):
        model.evaluate(x, np.full_like(y, 2.0), verbose=0)
    with pytest.raises(ValueError, match=r"brier_score: y_pred must be probabilities in \[0, 1\], got 1\.5"):
        M.BrierScore().update_state([1.0], [1.5])
    with pytest.raises(ValueError, match="strategy must be 'uniform' or 'quantile'"):
        M.ExpectedCalibrationError(strategy="kmeans")
    with pytest.raises(ValueError, match="n_bins must be a positive integer"):
        M.ExpectedCalibrationError(n_bins=0)


# -- bad input ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "fn", [M.brier_score, M.expected_calibration_error, M.calibration_curve, M.hosmer_lemeshow, M.gains_table]
)
def test_bad_input_is_a_value_error_naming_the_argument(fn):
    name = fn.__name__
    y, p = np.array([0, 1, 0, 1] * 5, float), np.linspace(0.1, 0.9, 20)
    with pytest.raises(
        ValueError, match=rf"{name}: y_true has shape \(20,\) \(20 values\) but y_prob has shape \(19,\)"
    ):
        fn(y, p[:19])
    with pytest.raises(ValueError, match=rf"{name}: y_prob (must be probabilities in \[0, 1\], got 1\.2|holds NaN)"):
        fn(y, np.r_[p[:-1], 1.2])
    with pytest.raises(ValueError, match=rf"{name}: y_prob .*NaN at index 3"):
        fn(y, np.r_[p[:3], np.nan, p[4:]])
    with pytest.raises(ValueError, match=rf"{name}: y_true must contain only 0 and 1"):
        fn(np.r_[y[:-1], 2.0], p)


def test_one_class_and_other_arguments():
    p = np.linspace(0.1, 0.9, 20)
    with pytest.raises(ValueError, match=r"gains_table: y_true has one class only \(all 0, shape \(20,\)\)"):
        M.gains_table(np.zeros(20), p)
    assert M.brier_score(np.zeros(20), p) == pytest.approx(np.mean(p**2))  # defined, as scikit-learn's
    with pytest.raises(ValueError, match="groups must be an integer >= 3"):
        M.hosmer_lemeshow(np.r_[np.zeros(10), np.ones(10)], p, groups=2)
    with pytest.raises(ValueError, match="strategy must be 'uniform' or 'quantile', got 'equal'"):
        M.expected_calibration_error(np.r_[np.zeros(10), np.ones(10)], p, strategy="equal")
    with pytest.raises(ValueError, match=r"grades has shape \(3,\) but y_true has 20 values"):
        M.binomial_test_by_grade(np.r_[np.zeros(10), np.ones(10)], p, ["A", "B", "C"])
    with pytest.raises(ValueError, match="sample_weight has shape"):
        M.brier_score(np.r_[np.zeros(10), np.ones(10)], p, sample_weight=[1.0, 2.0])
