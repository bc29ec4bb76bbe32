"""Spatial layers (channels_last): Conv1D/2D, pooling, global pooling, Flatten, Reshape, Permute,
RepeatVector, ZeroPadding1D/2D, SpatialDropout1D/2D/3D. Keras names, arguments and defaults; the
math runs in the C++ core. Re-exported by maasfin.layers."""

from __future__ import annotations

import numpy as np

from maasfin import _core, constraints, regularizers
from maasfin.layers.base import (
    KernelBiasMixin,
    Layer,
    activation_name,
    deserialize,
    initializer_name,
    parameter_regularization,
    serialize,
)
from maasfin.seeds import draw_seed

__all__ = [
    "Conv1D",
    "Conv2D",
    "MaxPooling1D",
    "MaxPooling2D",
    "AveragePooling1D",
    "AveragePooling2D",
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
    "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
    "Flatten",
    "Reshape",
    "Permute",
    "RepeatVector",
    "ZeroPadding1D",
    "ZeroPadding2D",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
]


def is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _ints(value, n: int, where: str, arg: str, minimum: int = 1) -> tuple[int, ...]:
    """An int or a sequence of n ints (each >= minimum), as a tuple of n ints."""
    if is_int(value):
        value = (value,) * n
    try:
        vals = tuple(value)
    except TypeError:
        raise TypeError(f"{where}: {arg} must be an integer or a tuple of {n} integers, got {value!r}") from None
    if len(vals) != n or not all(is_int(v) and v >= minimum for v in vals):
        raise ValueError(f"{where}: {arg} must be an integer or a tuple of {n} integers >= {minimum}, got {value!r}")
    return tuple(int(v) for v in vals)


def _padding(padding, where: str, allowed=("valid", "same")) -> str:
    p = padding.lower() if isinstance(padding, str) else padding
    if p not in allowed:
        raise ValueError(f"{where}: padding must be one of {list(allowed)}, got {padding!r}")
    return p


def _channels_last(data_format, where: str) -> str:
    if data_format not in (None, "channels_last"):
        raise ValueError(f"{where}: only data_format='channels_last' is supported, got {data_format!r}")
    return "channels_last"


class WeightedLayer(Layer):
    """A layer with Keras `<weight>_regularizer` / `<weight>_constraint` arguments."""

    _weight_names: tuple[str, ...] = ("kernel", "bias")

    def _init_weight_args(self, kwargs: dict) -> dict:
        for w in self._weight_names:
            setattr(
                self, f"{w}_regularizer", deserialize(kwargs.pop(f"{w}_regularizer", None), regularizers, "regularizer")
            )
            setattr(
                self, f"{w}_constraint", deserialize(kwargs.pop(f"{w}_constraint", None), constraints, "constraint")
            )
        return kwargs

    def _weight_config(self) -> dict:
        cfg = {}
        for w in self._weight_names:
            for kind in ("regularizer", "constraint"):
                obj = getattr(self, f"{w}_{kind}")
                if obj is not None:
                    cfg[f"{w}_{kind}"] = serialize(obj)
        return cfg

    def _regularization(self) -> tuple[list, list]:
        return parameter_regularization(self)


class _Conv(KernelBiasMixin, WeightedLayer):
    _rank = 2

    def __init__(
        self,
        filters,
        kernel_size,
        strides=1,
        padding="valid",
        data_format=None,
        dilation_rate=1,
        groups=1,
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
        kwargs = self._init_weight_args(
            {
                **kwargs,
                "kernel_regularizer": kernel_regularizer,
                "bias_regularizer": bias_regularizer,
                "kernel_constraint": kernel_constraint,
                "bias_constraint": bias_constraint,
            }
        )
        super().__init__(**kwargs)
        where = f"{type(self).__name__} '{self.name}'"
        n = self._rank
        if not is_int(filters) or filters <= 0:
            raise ValueError(f"{where}: filters must be a positive integer, got {filters!r}")
        self.filters = int(filters)
        self.kernel_size = _ints(kernel_size, n, where, "kernel_size")
        self.strides = _ints(strides, n, where, "strides")
        self.padding = _padding(padding, where, ("valid", "same", "causal") if n == 1 else ("valid", "same"))
        self.data_format = _channels_last(data_format, where)
        self.dilation_rate = _ints(dilation_rate, n, where, "dilation_rate")
        if groups != 1:
            raise ValueError(f"{where}: only groups=1 is supported, got {groups!r}")
        self.groups = 1
        self.activation = activation_name(activation, where)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializer_name(kernel_initializer, where, "kernel_initializer")
        self.bias_initializer = initializer_name(bias_initializer, where, "bias_initializer")

    def _make_core(self):
        pair = (lambda t: (1, t[0])) if self._rank == 1 else tuple
        return _core.Conv(
            self._rank,
            self.filters,
            pair(self.kernel_size),
            pair(self.strides),
            pair(self.dilation_rate),
            self.padding,
            self.activation,
            self.use_bias,
            self.kernel_initializer,
            self.bias_initializer,
        )

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": self.padding,
            "data_format": self.data_format,
            "dilation_rate": self.dilation_rate,
            "groups": self.groups,
            "activation": self.activation,
            "use_bias": self.use_bias,
            "kernel_initializer": self.kernel_initializer,
            "bias_initializer": self.bias_initializer,
            **self._weight_config(),
        }


