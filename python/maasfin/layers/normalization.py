"""Normalization layers: BatchNormalization and LayerNormalization."""

from __future__ import annotations

from maasfin import _core
from maasfin.layers.base import Layer, initializer_name

__all__ = ["BatchNormalization", "LayerNormalization"]


class BatchNormalization(Layer):
    """Normalises the last axis with batch statistics in training and moving statistics at
    inference. Weights: gamma, beta, moving_mean, moving_variance (the last two are state, not
    trained). With trainable=False the layer runs in inference mode, as in Keras 3."""

    _masking = "keep"

    def __init__(
        self,
        axis=-1,
        momentum=0.99,
        epsilon=0.001,
        center=True,
        scale=True,
        beta_initializer="zeros",
        gamma_initializer="ones",
        moving_mean_initializer="zeros",
        moving_variance_initializer="ones",
        beta_regularizer=None,
        gamma_regularizer=None,
        beta_constraint=None,
        gamma_constraint=None,
        synchronized=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        where = f"BatchNormalization '{self.name}'"
        if axis != -1:
            raise ValueError(f"{where}: only axis=-1 is supported, got {axis!r}")
        if not 0 <= momentum <= 1 or not epsilon > 0:
            raise ValueError(f"{where}: momentum must be in [0, 1] and epsilon > 0, got {momentum!r}, {epsilon!r}")
        if any(v is not None for v in (beta_regularizer, gamma_regularizer, beta_constraint, gamma_constraint)):
            raise ValueError(f"{where}: beta/gamma regularizers and constraints are not supported")
        self.axis, self.momentum, self.epsilon = -1, float(momentum), float(epsilon)
        self.center, self.scale = bool(center), bool(scale)
        self.beta_initializer = initializer_name(beta_initializer, where, "beta_initializer")
        self.gamma_initializer = initializer_name(gamma_initializer, where, "gamma_initializer")
        self.moving_mean_initializer = initializer_name(moving_mean_initializer, where, "moving_mean_initializer")
        self.moving_variance_initializer = initializer_name(
            moving_variance_initializer, where, "moving_variance_initializer"
        )

    def _make_core(self):
        return _core.BatchNormalization(
            self.momentum,
            self.epsilon,
            self.center,
            self.scale,
            self.beta_initializer,
            self.gamma_initializer,
            self.moving_mean_initializer,
            self.moving_variance_initializer,
        )

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "axis": self.axis,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "beta_initializer": self.beta_initializer,
            "gamma_initializer": self.gamma_initializer,
            "moving_mean_initializer": self.moving_mean_initializer,
            "moving_variance_initializer": self.moving_variance_initializer,
        }


class LayerNormalization(Layer):
    """Normalises each sample over its last axis. Weights: gamma, beta."""

    _masking = "keep"

    def __init__(
        self,
        axis=-1,
        epsilon=0.001,
        center=True,
        scale=True,
        rms_scaling=False,
        beta_initializer="zeros",
        gamma_initializer="ones",
        beta_regularizer=None,
        gamma_regularizer=None,
        beta_constraint=None,
        gamma_constraint=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        where = f"LayerNormalization '{self.name}'"
        if axis != -1 or rms_scaling:
            raise ValueError(f"{where}: only axis=-1 without rms_scaling is supported")
        if not epsilon > 0:
            raise ValueError(f"{where}: epsilon must be > 0, got {epsilon!r}")
        if any(v is not None for v in (beta_regularizer, gamma_regularizer, beta_constraint, gamma_constraint)):
            raise ValueError(f"{where}: beta/gamma regularizers and constraints are not supported")
        self.axis, self.epsilon, self.center, self.scale = -1, float(epsilon), bool(center), bool(scale)
        self.beta_initializer = initializer_name(beta_initializer, where, "beta_initializer")
        self.gamma_initializer = initializer_name(gamma_initializer, where, "gamma_initializer")

    def _make_core(self):
        return _core.LayerNormalization(
            self.epsilon, self.center, self.scale, self.beta_initializer, self.gamma_initializer
        )

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "axis": self.axis,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "beta_initializer": self.beta_initializer,
            "gamma_initializer": self.gamma_initializer,
        }
