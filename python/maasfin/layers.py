"""Keras-named layers. A Python layer holds its Keras config; the math runs in the C++ core.

Layers are created unbuilt. When a model is built, each layer makes its core counterpart
(`_make_core`), the core graph builds it, and the layer remembers its node so that
`get_weights`/`set_weights` read and write the model's parameter arena.
"""
from __future__ import annotations

import re
import warnings
from collections import defaultdict

import numpy as np

from maasfin import _core, constraints, regularizers
from maasfin.utils import draw_seed

__all__ = ["Layer", "Input", "InputLayer", "Dense", "Activation", "Dropout", "Masking", "Add", "Concatenate",
           "BatchNormalization", "LayerNormalization", "GaussianNoise", "GaussianDropout", "AlphaDropout",
           "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Dot",
           "add", "concatenate", "subtract", "multiply", "average", "maximum", "minimum", "dot"]


def _serialize(obj) -> dict:
    """{"class_name", "config"} of a regularizer or constraint, for get_config."""
    return {"class_name": type(obj).__name__, "config": obj.get_config()}


def _deserialize(value, module, what: str):
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


def _snake(name: str) -> str:
    """Keras's default layer name: Dense -> dense, Conv2D -> conv2d, MaxPooling2D -> max_pooling2d."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def _shape_tuple(shape, what: str) -> tuple[int, ...]:
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


class _Mask:
    """A Keras mask (Keras's `_keras_mask`): a step of `source` counts when any of its values differs
    from `value`. `source` is the tensor a Masking layer or Embedding(mask_zero=True) read (a
    KerasTensor, or a core node id inside a Sequential build); the core computes the mask with a
    SequenceMask node that models add themselves, so masks never appear in saved wiring."""
    __slots__ = ("source", "value")

    def __init__(self, source, value: float):
        self.source, self.value = source, float(value)

    def __eq__(self, other) -> bool:
        return (isinstance(other, _Mask) and other.value == self.value
                and (other.source is self.source or (isinstance(self.source, int) and other.source == self.source)))

    __hash__ = None


def _mask_dropped(layer) -> None:
    warnings.warn(f"Layer '{layer.name}' (of type {type(layer).__name__}) was passed an input with a mask attached "
                  "to it. However, this layer does not support masking and will therefore destroy the mask "
                  "information. Downstream layers will not see the mask.", UserWarning, stacklevel=4)


class KerasTensor:
    """A symbolic tensor of the functional API: a per-sample shape, the layer that made it, and
    which of that layer's outputs it is (`index`; LSTM(return_state=True) has three)."""

    def __init__(self, shape, layer: "Layer", inputs: list["KerasTensor"], name: str, dtype: str = "float32",
                 index: int = 0, mask: _Mask | None = None):
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

    def __init__(self, name: str | None = None, trainable: bool = True, input_shape=None,
                 input_dim: int | None = None, dtype=None, activity_regularizer=None, **kwargs):
        if kwargs:
            raise TypeError(f"{type(self).__name__}: unexpected keyword arguments {sorted(kwargs)}")
        if dtype not in (None, "float32", np.float32):
            raise ValueError(f"{type(self).__name__}: only dtype='float32' is supported, got {dtype!r}")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"{type(self).__name__}: name must be a string")
        self.name = name or unique_name(_snake(type(self).__name__))
        self.trainable = bool(trainable)
        self._input_shape_arg = None
        if input_shape is not None:
            self._input_shape_arg = _shape_tuple(input_shape, f"{type(self).__name__} '{self.name}' input_shape")
        elif input_dim is not None:
            self._input_shape_arg = _shape_tuple((input_dim,), f"{type(self).__name__} '{self.name}' input_dim")
        self.activity_regularizer = _deserialize(activity_regularizer, regularizers, "regularizer")
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
            _mask_dropped(self)
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
            raise ValueError(f"layer '{self.name}' is already part of a built model; "
                             "create a new layer instead of reusing it")
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
                "output of maasfin.Input(...) to build a model, and use model.predict(x) for data")
        if self._inbound:
            raise ValueError(f"layer '{self.name}' is already called once; shared layers are not supported")
        strings = [t.name for t in tensors if t.dtype == "string"]
        if strings and not getattr(self, "_takes_strings", False):
            raise TypeError(f"{type(self).__name__} '{self.name}' cannot take the string input {strings[0]!r}: "
                            "apply StringLookup or Hashing to a string Input first")
        out_mask = self._mask_flow([t._keras_mask for t in tensors], tensors)
        shapes = [t.shape[1:] for t in tensors]
        if self._mask_in is not None:
            shapes.insert(1, self._mask_in.source.shape[1:2])
        shape = self._infer_shape(shapes)
        self._inbound = tensors
        if self._num_outputs() == 1:
            return KerasTensor(shape, self, tensors, self.name, mask=out_mask)
        masks = out_mask if isinstance(out_mask, list) else [out_mask] * self._num_outputs()
        return [KerasTensor(part, self, tensors, self.name if k == 0 else f"{self.name}_{k}", index=k, mask=masks[k])
                for k, (_, part) in enumerate(self._output_parts(shape, shapes))]

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
        return [arena[off:off + int(np.prod(shape))].reshape(shape).copy()
                for _, shape, off in self._param_specs()]

    def set_weights(self, weights) -> None:
        specs = self._param_specs()
        if self._graph is None:
            raise ValueError(f"layer '{self.name}' has no weights until its model is built")
        weights = list(weights)
        if len(weights) != len(specs):
            raise ValueError(f"layer '{self.name}' expects {len(specs)} weight arrays "
                             f"({', '.join(n for n, _, _ in specs)}), got {len(weights)}")
        arrays = []
        for (pname, shape, _), w in zip(specs, weights):
            a = np.asarray(w, dtype=np.float32)
            if a.shape != tuple(shape):
                raise ValueError(f"layer '{self.name}' weight '{pname}' has shape {tuple(shape)}, "
                                 f"got an array of shape {a.shape}")
            if not np.all(np.isfinite(a)):
                raise ValueError(f"layer '{self.name}' weight '{pname}' contains NaN or infinity")
            arrays.append(a)
        arena = self._graph.params
        for (_, shape, off), a in zip(specs, arrays):
            arena[off:off + a.size] = a.ravel()

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
        return int(sum(int(np.prod(shape)) for (_, shape, _), t in zip(self._param_specs(), self._trainable_mask()) if t))

    def _regularization(self) -> tuple[list, list]:
        """Core penalty and constraint specs for this layer's weights (see training.py)."""
        return [], []

    def get_config(self) -> dict:
        cfg = {"name": self.name, "trainable": self.trainable}
        if self._input_shape_arg is not None:
            cfg["input_shape"] = self._input_shape_arg
        if self.activity_regularizer is not None:
            cfg["activity_regularizer"] = _serialize(self.activity_regularizer)
        return cfg

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"


