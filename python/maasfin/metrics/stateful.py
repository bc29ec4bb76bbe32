"""Stateful metrics with Keras 3's names: `update_state` / `result` / `reset_state`, usable
standalone and in `compile(metrics=..., weighted_metrics=...)`. The state lives in the C++ core;
inside `fit`/`evaluate` the same objects accumulate batch by batch without Python.

Ranking metrics are exact: `AUC` (ROC, or PR as average precision), `KolmogorovSmirnov` and
`Gini` keep every (score, label, weight) of the epoch and rank them, with tied scores grouped,
instead of Keras's 200-threshold approximation. `BrierScore` and `ExpectedCalibrationError` judge
predicted probabilities (the functions in metrics/calibration.py compute the same values).
"""

from __future__ import annotations

import numpy as np

from maasfin import _core, registry

__all__ = [
    "Metric",
    "BinaryAccuracy",
    "CategoricalAccuracy",
    "SparseCategoricalAccuracy",
    "TopKCategoricalAccuracy",
    "SparseTopKCategoricalAccuracy",
    "Precision",
    "Recall",
    "F1Score",
    "FBetaScore",
    "AUC",
    "KolmogorovSmirnov",
    "Gini",
    "MeanSquaredError",
    "RootMeanSquaredError",
    "MeanAbsoluteError",
    "BrierScore",
    "ExpectedCalibrationError",
    "get",
    "resolve",
]


class Metric:
    """Base class of the core-backed metrics."""

    kind: str = ""

    def __init__(self, name=None, dtype=None, **spec):
        self.name = name or self.kind
        self._spec_args = spec
        self._core = _core.Metric(_core.MetricSpec(self.kind, **spec))

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        p = np.ascontiguousarray(y_pred, dtype=np.float32)
        if p.ndim == 1:
            p = p.reshape(-1, 1)
        if p.ndim != 2:
            raise ValueError(f"{type(self).__name__} '{self.name}': y_pred must be 1-D or 2-D, got shape {p.shape}")
        t = np.ascontiguousarray(y_true, dtype=np.float32)
        width = self._core.target_width(p.shape[1])
        if t.size != p.shape[0] * width:
            raise ValueError(
                f"{type(self).__name__} '{self.name}': y_true has shape {t.shape} but y_pred has shape "
                f"{p.shape}; expected {width} target value(s) per row"
            )
        if not (np.all(np.isfinite(p)) and np.all(np.isfinite(t))):
            raise ValueError(f"{type(self).__name__} '{self.name}': y_true and y_pred must be finite")
        w = None
        if sample_weight is not None:
            w = np.ascontiguousarray(sample_weight, dtype=np.float32).reshape(-1)
            if w.shape != (p.shape[0],):
                raise ValueError(
                    f"{type(self).__name__} '{self.name}': sample_weight has {w.size} values for {p.shape[0]} rows"
                )
        self._core.update(p, t.reshape(p.shape[0], width), w)

    def result(self):
        values = self._core.result()
        return float(values[0]) if len(values) == 1 else np.asarray(values, dtype=np.float32)

    def reset_state(self) -> None:
        self._core.reset()

    def __call__(self, y_true, y_pred, sample_weight=None):
        self.update_state(y_true, y_pred, sample_weight)
        return self.result()

    def get_config(self) -> dict:
        return {"name": self.name}

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name}>"


def _threshold(cls: str, t, default):
    if t is None:
        return [] if default is None else [float(default)]
    values = list(t) if isinstance(t, (list, tuple)) else [t]
    for v in values:
        if not isinstance(v, (int, float, np.floating)) or not 0 <= v <= 1:
            raise ValueError(f"{cls}: thresholds must be numbers in [0, 1], got {t!r}")
    return [float(v) for v in values]


class BinaryAccuracy(Metric):
    kind = "binary_accuracy"

    def __init__(self, name="binary_accuracy", dtype=None, threshold=0.5):
        self.threshold = float(_threshold("BinaryAccuracy", threshold, 0.5)[0])
        super().__init__(name, thresholds=[self.threshold])

    def get_config(self):
        return {"name": self.name, "threshold": self.threshold}


class CategoricalAccuracy(Metric):
    kind = "categorical_accuracy"

    def __init__(self, name="categorical_accuracy", dtype=None):
        super().__init__(name)


class SparseCategoricalAccuracy(Metric):
    kind = "sparse_categorical_accuracy"

    def __init__(self, name="sparse_categorical_accuracy", dtype=None):
        super().__init__(name)


class TopKCategoricalAccuracy(Metric):
    kind = "top_k_categorical_accuracy"

    def __init__(self, k=5, name="top_k_categorical_accuracy", dtype=None):
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"{type(self).__name__}: k must be a positive integer, got {k!r}")
        self.k = k
        super().__init__(name, k=k)

    def get_config(self):
        return {"name": self.name, "k": self.k}


class SparseTopKCategoricalAccuracy(TopKCategoricalAccuracy):
    kind = "sparse_top_k_categorical_accuracy"

    def __init__(self, k=5, name="sparse_top_k_categorical_accuracy", dtype=None):
        super().__init__(k=k, name=name)