class Conv1D(_Conv):
    """1-D convolution over (steps, channels); kernel (kernel_size, in, filters). padding may be
    'valid', 'same' or 'causal'."""

    _rank = 1


class Conv2D(_Conv):
    """2-D convolution over (height, width, channels); kernel (kh, kw, in, filters)."""

    _rank = 2


class _Pooling(Layer):
    _rank, _kind = 2, "max"

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(**kwargs)
        where = f"{type(self).__name__} '{self.name}'"
        n = self._rank
        self.pool_size = _ints(pool_size, n, where, "pool_size")
        self.strides = self.pool_size if strides is None else _ints(strides, n, where, "strides")
        self.padding = _padding(padding, where)
        self.data_format = _channels_last(data_format, where)

    def _make_core(self):
        pair = (lambda t: (1, t[0])) if self._rank == 1 else tuple
        return _core.Pooling(self._rank, self._kind, pair(self.pool_size), pair(self.strides), self.padding)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "pool_size": self.pool_size,
            "strides": self.strides,
            "padding": self.padding,
            "data_format": self.data_format,
        }


class MaxPooling1D(_Pooling):
    """Max over windows of (steps, channels)."""

    _rank, _kind = 1, "max"


class MaxPooling2D(_Pooling):
    """Max over windows of (height, width, channels)."""

    _rank, _kind = 2, "max"


class AveragePooling1D(_Pooling):
    """Mean over windows of (steps, channels); with padding='same' padded cells are left out of the mean."""

    _rank, _kind = 1, "avg"


class AveragePooling2D(_Pooling):
    """Mean over windows of (height, width, channels); with padding='same' padded cells are left out."""

    _rank, _kind = 2, "avg"


class _GlobalPooling(Layer):
    _rank, _kind = 2, "max"

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        self.data_format = _channels_last(data_format, f"{type(self).__name__} '{self.name}'")
        self.keepdims = bool(keepdims)

    def _make_core(self):
        return _core.GlobalPooling(self._rank, self._kind, self.keepdims)

    def get_config(self) -> dict:
        return {**super().get_config(), "data_format": self.data_format, "keepdims": self.keepdims}


class GlobalMaxPooling1D(_GlobalPooling):
    """Max over all steps: (steps, channels) -> (channels,)."""

    _rank, _kind = 1, "max"


class GlobalMaxPooling2D(_GlobalPooling):
    """Max over all positions: (height, width, channels) -> (channels,)."""

    _rank, _kind = 2, "max"


class GlobalAveragePooling1D(_GlobalPooling):
    """Mean over all steps: (steps, channels) -> (channels,). With a mask (Masking,
    Embedding(mask_zero=True)) the mean is over the unmasked steps (NaN if all are masked, as Keras)."""

    _rank, _kind = 1, "avg"

    def _mask_flow(self, masks, sources):
        self._mask_in = masks[0] if masks else None
        return None

    def _make_core(self):
        if self._mask_in is not None and self.keepdims:
            raise ValueError(f"GlobalAveragePooling1D '{self.name}': keepdims=True with a mask is not supported")
        return super()._make_core()


class GlobalAveragePooling2D(_GlobalPooling):
    """Mean over all positions: (height, width, channels) -> (channels,)."""

    _rank, _kind = 2, "avg"


class Flatten(Layer):
    """Flattens each sample to one axis (row-major, as Keras with channels_last)."""

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = _channels_last(data_format, f"Flatten '{self.name}'")

    def _make_core(self):
        return _core.Flatten()

    def get_config(self) -> dict:
        return {**super().get_config(), "data_format": self.data_format}


class Reshape(Layer):
    """Gives each sample the shape `target_shape` (one entry may be -1)."""

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        where = f"Reshape '{self.name}'"
        try:
            dims = tuple(target_shape)
        except TypeError:
            raise TypeError(f"{where}: target_shape must be a tuple of integers, got {target_shape!r}") from None
        if not dims or not all(is_int(d) and (d > 0 or d == -1) for d in dims) or dims.count(-1) > 1:
            raise ValueError(
                f"{where}: target_shape must be a non-empty tuple of positive integers with at most "
                f"one -1, got {target_shape!r}"
            )
        self.target_shape = tuple(int(d) for d in dims)

    def _make_core(self):
        return _core.Reshape(list(self.target_shape))

    def get_config(self) -> dict:
        return {**super().get_config(), "target_shape": self.target_shape}