class InputLayer(Layer):
    """The entry of a model: a per-sample shape (Keras `Input` returns its output tensor)."""

    _DTYPES = {None: "float32", "float32": "float32", "float64": "float32", "int32": "int32", "int64": "int64",
               "bool": "bool", "string": "string", "str": "string"}

    def __init__(self, shape=None, batch_size=None, name=None, dtype=None, **kwargs):
        if "input_shape" in kwargs and shape is None:
            shape = kwargs.pop("input_shape")
        key = getattr(dtype, "__name__", dtype) if dtype is not str else "string"
        if key not in self._DTYPES:
            raise ValueError(f"Input {name or ''}: dtype must be one of 'float32', 'int32', 'int64', 'bool' or "
                             f"'string', got {dtype!r}")
        super().__init__(name=name or unique_name("input_layer"), **kwargs)
        if shape is None:
            raise ValueError("Input: a shape is required, e.g. Input(shape=(10,))")
        self.shape = _shape_tuple(shape, f"Input '{self.name}'")
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


def _activation_name(activation, layer: str) -> str:
    if activation is None:
        return "linear"
    if callable(activation) and getattr(activation, "__name__", None) in _ACTIVATIONS:
        return activation.__name__
    if not isinstance(activation, str):
        raise TypeError(f"{layer}: activation must be a name such as 'relu', got {activation!r}")
    if activation not in _ACTIVATIONS:
        raise ValueError(f"{layer}: unknown activation '{activation}'; valid names: "
                         f"{', '.join(sorted(_ACTIVATIONS))}")
    return activation


