"""Core layers: Dense, Activation, Dropout, Masking (the math runs in the C++ core)."""

from __future__ import annotations

import numpy as np

from maasfin import _core, constraints, regularizers
from maasfin.layers.base import KernelBiasMixin, Layer, Mask, activation_name, deserialize, initializer_name, serialize
from maasfin.seeds import draw_seed

__all__ = ["Dense", "Activation", "Dropout", "Masking"]


class Dense(KernelBiasMixin, Layer):
    """Densely connected layer: activation(x @ kernel + bias) on the last axis."""

    _masking = "keep"

    def __init__(
        self,
        units,
        activation=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        where = f"Dense '{self.name}'"
        self.kernel_regularizer = deserialize(kernel_regularizer, regularizers, "regularizer")
        self.bias_regularizer = deserialize(bias_regularizer, regularizers, "regularizer")
        self.kernel_constraint = deserialize(kernel_constraint, constraints, "constraint")
        self.bias_constraint = deserialize(bias_constraint, constraints, "constraint")
        if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units <= 0:
            raise ValueError(f"{where}: units must be a positive integer, got {units!r}")
        self.units = int(units)
        self.activation = activation_name(activation, where)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializer_name(kernel_initializer, where, "kernel_initializer")
        self.bias_initializer = initializer_name(bias_initializer, where, "bias_initializer")

    def _make_core(self):
        return _core.Dense(self.units, self.activation, self.use_bias, self.kernel_initializer, self.bias_initializer)

    def get_config(self) -> dict:
        cfg = {
            **super().get_config(),
            "units": self.units,
            "activation": self.activation,
            "use_bias": self.use_bias,
            "kernel_initializer": self.kernel_initializer,
            "bias_initializer": self.bias_initializer,
        }
        for arg in ("kernel_regularizer", "bias_regularizer", "kernel_constraint", "bias_constraint"):
            if getattr(self, arg) is not None:
                cfg[arg] = serialize(getattr(self, arg))
        return cfg


class Activation(Layer):
    """Applies an activation function element-wise (softmax over the last axis)."""

    _masking = "keep"

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activation_name(activation, f"Activation '{self.name}'")

    def _make_core(self):
        return _core.Activation(self.activation)

    def get_config(self) -> dict:
        return {**super().get_config(), "activation": self.activation}


class Dropout(Layer):
    """Zeroes a fraction `rate` of its inputs during training and scales the rest by 1/(1-rate)."""

    _masking = "keep"

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(rate, bool) or not isinstance(rate, (int, float, np.floating)) or not 0 <= rate < 1:
            raise ValueError(f"Dropout '{self.name}': rate must be a number in [0, 1), got {rate!r}")
        if noise_shape is not None:
            raise ValueError(f"Dropout '{self.name}': noise_shape is not supported")
        self.rate = float(rate)
        self.seed = int(seed) if seed is not None else draw_seed()

    def _make_core(self):
        return _core.Dropout(self.rate, self.seed)

    def get_config(self) -> dict:
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


class Masking(Layer):
    """Masks timesteps: a step of a (timesteps, features) input whose features all equal `mask_value`
    is skipped by the layers downstream that use masks (LSTM, GRU, SimpleRNN, Bidirectional,
    GlobalAveragePooling1D), as in Keras. The output is the input with masked steps set to 0."""

    def __init__(self, mask_value=0.0, **kwargs):
        super().__init__(**kwargs)
        if (
            isinstance(mask_value, bool)
            or not isinstance(mask_value, (int, float, np.integer, np.floating))
            or not np.isfinite(mask_value)
        ):
            raise ValueError(f"Masking '{self.name}': mask_value must be a finite number, got {mask_value!r}")
        self.mask_value = float(mask_value)

    def _mask_flow(self, masks, sources):
        self._mask_in = None  # Keras's Masking replaces any incoming mask with its own
        return Mask(sources[0], self.mask_value)

    def _make_core(self):
        return _core.Masking(self.mask_value)

    def get_config(self) -> dict:
        return {**super().get_config(), "mask_value": self.mask_value}
