"""Models: the functional `Model(inputs, outputs)` and `Sequential`.

A model is a graph of Python layers until it is built; building creates one core graph
(`_core.Graph`) that owns all parameters in one arena. Training, evaluation and prediction are
in training.py.
"""
from __future__ import annotations

import threading

import numpy as np

from maasfin import _core, saving
from maasfin.data import shape_str
from maasfin.layers import InputLayer, KerasTensor, Layer, _Mask, unique_name
from maasfin.signature import Signature, TensorSpec
from maasfin.training import TrainingMixin
from maasfin.utils import draw_seed

__all__ = ["Model", "Sequential", "load_model", "from_bytes", "Signature", "TensorSpec"]

load_model = saving.load_model
from_bytes = saving.from_bytes


def _mask_node(g, cache: dict, mask: _Mask, node_of) -> int:
    """The core node computing `mask` (one SequenceMask node per source and value)."""
    src = node_of(mask.source)
    key = (src, mask.value)
    if key not in cache:
        core = _core.SequenceMask(mask.value)
        core.name = "mask"
        cache[key] = g.add_layer(core, [src])
    return cache[key]


def _topological(outputs: list[KerasTensor]) -> list[KerasTensor]:
    order, seen = [], set()

    def visit(t: KerasTensor):
        if id(t) in seen:
            return
        seen.add(id(t))
        for u in t.inputs:
            visit(u)
        order.append(t)

    for t in outputs:
        visit(t)
    return order


