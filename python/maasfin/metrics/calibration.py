"""Calibration of predicted probabilities, as functions with scikit-learn's argument order.

`brier_score`, `expected_calibration_error` and `calibration_curve` (scikit-learn's bins), the
Hosmer-Lemeshow test and the per-grade binomial test with Jeffreys intervals that PD validation
uses. y_true holds 0/1 outcomes (1 = default), y_prob the predicted probability of a 1.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from maasfin.data import pd
from maasfin.metrics.distributions import beta_cdf, beta_ppf, chi2_sf

__all__ = [
    "brier_score",
    "expected_calibration_error",
    "calibration_curve",
    "hosmer_lemeshow",
    "HosmerLemeshowResult",
    "binomial_test_by_grade",
    "check_binary_inputs",
    "bin_edges",
]


def _flat(values, what: str, fn: str) -> np.ndarray:
    a = np.asarray(values)
    if a.ndim == 2 and a.shape[1] == 1:
        a = a.reshape(-1)
    if a.ndim != 1:
        raise ValueError(f"{fn}: {what} must be 1-D (or one column), got shape {a.shape}")
    if a.dtype.kind not in "biuf":
        raise ValueError(f"{fn}: {what} must be numeric, got dtype {a.dtype}")
    return a.astype(np.float64)


def check_binary_inputs(
    y_true, y_prob, fn: str, sample_weight=None, both_classes: bool = False, names=("y_true", "y_prob")
):
    """y_true (0/1), y_prob (probabilities in [0, 1]) and the weights as float64 vectors, checked;
    ValueErrors name `fn`, the argument (as the caller calls them: `names`) and the shapes."""
    yn, pn = names
    y = _flat(y_true, yn, fn)
    p = _flat(y_prob, pn, fn)
    if y.shape != p.shape:
        raise ValueError(
            f"{fn}: {yn} has shape {np.shape(y_true)} ({y.size} values) but {pn} has shape "
            f"{np.shape(y_prob)} ({p.size} values); they must have the same length"
        )
    if y.size == 0:
        raise ValueError(f"{fn}: {yn} and {pn} are empty")
    bad = np.flatnonzero(~np.isin(y, (0.0, 1.0)))
    if bad.size:
        raise ValueError(
            f"{fn}: {yn} must contain only 0 and 1 (1 = the event), got {float(y[bad[0]])} at index {int(bad[0])}"
        )
    if both_classes and np.unique(y).size < 2:
        raise ValueError(
            f"{fn}: {yn} has one class only (all {int(y[0])}, shape {np.shape(y_true)}); both outcomes are needed"
        )
    nan = np.flatnonzero(np.isnan(p))
    if nan.size:
        raise ValueError(f"{fn}: {pn} holds NaN at index {int(nan[0])} (of shape {np.shape(y_prob)})")
    out = np.flatnonzero((p < 0) | (p > 1))
    if out.size:
        raise ValueError(
            f"{fn}: {pn} must be probabilities in [0, 1], got {float(p[out[0]])} at index {int(out[0])} "
            f"(min {float(p.min())}, max {float(p.max())})"
        )
    w = None
    if sample_weight is not None:
        w = _flat(sample_weight, "sample_weight", fn)
        if w.shape != y.shape:
            raise ValueError(f"{fn}: sample_weight has shape {np.shape(sample_weight)} but {yn} has {y.size} values")
        if not np.all(np.isfinite(w)) or np.any(w < 0) or not w.sum() > 0:
            raise ValueError(f"{fn}: sample_weight must be finite, >= 0 and not all 0")
    return y, p, w


def _check_bins(n_bins, strategy, fn: str) -> None:
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"{fn}: n_bins must be a positive integer, got {n_bins!r}")
    if strategy not in ("uniform", "quantile"):
        raise ValueError(f"{fn}: strategy must be 'uniform' or 'quantile', got {strategy!r}")


def bin_edges(y_prob: np.ndarray, n_bins: int, strategy: str) -> np.ndarray:
    """The n_bins + 1 bin edges of scikit-learn's calibration_curve: equal widths of [0, 1], or the
    quantiles of y_prob. A probability p falls in bin searchsorted(edges[1:-1], p)."""
    if strategy == "quantile":
        return np.percentile(y_prob, np.linspace(0, 1, n_bins + 1) * 100)
    return np.linspace(0.0, 1.0, n_bins + 1)


def _binned(y, p, w, n_bins, strategy):
    ids = np.searchsorted(bin_edges(p, n_bins, strategy)[1:-1], p)
    weights = np.ones_like(p) if w is None else w
    total = np.bincount(ids, weights=weights, minlength=n_bins)
    return (
        total,
        np.bincount(ids, weights=weights * y, minlength=n_bins),
        np.bincount(ids, weights=weights * p, minlength=n_bins),
    )


def brier_score(y_true, y_prob, sample_weight=None) -> float:
    """The Brier score: the (weighted) mean of (y_prob - y_true)^2 (scikit-learn's brier_score_loss)."""
    y, p, w = check_binary_inputs(y_true, y_prob, "brier_score", sample_weight)
    return float(np.average((p - y) ** 2, weights=w))


def expected_calibration_error(y_true, y_prob, n_bins=10, strategy="uniform", sample_weight=None) -> float:
    """Expected calibration error: sum over the bins of `calibration_curve` of
    (bin weight / total weight) * |observed event rate - mean y_prob| in the bin. strategy="uniform"
    cuts [0, 1] into n_bins equal widths, "quantile" at the quantiles of y_prob (bins of equal counts).
    `ExpectedCalibrationError` computes the same value inside fit/evaluate."""
    _check_bins(n_bins, strategy, "expected_calibration_error")
    y, p, w = check_binary_inputs(y_true, y_prob, "expected_calibration_error", sample_weight)
    total, events, probs = _binned(y, p, w, n_bins, strategy)
    return float(np.sum(np.abs(events - probs)) / total.sum())


def calibration_curve(y_true, y_prob, n_bins=5, strategy="uniform"):
    """(prob_true, prob_pred): per non-empty bin, the observed event rate and the mean predicted
    probability, with the bins and outputs of scikit-learn's sklearn.calibration.calibration_curve."""
    _check_bins(n_bins, strategy, "calibration_curve")
    y, p, _ = check_binary_inputs(y_true, y_prob, "calibration_curve")
    total, events, probs = _binned(y, p, None, n_bins, strategy)
    nonzero = total != 0
    return events[nonzero] / total[nonzero], probs[nonzero] / total[nonzero]


class HosmerLemeshowResult(NamedTuple):
    """The Hosmer-Lemeshow statistic and its p-value (chi-squared with groups - 2 degrees of freedom)."""

    statistic: float
    p_value: float


def hosmer_lemeshow(y_true, y_prob, groups=10) -> HosmerLemeshowResult:
    """The Hosmer-Lemeshow goodness-of-fit test. Rows sorted by y_prob (stable) are cut into `groups`
    groups of (nearly) equal size (numpy.array_split); with O and E the observed and expected events
    and n the size of a group, statistic = sum over groups of (O - E)^2 / (E * (1 - E / n)), and the
    p-value is P(chi2(groups - 2) > statistic). A small p-value says the probabilities do not match
    the outcomes. Unpacks as (statistic, p_value)."""
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 3:
        raise ValueError(f"hosmer_lemeshow: groups must be an integer >= 3 (df = groups - 2), got {groups!r}")
    y, p, _ = check_binary_inputs(y_true, y_prob, "hosmer_lemeshow")
    if y.size < groups:
        raise ValueError(f"hosmer_lemeshow: {y.size} rows cannot form {groups} groups")
    stat = 0.0
    for idx in np.array_split(np.argsort(p, kind="stable"), groups):
        observed, expected = y[idx].sum(), p[idx].sum()
        variance = expected * (1.0 - expected / idx.size)
        if variance > 0:
            stat += (observed - expected) ** 2 / variance
        elif observed != expected:  # a group predicted certain (all 0 or all 1) that is not
            stat = np.inf
    return HosmerLemeshowResult(float(stat), float(chi2_sf(float(stat), int(groups) - 2)))


def binomial_test_by_grade(y_true, y_prob, grades, confidence=0.95):
    """Per rating grade, whether its mean PD is consistent with its observed defaults: the Jeffreys
    interval, the central `confidence` interval of Beta(d + 1/2, n - d + 1/2) for n obligors with d
    defaults, and whether the grade's mean PD lies inside it. `p_value` is the one-sided Jeffreys
    test of the ECB's PD validation (Beta(d + 1/2, n - d + 1/2).cdf(mean PD)): small when the PD is
    too low for the defaults seen.

    Returns a pandas DataFrame, one row per grade in sorted order: grade, count, defaults,
    default_rate, mean_pd, lower, upper, inside, p_value."""
    y, p, _ = check_binary_inputs(y_true, y_prob, "binomial_test_by_grade")
    g = np.asarray(grades)
    if g.ndim == 2 and g.shape[1] == 1:
        g = g.reshape(-1)
    if g.shape != y.shape:
        raise ValueError(f"binomial_test_by_grade: grades has shape {np.shape(grades)} but y_true has {y.size} values")
    if g.dtype.kind == "f" and np.isnan(g).any():
        raise ValueError(f"binomial_test_by_grade: grades holds NaN at index {int(np.flatnonzero(np.isnan(g))[0])}")
    if not (isinstance(confidence, (int, float)) and 0 < confidence < 1):
        raise ValueError(f"binomial_test_by_grade: confidence must be in (0, 1), got {confidence!r}")
    try:
        labels, inverse = np.unique(g, return_inverse=True)
    except TypeError:
        raise ValueError("binomial_test_by_grade: grades must be all numbers or all strings") from None
    alpha = (1.0 - confidence) / 2.0
    rows = []
    for k, grade in enumerate(labels):
        idx = inverse.reshape(-1) == k
        n, d = int(idx.sum()), int(y[idx].sum())
        mean_pd = float(p[idx].mean())
        a, b = d + 0.5, n - d + 0.5
        lower, upper = beta_ppf(alpha, a, b), beta_ppf(1.0 - alpha, a, b)
        rows.append(
            {
                "grade": grade.item() if hasattr(grade, "item") else grade,
                "count": n,
                "defaults": d,
                "default_rate": d / n,
                "mean_pd": mean_pd,
                "lower": lower,
                "upper": upper,
                "inside": bool(lower <= mean_pd <= upper),
                "p_value": beta_cdf(mean_pd, a, b),
            }
        )
    return pd.DataFrame(rows)
