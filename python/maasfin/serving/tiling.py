"""The one way the server runs a model: `predict_tiled`, in fixed-size tiles of rows.

`predict_tiled` is the only call into the core the server makes (through the model's public
`predict_arrays`). It pads the rows to a whole number of `tile`-row tiles and has the core run one
tile at a time, so:

- every core call sees the same batch shape (N = tile): oneDNN's primitive cache holds one entry
  per layer, however request sizes vary;
- a row's prediction does not depend on which other requests it was batched with. The core picks
  its product routine by row count (a matrix-vector product for one row, small-matrix products
  below ~20, blocked GEMM above, oneDNN above ~96k multiply-adds), and those routines round
  differently in the last bit; with a fixed tile a row is always computed by the same routine.
  Served predictions therefore equal `model.predict(x)` in-process (batch_size=32) for rows that
  fall in a full 32-row batch there, bit for bit, and never vary with traffic.

What a served model accepts and returns is its public `model.signature` (maasfin.signature).
"""

from __future__ import annotations

import numpy as np

DEFAULT_TILE = 32


def predict_tiled(model, xs: list[np.ndarray], tile: int = DEFAULT_TILE) -> np.ndarray:
    """Predictions for validated float32 C-contiguous inputs, computed in fixed `tile`-row tiles."""
    n = xs[0].shape[0]
    padded = -(-n // tile) * tile
    if padded != n:
        xs = [np.concatenate([x, np.zeros((padded - n,) + x.shape[1:], dtype=np.float32)]) for x in xs]
    # The arrays are already what the core takes (string features encoded at the request codec),
    # so they go to the core directly, past the model's own data boundary.
    return model.predict_arrays(xs, tile)[:n]
