"""Ranking scores as functions (exact ROC AUC, KS, Gini through the core metrics) and the gains table."""

from __future__ import annotations

import numpy as np

from maasfin.data import pd
from maasfin.metrics.calibration import check_binary_inputs
from maasfin.metrics.stateful import AUC, Gini, KolmogorovSmirnov, Metric

__all__ = ["roc_auc_score", "ks_statistic", "gini", "gains_table"]


def _ranking(metric: Metric, y_true, y_score, sample_weight) -> float:
    y = np.asarray(y_true, dtype=np.float64).reshape(-1)
    s = np.asarray(y_score, dtype=np.float64).reshape(-1)
    if y.shape != s.shape:
        raise ValueError(f"y_true has {y.size} values but y_score has {s.size}")
    if not np.all(np.isin(y, (0.0, 1.0))):
        raise ValueError("y_true must contain only 0 and 1")
    if not (np.any(y == 1) and np.any(y == 0)):
        raise ValueError("both classes must be present to compute a ranking metric")
    metric.update_state(y.reshape(-1, 1), s.reshape(-1, 1), sample_weight)
    return float(metric.result())


def roc_auc_score(y_true, y_score, sample_weight=None) -> float:
    """Exact area under the ROC curve (probability a positive outranks a negative, ties count 1/2)."""
    return _ranking(AUC(), y_true, y_score, sample_weight)


def ks_statistic(y_true, y_score, sample_weight=None) -> float:
    """Kolmogorov-Smirnov statistic: the largest gap between the score CDFs of the two classes."""
    return _ranking(KolmogorovSmirnov(), y_true, y_score, sample_weight)


def gini(y_true, y_score, sample_weight=None) -> float:
    """Gini coefficient of the scores: 2 * AUC - 1."""
    return _ranking(Gini(), y_true, y_score, sample_weight)


def gains_table(y_true, y_prob, n_bins=10):
    """The gains (lift) table of a credit score: rows sorted by descending probability of default
    and cut into `n_bins` bins of about equal size (deciles by default); tied probabilities stay in
    one bin, so a bin can be larger and the table shorter. y_true is 1 for a bad (default).

    One row per bin (a pandas DataFrame): `bin` (1 = riskiest), `count`, `bads`, `goods`,
    `bad_rate`, `min_prob`/`max_prob`, `cum_bads_pct`/`cum_goods_pct` (the shares of all bads and
    goods captured by this bin and the riskier ones), `ks` (|cum_bads_pct - cum_goods_pct| at the
    bin's end), `max_ks` (the largest such gap at any cut-off inside the bin, between two distinct
    probabilities, or at its end), `lift` (bad_rate / overall bad rate) and `cum_lift`.
    `max_ks.max()` is the Kolmogorov-Smirnov statistic (`ks_statistic`); `ks.max()`, the gap at the
    bin edges only, can be lower."""
    y, s, _ = check_binary_inputs(y_true, y_prob, "gains_table", both_classes=True)
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"gains_table: n_bins must be a positive integer, got {n_bins!r}")
    n = y.size
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    # Each run of tied probabilities goes to the bin where it starts.
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    runs = np.diff(np.r_[starts, n])
    run_bin = np.minimum(starts * n_bins // n, n_bins - 1)
    row_bin = np.repeat(run_bin, runs)
    bads_total, goods_total = y.sum(), n - y.sum()
    cum_bads, cum_goods = np.cumsum(y), np.cumsum(1.0 - y)
    # The gap at each cut-off between distinct probabilities (after each run of ties).
    ends = np.r_[starts[1:], n] - 1
    gap = np.abs(cum_bads[ends] / bads_total - cum_goods[ends] / goods_total)
    rows = []
    for b in np.unique(row_bin):
        idx = np.flatnonzero(row_bin == b)
        last = idx[-1]
        count, bads = idx.size, y[idx].sum()
        cb, cg = cum_bads[last] / bads_total, cum_goods[last] / goods_total
        rows.append(
            {
                "bin": len(rows) + 1,
                "count": int(count),
                "bads": int(bads),
                "goods": int(count - bads),
                "bad_rate": bads / count,
                "min_prob": s[last],
                "max_prob": s[idx[0]],
                "cum_bads_pct": cb,
                "cum_goods_pct": cg,
                "ks": abs(cb - cg),
                "max_ks": float(gap[run_bin == b].max()),
                "lift": (bads / count) / (bads_total / n),
                "cum_lift": (cum_bads[last] / (last + 1)) / (bads_total / n),
            }
        )
    return pd.DataFrame(rows)
