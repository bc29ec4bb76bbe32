"""Losses with Keras 3's names, arguments and reductions. Values and gradients are computed in
the C++ core (the same code the training loop runs)."""

from __future__ import annotations

import numpy as np

from maasfin import _core, registry

__all__ = [
    "Loss",
    "BinaryCrossentropy",
    "BinaryFocalCrossentropy",
    "CategoricalCrossentropy",
    "SparseCategoricalCrossentropy",
    "MeanSquaredError",
    "MeanAbsoluteError",
    "MeanAbsolutePercentageError",
    "MeanSquaredLogarithmicError",
    "Huber",
    "LogCosh",
    "Hinge",
    "SquaredHinge",
    "CategoricalHinge",
    "KLDivergence",
    "Poisson",
    "get",
]

_REDUCTIONS = ("sum_over_batch_size", "mean", "sum", "mean_with_sample_weight", "none", None)


class Loss:
    """Base class. `reduction`: "sum_over_batch_size" (default, = "mean"), "sum",
    "mean_with_sample_weight", or "none"/None (per-sample values; standalone calls only)."""

    core_name: str = ""
    from_logits = False

    def __init__(self, name=None, reduction="sum_over_batch_size", dtype=None, **params):
        if reduction not in _REDUCTIONS:
            raise ValueError(
                f"{type(self).__name__}: unknown reduction {reduction!r}; valid: "
                f"{', '.join(str(r) for r in _REDUCTIONS)}"
            )
        self.name = name or self.core_name
        self.reduction = reduction
        self._params = params
        for key, value in params.items():  # Keras exposes its arguments as attributes
            setattr(self, key, value)
        self._spec = _core.LossSpec(
            self.core_name, reduction=reduction if reduction not in ("none", None) else "sum_over_batch_size", **params
        )

    def __call__(self, y_true, y_pred, sample_weight=None):
        """The reduced loss of a batch (a float), or per-sample losses when reduction is none."""
        value, _, per_sample = self._compute(y_true, y_pred, sample_weight)
        if self.reduction in ("none", None):
            w = 1.0 if sample_weight is None else np.asarray(sample_weight, dtype=np.float64).reshape(-1)
            return (per_sample * w).astype(np.float32)
        return float(value)

    def _compute(self, y_true, y_pred, sample_weight=None):
        where = type(self).__name__
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
            raise ValueError(
                f"{where}: y_true has shape {y_true.shape} but y_pred has shape {y_pred.shape}; "
                f"expected y_true of shape {need}"
            )
        w = None
        if sample_weight is not None:
            w = np.ascontiguousarray(sample_weight, dtype=np.float32).reshape(-1)
            if w.shape != (n,):
                raise ValueError(f"{where}: sample_weight has {w.size} values for {n} rows")
        return _core.loss_compute(self._spec, y_true, y_pred, w)

    def get_config(self) -> dict:
        return {"name": self.name, "reduction": self.reduction, **self._params}

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)


def _check_smoothing(cls: str, label_smoothing) -> float:
    if not isinstance(label_smoothing, (int, float)) or not 0 <= label_smoothing <= 1:
        raise ValueError(f"{cls}: label_smoothing must be in [0, 1], got {label_smoothing!r}")
    return float(label_smoothing)


def _axis(cls: str, axis) -> None:
    if axis != -1:
        raise ValueError(f"{cls}: only axis=-1 is supported, got {axis!r}")


class BinaryCrossentropy(Loss):
    core_name = "binary_crossentropy"

    def __init__(
        self,
        from_logits=False,
        label_smoothing=0.0,
        axis=-1,
        reduction="sum_over_batch_size",
        name="binary_crossentropy",
        dtype=None,
    ):
        _axis("BinaryCrossentropy", axis)
        super().__init__(
            name,
            reduction,
            from_logits=bool(from_logits),
            label_smoothing=_check_smoothing("BinaryCrossentropy", label_smoothing),
        )


class BinaryFocalCrossentropy(Loss):
    """Focal loss for imbalanced binary targets: (1 - p_t)^gamma * bce, optionally class-balanced
    by alpha (Keras defaults: alpha=0.25, gamma=2.0)."""

    core_name = "binary_focal_crossentropy"

    def __init__(
        self,
        apply_class_balancing=False,
        alpha=0.25,
        gamma=2.0,
        from_logits=False,
        label_smoothing=0.0,
        axis=-1,
        reduction="sum_over_batch_size",
        name="binary_focal_crossentropy",
        dtype=None,
    ):
        _axis("BinaryFocalCrossentropy", axis)
        super().__init__(
            name,
            reduction,
            apply_class_balancing=bool(apply_class_balancing),
            alpha=float(alpha),
            gamma=float(gamma),
            from_logits=bool(from_logits),
            label_smoothing=_check_smoothing("BinaryFocalCrossentropy", label_smoothing),
        )


class CategoricalCrossentropy(Loss):
    core_name = "categorical_crossentropy"

    def __init__(
        self,
        from_logits=False,
        label_smoothing=0.0,
        axis=-1,
        reduction="sum_over_batch_size",
        name="categorical_crossentropy",
        dtype=None,
    ):
        _axis("CategoricalCrossentropy", axis)
        super().__init__(
            name,
            reduction,
            from_logits=bool(from_logits),
            label_smoothing=_check_smoothing("CategoricalCrossentropy", label_smoothing),
        )


