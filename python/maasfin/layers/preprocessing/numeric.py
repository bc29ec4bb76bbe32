"""Numeric preprocessing layers learned by adapt: Normalization, Discretization, Imputation."""

from __future__ import annotations

import numpy as np

from maasfin import _core
from maasfin.layers.preprocessing.base import (
    PreprocessingLayer,
    batches,
    check_mode,
    concat_batches,
    float_list,
    int_arg,
    numeric_2d,
)

__all__ = ["Normalization", "Discretization", "Imputation"]


class Normalization(PreprocessingLayer):
    """Standardises each feature (last axis): (x - mean) / sqrt(variance), or the inverse with
    `invert=True`. mean/variance come from `adapt(data)` (population variance, as Keras) or are
    given; they are non-trainable weights. Weights: mean, variance (Keras also keeps a count)."""

    _masking = "keep"

    def __init__(self, axis=-1, mean=None, variance=None, invert=False, **kwargs):
        super().__init__(**kwargs)
        if axis != -1:
            raise ValueError(
                f"{self._where}: only axis=-1 (one mean and variance per feature) is supported, got {axis!r}"
            )
        if (mean is None) != (variance is None):
            raise ValueError(f"{self._where}: give both mean and variance, or neither (and call adapt)")
        self.axis, self.invert = -1, bool(invert)
        self.mean = None if mean is None else (float_list(mean, self._where, "mean") if np.ndim(mean) else float(mean))
        self.variance = (
            None
            if variance is None
            else (float_list(variance, self._where, "variance") if np.ndim(variance) else float(variance))
        )
        if self.variance is not None and np.any(np.asarray(self.variance) < 0):
            raise ValueError(f"{self._where}: variance must be >= 0")
        self._adapted = None  # (mean, variance) arrays from adapt

    def _make_core(self):
        return _core.Normalization(self.invert)

    def monotonic_direction(self):
        """+1: (x - mean) / sqrt(variance) and its inverse have a positive scale (variance >= 0)."""
        return 1

    def adapt(self, data, batch_size=None, steps=None):
        if self.mean is not None:
            raise ValueError(
                f"{self._where}: mean and variance were given; adapt is only for layers built without them"
            )
        x = concat_batches([numeric_2d(b, self._where) for b in batches(data, self._where)], self._where)
        x = x.reshape(-1, x.shape[-1])
        missing = np.isnan(x).any(axis=0)
        if missing.any():
            col = int(np.flatnonzero(missing)[0])
            raise ValueError(
                f"{self._where}: adapt data has missing values (NaN) in feature {col}; put an "
                "Imputation layer before Normalization"
            )
        self._check_width(x.shape[-1])
        self._adapted = (x.mean(axis=0), x.var(axis=0))
        self._state_changed()

    def _check_width(self, c: int) -> None:
        if self._output_shape is not None and self._output_shape[-1] != c:
            raise ValueError(f"{self._where} is built for {self._output_shape[-1]} features, the adapt data has {c}")

    def _state(self, shapes):
        c = shapes["mean"][0]
        if self._adapted is not None:
            mean, var = self._adapted
        elif self.mean is not None:
            mean, var = self.mean, self.variance
        else:
            return {}
        mean, var = (
            np.broadcast_to(np.asarray(mean, np.float64), (c,)),
            np.broadcast_to(np.asarray(var, np.float64), (c,)),
        )
        return {"mean": mean, "variance": var}

    def get_config(self):
        return {
            **super().get_config(),
            "axis": self.axis,
            "mean": self.mean,
            "variance": self.variance,
            "invert": self.invert,
        }


