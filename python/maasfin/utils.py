"""Utilities with Keras's names: seeding and label encoding."""
from __future__ import annotations

import random

import numpy as np

__all__ = ["set_random_seed", "to_categorical", "seed_generator"]

_generator = np.random.default_rng()


def set_random_seed(seed: int) -> None:
    """Seeds Python's `random`, NumPy's global generator and maasfin's own generator.

    Every seed maasfin draws afterwards (weight initialisation, dropout, shuffling) comes from
    this generator, so two runs with the same seed produce bit-identical weights.
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError(f"set_random_seed: seed must be an integer, got {type(seed).__name__}")
    global _generator
    random.seed(int(seed))
    np.random.seed(int(seed) % 2**32)
    _generator = np.random.default_rng(int(seed))


def seed_generator() -> np.random.Generator:
    """The generator from which maasfin draws all its seeds."""
    return _generator


def draw_seed() -> int:
    return int(_generator.integers(0, 2**63 - 1))


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


def __getattr__(name):  # FeatureSpace imports the layers, which import this module: load it lazily
    if name in ("FeatureSpace", "Feature"):
        from maasfin import feature_space
        return getattr(feature_space, name)
    raise AttributeError(f"module 'maasfin.utils' has no attribute {name!r}")
