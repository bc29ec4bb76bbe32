"""The layer contract: Layer, InputLayer/Input, KerasTensor, masks, and the argument checks layers share.

Layers are created unbuilt. When a model is built, each layer makes its core counterpart
(`_make_core`), the core graph builds it, and the layer remembers its node so that
`get_weights`/`set_weights` read and write the model's parameter arena.
"""

from __future__ import annotations

import re
import warnings
from collections import defaultdict

import numpy as np

from maasfin import _core, regularizers

__all__ = ["Layer", "Input", "InputLayer", "KerasTensor"]


def serialize(obj) -> dict:
    """{"class_name", "config"} of a regularizer or constraint, for get_config."""
    return {"class_name": type(obj).__name__, "config": obj.get_config()}


def deserialize(value, module, what: str):
    """Accepts an object, a name, or a {"class_name", "config"} dict from get_config."""
    if isinstance(value, dict):
        cls = getattr(module, str(value.get("class_name")), None)
        base = module.Regularizer if module is regularizers else module.Constraint
        if not (isinstance(cls, type) and issubclass(cls, base)):
            raise ValueError(f"unknown {what} {value.get('class_name')!r}")
        return cls.from_config(value.get("config", {}))
    return module.get(value)


_name_counts: dict[str, int] = defaultdict(int)


def unique_name(base: str) -> str:
    n = _name_counts[base]
    _name_counts[base] += 1
    return base if n == 0 else f"{base}_{n}"


