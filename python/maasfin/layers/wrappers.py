"""Layer wrappers: TimeDistributed and Bidirectional (Keras 3 names and weight order). The wrapped
layer's math runs in the C++ core through core wrapper layers. Re-exported by maasfin.layers."""

from __future__ import annotations

import numpy as np

from maasfin import _core
from maasfin.layers.base import InputLayer, Layer
from maasfin.layers.recurrent import GRU, LSTM, SimpleRNN, call_tensors, initial_state_mask
from maasfin.saving.objects import make_layer

__all__ = ["TimeDistributed", "Bidirectional"]


def _inner_layer(layer, where: str, allowed: tuple[type, ...] | None = None) -> Layer:
    """The wrapped layer: a Layer object, or its {"class_name", "config"} from get_config."""
    if isinstance(layer, dict):
        layer = make_layer(layer, "config", f"{where} layer")
    if not isinstance(layer, Layer) or isinstance(layer, (InputLayer, TimeDistributed, Bidirectional)):
        raise ValueError(
            f"{where}: layer must be a maasfin layer instance (not an Input or another wrapper), "
            f"got {type(layer).__name__}"
        )
    if allowed is not None and not isinstance(layer, allowed):
        raise ValueError(
            f"{where}: layer must be one of {', '.join(c.__name__ for c in allowed)}, got {type(layer).__name__}"
        )
    if layer.built or layer._inbound:
        raise ValueError(f"{where}: the wrapped layer '{layer.name}' is already used in a model; wrap a new layer")
    return layer


def _entry(layer: Layer) -> dict:
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


class _Wrapper(Layer):
    def _regularization(self) -> tuple[list, list]:
        """The wrapped layer's penalties and constraints, over this node's weights."""
        inner = self.layer
        saved = inner._graph, inner._node
        inner._graph, inner._node = self._graph, self._node
        try:
            return inner._regularization()
        finally:
            inner._graph, inner._node = saved

    def _on_built(self) -> None:
        self.layer._output_shape = self._output_shape


class TimeDistributed(_Wrapper):
    """Applies `layer` to every timestep of a (batch, timesteps, ...) input. Weights are the wrapped
    layer's (Dense: kernel (features, units), bias), shared over time as in Keras."""

    def __init__(self, layer, **kwargs):
        super().__init__(**kwargs)
        self.layer = _inner_layer(layer, f"TimeDistributed '{self.name}'")

    def _make_core(self):
        return _core.TimeDistributed(self.layer._make_core_named())

    def get_config(self) -> dict:
        return {**super().get_config(), "layer": _entry(self.layer)}


class Bidirectional(_Wrapper):
    """Runs an LSTM/GRU/SimpleRNN forwards and a copy of it backwards (go_backwards flipped) and
    merges the outputs (merge_mode 'concat', 'sum', 'mul' or 'ave'). Weights: the forward layer's,
    then the backward layer's, each in the wrapped layer's Keras order. With return_state in the
    wrapped layer it returns [output, forward states..., backward states...] (Keras's order), and
    `initial_state` takes the forward layer's states, then the backward layer's."""

    _MODES = ("concat", "sum", "mul", "ave")

    def __init__(self, layer, merge_mode="concat", weights=None, backward_layer=None, **kwargs):
        super().__init__(**kwargs)
        where = f"Bidirectional '{self.name}'"
        self.layer = _inner_layer(layer, where, (LSTM, GRU, SimpleRNN))
        if merge_mode not in self._MODES:
            raise ValueError(f"{where}: merge_mode must be one of {list(self._MODES)}, got {merge_mode!r}")
        if backward_layer is not None:
            raise ValueError(f"{where}: backward_layer is not supported; the backward layer is a copy of `layer`")
        if weights is not None:
            raise ValueError(f"{where}: weights= is not supported; call set_weights after building")
        self.merge_mode = merge_mode
        cfg = {**self.layer.get_config(), "go_backwards": not self.layer.go_backwards}
        self.backward_layer = type(self.layer).from_config(cfg)

    @property
    def return_state(self) -> bool:
        return self.layer.return_state

    def __call__(self, inputs, initial_state=None, mask=None, training=None):
        """Keras's call: `initial_state` lists the forward layer's states, then the backward layer's."""
        where = f"Bidirectional '{self.name}'"
        tensors = call_tensors(where, inputs, initial_state, mask, training)
        S = self.layer._num_states
        if len(tensors) not in (1, 1 + 2 * S):
            raise ValueError(
                f"{where}: initial_state must hold {2 * S} tensors (the forward layer's {S}, then the "
                f"backward layer's), got {len(tensors) - 1}"
            )
        units = self.layer.units
        for k, t in enumerate(tensors[1:]):
            if tuple(getattr(t, "shape", (None,))[1:]) != (units,):
                raise ValueError(
                    f"{where}: initial_state[{k}] must have shape (batch, {units}), got {getattr(t, 'shape', None)}"
                )
        return self._call_tensors(tensors, inputs)

    def _num_outputs(self) -> int:
        return 1 + 2 * self.layer._num_states if self.layer.return_state else 1

    def _output_parts(self, packed_shape, input_shapes=()):
        if not self.layer.return_state:
            return [(0, tuple(packed_shape))]
        u, S = self.layer.units, self.layer._num_states
        merged = int(packed_shape[0]) - 2 * S * u
        width = 2 * u if self.merge_mode == "concat" else u
        shape = (merged // width, width) if self.layer.return_sequences else (width,)
        return [(0, shape)] + [(merged + k * u, (u,)) for k in range(2 * S)]

    def _mask_flow(self, masks, sources):
        # Keras: both directions read the mask; with sequences the masked steps output zeros.
        mask = masks[0] if masks else None
        self._mask_in = initial_state_mask(self, mask, len(sources) > 1)
        for inner in (self.layer, self.backward_layer):
            inner._mask_in = self._mask_in
            inner._force_zero_output = self.layer.return_sequences
        out = mask if self.layer.return_sequences else None
        return [out] + [None] * (2 * self.layer._num_states) if self.layer.return_state else out

    @property
    def forward_layer(self) -> Layer:
        return self.layer

    def _make_core(self):
        return _core.Bidirectional(
            self.layer._make_core_named(), self.backward_layer._make_core_named(), self.merge_mode
        )

    def get_config(self) -> dict:
        return {**super().get_config(), "layer": _entry(self.layer), "merge_mode": self.merge_mode}

    def _regularization(self) -> tuple[list, list]:
        # Weights are named "forward_<name>/kernel", "backward_<name>/recurrent_kernel", ...
        inner, penalties, cons = self.layer, [], []
        for pname, shape, off in self._param_specs():
            base = pname.rsplit("/", 1)[-1]
            key = "recurrent" if base == "recurrent_kernel" else base
            reg = getattr(inner, f"{key}_regularizer", None)
            con = getattr(inner, f"{key}_constraint", None)
            if reg is not None and (reg.l1 or reg.l2):
                penalties.append((off, off + int(np.prod(shape)), reg.l1, reg.l2))
            if con is not None:
                cons.append(con._spec(off, tuple(shape)))
        return penalties, cons
