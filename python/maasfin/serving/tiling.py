"""The one way the server runs a model: `predict_tiled`, in tiles of at most `tile` rows.

`predict_tiled` is the only call into the core the server makes (through the model's public
`predict_arrays`). A row's prediction does not depend on which other requests it was batched with:
inference is batch-invariant (every row computed with one fixed reduction order, whatever the
batch), so the rows go to the core as they are, without padding, and served predictions equal
`model.predict(x)` in-process bit for bit.

What a served model accepts and returns is its public `model.signature` (maasfin.signature).
"""

from __future__ import annotations

import numpy as np

DEFAULT_TILE = 32


def predict_tiled(model, xs: list[np.ndarray], tile: int = DEFAULT_TILE) -> np.ndarray:
    """Predictions for validated float32 C-contiguous inputs, at most `tile` rows per core call."""
    # The arrays are already what the core takes (string features encoded at the request codec),
    # so they go to the core directly, past the model's own data boundary.
    return model.predict_arrays(xs, tile)
