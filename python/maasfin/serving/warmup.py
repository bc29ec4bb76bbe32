"""Warm-up of a newly loaded model version: predicts that must be finite before it may serve.

Two checks, each one `predict_tiled` call (so the tile shape the requests will use is warmed too):

- a tile of zeros: the outputs must have the signature's shape and be finite;
- representative rows stored in the model file: the quantile edges of its drift reference (the
  fit-time distribution of each raw feature, `model.drift_reference`), one row per quantile, so
  row k holds every feature's k-th decile edge. A version whose weights are finite on zeros but
  give NaN or infinity on real rows (an overflow, a broken export) is refused here, and the version
  it would have replaced keeps serving, instead of every client being told to check its inputs.

Models without a drift reference, and models that encode their own inputs (whose reference
columns are raw features rather than the model's numeric inputs), get the zero tile only.
"""

from __future__ import annotations

import numpy as np

from maasfin.serving.tiling import predict_tiled
from maasfin.signature import Signature


def reference_rows(model, sig: Signature) -> list[np.ndarray] | None:
    """Rows of the model's inputs made from its drift reference's quantile edges, or None."""
    ref = getattr(model, "drift_reference", None)
    if not isinstance(ref, dict) or sig.raw:
        return None
    features = ref.get("features")
    widths = [s.width for s in sig.inputs]
    if not isinstance(features, list) or len(features) != sum(widths) or not features:
        return None
    edges = [np.asarray(f.get("edges") or [0.0], dtype=np.float64) for f in features]
    n = max(e.size for e in edges)
    table = np.stack([e[np.minimum(np.arange(n), e.size - 1)] for e in edges], axis=1).astype(np.float32)
    xs, start = [], 0
    for s, w in zip(sig.inputs, widths):
        xs.append(np.ascontiguousarray(table[:, start : start + w].reshape((n,) + s.shape)))
        start += w
    return xs


def warm_up(model, sig: Signature, tile: int) -> None:
    """Raises ValueError if the version must not serve (see the module's docstring)."""
    xs = [np.zeros((tile,) + s.shape, dtype=np.float32) for s in sig.inputs]
    y = predict_tiled(model, xs, tile)
    if y.shape != (tile,) + sig.output.shape:
        raise ValueError(f"warm-up predict returned shape {y.shape}, expected {(tile,) + sig.output.shape}")
    if not np.isfinite(y).all():
        raise ValueError("warm-up predict on zeros returned NaN or infinity: the weights are broken")
    rows = reference_rows(model, sig)
    if rows is None:
        return
    y = predict_tiled(model, rows, tile)
    bad = ~np.isfinite(y.reshape(y.shape[0], -1)).all(axis=1)
    if bad.any():
        raise ValueError(
            f"warm-up predict on the representative rows stored in the model (the quantiles of its drift "
            f"reference) returned NaN or infinity for {int(bad.sum())} of {bad.size} rows: "
            "this version would fail real requests"
        )