class Discretization(PreprocessingLayer):
    """Buckets numbers by `bin_boundaries` (bucket i holds boundaries[i-1] <= x < boundaries[i], as
    numpy.digitize), or by `num_bins` quantile boundaries learned with `adapt` (Keras's algorithm:
    the same summary with `epsilon`, so the same boundaries). The boundaries are non-trainable
    weights ("bin_boundaries") and also appear in the config after adapt, as in Keras."""

    def __init__(self, bin_boundaries=None, num_bins=None, epsilon=0.01, output_mode="int", sparse=False, **kwargs):
        super().__init__(**kwargs)
        if sparse:
            raise ValueError(f"{self._where}: sparse outputs are not supported")
        if bin_boundaries is not None and num_bins is not None:
            raise ValueError(f"{self._where}: give either bin_boundaries or num_bins, not both")
        if bin_boundaries is None and num_bins is None:
            raise ValueError(f"{self._where}: give bin_boundaries or num_bins (and call adapt)")
        self.num_bins = int_arg(num_bins, self._where, "num_bins", 2, optional=True)
        self.bin_boundaries = None
        if bin_boundaries is not None:
            self.bin_boundaries = self._boundaries(bin_boundaries)
        if not (isinstance(epsilon, (int, float)) and 0 < epsilon < 1):
            raise ValueError(f"{self._where}: epsilon must be in (0, 1), got {epsilon!r}")
        self.epsilon = float(epsilon)
        self.output_mode = check_mode(output_mode, self._where)
        self.sparse = False

    def monotonic_direction(self):
        """+1 for output_mode="int" (the bin index grows with x); one-hot style outputs are not monotone."""
        return 1 if self.output_mode == "int" else None

    def _boundaries(self, values) -> list[float]:
        b = float_list(values, self._where, "bin_boundaries")
        if not b:
            raise ValueError(f"{self._where}: bin_boundaries must hold at least one value")
        if any(b2 < b1 for b1, b2 in zip(b, b[1:])):
            raise ValueError(f"{self._where}: bin_boundaries must be sorted ascending, got {b}")
        return b

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        boundaries = config.pop("bin_boundaries", None) if config.get("num_bins") is not None else None
        layer = cls(**config)
        if boundaries is not None:
            layer.bin_boundaries = layer._boundaries(boundaries)
        return layer

    def _make_core(self):
        if self.bin_boundaries is None:
            raise ValueError(
                f"{self._where} has no bin boundaries yet: call adapt(data) before building the "
                "model, or give bin_boundaries"
            )
        return _core.Discretization(len(self.bin_boundaries), self.output_mode)

    def adapt(self, data, batch_size=None, steps=None):
        if self.num_bins is None:
            raise ValueError(f"{self._where} was given bin_boundaries; adapt needs num_bins instead")
        summary = np.array([[], []], dtype=np.float32)
        for b in batches(data, self._where):
            values = numeric_2d(b, self._where).reshape(-1)
            values = values[~np.isnan(values)].astype(np.float32)  # missing values carry no quantile
            if values.size:
                summary = _merge_summaries(summary, _summarize(values, self.epsilon), self.epsilon)
        if summary.shape[1] == 0:
            raise ValueError(f"{self._where}: adapt data has no values (all missing)")
        boundaries = _compress_summary(summary, 1.0 / self.num_bins)[0, :-1]
        if boundaries.size == 0:
            raise ValueError(f"{self._where}: adapt data has a single value; no bin boundary can be learned")
        if self._graph is not None and boundaries.size != len(self.bin_boundaries or []):
            raise ValueError(
                f"{self._where} is built with {len(self.bin_boundaries or [])} boundaries; adapt "
                f"learned {boundaries.size}. Adapt before building the model"
            )
        self.bin_boundaries = [float(v) for v in boundaries.astype(np.float32)]
        self._state_changed()

    def _state(self, shapes):
        return {"bin_boundaries": np.asarray(self.bin_boundaries)}

    def get_config(self):
        boundaries = self.bin_boundaries
        if self._graph is not None:  # the weights are the truth once built (set_weights, load)
            boundaries = [float(v) for v in self.get_weights()[0]]
        return {
            **super().get_config(),
            "bin_boundaries": boundaries,
            "num_bins": self.num_bins,
            "epsilon": self.epsilon,
            "output_mode": self.output_mode,
            "sparse": self.sparse,
        }


# Keras's quantile summary (keras/src/layers/preprocessing/discretization.py), in float32 as Keras.
def _summarize(values: np.ndarray, epsilon: float) -> np.ndarray:
    values = np.sort(values.reshape(-1))
    increment = values.size / (1.0 / epsilon)
    step = max(increment, 1)
    boundaries = values[int(increment) :: int(step)]
    return np.stack([boundaries, np.ones_like(boundaries) * step])


def _merge_summaries(prev: np.ndarray, nxt: np.ndarray, epsilon: float) -> np.ndarray:
    merged = np.concatenate((prev, nxt), axis=1)
    merged = np.take(merged, np.argsort(merged[0]), axis=1)
    return _compress_summary(merged, epsilon)


