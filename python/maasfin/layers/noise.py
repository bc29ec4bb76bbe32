"""Noise layers, active only in training: GaussianNoise, GaussianDropout, AlphaDropout."""

from __future__ import annotations

import numpy as np

from maasfin import _core
from maasfin.layers.base import Layer
from maasfin.seeds import draw_seed

__all__ = ["GaussianNoise", "GaussianDropout", "AlphaDropout"]


class _Noise(Layer):
    _masking = "keep"
    _arg = "rate"

    def __init__(self, amount, seed=None, **kwargs):
        super().__init__(**kwargs)
        where = f"{type(self).__name__} '{self.name}'"
        upper = float("inf") if self._arg == "stddev" else 1.0
        if isinstance(amount, bool) or not isinstance(amount, (int, float, np.floating)) or not 0 <= amount < upper:
            raise ValueError(f"{where}: {self._arg} must be a number in [0, {upper}), got {amount!r}")
        setattr(self, self._arg, float(amount))
        self.seed = int(seed) if seed is not None else draw_seed()

    def _make_core(self):
        return _core.NoiseLayer(type(self).__name__, getattr(self, self._arg), self.seed)

    def get_config(self) -> dict:
        return {**super().get_config(), self._arg: getattr(self, self._arg), "seed": self.seed}


class GaussianNoise(_Noise):
    """Adds N(0, stddev) noise in training; identity at inference."""

    _arg = "stddev"

    def __init__(self, stddev, seed=None, **kwargs):
        super().__init__(stddev, seed, **kwargs)


class GaussianDropout(_Noise):
    """Multiplies by N(1, sqrt(rate / (1 - rate))) noise in training; identity at inference."""

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(rate, seed, **kwargs)


class AlphaDropout(_Noise):
    """Dropout that keeps SELU activations' mean and variance (Keras's formula)."""

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        if noise_shape is not None:
            raise ValueError("AlphaDropout: noise_shape is not supported")
        super().__init__(rate, seed, **kwargs)
