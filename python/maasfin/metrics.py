"""Metrics with Keras's names. During fit/evaluate they accumulate inside the C++ batch loop.

`roc_auc_score`, `ks_statistic` and `gini` are exact, rank-based evaluation functions on
arrays of predictions (ties share their average rank).
"""
from __future__ import annotations

import numpy as np

__all__ = ["Metric", "BinaryAccuracy", "CategoricalAccuracy", "SparseCategoricalAccuracy",
           "MeanSquaredError", "MeanAbsoluteError", "get", "resolve",
           "roc_auc_score", "ks_statistic", "gini"]


class Metric:
    """A metric computed in the core; `kind` names the core accumulator."""

    kind: str = ""

    def __init__(self, name: str | None = None, dtype=None):
        self.name = name or self.kind

    def get_config(self) -> dict:
        return {"name": self.name}


class BinaryAccuracy(Metric):
    kind = "binary_accuracy"

    def __init__(self, name="binary_accuracy", dtype=None, threshold=0.5):
        super().__init__(name)
        if not 0 <= threshold <= 1:
            raise ValueError(f"BinaryAccuracy: threshold must be in [0, 1], got {threshold!r}")
        self.threshold = float(threshold)


class CategoricalAccuracy(Metric):
    kind = "categorical_accuracy"

    def __init__(self, name="categorical_accuracy", dtype=None):
        super().__init__(name)


class SparseCategoricalAccuracy(Metric):
    kind = "sparse_categorical_accuracy"

    def __init__(self, name="sparse_categorical_accuracy", dtype=None):
        super().__init__(name)


class MeanSquaredError(Metric):
    kind = "mean_squared_error"

    def __init__(self, name="mean_squared_error", dtype=None):
        super().__init__(name)


class MeanAbsoluteError(Metric):
    kind = "mean_absolute_error"

    def __init__(self, name="mean_absolute_error", dtype=None):
        super().__init__(name)


_BY_NAME = {
    "binary_accuracy": BinaryAccuracy, "categorical_accuracy": CategoricalAccuracy,
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "mean_squared_error": MeanSquaredError, "mse": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError, "mae": MeanAbsoluteError,
}
for _cls in (BinaryAccuracy, CategoricalAccuracy, SparseCategoricalAccuracy, MeanSquaredError, MeanAbsoluteError):
    _BY_NAME[_cls.__name__] = _cls
_VALID = sorted(set(_BY_NAME) | {"accuracy", "acc"})


def get(identifier) -> Metric:
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Metric):
        return identifier()
    if isinstance(identifier, str) and identifier in _BY_NAME:
        return _BY_NAME[identifier](name=identifier)
    raise ValueError(f"unknown metric {identifier!r}; valid names: {', '.join(_VALID)}")


def resolve(identifier, y_true_shape: tuple, y_pred_shape: tuple) -> Metric:
    """Keras's rule for 'accuracy'/'acc': binary when the output has one unit, sparse when the
    targets are class ids (fewer dimensions, or one column for a multi-unit output), else categorical.
    The metric keeps the name the user gave."""
    if isinstance(identifier, str) and identifier in ("accuracy", "acc"):
        if y_pred_shape[-1] == 1:
            return BinaryAccuracy(name=identifier)
        sparse = len(y_true_shape) < len(y_pred_shape) or (y_true_shape[-1] == 1 and y_pred_shape[-1] > 1)
        return SparseCategoricalAccuracy(name=identifier) if sparse else CategoricalAccuracy(name=identifier)
    return get(identifier)


def _binary_inputs(y_true, y_score, sample_weight):
    y = np.asarray(y_true, dtype=np.float64).reshape(-1)
    s = np.asarray(y_score, dtype=np.float64).reshape(-1)
    if y.shape != s.shape:
        raise ValueError(f"y_true has {y.size} values but y_score has {s.size}")
    if not np.all(np.isin(y, (0.0, 1.0))):
        raise ValueError("y_true must contain only 0 and 1")
    w = np.ones_like(s) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64).reshape(-1)
    if w.shape != s.shape:
        raise ValueError(f"sample_weight has {w.size} values but y_score has {s.size}")
    if not (np.any(y == 1) and np.any(y == 0)):
        raise ValueError("both classes must be present to compute a ranking metric")
    return y, s, w


def roc_auc_score(y_true, y_score, sample_weight=None) -> float:
    """Exact area under the ROC curve (probability a positive outranks a negative, ties count 1/2)."""
    y, s, w = _binary_inputs(y_true, y_score, sample_weight)
    order = np.argsort(s, kind="mergesort")
    s, y, w = s[order], y[order], w[order]
    # Group ties: within a group of equal scores, each positive beats the negatives below the group
    # and ties with half of the group's negatives.
    starts = np.r_[0, np.flatnonzero(np.diff(s)) + 1]
    wpos = np.add.reduceat(w * y, starts)
    wneg = np.add.reduceat(w * (1 - y), starts)
    neg_below = np.cumsum(wneg) - wneg
    area = np.sum(wpos * (neg_below + 0.5 * wneg))
    return float(area / (wpos.sum() * wneg.sum()))


def ks_statistic(y_true, y_score, sample_weight=None) -> float:
    """Kolmogorov-Smirnov statistic: the largest gap between the score CDFs of the two classes."""
    y, s, w = _binary_inputs(y_true, y_score, sample_weight)
    order = np.argsort(s, kind="mergesort")
    s, y, w = s[order], y[order], w[order]
    ends = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]
    cpos = np.cumsum(w * y)[ends] / np.sum(w * y)
    cneg = np.cumsum(w * (1 - y))[ends] / np.sum(w * (1 - y))
    return float(np.max(np.abs(cpos - cneg)))


def gini(y_true, y_score, sample_weight=None) -> float:
    """Gini coefficient of the scores: 2 * AUC - 1."""
    return 2.0 * roc_auc_score(y_true, y_score, sample_weight) - 1.0