class _PrecisionRecall(Metric):
    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None, dtype=None):
        cls = type(self).__name__
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
            raise ValueError(f"{cls}: top_k must be a positive integer or None, got {top_k!r}")
        if class_id is not None and (isinstance(class_id, bool) or not isinstance(class_id, int) or class_id < 0):
            raise ValueError(f"{cls}: class_id must be a non-negative integer, got {class_id!r}")
        # With top_k and no thresholds, every top-k score is a positive prediction (as Keras).
        self.thresholds = None if thresholds is None and top_k is not None else _threshold(cls, thresholds, 0.5)
        self.class_id, self.top_k = class_id, top_k
        super().__init__(
            name, thresholds=self.thresholds or [], class_id=-1 if class_id is None else class_id, top_k=top_k or 0
        )

    def get_config(self):
        t = self.thresholds if self.thresholds is None or len(self.thresholds) != 1 else self.thresholds[0]
        return {"name": self.name, "thresholds": t, "top_k": self.top_k, "class_id": self.class_id}


class Precision(_PrecisionRecall):
    """TP / (TP + FP), predictions above `thresholds` (default 0.5) counting as positive."""

    kind = "precision"

    def __init__(self, thresholds=None, top_k=None, class_id=None, name="precision", dtype=None):
        super().__init__(thresholds, top_k, class_id, name)


class Recall(_PrecisionRecall):
    """TP / (TP + FN), predictions above `thresholds` (default 0.5) counting as positive."""

    kind = "recall"

    def __init__(self, thresholds=None, top_k=None, class_id=None, name="recall", dtype=None):
        super().__init__(thresholds, top_k, class_id, name)


class FBetaScore(Metric):
    """Keras's F-beta: per class (average=None) or averaged ('micro', 'macro', 'weighted');
    with threshold=None the row's argmax is the positive prediction."""

    kind = "fbeta"

    def __init__(self, average=None, beta=1.0, threshold=None, name="fbeta_score", dtype=None):
        if average not in (None, "micro", "macro", "weighted"):
            raise ValueError(
                f"{type(self).__name__}: average must be None, 'micro', 'macro' or 'weighted', got {average!r}"
            )
        if not isinstance(beta, (int, float)) or beta <= 0:
            raise ValueError(f"{type(self).__name__}: beta must be > 0, got {beta!r}")
        self.average, self.beta = average, float(beta)
        self.threshold = None if threshold is None else _threshold(type(self).__name__, threshold, None)[0]
        super().__init__(
            name, thresholds=[] if threshold is None else [self.threshold], beta=self.beta, average=average or ""
        )

    def get_config(self):
        return {"name": self.name, "average": self.average, "beta": self.beta, "threshold": self.threshold}


class F1Score(FBetaScore):
    def __init__(self, average=None, threshold=None, name="f1_score", dtype=None):
        super().__init__(average=average, beta=1.0, threshold=threshold, name=name)

    def get_config(self):
        return {"name": self.name, "average": self.average, "threshold": self.threshold}


class AUC(Metric):
    """Exact area under the ROC curve (ties count one half), or under the precision-recall curve
    as average precision (curve='PR'). `num_thresholds` and `summation_method` are accepted for
    Keras compatibility and ignored: nothing is approximated. As Keras: with several output
    columns, `multi_label=True` computes one AUC per column and averages them (weighted by
    `label_weights`); otherwise the columns are flattened into one ranking, each entry weighted by
    its column's `label_weights`."""

    kind = "roc_auc"

    def __init__(
        self,
        num_thresholds=200,
        curve="ROC",
        summation_method="interpolation",
        name="auc",
        dtype=None,
        thresholds=None,
        multi_label=False,
        num_labels=None,
        label_weights=None,
        from_logits=False,
    ):
        if curve not in ("ROC", "PR"):
            raise ValueError(f"AUC: curve must be 'ROC' or 'PR', got {curve!r}")
        if num_labels is not None and (
            isinstance(num_labels, bool) or not isinstance(num_labels, int) or num_labels < 1
        ):
            raise ValueError(f"AUC: num_labels must be a positive integer or None, got {num_labels!r}")
        weights = []
        if label_weights is not None:
            weights = np.asarray(label_weights, dtype=np.float64).reshape(-1)
            if weights.size == 0 or not np.all(np.isfinite(weights)) or np.any(weights < 0):
                raise ValueError(f"AUC: label_weights must be finite non-negative numbers, got {label_weights!r}")
            if num_labels is not None and weights.size != num_labels:
                raise ValueError(f"AUC: label_weights has {weights.size} values but num_labels is {num_labels}")
            weights = weights.astype(np.float32).tolist()
        self.curve, self.from_logits = curve, bool(from_logits)
        self.multi_label, self.num_labels = bool(multi_label), num_labels
        self.label_weights = weights or None
        self.kind = "roc_auc" if curve == "ROC" else "pr_auc"
        super().__init__(name, from_logits=self.from_logits, multi_label=self.multi_label, label_weights=weights)

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        if self.num_labels is not None:
            width = np.shape(y_pred)[-1] if np.ndim(y_pred) > 1 else 1
            if width != self.num_labels:
                raise ValueError(f"AUC '{self.name}': y_pred has {width} column(s) but num_labels is {self.num_labels}")
        super().update_state(y_true, y_pred, sample_weight)

    def get_config(self):
        return {
            "name": self.name,
            "curve": self.curve,
            "from_logits": self.from_logits,
            "multi_label": self.multi_label,
            "num_labels": self.num_labels,
            "label_weights": self.label_weights,
        }


