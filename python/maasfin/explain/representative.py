"""Representative rows of a model, and its scores on them recorded at save time.

The representative rows are made from what a trained model keeps about its data (saved in the
model file): the quantile edges of its drift reference (one row per quantile, so row k holds every
feature's k-th decile edge), then its explanation baseline as one more row. Only models fed plain
numbers have them (a model that encodes its own inputs keeps raw features, not its numeric inputs).

When a model is saved, its outputs on these rows are stored with them (`explanations.
reference_scores` of a .maas file); a server's warm-up recomputes them, and a version whose outputs
differ beyond `SCORE_RTOL`/`SCORE_ATOL` (weights altered after saving, a broken export, a core
that computes differently) never serves (serving/warmup.py).
"""

from __future__ import annotations

import numpy as np

SCORE_RTOL = 1e-3  # |recomputed - recorded| <= SCORE_ATOL + SCORE_RTOL * |recorded|, elementwise
SCORE_ATOL = 1e-4
TILE = 32  # rows per core call, as the server predicts (serving/tiling.py)
MAX_ROWS = 1_000  # representative rows kept (and scores stored) at most


def representative_rows(model, sig) -> list[np.ndarray] | None:
    """The model's representative rows as its inputs (float32 arrays), or None if it has none."""
    if sig.raw:
        return None
    widths = [s.width for s in sig.inputs]
    table = []
    ref = getattr(model, "drift_reference", None)
    features = ref.get("features") if isinstance(ref, dict) else None
    if isinstance(features, list) and features and len(features) == sum(widths):
        edges = [np.asarray((f or {}).get("edges") or [0.0], dtype=np.float64) for f in features]
        n = max(e.size for e in edges)
        table.append(np.stack([e[np.minimum(np.arange(n), e.size - 1)] for e in edges], axis=1))
    baseline = getattr(model, "_explain_baseline", None)
    if isinstance(baseline, list) and len(baseline) == sum(widths):
        table.append(np.asarray([baseline], dtype=np.float64))
    if not table:
        return None
    rows = np.concatenate(table)[:MAX_ROWS].astype(np.float32)
    xs, start = [], 0
    for s, w in zip(sig.inputs, widths):
        xs.append(np.ascontiguousarray(rows[:, start : start + w].reshape((rows.shape[0],) + s.shape)))
        start += w
    return _valid_indices(model, sig, xs)


def _valid_indices(model, sig, xs: list[np.ndarray]) -> list[np.ndarray] | None:
    """The rows whose inputs read as indices (Embedding, CategoryEncoding) are indices in range:
    a quantile edge or baseline mean of such an input is not always one."""
    limits = model.index_limits() if hasattr(model, "index_limits") else {}
    keep = np.ones(xs[0].shape[0], dtype=bool)
    for spec, x in zip(sig.inputs, xs):
        if spec.name in limits:
            flat = x.reshape(x.shape[0], -1)
            keep &= ((flat >= 0) & (flat < limits[spec.name][0]) & (np.floor(flat) == flat)).all(axis=1)
    if not keep.any():
        return None
    return xs if keep.all() else [np.ascontiguousarray(x[keep]) for x in xs]


def predict_in_tiles(model, xs: list[np.ndarray], tile: int = TILE) -> np.ndarray:
    """`model.predict_arrays` on rows padded to whole `tile`-row tiles (what the server does)."""
    n = xs[0].shape[0]
    padded = -(-n // tile) * tile
    if padded != n:
        xs = [np.concatenate([x, np.zeros((padded - n,) + x.shape[1:], dtype=np.float32)]) for x in xs]
    return model.predict_arrays(xs, tile)[:n]


def reference_scores(model) -> list[list[float]] | None:
    """The model's outputs on its representative rows, one flat list per row, to be saved with it;
    None if it has no representative rows or its outputs on them are not finite."""
    try:
        sig = model.signature
    except ValueError:  # not built, or no servable signature: nothing to record
        return None
    xs = representative_rows(model, sig)
    if xs is None:
        return None
    try:
        y = predict_in_tiles(model, xs).reshape(xs[0].shape[0], -1).astype(np.float64)
    except ValueError:  # rows the model refuses: nothing to record (the warm-up checks finiteness only)
        return None
    if not np.isfinite(y).all():
        return None
    return y.tolist()


def score_mismatch(recorded: list[list[float]], y: np.ndarray) -> str | None:
    """Why outputs `y` on the representative rows differ from the `recorded` ones, or None."""
    y = np.asarray(y, dtype=np.float64).reshape(y.shape[0], -1)
    want = np.asarray(recorded, dtype=np.float64)
    if want.shape != y.shape:
        return f"the scores recorded at save time have shape {want.shape}, the outputs {y.shape}"
    bad = np.abs(y - want) > SCORE_ATOL + SCORE_RTOL * np.abs(want)
    if not bad.any():
        return None
    i, j = (int(k) for k in np.argwhere(bad)[0])
    return (
        f"{int(bad.any(axis=1).sum())} of {want.shape[0]} representative rows score differently from the scores "
        f"recorded when the model was saved (row {i}, output {j}: {y[i, j]:.6g} instead of {want[i, j]:.6g}; "
        f"tolerance {SCORE_ATOL:g} + {SCORE_RTOL:g} x |recorded|)"
    )