_INITIALIZERS = {"zeros", "ones", "glorot_uniform", "glorot_normal", "he_uniform", "he_normal",
                 "lecun_uniform", "lecun_normal", "random_uniform", "random_normal", "orthogonal"}
_INITIALIZER_ALIASES = {"Zeros": "zeros", "Ones": "ones", "GlorotUniform": "glorot_uniform",
                        "GlorotNormal": "glorot_normal", "HeUniform": "he_uniform", "HeNormal": "he_normal",
                        "LecunUniform": "lecun_uniform", "LecunNormal": "lecun_normal",
                        "RandomUniform": "random_uniform", "RandomNormal": "random_normal",
                        "Orthogonal": "orthogonal"}


def _initializer_name(init, layer: str, arg: str) -> str:
    name = getattr(init, "name", init)
    name = _INITIALIZER_ALIASES.get(name, name)
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


class Dense(KernelBiasMixin, Layer):
    """Densely connected layer: activation(x @ kernel + bias) on the last axis."""
    _masking = "keep"

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None, kernel_constraint=None,
                 bias_constraint=None, **kwargs):
        super().__init__(**kwargs)
        where = f"Dense '{self.name}'"
        self.kernel_regularizer = _deserialize(kernel_regularizer, regularizers, "regularizer")
        self.bias_regularizer = _deserialize(bias_regularizer, regularizers, "regularizer")
        self.kernel_constraint = _deserialize(kernel_constraint, constraints, "constraint")
        self.bias_constraint = _deserialize(bias_constraint, constraints, "constraint")
        if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units <= 0:
            raise ValueError(f"{where}: units must be a positive integer, got {units!r}")
        self.units = int(units)
        self.activation = _activation_name(activation, where)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = _initializer_name(kernel_initializer, where, "kernel_initializer")
        self.bias_initializer = _initializer_name(bias_initializer, where, "bias_initializer")

    def _make_core(self):
        return _core.Dense(self.units, self.activation, self.use_bias, self.kernel_initializer,
                           self.bias_initializer)

    def get_config(self) -> dict:
        cfg = {**super().get_config(), "units": self.units, "activation": self.activation,
               "use_bias": self.use_bias, "kernel_initializer": self.kernel_initializer,
               "bias_initializer": self.bias_initializer}
        for arg in ("kernel_regularizer", "bias_regularizer", "kernel_constraint", "bias_constraint"):
            if getattr(self, arg) is not None:
                cfg[arg] = _serialize(getattr(self, arg))
        return cfg

    def _regularization(self) -> tuple[list, list]:
        penalties, cons = [], []
        for (pname, shape, off) in self._param_specs():
            reg = self.kernel_regularizer if pname == "kernel" else self.bias_regularizer
            con = self.kernel_constraint if pname == "kernel" else self.bias_constraint
            size = int(np.prod(shape))
            if reg is not None and (reg.l1 or reg.l2):
                penalties.append((off, off + size, reg.l1, reg.l2))
            if con is not None:
                cons.append(con._spec(off, tuple(shape)))
        return penalties, cons


class Activation(Layer):
    """Applies an activation function element-wise (softmax over the last axis)."""
    _masking = "keep"

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = _activation_name(activation, f"Activation '{self.name}'")

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
        if isinstance(mask_value, bool) or not isinstance(mask_value, (int, float, np.integer, np.floating)) \
                or not np.isfinite(mask_value):
            raise ValueError(f"Masking '{self.name}': mask_value must be a finite number, got {mask_value!r}")
        self.mask_value = float(mask_value)

    def _mask_flow(self, masks, sources):
        self._mask_in = None  # Keras's Masking replaces any incoming mask with its own
        return _Mask(sources[0], self.mask_value)

    def _make_core(self):
        return _core.Masking(self.mask_value)

    def get_config(self) -> dict:
        return {**super().get_config(), "mask_value": self.mask_value}