class Permute(Layer):
    """Permutes the per-sample axes; `dims` is 1-based (Permute((2, 1)) swaps the two axes)."""

    def __init__(self, dims, **kwargs):
        super().__init__(**kwargs)
        where = f"Permute '{self.name}'"
        try:
            d = tuple(dims)
        except TypeError:
            raise TypeError(f"{where}: dims must be a tuple of integers, got {dims!r}") from None
        if not d or not all(is_int(v) for v in d) or sorted(d) != list(range(1, len(d) + 1)):
            raise ValueError(f"{where}: dims must be a permutation of 1..{len(d)}, got {dims!r}")
        self.dims = tuple(int(v) for v in d)

    def _make_core(self):
        return _core.Permute(list(self.dims))

    def get_config(self) -> dict:
        return {**super().get_config(), "dims": self.dims}


class RepeatVector(Layer):
    """Repeats a (features,) sample n times: (features,) -> (n, features)."""

    def __init__(self, n, **kwargs):
        super().__init__(**kwargs)
        if not is_int(n) or n <= 0:
            raise ValueError(f"RepeatVector '{self.name}': n must be a positive integer, got {n!r}")
        self.n = int(n)

    def _make_core(self):
        return _core.RepeatVector(self.n)

    def get_config(self) -> dict:
        return {**super().get_config(), "n": self.n}


class ZeroPadding1D(Layer):
    """Zeros before and after the steps axis: padding = int or (left, right)."""

    def __init__(self, padding=1, **kwargs):
        super().__init__(**kwargs)
        self.padding = _ints(padding, 2, f"ZeroPadding1D '{self.name}'", "padding", minimum=0)

    def _make_core(self):
        return _core.ZeroPadding(1, 0, 0, *self.padding)

    def get_config(self) -> dict:
        return {**super().get_config(), "padding": self.padding}


class ZeroPadding2D(Layer):
    """Zero rows and columns: padding = int, (rows, cols) or ((top, bottom), (left, right))."""

    def __init__(self, padding=(1, 1), data_format=None, **kwargs):
        super().__init__(**kwargs)
        where = f"ZeroPadding2D '{self.name}'"
        if is_int(padding):
            padding = ((padding, padding), (padding, padding))
        try:
            parts = tuple(padding)
        except TypeError:
            raise TypeError(
                f"{where}: padding must be an int, (rows, cols) or ((top, bottom), (left, right)), got {padding!r}"
            ) from None
        if len(parts) != 2:
            raise ValueError(
                f"{where}: padding must be an int, (rows, cols) or ((top, bottom), (left, right)), got {padding!r}"
            )
        self.padding = tuple(_ints(p, 2, where, "padding", minimum=0) for p in parts)
        self.data_format = _channels_last(data_format, where)

    def _make_core(self):
        (t, b), (l, r) = self.padding
        return _core.ZeroPadding(2, t, b, l, r)

    def get_config(self) -> dict:
        return {**super().get_config(), "padding": self.padding, "data_format": self.data_format}


class _SpatialDropout(Layer):
    """Keras's spatial dropout: in training, whole channels are zeroed (one draw per sample and
    channel, noise shape (batch, 1, ..., 1, channels)) and the rest scaled by 1/(1-rate)."""

    _rank = 1
    _masking = "keep"  # a Dropout in Keras, so it keeps masks

    def __init__(self, rate, seed=None, **kwargs):
        data_format = kwargs.pop("data_format", None) if self._rank > 1 else None
        super().__init__(**kwargs)
        where = f"{type(self).__name__} '{self.name}'"
        if isinstance(rate, bool) or not isinstance(rate, (int, float, np.integer, np.floating)) or not 0 <= rate < 1:
            raise ValueError(f"{where}: rate must be a number in [0, 1), got {rate!r}")
        if seed is not None and (not is_int(seed) or seed < 0):
            raise ValueError(f"{where}: seed must be a non-negative integer or None, got {seed!r}")
        self.rate = float(rate)
        self.seed = int(seed) if seed is not None else draw_seed()
        if self._rank > 1:
            self.data_format = _channels_last(data_format, where)

    def _make_core(self):
        return _core.SpatialDropout(self._rank, self.rate, self.seed)

    def get_config(self) -> dict:
        cfg = {**super().get_config(), "rate": self.rate, "seed": self.seed}
        if self._rank > 1:
            cfg["data_format"] = self.data_format
        return cfg


class SpatialDropout1D(_SpatialDropout):
    """Drops whole channels of (steps, channels) inputs in training."""

    _rank = 1


class SpatialDropout2D(_SpatialDropout):
    """Drops whole channels of (height, width, channels) inputs in training; `data_format` channels_last."""

    _rank = 2


class SpatialDropout3D(_SpatialDropout):
    """Drops whole channels of (depth, height, width, channels) inputs in training."""

    _rank = 3