class KolmogorovSmirnov(Metric):
    """KS statistic: the largest distance between the score distributions of the two classes."""

    kind = "ks"

    def __init__(self, name="ks", dtype=None, from_logits=False):
        self.from_logits = bool(from_logits)
        super().__init__(name, from_logits=self.from_logits)

    def get_config(self):
        return {"name": self.name, "from_logits": self.from_logits}


class Gini(KolmogorovSmirnov):
    """Gini coefficient (accuracy ratio) of the scores: 2 * AUC - 1."""

    kind = "gini"

    def __init__(self, name="gini", dtype=None, from_logits=False):
        super().__init__(name=name, from_logits=from_logits)


class MeanSquaredError(Metric):
    kind = "mean_squared_error"

    def __init__(self, name="mean_squared_error", dtype=None):
        super().__init__(name)


class RootMeanSquaredError(Metric):
    kind = "root_mean_squared_error"

    def __init__(self, name="root_mean_squared_error", dtype=None):
        super().__init__(name)


class MeanAbsoluteError(Metric):
    kind = "mean_absolute_error"

    def __init__(self, name="mean_absolute_error", dtype=None):
        super().__init__(name)


class BrierScore(Metric):
    """The Brier score: the (weighted) mean of (p - y)^2 over every predicted probability p and its
    0/1 outcome y. Probabilities outside [0, 1] are an error; a NaN probability makes it NaN."""

    kind = "brier_score"

    def __init__(self, name="brier_score", dtype=None):
        super().__init__(name)


class ExpectedCalibrationError(Metric):
    """Expected calibration error: over the bins of scikit-learn's `calibration_curve`
    (`strategy="uniform"`: n_bins equal widths of [0, 1]; "quantile": quantiles of the
    probabilities), the weighted mean of |observed rate - mean probability| per bin, each bin
    weighted by its share of the samples. Keeps every probability of the epoch (quantile bins need
    them all)."""

    kind = "expected_calibration_error"

    def __init__(self, n_bins=10, strategy="uniform", name="expected_calibration_error", dtype=None):
        cls = type(self).__name__
        if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
            raise ValueError(f"{cls}: n_bins must be a positive integer, got {n_bins!r}")
        if strategy not in ("uniform", "quantile"):
            raise ValueError(f"{cls}: strategy must be 'uniform' or 'quantile', got {strategy!r}")
        self.n_bins, self.strategy = int(n_bins), strategy
        super().__init__(name, n_bins=self.n_bins, strategy=strategy)

    def get_config(self):
        return {"name": self.name, "n_bins": self.n_bins, "strategy": self.strategy}


_CLASSES = [
    BinaryAccuracy,
    CategoricalAccuracy,
    SparseCategoricalAccuracy,
    TopKCategoricalAccuracy,
    SparseTopKCategoricalAccuracy,
    Precision,
    Recall,
    F1Score,
    FBetaScore,
    AUC,
    KolmogorovSmirnov,
    Gini,
    MeanSquaredError,
    RootMeanSquaredError,
    MeanAbsoluteError,
    BrierScore,
    ExpectedCalibrationError,
]
BY_NAME = {c.__name__: c for c in _CLASSES}
BY_NAME.update(
    {
        "binary_accuracy": BinaryAccuracy,
        "categorical_accuracy": CategoricalAccuracy,
        "sparse_categorical_accuracy": SparseCategoricalAccuracy,
        "top_k_categorical_accuracy": TopKCategoricalAccuracy,
        "sparse_top_k_categorical_accuracy": SparseTopKCategoricalAccuracy,
        "precision": Precision,
        "recall": Recall,
        "f1_score": F1Score,
        "fbeta_score": FBetaScore,
        "auc": AUC,
        "ks": KolmogorovSmirnov,
        "kolmogorov_smirnov": KolmogorovSmirnov,
        "gini": Gini,
        "mean_squared_error": MeanSquaredError,
        "mse": MeanSquaredError,
        "root_mean_squared_error": RootMeanSquaredError,
        "rmse": RootMeanSquaredError,
        "mean_absolute_error": MeanAbsoluteError,
        "mae": MeanAbsoluteError,
        "brier_score": BrierScore,
        "expected_calibration_error": ExpectedCalibrationError,
        "ece": ExpectedCalibrationError,
    }
)
_VALID = sorted(set(BY_NAME) | {"accuracy", "acc"})


def get(identifier) -> Metric:
    """A fresh metric for a name or class; a Metric instance is returned as is."""
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Metric):
        return identifier()
    if isinstance(identifier, str) and identifier in BY_NAME:
        return BY_NAME[identifier](name=identifier)
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


registry.register_exports("metric", globals(), __all__, Metric)
