"""Recurrent layers: LSTM, GRU, SimpleRNN (Keras 3 names, arguments, defaults and weight layout;
the time loop runs in the C++ core). Re-exported by maasfin.layers.

return_state=True gives [output, h, c] (LSTM) or [output, h] in functional models;
`layer(x, initial_state=[h, c])` starts from given states; masks from Masking or
Embedding(mask_zero=True) are honoured (masked steps carry the states over, as Keras).
dropout / recurrent_dropout follow Keras 3 (masks drawn once per batch, reused at every step; one
mask per gate with recurrent_dropout). GRU takes reset_after=True (Keras 3's default) or False.
Not supported (each refused with a clear ValueError): stateful=True, activations other than tanh,
sigmoid, relu and linear, an explicit mask= argument."""

from __future__ import annotations

import warnings

import numpy as np

from maasfin import _core
from maasfin.layers.base import KerasTensor, activation_name, initializer_name
from maasfin.layers.spatial import WeightedLayer, is_int
from maasfin.seeds import draw_seed

__all__ = ["LSTM", "GRU", "SimpleRNN"]

_RNN_ACTIVATIONS = ("tanh", "sigmoid", "relu", "linear")


def initial_state_mask(layer, mask, has_initial_state: bool):
    """The mask a recurrent layer reads. Keras 3 fills a layer's `mask` argument only when the call
    has one tensor argument, so a layer called with initial_state ignores its sequence's mask (and
    still passes it on with return_sequences); maasfin does the same, and says so."""
    if mask is None or not has_initial_state:
        return mask
    warnings.warn(
        f"{type(layer).__name__} '{layer.name}' is called with initial_state, so, as in Keras 3, it does "
        "not use the mask of its input sequence (masked steps are processed like the others)",
        UserWarning,
        stacklevel=5,
    )
    return None


def call_tensors(where: str, inputs, initial_state, mask, training) -> list:
    """The tensors of a recurrent call (also Bidirectional's): the sequence, then any initial
    states, given in the input list or as `initial_state`; the call arguments checked."""
    if training not in (None, False, True):
        raise TypeError(f"{where}: training must be None or a bool")
    if mask is not None:
        raise ValueError(
            f"{where}: an explicit mask= is not supported; put a Masking layer (or "
            "Embedding(mask_zero=True)) before the layer and the mask follows the tensors"
        )
    tensors = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    if initial_state is not None:
        if len(tensors) != 1:
            raise ValueError(f"{where}: pass the initial states either in the input list or as initial_state=")
        tensors += list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
    return tensors


