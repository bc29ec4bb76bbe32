"""Utilities with Keras's names: seeding, label encoding, FeatureSpace and PyDataset."""

from __future__ import annotations

import numpy as np

from maasfin.layers.preprocessing.feature_space import Cross, Feature, FeatureSpace
from maasfin.seeds import seed_generator, set_random_seed
from maasfin.streaming.pydataset import PyDataset

__all__ = ["set_random_seed", "to_categorical", "seed_generator", "FeatureSpace", "Feature", "Cross", "PyDataset"]


def to_categorical(x, num_classes: int | None = None) -> np.ndarray:
    """One-hot encodes integer class ids, as keras.utils.to_categorical."""
    arr = np.asarray(x)
    if arr.size and (not np.all(np.isfinite(arr.astype(float))) or np.any(arr.astype(float) % 1 != 0)):
        raise ValueError("to_categorical: every label must be a non-negative integer")
    y = arr.astype(np.int64)
    if arr.ndim > 1 and arr.shape[-1] == 1:
        y = y.reshape(arr.shape[:-1])
    if y.size and y.min() < 0:
        raise ValueError("to_categorical: labels must be non-negative")
    n = int(num_classes) if num_classes is not None else (int(y.max()) + 1 if y.size else 0)
    if y.size and y.max() >= n:
        raise ValueError(f"to_categorical: label {int(y.max())} is out of range for num_classes={n}")
    out = np.zeros(y.shape + (n,), dtype=np.float32)
    np.put_along_axis(out, y[..., None], 1.0, axis=-1)
    return out