class SparseCategoricalCrossentropy(Loss):
    core_name = "sparse_categorical_crossentropy"

    def __init__(
        self,
        from_logits=False,
        ignore_class=None,
        reduction="sum_over_batch_size",
        name="sparse_categorical_crossentropy",
        dtype=None,
    ):
        if ignore_class is not None:
            raise ValueError("SparseCategoricalCrossentropy: ignore_class is not supported")
        super().__init__(name, reduction, from_logits=bool(from_logits))


def _simple(cls_name: str, core: str, default_name: str, doc: str):
    def __init__(self, reduction="sum_over_batch_size", name=default_name, dtype=None):
        Loss.__init__(self, name, reduction)

    return type(cls_name, (Loss,), {"core_name": core, "__init__": __init__, "__doc__": doc})


MeanSquaredError = _simple("MeanSquaredError", "mean_squared_error", "mean_squared_error", "mean((p - y)^2)")
MeanAbsoluteError = _simple("MeanAbsoluteError", "mean_absolute_error", "mean_absolute_error", "mean(|p - y|)")
MeanAbsolutePercentageError = _simple(
    "MeanAbsolutePercentageError",
    "mean_absolute_percentage_error",
    "mean_absolute_percentage_error",
    "100 * mean(|p - y| / max(|y|, eps))",
)
MeanSquaredLogarithmicError = _simple(
    "MeanSquaredLogarithmicError",
    "mean_squared_logarithmic_error",
    "mean_squared_logarithmic_error",
    "mean((log(p + 1) - log(y + 1))^2)",
)
LogCosh = _simple("LogCosh", "log_cosh", "log_cosh", "mean(log(cosh(p - y)))")
Hinge = _simple("Hinge", "hinge", "hinge", "mean(max(1 - y p, 0)), {0,1} labels mapped to {-1,1}")
SquaredHinge = _simple("SquaredHinge", "squared_hinge", "squared_hinge", "mean(max(1 - y p, 0)^2)")
CategoricalHinge = _simple(
    "CategoricalHinge", "categorical_hinge", "categorical_hinge", "max(max((1 - y) p) - sum(y p) + 1, 0)"
)
KLDivergence = _simple("KLDivergence", "kl_divergence", "kl_divergence", "sum(y log(y / p)), both clipped to [eps, 1]")
Poisson = _simple("Poisson", "poisson", "poisson", "mean(p - y log(p + eps))")


class Huber(Loss):
    core_name = "huber"

    def __init__(self, delta=1.0, reduction="sum_over_batch_size", name="huber_loss", dtype=None):
        if not isinstance(delta, (int, float)) or delta <= 0:
            raise ValueError(f"Huber: delta must be > 0, got {delta!r}")
        super().__init__(name, reduction, delta=float(delta))


_CLASSES = [
    BinaryCrossentropy,
    BinaryFocalCrossentropy,
    CategoricalCrossentropy,
    SparseCategoricalCrossentropy,
    MeanSquaredError,
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    MeanSquaredLogarithmicError,
    Huber,
    LogCosh,
    Hinge,
    SquaredHinge,
    CategoricalHinge,
    KLDivergence,
    Poisson,
]


def _function(cls):
    def loss_fn(y_true, y_pred):
        """Unreduced loss, one value per sample, as the Keras loss functions."""
        return cls()._compute(y_true, y_pred)[2].astype(np.float32)

    loss_fn.__name__ = cls.core_name
    loss_fn._loss_class = cls
    return loss_fn


for _cls in _CLASSES:
    globals()[_cls.core_name] = _function(_cls)
    __all__.append(_cls.core_name)
huber = globals()["huber"]
log_cosh = globals()["log_cosh"]

BY_NAME = {c.core_name: c for c in _CLASSES}
BY_NAME.update({c.__name__: c for c in _CLASSES})
BY_NAME.update(
    {
        "bce": BinaryCrossentropy,
        "cce": CategoricalCrossentropy,
        "mse": MeanSquaredError,
        "mae": MeanAbsoluteError,
        "mape": MeanAbsolutePercentageError,
        "msle": MeanSquaredLogarithmicError,
        "kld": KLDivergence,
        "kullback_leibler_divergence": KLDivergence,
        "logcosh": LogCosh,
        "huber_loss": Huber,
        "BCE": BinaryCrossentropy,
        "MSE": MeanSquaredError,
        "MAE": MeanAbsoluteError,
        "MAPE": MeanAbsolutePercentageError,
        "MSLE": MeanSquaredLogarithmicError,
        "KLD": KLDivergence,
    }
)


def get(identifier) -> Loss:
    """Resolves a loss name, class, instance or function, as keras.losses.get."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    if callable(identifier) and hasattr(identifier, "_loss_class"):
        return identifier._loss_class()
    if isinstance(identifier, str):
        cls = BY_NAME.get(identifier)
        if cls is None:
            raise ValueError(f"unknown loss {identifier!r}; valid names: {', '.join(sorted(BY_NAME))}")
        return cls()
    raise TypeError(f"loss must be a name, a maasfin.losses.Loss or a maasfin.losses function, got {identifier!r}")


registry.register_exports("loss", globals(), __all__, Loss)