def _compress_summary(summary: np.ndarray, epsilon: float) -> np.ndarray:
    if summary.shape[1] * epsilon < 1:
        return summary
    percents = epsilon + np.arange(0.0, 1.0, epsilon)
    cum_weights = summary[1].cumsum()
    cum_weight_percents = cum_weights / cum_weights[-1]
    new_bins = np.interp(percents, cum_weight_percents, summary[0])
    cum_weights = np.interp(percents, cum_weight_percents, cum_weights)
    new_weights = cum_weights - np.concatenate((np.array([0]), cum_weights[:-1]))
    return np.stack((new_bins, new_weights)).astype("float32")


class Imputation(PreprocessingLayer):
    """Fills missing values (NaN) per feature; Keras has no such layer. `strategy`: "median" or
    "mean" (learned by adapt, ignoring missing values), "most_frequent" (smallest mode), or
    "constant" (`fill_value`, default 0). `add_indicator=True` appends one 0/1 column per feature
    that marks the missing values: (batch, C) -> (batch, 2C). Weights: fill_value (C,), non-trainable.
    Inputs feeding only Imputation (or lookups) may hold NaN at fit/predict."""

    _accepts_missing = True
    _STRATEGIES = ("median", "mean", "most_frequent", "constant")

    def __init__(self, strategy="median", fill_value=None, add_indicator=False, **kwargs):
        super().__init__(**kwargs)
        if strategy not in self._STRATEGIES:
            raise ValueError(f"{self._where}: strategy must be one of {list(self._STRATEGIES)}, got {strategy!r}")
        if fill_value is not None and strategy != "constant":
            raise ValueError(f"{self._where}: fill_value is only used with strategy='constant'")
        if fill_value is not None and (
            isinstance(fill_value, bool) or not isinstance(fill_value, (int, float)) or not np.isfinite(fill_value)
        ):
            raise ValueError(f"{self._where}: fill_value must be a finite number, got {fill_value!r}")
        self.strategy = strategy
        self.fill_value = None if fill_value is None else float(fill_value)
        self.add_indicator = bool(add_indicator)
        self._adapted = None

    def _make_core(self):
        return _core.Imputation(self.add_indicator)

    def monotonic_direction(self):
        """+1: a present value passes through unchanged (a missing one takes the fill value)."""
        return 1

    def monotonic_columns(self, width: int) -> list:
        """(input column, moves with its value) per output column: the value columns follow their
        inputs; the missing-value indicators come from them but stay constant while a value is present."""
        return [(j, True) for j in range(width)] + ([(j, False) for j in range(width)] if self.add_indicator else [])

    def adapt(self, data, batch_size=None, steps=None):
        if self.strategy == "constant":
            return
        x = concat_batches([numeric_2d(b, self._where) for b in batches(data, self._where)], self._where)
        if x.ndim != 2:
            raise ValueError(f"{self._where}: adapt data must be (rows, features), got shape {x.shape}")
        present = ~np.isnan(x)
        empty = np.flatnonzero(~present.any(axis=0))
        if empty.size:
            raise ValueError(
                f"{self._where}: adapt data feature(s) {empty.tolist()} are entirely missing; "
                f"the {self.strategy} cannot be learned (use strategy='constant')"
            )
        if self._output_shape is not None and x.shape[1] != self._param_specs()[0][1][0]:
            raise ValueError(
                f"{self._where} is built for {self._param_specs()[0][1][0]} features, the adapt data has {x.shape[1]}"
            )
        if self.strategy == "median":
            fill = np.nanmedian(x, axis=0)
        elif self.strategy == "mean":
            fill = np.nanmean(x, axis=0)
        else:
            fill = np.empty(x.shape[1])
            for j in range(x.shape[1]):
                values, counts = np.unique(x[present[:, j], j], return_counts=True)
                fill[j] = values[np.argmax(counts)]
        self._adapted = fill
        self._state_changed()

    def _state(self, shapes):
        c = shapes["fill_value"][0]
        if self.strategy == "constant":
            return {"fill_value": np.full(c, 0.0 if self.fill_value is None else self.fill_value)}
        if self._adapted is None:
            return {}
        if self._adapted.size != c:
            raise ValueError(f"{self._where} was adapted on {self._adapted.size} features but is applied to {c}")
        return {"fill_value": self._adapted}

    def get_config(self):
        return {
            **super().get_config(),
            "strategy": self.strategy,
            "fill_value": self.fill_value,
            "add_indicator": self.add_indicator,
        }