class Model(TrainingMixin):
    """A functional model: `Model(inputs=Input(...), outputs=tensor)`."""

    def __init__(self, inputs=None, outputs=None, name: str | None = None, **kwargs):
        if kwargs:
            raise TypeError(f"Model: unexpected arguments {sorted(kwargs)}")
        self.name = name or unique_name("functional" if inputs is not None else "model")
        self._graph = None
        self._build_lock = threading.Lock()
        self._feature_names = None
        self._pending_names = None
        self.stop_training = False
        self.history = None
        self._init_training()
        if type(self) is Model or inputs is not None:
            if inputs is None or outputs is None:
                raise ValueError("Model: both inputs and outputs are required, e.g. Model(inputs=x, outputs=y)")
            self._set_io(inputs, outputs)

    # -- structure ---------------------------------------------------------------------------
    def _set_io(self, inputs, outputs) -> None:
        ins = list(inputs.values()) if isinstance(inputs, dict) else (list(inputs) if isinstance(inputs, (list, tuple)) else [inputs])
        outs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
        for t in ins + outs:
            if not isinstance(t, KerasTensor):
                raise TypeError(f"model '{self.name}': inputs and outputs must be tensors from maasfin.Input "
                                f"and layer calls, got {type(t).__name__}")
        if len(outs) != 1:
            raise ValueError(f"model '{self.name}': exactly one output is supported, got {len(outs)}")
        for t in ins:
            if not isinstance(t.layer, InputLayer):
                raise ValueError(f"model '{self.name}': every input must come from maasfin.Input, "
                                 f"'{t.name}' is the output of layer '{t.layer.name}'")
        order = _topological(outs)
        reached = [t for t in order if isinstance(t.layer, InputLayer)]
        missing = [t.name for t in reached if all(t is not u for u in ins)]
        if missing:
            raise ValueError(f"model '{self.name}': the output depends on input(s) {missing} "
                             "that are not in `inputs`")
        self._inputs, self._outputs = ins, outs
        # One tensor per layer (a layer with several outputs is attached once, at its first tensor).
        self._order, seen = [], set()
        for t in order:
            if not isinstance(t.layer, InputLayer) and id(t.layer) not in seen:
                seen.add(id(t.layer))
                self._order.append(t)
        for t in ins:
            if t.dtype == "string":
                consumers = [u.layer.name for u in self._order if any(v is t for v in u.inputs)]
                if len(consumers) != 1:
                    raise ValueError(f"model '{self.name}': the string input '{t.name}' feeds {len(consumers)} layers "
                                     f"{consumers}; a string input must feed exactly one StringLookup or Hashing "
                                     "layer (give each its own Input)")

    @property
    def inputs(self):
        return list(self._inputs)

    @property
    def outputs(self):
        return list(self._outputs)

    @property
    def layers(self) -> list[Layer]:
        return [t.layer for t in self._order]

    def get_layer(self, name: str | None = None, index: int | None = None) -> Layer:
        if index is not None:
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"no layer named '{name}' in model '{self.name}'; layers: {[l.name for l in self.layers]}")

    @property
    def built(self) -> bool:
        return self._graph is not None

    def _ensure_built(self, data_shapes=None) -> None:
        if self._graph is None:
            with self._build_lock:
                if self._graph is None:
                    try:
                        self._build_graph(data_shapes)
                    except BaseException:
                        for layer in self.layers:  # a failed build leaves every layer reusable
                            layer._graph = layer._node = layer._core = layer._output_shape = None
                        raise

    def _build_graph(self, data_shapes=None) -> None:
        g = _core.Graph()
        ids = {(id(t.layer), 0): g.add_input(list(t.shape[1:]), t.name) for t in self._inputs}

        def node_of(t: KerasTensor) -> int:
            return ids[(id(t.layer), t.index)]
        masks: dict = {}
        for t in self._order:
            inputs = [node_of(u) for u in t.inputs]
            if t.layer._mask_in is not None:
                inputs.insert(1, _mask_node(g, masks, t.layer._mask_in, node_of))
            for k, node in enumerate(t.layer._attach_all(g, inputs)):
                ids[(id(t.layer), k)] = node
        g.build(node_of(self._outputs[0]), draw_seed())
        self._input_shapes = [tuple(t.shape[1:]) for t in self._inputs]
        for layer in self.layers:
            layer._on_built()
        self._graph = g

    def build(self, input_shape=None) -> None:
        self._ensure_built()

    @property
    def input_shape(self):
        shapes = [(None,) + s for s in self._input_shapes_for_display()]
        return shapes[0] if len(shapes) == 1 else shapes

    def _input_shapes_for_display(self):
        return [tuple(t.shape[1:]) for t in self._inputs]

    @property
    def output_shape(self):
        self._require_built("output_shape")
        return (None,) + tuple(self._graph.output_shape)

    def _maybe_build(self) -> None:
        """Builds now if the input shape is known without data (as Keras does)."""
        if self._graph is None and (not isinstance(self, Sequential) or self._declared_input_shape() is not None):
            self._ensure_built()

    def _require_built(self, what: str) -> None:
        self._maybe_build()
        if self._graph is None:
            raise ValueError(f"model '{self.name}' is not built yet, so it has no {what}: call fit, predict "
                             "or build(input_shape) first, or give the first layer an input shape")

    # -- weights -----------------------------------------------------------------------------
    def get_weights(self) -> list[np.ndarray]:
        self._require_built("weights")
        return [w for layer in self.layers for w in layer.get_weights()]

    def set_weights(self, weights) -> None:
        self._require_built("weights")
        weights = list(weights)
        expected = sum(len(layer._param_specs()) for layer in self.layers)
        if len(weights) != expected:
            raise ValueError(f"model '{self.name}' expects {expected} weight arrays, got {len(weights)}")
        i = 0
        for layer in self.layers:
            n = len(layer._param_specs())
            layer.set_weights(weights[i:i + n])
            i += n

    @property
    def weights(self) -> list[np.ndarray]:
        return self.get_weights()

    def count_params(self) -> int:
        self._require_built("parameters")
        return sum(layer.count_params() for layer in self.layers)

    # -- explanations (see explain.py) ---------------------------------------------------------
    def explain(self, x, method="integrated_gradients", baseline=None, steps=64, output=0, tolerance=None):
        """Per-feature signed contributions to the prediction (integrated gradients; they sum to
        f(x) - f(baseline) per row). The default baseline is the training mean recorded at fit."""
        from maasfin import explain
        return explain.explain(self, x, method=method, baseline=baseline, steps=steps, output=output,
                               tolerance=tolerance)

    def set_reason_codes(self, codes: dict) -> None:
        """feature -> (code, text); saved with the model and used by `reasons`."""
        from maasfin import explain
        explain.set_reason_codes(self, codes)

    def reasons(self, x, top_k=4, direction="adverse", adverse="high", baseline=None, steps=64, output=0):
        """Per row, the top-k features pushing the score toward the adverse outcome, with codes."""
        from maasfin import explain
        return explain.reasons(self, x, top_k=top_k, direction=direction, adverse=adverse, baseline=baseline,
                               steps=steps, output=output)

    def drift(self, x_current):
        """Population Stability Index per feature and for the score against the fit-time reference."""
        from maasfin import explain
        return explain.drift(self, x_current)

    def summary(self, line_length=None, positions=None, print_fn=None, expand_nested=False,
                show_trainable=False, layer_range=None) -> None:
        print_fn = print_fn or print
        rows = [("Layer (type)", "Output Shape", "Param #")]
        self._maybe_build()
        if not isinstance(self, Sequential):
            for t in self._inputs:
                rows.append((f"{t.name} (InputLayer)", shape_str(t.shape), "0"))
        for layer in self.layers:
            shape = shape_str(layer._output_shape) if layer._output_shape is not None else "?"
            params = f"{layer.count_params():,}" if self.built else "0 (unbuilt)"
            rows.append((f"{layer.name} ({type(layer).__name__})", shape, params))
        widths = [max(len(r[i]) for r in rows) + 2 for i in range(3)]
        if line_length:
            widths[0] = max(widths[0], line_length - widths[1] - widths[2])
        sep = "-" * sum(widths)
        print_fn(f'Model: "{self.name}"')
        print_fn(sep)
        for k, r in enumerate(rows):
            print_fn(r[0].ljust(widths[0]) + r[1].ljust(widths[1]) + r[2].rjust(widths[2]))
            if k == 0:
                print_fn("=" * sum(widths))
        print_fn(sep)
        if self.built:
            total = self.count_params()
            trainable = sum(l.count_trainable_params() for l in self.layers)
            print_fn(f" Total params: {total:,} ({4 * total / 1024:.2f} KB)")
            print_fn(f" Trainable params: {trainable:,} ({4 * trainable / 1024:.2f} KB)")
            print_fn(f" Non-trainable params: {total - trainable:,} ({4 * (total - trainable) / 1024:.2f} KB)")

    # -- saving (maasfin/saving.py; format in docs/file-format.md) ------------------------------
    def get_config(self) -> dict:
        """The architecture: each layer's {class_name, config} and, for functional models, the wiring."""
        return saving.model_config(self)

    @classmethod
    def from_config(cls, config: dict, custom_objects=None):
        """A new model (fresh weights) from `get_config()` output; validated like a model file."""
        if custom_objects:
            raise ValueError("from_config: custom_objects are not supported")
        return saving.model_from_config(config, cls)

    def save(self, filepath, overwrite: bool = True, include_optimizer: bool = True, metadata: dict | None = None):
        """Writes a `.maas` file (atomically): architecture, weights, compile config, optimizer
        state (unless include_optimizer=False), input schema and `metadata` (a JSON-able dict)."""
        saving.save_model(self, filepath, overwrite=overwrite, include_optimizer=include_optimizer,
                          metadata=metadata)

    def save_weights(self, filepath, overwrite: bool = True) -> None:
        """Writes the weights to a `.weights.safetensors` file (atomically)."""
        saving.save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath, skip_mismatch: bool = False) -> None:
        """Reads weights saved by `save_weights` (or the weights of a `.maas` file), validated
        against this model's weight names and shapes."""
        saving.load_weights(self, filepath, skip_mismatch=skip_mismatch)

    def to_bytes(self, include_optimizer: bool = True) -> bytes:
        """The `.maas` file as bytes, for in-memory transport (`maasfin.models.from_bytes`)."""
        return saving.to_bytes(self, include_optimizer=include_optimizer)

    def export(self, filepath, format="tf_saved_model", verbose=None, input_signature=None, **kwargs) -> None:
        """Keras's `model.export`: `format="onnx"` writes the inference graph as an ONNX file
        (atomically; needs `pip install 'maasfin[onnx]'`; see docs/export.md). `opset_version`
        (default 17) may be given. Other formats (Keras's default "tf_saved_model") are not available."""
        if format != "onnx":
            raise ValueError(f"export: format={format!r} is not supported; maasfin exports format='onnx' "
                             "(model.export('model.onnx', format='onnx'))")
        if input_signature is not None:
            raise ValueError("export: input_signature is not supported; the ONNX inputs are the model's inputs "
                             "with a dynamic batch dimension")
        unknown = sorted(set(kwargs) - {"opset_version"})
        if unknown:
            raise TypeError(f"export: unexpected arguments {unknown}")
        from maasfin import onnx_export
        onnx_export.export_onnx(self, filepath, opset_version=kwargs.get("opset_version"), verbose=bool(verbose))

    def __reduce__(self):
        # pickle and copy.deepcopy go through the .maas format: a built model as its bytes, an
        # unbuilt one as its config only.
        if self.built:
            return from_bytes, (self.to_bytes(),)
        return saving._from_config_document, (saving._dumps(saving._config_document(self)),)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"


