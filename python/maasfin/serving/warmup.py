"""Warm-up of a newly loaded version: finite predictions matching the scores recorded at save time.

Each check is one `predict_tiled` call (so the tile shape the requests will use is warmed too):

- a tile of zeros: the outputs must have the signature's shape and be finite;
- the model's representative rows (explain/representative.py: the quantile edges of its drift
  reference, one row per quantile, and its explanation baseline), stored in the model file: every
  output must be finite, and when the file holds the scores recorded at save time
  (`explanations.reference_scores`), equal to them within SCORE_ATOL + SCORE_RTOL x |recorded|
  (1e-4 + 1e-3 x |recorded|). A version whose weights are finite on zeros but give NaN or infinity
  on real rows (an overflow, a broken export), or whose weights were altered after it was saved, is
  refused here, and the version it would have replaced keeps serving.

Models without representative rows (no drift reference or baseline, or models that encode their
own inputs, whose reference columns are raw features) get the zero tile only; files written before
maasfin recorded scores get the finiteness checks only.
"""

from __future__ import annotations

import numpy as np

from maasfin.explain import representative_rows, score_mismatch
from maasfin.serving.tiling import predict_tiled
from maasfin.signature import Signature


def reference_rows(model, sig: Signature) -> list[np.ndarray] | None:
    """The model's representative rows as its inputs, or None (explain/representative.py)."""
    return representative_rows(model, sig)


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
    recorded = getattr(model, "reference_scores", None)
    if recorded is not None:
        why = score_mismatch(recorded, y)
        if why is not None:
            raise ValueError(f"warm-up predict on the representative rows stored in the model: {why}")