class _Recurrent(WeightedLayer):
    _weight_names = ("kernel", "recurrent", "bias")
    _force_zero_output = False  # set by Bidirectional (Keras forces zero_output_for_mask when returning sequences)
    _has_recurrent_activation = True
    _num_states = 1

    def __init__(
        self,
        units,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        seed=None,
        return_sequences=False,
        return_state=False,
        go_backwards=False,
        stateful=False,
        unroll=False,
        zero_output_for_mask=False,
        **kwargs,
    ):
        kwargs = self._init_weight_args(
            {
                **kwargs,
                "kernel_regularizer": kernel_regularizer,
                "recurrent_regularizer": recurrent_regularizer,
                "bias_regularizer": bias_regularizer,
                "kernel_constraint": kernel_constraint,
                "recurrent_constraint": recurrent_constraint,
                "bias_constraint": bias_constraint,
            }
        )
        super().__init__(**kwargs)
        where = f"{type(self).__name__} '{self.name}'"
        if not is_int(units) or units <= 0:
            raise ValueError(f"{where}: units must be a positive integer, got {units!r}")
        self.units = int(units)
        self.activation = self._rnn_activation(activation, where, "activation")
        self.recurrent_activation = (
            self._rnn_activation(recurrent_activation, where, "recurrent_activation")
            if self._has_recurrent_activation
            else None
        )
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializer_name(kernel_initializer, where, "kernel_initializer")
        self.recurrent_initializer = initializer_name(recurrent_initializer, where, "recurrent_initializer")
        self.bias_initializer = initializer_name(bias_initializer, where, "bias_initializer")
        for arg, rate in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
            if (
                isinstance(rate, bool)
                or not isinstance(rate, (int, float, np.integer, np.floating))
                or not 0 <= rate < 1
            ):
                raise ValueError(f"{where}: {arg} must be a number in [0, 1), got {rate!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
            raise ValueError(f"{where}: seed must be a non-negative integer or None, got {seed!r}")
        if stateful:
            raise ValueError(f"{where}: stateful=True is not supported")
        self.dropout, self.recurrent_dropout = float(dropout), float(recurrent_dropout)
        # As maasfin's Dropout: a layer that drops draws its seed once, and the config keeps it.
        self.seed = int(seed) if seed is not None else (draw_seed() if self.dropout or self.recurrent_dropout else None)
        self.return_sequences, self.return_state = bool(return_sequences), bool(return_state)
        self.go_backwards, self.stateful, self.unroll = bool(go_backwards), False, bool(unroll)
        # Keras: masked steps output zeros instead of the carried state (Bidirectional forces it
        # on its layers when returning sequences).
        self._zero_output_for_mask = bool(zero_output_for_mask)

    @staticmethod
    def _rnn_activation(activation, where: str, arg: str) -> str:
        name = activation_name(activation, where)
        if name not in _RNN_ACTIVATIONS:
            raise ValueError(
                f"{where}: {arg} '{name}' is not supported in recurrent layers; "
                f"use one of {', '.join(_RNN_ACTIVATIONS)}"
            )
        return name

    def _common_args(self):
        return (
            self.use_bias,
            self.return_sequences,
            self.go_backwards,
            self.kernel_initializer,
            self.recurrent_initializer,
            self.bias_initializer,
        )

    def _core_keywords(self) -> dict:
        return {
            "return_state": self.return_state,
            "has_mask": self._mask_in is not None,
            "zero_output_for_mask": self._zero_output_for_mask or self._force_zero_output,
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "seed": self.seed or 0,
        }

    # -- functional calls: initial_state, several outputs, masks -----------------------------------
    def __call__(self, inputs, initial_state=None, mask=None, training=None):
        where = f"{type(self).__name__} '{self.name}'"
        tensors = call_tensors(where, inputs, initial_state, mask, training)
        S = self._num_states
        if len(tensors) not in (1, 1 + S):
            names = "[h, c]" if S == 2 else "[h]"
            raise ValueError(
                f"{where}: initial_state must hold {S} tensor{'s' if S > 1 else ''} {names} of shape "
                f"(batch, {self.units}), got {len(tensors) - 1}"
            )
        for k, t in enumerate(tensors[1:]):
            if isinstance(t, KerasTensor) and tuple(t.shape[1:]) != (self.units,):
                raise ValueError(
                    f"{where}: initial_state[{k}] must have shape (batch, {self.units}) for "
                    f"units={self.units}, got {t.shape}"
                )
        return self._call_tensors(tensors, inputs)

    def _mask_flow(self, masks, sources):
        mask = masks[0] if masks else None
        self._mask_in = initial_state_mask(self, mask, len(sources) > 1)
        out = mask if self.return_sequences else None
        return [out] + [None] * self._num_states if self.return_state else out

    def _num_outputs(self) -> int:
        return 1 + self._num_states if self.return_state else 1

    def _output_parts(self, packed_shape, input_shapes=()):
        if not self.return_state:
            return [(0, tuple(packed_shape))]
        u, S = self.units, self._num_states
        out = int(packed_shape[0]) - S * u
        shape = (out // u, u) if self.return_sequences else (u,)
        return [(0, shape)] + [(out + k * u, (u,)) for k in range(S)]

    def get_config(self) -> dict:
        cfg = {**super().get_config(), "units": self.units, "activation": self.activation}
        if self._has_recurrent_activation:
            cfg["recurrent_activation"] = self.recurrent_activation
        cfg.update(
            {
                "use_bias": self.use_bias,
                "kernel_initializer": self.kernel_initializer,
                "recurrent_initializer": self.recurrent_initializer,
                "bias_initializer": self.bias_initializer,
                "dropout": self.dropout,
                "recurrent_dropout": self.recurrent_dropout,
                "seed": self.seed,
                "return_sequences": self.return_sequences,
                "return_state": self.return_state,
                "go_backwards": self.go_backwards,
                "stateful": self.stateful,
                "unroll": self.unroll,
                "zero_output_for_mask": self._zero_output_for_mask,
                **self._weight_config(),
            }
        )
        return cfg

    def _regularization(self) -> tuple[list, list]:
        # Keras names the recurrent weight "recurrent_kernel" but its arguments "recurrent_*".
        penalties, cons = [], []
        for pname, shape, off in self._param_specs():
            key = "recurrent" if pname == "recurrent_kernel" else pname
            reg, con = getattr(self, f"{key}_regularizer"), getattr(self, f"{key}_constraint")
            size = int(np.prod(shape))
            if reg is not None and (reg.l1 or reg.l2):
                penalties.append((off, off + size, reg.l1, reg.l2))
            if con is not None:
                cons.append(con._spec(off, tuple(shape)))
        return penalties, cons


class LSTM(_Recurrent):
    """Long short-term memory over (timesteps, features). Weights as Keras: kernel (features, 4u),
    recurrent_kernel (u, 4u), bias (4u,), gate order i, f, c, o."""

    _num_states = 2

    def __init__(
        self,
        units,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        unit_forget_bias=True,
        **kwargs,
    ):
        super().__init__(
            units,
            activation=activation,
            recurrent_activation=recurrent_activation,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer,
            **kwargs,
        )
        self.unit_forget_bias = bool(unit_forget_bias)
        if self.unit_forget_bias and self.use_bias and self.bias_initializer not in ("zeros", "ones"):
            raise ValueError(
                f"LSTM '{self.name}': unit_forget_bias=True works with bias_initializer 'zeros' or "
                f"'ones', got {self.bias_initializer!r}; pass unit_forget_bias=False"
            )

    def _make_core(self):
        return _core.LSTM(
            self.units,
            self.activation,
            self.recurrent_activation,
            *self._common_args(),
            self.unit_forget_bias,
            **self._core_keywords(),
        )

    def get_config(self) -> dict:
        return {**super().get_config(), "unit_forget_bias": self.unit_forget_bias}


class GRU(_Recurrent):
    """Gated recurrent unit over (timesteps, features). Weights: kernel (features, 3u),
    recurrent_kernel (u, 3u), gate order z, r, h; bias (2, 3u) = [input bias; recurrent bias] with
    reset_after=True (Keras 3's default: the reset gate scales h U_h + b), or (3u,) with
    reset_after=False (Keras's original GRU: hh = act(x W_h + b_h + (r * h) U_h))."""

    def __init__(
        self,
        units,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        reset_after=True,
        **kwargs,
    ):
        super().__init__(
            units,
            activation=activation,
            recurrent_activation=recurrent_activation,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer,
            **kwargs,
        )
        self.reset_after = bool(reset_after)

    def _make_core(self):
        return _core.GRU(
            self.units,
            self.activation,
            self.recurrent_activation,
            *self._common_args(),
            **self._core_keywords(),
            reset_after=self.reset_after,
        )

    def get_config(self) -> dict:
        return {**super().get_config(), "reset_after": self.reset_after}


class SimpleRNN(_Recurrent):
    """Fully connected recurrence h' = activation(x kernel + h recurrent_kernel + bias)."""

    _has_recurrent_activation = False

    def __init__(
        self,
        units,
        activation="tanh",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        **kwargs,
    ):
        if "recurrent_activation" in kwargs:
            raise TypeError("SimpleRNN: unexpected keyword argument 'recurrent_activation'")
        super().__init__(
            units,
            activation=activation,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer,
            **kwargs,
        )

    def _make_core(self):
        return _core.SimpleRNN(self.units, self.activation, *self._common_args(), **self._core_keywords())