class _MergeMasks:
    """Keras's merge masks: none when any input has none (Add & co. return None; Concatenate's
    all-ones part makes its `any` true everywhere), else the OR of the inputs' masks. maasfin
    computes the cases where every input carries the same mask and refuses an OR of different ones."""

    def _mask_flow(self, masks, sources):
        self._mask_in = None
        if any(m is None for m in masks):
            return None
        if all(m == masks[0] for m in masks):
            return masks[0]
        raise ValueError(f"{type(self).__name__} '{self.name}': its inputs carry different masks; Keras would "
                         "combine them (logical or), which maasfin does not support")


class Add(_MergeMasks, Layer):
    """Element-wise sum of inputs of equal shape."""

    def _make_core(self):
        return _core.Add()


class Concatenate(_MergeMasks, Layer):
    """Concatenation along the last axis."""

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        if axis != -1:
            raise ValueError(f"Concatenate '{self.name}': only axis=-1 is supported, got {axis!r}")
        self.axis = -1

    def _make_core(self):
        return _core.Concatenate()

    def get_config(self) -> dict:
        return {**super().get_config(), "axis": self.axis}


class _ElementwiseMerge(_MergeMasks, Layer):
    def _make_core(self):
        return _core.ElementwiseMerge(type(self).__name__)


class Subtract(_ElementwiseMerge):
    """inputs[0] - inputs[1] (exactly two inputs of equal shape)."""


class Multiply(_ElementwiseMerge):
    """Element-wise product of inputs of equal shape."""


class Average(_ElementwiseMerge):
    """Element-wise mean of inputs of equal shape."""


class Maximum(_ElementwiseMerge):
    """Element-wise maximum of inputs of equal shape (the gradient goes to the first input attaining it)."""


class Minimum(_ElementwiseMerge):
    """Element-wise minimum of inputs of equal shape (the gradient goes to the first input attaining it)."""


class Dot(Layer):
    """Dot product of two (batch, d) inputs along their last axis -> (batch, 1); with
    normalize=True the inputs are L2-normalised first (cosine similarity), as in Keras."""

    def _mask_flow(self, masks, sources):  # Keras's Dot returns no mask, without a warning
        self._mask_in = None
        return None

    def __init__(self, axes, normalize=False, **kwargs):
        super().__init__(**kwargs)
        pair = tuple(axes) if isinstance(axes, (list, tuple)) else (axes, axes)
        if len(pair) != 2 or not all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) and a in (1, -1)
                                     for a in pair):
            raise ValueError(f"Dot '{self.name}': only axes=1 (or -1) over inputs of shape (batch, d) is "
                             f"supported, got axes={axes!r}")
        self.axes = axes if isinstance(axes, (int, np.integer)) else [int(a) for a in pair]
        if isinstance(self.axes, np.integer):
            self.axes = int(self.axes)
        self.normalize = bool(normalize)

    def _make_core(self):
        return _core.Dot(self.normalize)

    def get_config(self) -> dict:
        return {**super().get_config(), "axes": self.axes, "normalize": self.normalize}


def add(inputs, **kwargs):
    return Add(**kwargs)(inputs)


def concatenate(inputs, axis=-1, **kwargs):
    return Concatenate(axis=axis, **kwargs)(inputs)


def subtract(inputs, **kwargs):
    return Subtract(**kwargs)(inputs)


def multiply(inputs, **kwargs):
    return Multiply(**kwargs)(inputs)


def average(inputs, **kwargs):
    return Average(**kwargs)(inputs)


def maximum(inputs, **kwargs):
    return Maximum(**kwargs)(inputs)


def minimum(inputs, **kwargs):
    return Minimum(**kwargs)(inputs)


def dot(inputs, axes=-1, normalize=False, **kwargs):
    return Dot(axes=axes, normalize=normalize, **kwargs)(inputs)


