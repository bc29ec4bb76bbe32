"""Recurrent layers: LSTM, GRU, SimpleRNN (Keras 3 names, arguments, defaults and weight layout;
the time loop runs in the C++ core). Re-exported by maasfin.layers.

Not supported (each refused with a clear ValueError): return_state=True (a maasfin model has one
output per layer), stateful=True, non-zero dropout / recurrent_dropout, GRU reset_after=False,
activations other than tanh, sigmoid, relu and linear, masking."""
from __future__ import annotations

import numpy as np

from maasfin import _core
from maasfin.layers import _activation_name, _initializer_name
from maasfin.spatial_layers import _Weighted, _is_int

__all__ = ["LSTM", "GRU", "SimpleRNN"]

_RNN_ACTIVATIONS = ("tanh", "sigmoid", "relu", "linear")


class _Recurrent(_Weighted):
    _weight_names = ("kernel", "recurrent", "bias")
    _has_recurrent_activation = True

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal", bias_initializer="zeros",
                 kernel_regularizer=None, recurrent_regularizer=None, bias_regularizer=None, kernel_constraint=None,
                 recurrent_constraint=None, bias_constraint=None, dropout=0.0, recurrent_dropout=0.0, seed=None,
                 return_sequences=False, return_state=False, go_backwards=False, stateful=False, unroll=False,
                 **kwargs):
        kwargs = self._init_weight_args({**kwargs, "kernel_regularizer": kernel_regularizer,
                                         "recurrent_regularizer": recurrent_regularizer,
                                         "bias_regularizer": bias_regularizer, "kernel_constraint": kernel_constraint,
                                         "recurrent_constraint": recurrent_constraint,
                                         "bias_constraint": bias_constraint})
        super().__init__(**kwargs)
        where = f"{type(self).__name__} '{self.name}'"
        if not _is_int(units) or units <= 0:
            raise ValueError(f"{where}: units must be a positive integer, got {units!r}")
        self.units = int(units)
        self.activation = self._rnn_activation(activation, where, "activation")
        self.recurrent_activation = (self._rnn_activation(recurrent_activation, where, "recurrent_activation")
                                     if self._has_recurrent_activation else None)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = _initializer_name(kernel_initializer, where, "kernel_initializer")
        self.recurrent_initializer = _initializer_name(recurrent_initializer, where, "recurrent_initializer")
        self.bias_initializer = _initializer_name(bias_initializer, where, "bias_initializer")
        if dropout or recurrent_dropout:
            raise ValueError(f"{where}: dropout and recurrent_dropout are not supported yet (got {dropout!r}, "
                             f"{recurrent_dropout!r}); put a Dropout layer before or after the recurrent layer")
        if return_state:
            raise ValueError(f"{where}: return_state=True is not supported (a layer has one output); use "
                             "return_sequences=True and take the last step if you need the final state")
        if stateful:
            raise ValueError(f"{where}: stateful=True is not supported")
        self.dropout, self.recurrent_dropout, self.seed = 0.0, 0.0, seed
        self.return_sequences, self.return_state = bool(return_sequences), False
        self.go_backwards, self.stateful, self.unroll = bool(go_backwards), False, bool(unroll)

    @staticmethod
    def _rnn_activation(activation, where: str, arg: str) -> str:
        name = _activation_name(activation, where)
        if name not in _RNN_ACTIVATIONS:
            raise ValueError(f"{where}: {arg} '{name}' is not supported in recurrent layers; "
                             f"use one of {', '.join(_RNN_ACTIVATIONS)}")
        return name

    def _common_args(self):
        return (self.use_bias, self.return_sequences, self.go_backwards, self.kernel_initializer,
                self.recurrent_initializer, self.bias_initializer)

    def get_config(self) -> dict:
        cfg = {**super().get_config(), "units": self.units, "activation": self.activation}
        if self._has_recurrent_activation:
            cfg["recurrent_activation"] = self.recurrent_activation
        cfg.update({"use_bias": self.use_bias, "kernel_initializer": self.kernel_initializer,
                    "recurrent_initializer": self.recurrent_initializer, "bias_initializer": self.bias_initializer,
                    "dropout": self.dropout, "recurrent_dropout": self.recurrent_dropout, "seed": self.seed,
                    "return_sequences": self.return_sequences, "return_state": self.return_state,
                    "go_backwards": self.go_backwards, "stateful": self.stateful, "unroll": self.unroll,
                    **self._weight_config()})
        return cfg

    def _regularization(self) -> tuple[list, list]:
        # Keras names the recurrent weight "recurrent_kernel" but its arguments "recurrent_*".
        penalties, cons = [], []
        for (pname, shape, off) in self._param_specs():
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

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal", bias_initializer="zeros",
                 unit_forget_bias=True, **kwargs):
        super().__init__(units, activation=activation, recurrent_activation=recurrent_activation, use_bias=use_bias,
                         kernel_initializer=kernel_initializer, recurrent_initializer=recurrent_initializer,
                         bias_initializer=bias_initializer, **kwargs)
        self.unit_forget_bias = bool(unit_forget_bias)
        if self.unit_forget_bias and self.use_bias and self.bias_initializer not in ("zeros", "ones"):
            raise ValueError(f"LSTM '{self.name}': unit_forget_bias=True works with bias_initializer 'zeros' or "
                             f"'ones', got {self.bias_initializer!r}; pass unit_forget_bias=False")

    def _make_core(self):
        return _core.LSTM(self.units, self.activation, self.recurrent_activation, *self._common_args(),
                          self.unit_forget_bias)

    def get_config(self) -> dict:
        return {**super().get_config(), "unit_forget_bias": self.unit_forget_bias}


class GRU(_Recurrent):
    """Gated recurrent unit over (timesteps, features), Keras 3 form (reset_after=True). Weights:
    kernel (features, 3u), recurrent_kernel (u, 3u), bias (2, 3u) = [input bias; recurrent bias],
    gate order z, r, h."""

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal", bias_initializer="zeros",
                 reset_after=True, **kwargs):
        super().__init__(units, activation=activation, recurrent_activation=recurrent_activation, use_bias=use_bias,
                         kernel_initializer=kernel_initializer, recurrent_initializer=recurrent_initializer,
                         bias_initializer=bias_initializer, **kwargs)
        if not reset_after:
            raise ValueError(f"GRU '{self.name}': only reset_after=True (Keras 3's default) is supported")
        self.reset_after = True

    def _make_core(self):
        return _core.GRU(self.units, self.activation, self.recurrent_activation, *self._common_args())

    def get_config(self) -> dict:
        return {**super().get_config(), "reset_after": self.reset_after}


class SimpleRNN(_Recurrent):
    """Fully connected recurrence h' = activation(x kernel + h recurrent_kernel + bias)."""
    _has_recurrent_activation = False

    def __init__(self, units, activation="tanh", use_bias=True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros", **kwargs):
        if "recurrent_activation" in kwargs:
            raise TypeError("SimpleRNN: unexpected keyword argument 'recurrent_activation'")
        super().__init__(units, activation=activation, use_bias=use_bias, kernel_initializer=kernel_initializer,
                         recurrent_initializer=recurrent_initializer, bias_initializer=bias_initializer, **kwargs)

    def _make_core(self):
        return _core.SimpleRNN(self.units, self.activation, *self._common_args())
