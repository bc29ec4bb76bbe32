"""check_monotonicity: measures, on data, whether a model's output moves in each feature's declared direction.

For every declared feature and every row of `x`, the feature is set to `grid` evenly spaced values
between its smallest and largest value in `x` (the other features of the row unchanged), the
model predicts all of them, and every step between neighbouring grid values whose prediction moves
against the declared direction is a violation. A model whose MonotonicDense layers declare the
features (and whose path to the output passes the model's checks) reports none; an unconstrained
network usually does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from maasfin import data
from maasfin.explain import raw_feature_names

__all__ = ["check_monotonicity", "MonotonicityReport"]

_CELLS = 1 << 18  # grid rows predicted per core call: bounds the memory of the tiled copies


@dataclass(frozen=True)
class MonotonicityReport:
    """One feature's result: `count` steps that moved against `direction` (out of `checked`), the
    largest such move `max_violation` (in output units; 0 when there is none) and the `rows` of `x`
    where it happened."""

    feature: str
    direction: int
    count: int
    checked: int
    max_violation: float
    rows: np.ndarray

    @property
    def ok(self) -> bool:
        return self.count == 0


def _directions(features, names: list[str]) -> dict[str, int]:
    if not isinstance(features, dict) or not features:
        raise ValueError("check_monotonicity: features must be a non-empty dict {feature name: +1 or -1}")
    unknown = [f for f in features if f not in names]
    if unknown:
        raise ValueError(f"check_monotonicity: unknown feature(s) {unknown}; the model's features: {names}")
    out = {}
    for f, d in features.items():
        if isinstance(d, bool) or d not in (-1, 1):
            raise ValueError(f"check_monotonicity: the direction of feature {f!r} must be +1 or -1, got {d!r}")
        out[f] = int(d)
    return out


def check_monotonicity(
    model, x, features=None, grid: int = 50, output: int = 0, tolerance: float = 0.0
) -> dict[str, MonotonicityReport]:
    """Violations of the declared monotone effects per feature, measured on the rows of `x`.

    x: what the model's predict takes (a DataFrame, records, a dict of columns, or an array for a
    model of one input; then features are named as the model's feature names or feature_0, ...).
    features: {name: +1 (increasing) or -1 (decreasing)}; default: `model.monotonic_features`.
    grid: values per feature (>= 2). tolerance: a move against the direction counts only when it is
    larger than this (0: any move counts). Returns {feature: MonotonicityReport}."""
    if features is None:
        features = getattr(model, "monotonic_features", None) or {}
        if not features:
            raise ValueError("check_monotonicity: the model declares no monotone features; pass features={...}")
    grid = data.positive_int(grid, "grid")
    if grid < 2:
        raise ValueError(f"check_monotonicity: grid must be at least 2, got {grid}")
    if not (isinstance(tolerance, (int, float)) and not isinstance(tolerance, bool) and tolerance >= 0):
        raise ValueError(f"check_monotonicity: tolerance must be a number >= 0, got {tolerance!r}")
    xs = model.prepare_inputs(x, "x")
    sig = model.signature
    outputs = int(np.prod(sig.output.shape))
    if isinstance(output, bool) or not isinstance(output, (int, np.integer)) or not 0 <= output < outputs:
        raise ValueError(f"check_monotonicity: output must be an integer in [0, {outputs}), got {output!r}")
    names = raw_feature_names(model)
    where = []  # raw feature index -> (input, element)
    for k, spec in enumerate(sig.inputs):
        where.extend((k, e) for e in range(spec.width))
    directions = _directions(features, names)
    n = xs[0].shape[0]
    if n == 0:
        raise ValueError("check_monotonicity: x has no rows")
    reports = {}
    for f, d in directions.items():
        k, e = where[names.index(f)]
        if sig.inputs[k].dtype == "string":
            raise ValueError(f"check_monotonicity: feature {f!r} is a string feature; monotone effects need numbers")
        column = xs[k].reshape(n, -1)[:, e].astype(np.float64)
        present = column[np.isfinite(column)]
        if present.size == 0 or present.min() == present.max():
            raise ValueError(f"check_monotonicity: feature {f!r} takes fewer than two distinct values in x")
        values = np.linspace(present.min(), present.max(), grid).astype(np.float32)
        values = np.unique(values)  # float32 rounding may merge neighbours of a narrow range
        reports[f] = _check_feature(model, xs, k, e, f, d, values, output, float(tolerance))
    return reports


def _check_feature(model, xs, k, e, f, d, values, output, tolerance) -> MonotonicityReport:
    n, g = xs[0].shape[0], values.size
    step = max(1, _CELLS // g)
    count, worst, bad_rows = 0, 0.0, []
    for start in range(0, n, step):
        rows = slice(start, min(n, start + step))
        batch = [np.repeat(a[rows], g, axis=0) for a in xs]
        m = batch[0].shape[0] // g
        flat = batch[k].reshape(m * g, -1)
        flat[:, e] = np.tile(values, m)
        pred = model.predict_arrays(batch, batch_size=1024).reshape(m * g, -1)[:, output].reshape(m, g)
        moves = -d * np.diff(pred.astype(np.float64), axis=1)  # > 0: against the declared direction
        against = moves > tolerance
        count += int(against.sum())
        if against.any():
            worst = max(worst, float(moves[against].max()))
            bad_rows.append(start + np.flatnonzero(against.any(axis=1)))
    return MonotonicityReport(
        feature=f,
        direction=d,
        count=count,
        checked=n * (g - 1),
        max_violation=worst,
        rows=np.concatenate(bad_rows) if bad_rows else np.zeros(0, np.int64),
    )