class Sequential(Model):
    """A linear stack of layers, as keras.Sequential."""

    def __init__(self, layers=None, name: str | None = None, trainable: bool = True):
        super().__init__(name=name or unique_name("sequential"))
        self._layers: list[Layer] = []
        self._input_layer: InputLayer | None = None
        for layer in layers or []:
            self.add(layer)

    def add(self, layer) -> None:
        if isinstance(layer, KerasTensor) and isinstance(layer.layer, InputLayer):
            layer = layer.layer
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add: expected a maasfin layer, got {type(layer).__name__}")
        if self.built:
            raise ValueError(f"Sequential '{self.name}': cannot add layer '{layer.name}' after the model is built")
        if isinstance(layer, InputLayer):
            if layer.dtype == "string":
                raise ValueError(f"Sequential '{self.name}': string inputs need a functional model, e.g. "
                                 "x = Input(shape=(1,), dtype='string'); y = StringLookup(...)(x); ...")
            if self._layers or self._input_layer is not None:
                raise ValueError(f"Sequential '{self.name}': an Input must come first")
            self._input_layer = layer
            return
        if any(layer is l for l in self._layers):
            raise ValueError(f"Sequential '{self.name}': layer '{layer.name}' is already in the model")
        if layer._num_outputs() != 1:
            raise ValueError(f"Sequential '{self.name}': all layers in a Sequential model should have a single "
                             f"output tensor; layer '{layer.name}' has {layer._num_outputs()} (return_state=True). "
                             "Use the functional API")
        self._layers.append(layer)

    def pop(self) -> Layer:
        if self.built:
            raise ValueError(f"Sequential '{self.name}': cannot pop a layer after the model is built")
        if not self._layers:
            raise TypeError("There are no layers in the model.")
        return self._layers.pop()

    @property
    def layers(self) -> list[Layer]:
        return list(self._layers)

    def _declared_input_shape(self):
        if self._input_layer is not None:
            return self._input_layer.shape
        if self._layers and self._layers[0]._input_shape_arg is not None:
            return self._layers[0]._input_shape_arg
        return None

    def _input_shapes_for_display(self):
        shape = self._input_shapes[0] if self.built else self._declared_input_shape()
        if shape is None:
            raise ValueError(f"Sequential '{self.name}' has no input shape yet")
        return [shape]

    @property
    def inputs(self):
        return [self._input_layer.output] if self._input_layer is not None else []

    def build(self, input_shape=None) -> None:
        if input_shape is not None:
            shape = tuple(input_shape)
            if len(shape) < 2 or shape[0] is not None and not isinstance(shape[0], int):
                raise ValueError(f"Sequential.build: input_shape must include the batch dimension, e.g. (None, 10), got {input_shape!r}")
            self._ensure_built([shape[1:]])
        else:
            self._ensure_built()

    def _build_graph(self, data_shapes=None) -> None:
        if not self._layers:
            raise ValueError(f"Sequential '{self.name}' has no layers; add some with model.add(...)")
        shape = self._declared_input_shape()
        if shape is None:
            if not data_shapes:
                raise ValueError(f"Sequential '{self.name}' has no input shape: pass input_shape=(n,) to the "
                                 "first layer, start with maasfin.Input(shape=(n,)), or call fit/predict first")
            shape = tuple(int(d) for d in data_shapes[0])
        g = _core.Graph()
        node = g.add_input(list(shape), self._input_layer.name if self._input_layer else "input_layer")
        mask, masks = None, {}
        for layer in self._layers:
            out_mask = layer._mask_flow([mask], [node])
            inputs = [node]
            if layer._mask_in is not None:
                inputs.append(_mask_node(g, masks, layer._mask_in, lambda n: n))
            node = layer._attach_all(g, inputs)[0]
            mask = out_mask
        g.build(node, draw_seed())
        self._output_mask = mask
        self._input_shapes = [tuple(shape)]
        for layer in self._layers:
            layer._on_built()
        self._graph = g
