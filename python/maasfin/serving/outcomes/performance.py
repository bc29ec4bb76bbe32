"""Realised performance of served scores against outcomes: AUC, Gini, KS, Brier, ECE, rates.

`performance(scores, labels)` returns {"n", "defaults", "roc_auc", "gini", "ks", "brier", "ece",
"observed_default_rate", "mean_pd"}; label 1 is a default and the score is the predicted PD.

- `roc_auc`: the probability that a default scores above a non-default, ties counting one half
  (Mann-Whitney U over average ranks: the area under the ROC curve, as sklearn.metrics.roc_auc_score);
- `gini` = 2 AUC - 1;
- `ks`: the largest |TPR - FPR| over all thresholds (the maximum distance between the score
  distributions of defaults and non-defaults);
- `brier`: mean squared difference of score and label;
- `ece`: expected calibration error over ten equal-width score bins [0, 0.1), ..., [0.9, 1.0]:
  sum over bins of (rows in bin / n) * |observed default rate - mean score|.
AUC, Gini and KS are null unless both classes are present; everything is null with no rows.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ECE_BINS", "performance"]

ECE_BINS = 10


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks of `x`, ties sharing their average rank."""
    order = np.argsort(x, kind="mergesort")
    _, first, counts = np.unique(x[order], return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0  # the mean of ranks first+1 .. first+count
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = np.repeat(avg, counts)
    return ranks


def _ks(scores: np.ndarray, labels: np.ndarray) -> float:
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], labels[order]
    last = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]  # the end of each run of equal scores
    tp = np.cumsum(y)[last]
    fp = (last + 1) - tp
    return float(np.max(np.abs(tp / tp[-1] - fp / fp[-1])))


def performance(scores, labels) -> dict:
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    n = int(len(s))
    out = {
        "n": n,
        "defaults": int(y.sum()),
        "roc_auc": None,
        "gini": None,
        "ks": None,
        "brier": None,
        "ece": None,
        "observed_default_rate": None,
        "mean_pd": None,
    }
    if n == 0:
        return out
    out["brier"] = float(np.mean((s - y) ** 2))
    out["observed_default_rate"] = float(np.mean(y))
    out["mean_pd"] = float(np.mean(s))
    bins = np.clip((s * ECE_BINS).astype(np.int64), 0, ECE_BINS - 1)
    ece = 0.0
    for b in range(ECE_BINS):
        m = bins == b
        if m.any():
            ece += m.sum() / n * abs(y[m].mean() - s[m].mean())
    out["ece"] = float(ece)
    pos = int(y.sum())
    neg = n - pos
    if pos and neg:
        ranks = _average_ranks(s)
        auc = (ranks[y == 1].sum() - pos * (pos + 1) / 2.0) / (pos * neg)
        out["roc_auc"] = float(auc)
        out["gini"] = float(2.0 * auc - 1.0)
        out["ks"] = _ks(s, y)
    return out