class BatchNormalization(Layer):
    """Normalises the last axis with batch statistics in training and moving statistics at
    inference. Weights: gamma, beta, moving_mean, moving_variance (the last two are state, not
    trained). With trainable=False the layer runs in inference mode, as in Keras 3."""
    _masking = "keep"

    def __init__(self, axis=-1, momentum=0.99, epsilon=0.001, center=True, scale=True, beta_initializer="zeros",
                 gamma_initializer="ones", moving_mean_initializer="zeros", moving_variance_initializer="ones",
                 beta_regularizer=None, gamma_regularizer=None, beta_constraint=None, gamma_constraint=None,
                 synchronized=False, **kwargs):
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
        self.beta_initializer = _initializer_name(beta_initializer, where, "beta_initializer")
        self.gamma_initializer = _initializer_name(gamma_initializer, where, "gamma_initializer")
        self.moving_mean_initializer = _initializer_name(moving_mean_initializer, where, "moving_mean_initializer")
        self.moving_variance_initializer = _initializer_name(moving_variance_initializer, where,
                                                             "moving_variance_initializer")

    def _make_core(self):
        return _core.BatchNormalization(self.momentum, self.epsilon, self.center, self.scale, self.beta_initializer,
                                        self.gamma_initializer, self.moving_mean_initializer,
                                        self.moving_variance_initializer)

    def get_config(self) -> dict:
        return {**super().get_config(), "axis": self.axis, "momentum": self.momentum, "epsilon": self.epsilon,
                "center": self.center, "scale": self.scale, "beta_initializer": self.beta_initializer,
                "gamma_initializer": self.gamma_initializer,
                "moving_mean_initializer": self.moving_mean_initializer,
                "moving_variance_initializer": self.moving_variance_initializer}


class LayerNormalization(Layer):
    """Normalises each sample over its last axis. Weights: gamma, beta."""
    _masking = "keep"

    def __init__(self, axis=-1, epsilon=0.001, center=True, scale=True, rms_scaling=False,
                 beta_initializer="zeros", gamma_initializer="ones", beta_regularizer=None, gamma_regularizer=None,
                 beta_constraint=None, gamma_constraint=None, **kwargs):
        super().__init__(**kwargs)
        where = f"LayerNormalization '{self.name}'"
        if axis != -1 or rms_scaling:
            raise ValueError(f"{where}: only axis=-1 without rms_scaling is supported")
        if not epsilon > 0:
            raise ValueError(f"{where}: epsilon must be > 0, got {epsilon!r}")
        if any(v is not None for v in (beta_regularizer, gamma_regularizer, beta_constraint, gamma_constraint)):
            raise ValueError(f"{where}: beta/gamma regularizers and constraints are not supported")
        self.axis, self.epsilon, self.center, self.scale = -1, float(epsilon), bool(center), bool(scale)
        self.beta_initializer = _initializer_name(beta_initializer, where, "beta_initializer")
        self.gamma_initializer = _initializer_name(gamma_initializer, where, "gamma_initializer")

    def _make_core(self):
        return _core.LayerNormalization(self.epsilon, self.center, self.scale, self.beta_initializer,
                                        self.gamma_initializer)

    def get_config(self) -> dict:
        return {**super().get_config(), "axis": self.axis, "epsilon": self.epsilon, "center": self.center,
                "scale": self.scale, "beta_initializer": self.beta_initializer,
                "gamma_initializer": self.gamma_initializer}


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


from maasfin.preprocessing import (CategoryEncoding, Discretization, Embedding, HashedCrossing,  # noqa: E402
                                   Hashing, Imputation, IntegerLookup, Normalization, StringLookup)

__all__ += ["Normalization", "Discretization", "CategoryEncoding", "IntegerLookup", "StringLookup", "Hashing",
            "HashedCrossing", "Embedding", "Imputation"]

# Spatial and recurrent layers live in their own modules; maasfin.layers is the one public namespace.
from maasfin.spatial_layers import *  # noqa: E402,F401,F403
from maasfin import spatial_layers as _spatial  # noqa: E402

__all__ += _spatial.__all__
from maasfin.recurrent_layers import *  # noqa: E402,F401,F403
from maasfin import recurrent_layers as _recurrent  # noqa: E402

__all__ += _recurrent.__all__
from maasfin.attention_layers import *  # noqa: E402,F401,F403
from maasfin import attention_layers as _attention  # noqa: E402

__all__ += _attention.__all__
from maasfin.wrappers import *  # noqa: E402,F401,F403
from maasfin import wrappers as _wrappers  # noqa: E402

__all__ += _wrappers.__all__
