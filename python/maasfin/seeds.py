"""The generator every maasfin seed is drawn from (weights, dropout, shuffling), and its state."""

from __future__ import annotations

import random

import numpy as np

__all__ = ["set_random_seed", "seed_generator", "draw_seed"]

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
    """A fresh 63-bit seed from maasfin's generator."""
    return int(_generator.integers(0, 2**63 - 1))