def snake_case(name: str) -> str:
    """Keras's default layer name: Dense -> dense, Conv2D -> conv2d, MaxPooling2D -> max_pooling2d."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def shape_tuple(shape, what: str) -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    try:
        dims = tuple(shape)
    except TypeError:
        raise TypeError(f"{what}: shape must be a tuple of positive integers, got {shape!r}") from None
    if any(d is None for d in dims):
        raise ValueError(f"{what}: only the batch dimension may be None; give the per-sample shape, got {dims}")
    if not dims or not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d > 0 for d in dims):
        raise ValueError(f"{what}: shape must be a non-empty tuple of positive integers, got {dims}")
    return tuple(int(d) for d in dims)


class Mask:
    """A Keras mask (Keras's `_keras_mask`): a step of `source` counts when any of its values differs
    from `value`. `source` is the tensor a Masking layer or Embedding(mask_zero=True) read (a
    KerasTensor, or a core node id inside a Sequential build); the core computes the mask with a
    SequenceMask node that models add themselves, so masks never appear in saved wiring."""

    __slots__ = ("source", "value")

    def __init__(self, source, value: float):
        self.source, self.value = source, float(value)

    def __eq__(self, other) -> bool:
        return (
            isinstance(other, Mask)
            and other.value == self.value
            and (other.source is self.source or (isinstance(self.source, int) and other.source == self.source))
        )

    __hash__ = None


def mask_dropped(layer) -> None:
    warnings.warn(
        f"Layer '{layer.name}' (of type {type(layer).__name__}) was passed an input with a mask attached "
        "to it. However, this layer does not support masking and will therefore destroy the mask "
        "information. Downstream layers will not see the mask.",
        UserWarning,
        stacklevel=4,
    )


class KerasTensor:
    """A symbolic tensor of the functional API: a per-sample shape, the layer that made it, and
    which of that layer's outputs it is (`index`; LSTM(return_state=True) has three)."""

    def __init__(
        self,
        shape,
        layer: Layer,
        inputs: list[KerasTensor],
        name: str,
        dtype: str = "float32",
        index: int = 0,
        mask: Mask | None = None,
    ):
        self.shape = (None,) + tuple(shape)
        self.layer = layer
        self.inputs = inputs
        self.name = name
        self.dtype = dtype
        self.index = index
        self._keras_mask = mask

    def __repr__(self) -> str:
        return f"<KerasTensor shape={self.shape}, dtype={self.dtype}, name={self.name}>"


class Layer:
    """Base class: name, trainable flag, and the shared build/weights plumbing."""

    # Keras's mask behaviour: "keep" (supports_masking: the output carries the input's mask) or
    # "drop" (Keras warns that the mask is destroyed). Layers that use or make masks override _mask_flow.
    _masking = "drop"
    _mask_in = None  # the mask this layer reads (an extra core input after the first), set by _mask_flow

    def __init__(
        self,
        name: str | None = None,
        trainable: bool = True,
        input_shape=None,
        input_dim: int | None = None,
        dtype=None,
        activity_regularizer=None,
        **kwargs,
    ):
        if kwargs:
            raise TypeError(f"{type(self).__name__}: unexpected keyword arguments {sorted(kwargs)}")
        if dtype not in (None, "float32", np.float32):
            raise ValueError(f"{type(self).__name__}: only dtype='float32' is supported, got {dtype!r}")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"{type(self).__name__}: name must be a string")
        self.name = name or unique_name(snake_case(type(self).__name__))
        self.trainable = bool(trainable)
        self._input_shape_arg = None
        if input_shape is not None:
            self._input_shape_arg = shape_tuple(input_shape, f"{type(self).__name__} '{self.name}' input_shape")
        elif input_dim is not None:
            self._input_shape_arg = shape_tuple((input_dim,), f"{type(self).__name__} '{self.name}' input_dim")
        self.activity_regularizer = deserialize(activity_regularizer, regularizers, "regularizer")
        self._graph = None  # the core graph once built
        self._node = None
        self._core = None
        self._output_shape = None
        self._inbound: list[KerasTensor] = []

    # -- construction -------------------------------------------------------------------------
    def _make_core(self):
        raise NotImplementedError

    def _mask_flow(self, masks: list, sources: list):
        """Keras mask propagation at call/build time. `masks`: the incoming mask (or None) per input;
        `sources`: the handles of the inputs (for layers that make a mask). Sets `_mask_in` and
        returns the output's mask (a list, one per output, for layers with several outputs)."""
        self._mask_in = None
        if self._masking == "keep":
            return masks[0] if masks else None
        if any(m is not None for m in masks):
            mask_dropped(self)
        return None

    def _num_outputs(self) -> int:
        return 1

    def _output_parts(self, packed_shape, input_shapes=()) -> list[tuple[int, tuple[int, ...]]]:
        """(offset, shape) of each output inside the core node's flat row (several outputs only),
        given the per-sample shapes of the layer's inputs."""
        return [(0, tuple(packed_shape))]

    def _attach_all(self, graph, input_nodes: list[int]) -> list[int]:
        """`_attach`, then one TakeOutput node per output for a layer with several outputs."""
        node = self._attach(graph, input_nodes)
        nodes = self._take_outputs(graph, node)
        if len(nodes) > 1:
            self._output_shape = [(None,) + tuple(graph.node_shape(n)) for n in nodes]
        return nodes

    def _take_outputs(self, graph, node: int) -> list[int]:
        """The node of each output: `node` itself, or TakeOutput nodes splitting its flat row."""
        if self._num_outputs() == 1:
            return [node]
        nodes = []
        inputs = [tuple(graph.node_shape(i)) for i in graph.node_inputs(node)]
        for k, (offset, shape) in enumerate(self._output_parts(graph.node_shape(node), inputs)):
            part = _core.TakeOutput(offset, list(shape))
            part.name = f"{self.name}/output_{k}"
            nodes.append(graph.add_layer(part, [node]))
        return nodes

    def _attach(self, graph, input_nodes: list[int]) -> int:
        """Creates the core layer and adds it to `graph`; returns the node id."""
        if self._graph is not None:
            raise ValueError(
                f"layer '{self.name}' is already part of a built model; create a new layer instead of reusing it"
            )
        core = self._make_core()
        core.name = self.name
        node = graph.add_layer(core, input_nodes)
        if self.activity_regularizer is not None:
            graph.set_activity_regularizer(node, self.activity_regularizer.l1, self.activity_regularizer.l2)
        self._graph, self._node, self._core = graph, node, core
        self._output_shape = (None,) + tuple(graph.node_shape(node))
        return node

    def __call__(self, inputs, **kwargs):
        if kwargs.get("training") not in (None, False, True) or set(kwargs) - {"training"}:
            raise TypeError(f"{type(self).__name__}.__call__: unexpected arguments {sorted(kwargs)}")
        return self._call_tensors(list(inputs) if isinstance(inputs, (list, tuple)) else [inputs], inputs)

    def _call_tensors(self, tensors: list, inputs=None):
        """Wires this layer to `tensors` (KerasTensors): checks, mask flow, shape inference."""
        if not all(isinstance(t, KerasTensor) for t in tensors):
            raise TypeError(
                f"layer '{self.name}' was called on {type(inputs).__name__}; call layers on the "
                "output of maasfin.Input(...) to build a model, and use model.predict(x) for data"
            )
        if self._inbound:
            raise ValueError(f"layer '{self.name}' is already called once; shared layers are not supported")
        strings = [t.name for t in tensors if t.dtype == "string"]
        if strings and not getattr(self, "_takes_strings", False):
            raise TypeError(
                f"{type(self).__name__} '{self.name}' cannot take the string input {strings[0]!r}: "
                "apply StringLookup or Hashing to a string Input first"
            )
        out_mask = self._mask_flow([t._keras_mask for t in tensors], tensors)
        shapes = [t.shape[1:] for t in tensors]
        if self._mask_in is not None:
            shapes.insert(1, self._mask_in.source.shape[1:2])
        shape = self._infer_shape(shapes)
        self._inbound = tensors
        if self._num_outputs() == 1:
            return KerasTensor(shape, self, tensors, self.name, mask=out_mask)
        masks = out_mask if isinstance(out_mask, list) else [out_mask] * self._num_outputs()
        return [
            KerasTensor(part, self, tensors, self.name if k == 0 else f"{self.name}_{k}", index=k, mask=masks[k])
            for k, (_, part) in enumerate(self._output_parts(shape, shapes))
        ]

    def _on_built(self) -> None:
        """Called once the model's parameter arena exists (preprocessing layers write their state)."""

    def _infer_shape(self, input_shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
        """Per-sample output shape, checked by building a throwaway core graph."""
        g = _core.Graph()
        ids = [g.add_input(list(s), f"in{i}") for i, s in enumerate(input_shapes)]
        return tuple(g.node_shape(g.add_layer(self._make_core_named(), ids)))

    def _make_core_named(self):
        core = self._make_core()
        core.name = self.name
        return core

    # -- Keras API -----------------------------------------------------------------------------
    @property
    def built(self) -> bool:
        return self._graph is not None

    @property
    def output_shape(self):
        if self._output_shape is None:
            raise AttributeError(f"layer '{self.name}' has no output shape until its model is built")
        return self._output_shape

    def _param_specs(self):
        if self._graph is None:
            return []
        return self._graph.layer_params(self._node)

    def get_weights(self) -> list[np.ndarray]:
        arena = self._graph.params if self._graph is not None else None
        return [arena[off : off + int(np.prod(shape))].reshape(shape).copy() for _, shape, off in self._param_specs()]

    def set_weights(self, weights) -> None:
        specs = self._param_specs()
        if self._graph is None:
            raise ValueError(f"layer '{self.name}' has no weights until its model is built")
        weights = list(weights)
        if len(weights) != len(specs):
            raise ValueError(
                f"layer '{self.name}' expects {len(specs)} weight arrays "
                f"({', '.join(n for n, _, _ in specs)}), got {len(weights)}"
            )
        arrays = []
        for (pname, shape, _), w in zip(specs, weights):
            a = np.asarray(w, dtype=np.float32)
            if a.shape != tuple(shape):
                raise ValueError(
                    f"layer '{self.name}' weight '{pname}' has shape {tuple(shape)}, got an array of shape {a.shape}"
                )
            if not np.all(np.isfinite(a)):
                raise ValueError(f"layer '{self.name}' weight '{pname}' contains NaN or infinity")
            arrays.append(a)
        arena = self._graph.params
        for (_, shape, off), a in zip(specs, arrays):
            arena[off : off + a.size] = a.ravel()

    @property
    def weights(self) -> list[np.ndarray]:
        return self.get_weights()

    def count_params(self) -> int:
        return int(sum(int(np.prod(shape)) for _, shape, _ in self._param_specs()))

    def _trainable_mask(self) -> list[bool]:
        """Per weight: updated by the optimizer (the layer is trainable and the weight is not state)."""
        if self._graph is None:
            return []
        return [self.trainable and t for t in self._graph.layer_params_trainable(self._node)]

    def count_trainable_params(self) -> int:
        return int(
            sum(int(np.prod(shape)) for (_, shape, _), t in zip(self._param_specs(), self._trainable_mask()) if t)
        )

    def _regularization(self) -> tuple[list, list]:
        """Core penalty and constraint specs for this layer's weights (see training.py)."""
        return [], []

    def get_config(self) -> dict:
        cfg = {"name": self.name, "trainable": self.trainable}
        if self._input_shape_arg is not None:
            cfg["input_shape"] = self._input_shape_arg
        if self.activity_regularizer is not None:
            cfg["activity_regularizer"] = serialize(self.activity_regularizer)
        return cfg

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"


class InputLayer(Layer):
    """The entry of a model: a per-sample shape (Keras `Input` returns its output tensor)."""

    _DTYPES = {
        None: "float32",
        "float32": "float32",
        "float64": "float32",
        "int32": "int32",
        "int64": "int64",
        "bool": "bool",
        "string": "string",
        "str": "string",
    }

    def __init__(self, shape=None, batch_size=None, name=None, dtype=None, **kwargs):
        if "input_shape" in kwargs and shape is None:
            shape = kwargs.pop("input_shape")
        key = getattr(dtype, "__name__", dtype) if dtype is not str else "string"
        if key not in self._DTYPES:
            raise ValueError(
                f"Input {name or ''}: dtype must be one of 'float32', 'int32', 'int64', 'bool' or "
                f"'string', got {dtype!r}"
            )
        super().__init__(name=name or unique_name("input_layer"), **kwargs)
        if shape is None:
            raise ValueError("Input: a shape is required, e.g. Input(shape=(10,))")
        self.shape = shape_tuple(shape, f"Input '{self.name}'")
        self.batch_size = batch_size
        # Numbers of any dtype reach the core as float32; strings are encoded at the data boundary.
        self.dtype = self._DTYPES[key]
        self.output = KerasTensor(self.shape, self, [], self.name, "string" if self.dtype == "string" else "float32")

    def get_config(self) -> dict:
        cfg = {"name": self.name, "shape": self.shape}
        if self.dtype != "float32":
            cfg["dtype"] = self.dtype
        return cfg


def Input(shape=None, batch_size=None, name=None, dtype=None, **kwargs) -> KerasTensor:
    """A symbolic model input with per-sample `shape`, as keras.Input."""
    return InputLayer(shape=shape, batch_size=batch_size, name=name, dtype=dtype, **kwargs).output


_ACTIVATIONS = set(_core.activation_names().split(", "))


def activation_name(activation, layer: str) -> str:
    if activation is None:
        return "linear"
    if callable(activation) and getattr(activation, "__name__", None) in _ACTIVATIONS:
        return activation.__name__
    if not isinstance(activation, str):
        raise TypeError(f"{layer}: activation must be a name such as 'relu', got {activation!r}")
    if activation not in _ACTIVATIONS:
        raise ValueError(f"{layer}: unknown activation '{activation}'; valid names: {', '.join(sorted(_ACTIVATIONS))}")
    return activation


_INITIALIZERS = {
    "zeros",
    "ones",
    "glorot_uniform",
    "glorot_normal",
    "he_uniform",
    "he_normal",
    "lecun_uniform",
    "lecun_normal",
    "random_uniform",
    "random_normal",
    "orthogonal",
}
INITIALIZER_ALIASES = {
    "Zeros": "zeros",
    "Ones": "ones",
    "GlorotUniform": "glorot_uniform",
    "GlorotNormal": "glorot_normal",
    "HeUniform": "he_uniform",
    "HeNormal": "he_normal",
    "LecunUniform": "lecun_uniform",
    "LecunNormal": "lecun_normal",
    "RandomUniform": "random_uniform",
    "RandomNormal": "random_normal",
    "Orthogonal": "orthogonal",
}


def initializer_name(init, layer: str, arg: str) -> str:
    name = getattr(init, "name", init)
    name = INITIALIZER_ALIASES.get(name, name)
    if name not in _INITIALIZERS:
        raise ValueError(f"{layer}: unknown {arg} {init!r}; valid names: {', '.join(sorted(_INITIALIZERS))}")
    return name


class KernelBiasMixin:
    """`kernel` and `bias` properties (copies, Keras layout) for layers whose weights are
    [kernel, bias] (bias only when use_bias)."""

    @property
    def kernel(self) -> np.ndarray:
        return self.get_weights()[0]

    @property
    def bias(self):
        return self.get_weights()[1] if self.use_bias else None

    def _regularization(self) -> tuple[list, list]:
        return parameter_regularization(self)


def parameter_regularization(layer) -> tuple[list, list]:
    """Penalties and constraints of every parameter of `layer` from its `<param>_regularizer` and
    `<param>_constraint` attributes (kernel_regularizer, bias_constraint, ...)."""
    penalties, cons = [], []
    for pname, shape, off in layer._param_specs():
        reg, con = getattr(layer, f"{pname}_regularizer", None), getattr(layer, f"{pname}_constraint", None)
        size = int(np.prod(shape))
        if reg is not None and (reg.l1 or reg.l2):
            penalties.append((off, off + size, reg.l1, reg.l2))
        if con is not None:
            cons.append(con._spec(off, tuple(shape)))
    return penalties, cons
