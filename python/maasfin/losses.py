"""Losses with Keras's names. The values and gradients are computed in the C++ core."""
from __future__ import annotations

import numpy as np

from maasfin import _core

__all__ = ["Loss", "BinaryCrossentropy", "CategoricalCrossentropy", "SparseCategoricalCrossentropy",
           "MeanSquaredError", "MeanAbsoluteError", "Hinge", "get",
           "binary_crossentropy", "categorical_crossentropy", "sparse_categorical_crossentropy",
           "mean_squared_error", "mean_absolute_error", "hinge"]


class Loss:
    """A loss with Keras's "sum_over_batch_size" reduction: sum_i w_i * l_i / N."""

    core_name: str = ""

    def __init__(self, name: str | None = None, reduction: str = "sum_over_batch_size", from_logits: bool = False):
        if reduction != "sum_over_batch_size":
            raise ValueError(f"{type(self).__name__}: only reduction='sum_over_batch_size' is supported, got {reduction!r}")
        self.name = name or self.core_name
        self.reduction = reduction
        self.from_logits = bool(from_logits)

    def __call__(self, y_true, y_pred, sample_weight=None) -> float:
        """The reduced loss of a batch: sum_i w_i * l_i / N."""
        return float(self._compute(y_true, y_pred, sample_weight)[0])

    def _compute(self, y_true, y_pred, sample_weight=None):
        where = f"{type(self).__name__}"
        y_pred = np.ascontiguousarray(y_pred, dtype=np.float32)
        y_true = np.ascontiguousarray(y_true, dtype=np.float32)
        if y_pred.ndim == 0 or y_pred.shape[0] == 0:
            raise ValueError(f"{where}: y_pred must have at least one row, got shape {y_pred.shape}")
        if y_pred.ndim == 1:
            y_pred = y_pred.reshape(-1, 1)
        n = y_pred.shape[0]
        if self.core_name == "sparse_categorical_crossentropy":
            ok = y_true.shape in ((n,), (n, 1))
            need = f"({n},) or ({n}, 1) class ids"
        else:
            ok = y_true.shape == y_pred.shape or (y_true.shape == (n,) and y_pred.shape == (n, 1))
            need = str(y_pred.shape)
        if not ok:
            raise ValueError(f"{where}: y_true has shape {y_true.shape} but y_pred has shape {y_pred.shape}; "
                             f"expected y_true of shape {need}")
        w = None
        if sample_weight is not None:
            w = np.ascontiguousarray(sample_weight, dtype=np.float32).reshape(-1)
            if w.shape != (n,):
                raise ValueError(f"{where}: sample_weight has {w.size} values for {n} rows")
        return _core.loss_compute(self.core_name, self.from_logits, y_true, y_pred, w)

    def get_config(self) -> dict:
        return {"name": self.name, "reduction": self.reduction, "from_logits": self.from_logits}


def _no_smoothing(cls_name: str, label_smoothing) -> None:
    if label_smoothing:
        raise ValueError(f"{cls_name}: label_smoothing is not supported yet, got {label_smoothing!r}")


class BinaryCrossentropy(Loss):
    core_name = "binary_crossentropy"

    def __init__(self, from_logits=False, label_smoothing=0.0, reduction="sum_over_batch_size",
                 name="binary_crossentropy"):
        _no_smoothing(type(self).__name__, label_smoothing)
        super().__init__(name=name, reduction=reduction, from_logits=from_logits)


class CategoricalCrossentropy(Loss):
    core_name = "categorical_crossentropy"

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1, reduction="sum_over_batch_size",
                 name="categorical_crossentropy"):
        _no_smoothing(type(self).__name__, label_smoothing)
        super().__init__(name=name, reduction=reduction, from_logits=from_logits)


class SparseCategoricalCrossentropy(Loss):
    core_name = "sparse_categorical_crossentropy"

    def __init__(self, from_logits=False, ignore_class=None, reduction="sum_over_batch_size",
                 name="sparse_categorical_crossentropy"):
        if ignore_class is not None:
            raise ValueError("SparseCategoricalCrossentropy: ignore_class is not supported yet")
        super().__init__(name=name, reduction=reduction, from_logits=from_logits)


class MeanSquaredError(Loss):
    core_name = "mean_squared_error"

    def __init__(self, reduction="sum_over_batch_size", name="mean_squared_error"):
        super().__init__(name=name, reduction=reduction)


class MeanAbsoluteError(Loss):
    core_name = "mean_absolute_error"

    def __init__(self, reduction="sum_over_batch_size", name="mean_absolute_error"):
        super().__init__(name=name, reduction=reduction)


class Hinge(Loss):
    core_name = "hinge"

    def __init__(self, reduction="sum_over_batch_size", name="hinge"):
        super().__init__(name=name, reduction=reduction)


def _function(cls):
    def loss_fn(y_true, y_pred):
        """Unreduced loss, one value per sample, as the Keras loss functions."""
        return cls()._compute(y_true, y_pred)[2].astype(np.float32)
    loss_fn.__name__ = cls.core_name
    loss_fn._loss_class = cls
    return loss_fn


binary_crossentropy = _function(BinaryCrossentropy)
categorical_crossentropy = _function(CategoricalCrossentropy)
sparse_categorical_crossentropy = _function(SparseCategoricalCrossentropy)
mean_squared_error = _function(MeanSquaredError)
mean_absolute_error = _function(MeanAbsoluteError)
hinge = _function(Hinge)

_BY_NAME = {
    "binary_crossentropy": BinaryCrossentropy, "bce": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy, "cce": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "mean_squared_error": MeanSquaredError, "mse": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError, "mae": MeanAbsoluteError,
    "hinge": Hinge,
}
for _cls in (BinaryCrossentropy, CategoricalCrossentropy, SparseCategoricalCrossentropy, MeanSquaredError,
             MeanAbsoluteError, Hinge):
    _BY_NAME[_cls.__name__] = _cls


def get(identifier) -> Loss:
    """Resolves a loss name, class, instance or function, as keras.losses.get."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    if callable(identifier) and hasattr(identifier, "_loss_class"):
        return identifier._loss_class()
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier)
        if cls is None:
            raise ValueError(f"unknown loss {identifier!r}; valid names: {', '.join(sorted(_BY_NAME))}")
        return cls()
    raise TypeError(f"loss must be a name, a maasfin.losses.Loss or a maasfin.losses function, got {identifier!r}")
