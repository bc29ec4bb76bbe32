"""The functional `Model(inputs, outputs)`: a graph of layers built into one core graph.

A model is a graph of Python layers until it is built; building creates one core graph
(`_core.Graph`) that owns all parameters in one arena. Training, evaluation and prediction are
in trainers/.
"""

from __future__ import annotations

import threading

import numpy as np

from maasfin import _core, explain, reports
from maasfin.data import shape_str
from maasfin.layers.base import InputLayer, KerasTensor, Layer, Mask, unique_name
from maasfin.layers.monotonic import check_monotone_paths
from maasfin.saving import architecture, maas, onnx
from maasfin.saving import config as saving_config
from maasfin.saving import weights as saving_weights
from maasfin.saving.file_format import dumps
from maasfin.seeds import draw_seed
from maasfin.trainers.trainer import TrainingMixin


def mask_node(g, cache: dict, mask: Mask, node_of) -> int:
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

    _functional = True  # inputs are Input tensors (Sequential: a declared or inferred input shape)

    def __init__(self, inputs=None, outputs=None, name: str | None = None, **kwargs):
        if kwargs:
            raise TypeError(f"Model: unexpected arguments {sorted(kwargs)}")
        self.name = name or unique_name("functional" if inputs is not None else "model")
        self._graph = None
        self._max_params = None  # set by loaders: the arena the file's weights account for
        self._build_lock = threading.Lock()
        self._feature_names = None
        self._pending_names = None
        self.stop_training = False
        self.history = None
        self.metadata = None  # the user metadata of the file the model was loaded from
        self.report = None  # a validation report (reports.Report), saved with the model
        self._init_training()
        if type(self) is Model or inputs is not None:
            if inputs is None or outputs is None:
                raise ValueError("Model: both inputs and outputs are required, e.g. Model(inputs=x, outputs=y)")
            self._set_io(inputs, outputs)

    # -- structure ---------------------------------------------------------------------------
    def _set_io(self, inputs, outputs) -> None:
        ins = (
            list(inputs.values())
            if isinstance(inputs, dict)
            else (list(inputs) if isinstance(inputs, (list, tuple)) else [inputs])
        )
        outs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
        for t in ins + outs:
            if not isinstance(t, KerasTensor):
                raise TypeError(
                    f"model '{self.name}': inputs and outputs must be tensors from maasfin.Input "
                    f"and layer calls, got {type(t).__name__}"
                )
        if len(outs) != 1:
            raise ValueError(f"model '{self.name}': exactly one output is supported, got {len(outs)}")
        for t in ins:
            if not isinstance(t.layer, InputLayer):
                raise ValueError(
                    f"model '{self.name}': every input must come from maasfin.Input, "
                    f"'{t.name}' is the output of layer '{t.layer.name}'"
                )
        order = _topological(outs)
        reached = [t for t in order if isinstance(t.layer, InputLayer)]
        missing = [t.name for t in reached if all(t is not u for u in ins)]
        if missing:
            raise ValueError(f"model '{self.name}': the output depends on input(s) {missing} that are not in `inputs`")
        self._inputs, self._outputs = ins, outs
        self._monotonic = check_monotone_paths(outs[0], f"model '{self.name}'")
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
                    raise ValueError(
                        f"model '{self.name}': the string input '{t.name}' feeds {len(consumers)} layers "
                        f"{consumers}; a string input must feed exactly one StringLookup or Hashing "
                        "layer (give each its own Input)"
                    )

    @property
    def inputs(self):
        return list(self._inputs)

    @property
    def monotonic_features(self) -> dict[str, int]:
        """{raw feature: +1 or -1}: the monotone effects declared on the model's MonotonicDense layers,
        checked from input to output when the model is made, when it is loaded and on every use."""
        if not getattr(self, "_monotonic", None):
            return {}
        # Checked again on every use: a Calibration's direction depends on its weights (loaded, set).
        return check_monotone_paths(self._outputs[0], f"model '{self.name}'")

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
                inputs.insert(1, mask_node(g, masks, t.layer._mask_in, node_of))
            for k, node in enumerate(t.layer._attach_all(g, inputs)):
                ids[(id(t.layer), k)] = node
        g.build(node_of(self._outputs[0]), draw_seed(), -1 if self._max_params is None else self._max_params)
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
        if self._graph is None and (self._functional or self._declared_input_shape() is not None):
            self._ensure_built()

    def _require_built(self, what: str) -> None:
        self._maybe_build()
        if self._graph is None:
            raise ValueError(
                f"model '{self.name}' is not built yet, so it has no {what}: call fit, predict "
                "or build(input_shape) first, or give the first layer an input shape"
            )

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
            layer.set_weights(weights[i : i + n])
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
        return explain.explain(
            self, x, method=method, baseline=baseline, steps=steps, output=output, tolerance=tolerance
        )

    def set_reason_codes(self, codes: dict) -> None:
        """feature -> (code, text); saved with the model and used by `reasons`."""
        explain.set_reason_codes(self, codes)

    def reasons(self, x, top_k=4, direction="adverse", adverse="high", baseline=None, steps=64, output=0):
        """Per row, the top-k features pushing the score toward the adverse outcome, with codes."""
        return explain.reasons(
            self, x, top_k=top_k, direction=direction, adverse=adverse, baseline=baseline, steps=steps, output=output
        )

    def drift(self, x_current):
        """Population Stability Index per feature and for the score against the fit-time reference."""
        return explain.drift(self, x_current)

    def summary(
        self,
        line_length=None,
        positions=None,
        print_fn=None,
        expand_nested=False,
        show_trainable=False,
        layer_range=None,
    ) -> None:
        print_fn = print_fn or print
        rows = [("Layer (type)", "Output Shape", "Param #")]
        self._maybe_build()
        if self._functional:
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

    # -- saving (maasfin/saving/; format in docs/file-format.md) ------------------------------
    def get_config(self) -> dict:
        """The architecture: each layer's {class_name, config} and, for functional models, the wiring."""
        return saving_config.model_config(self)

    @classmethod
    def from_config(cls, config: dict, custom_objects=None):
        """A new model (fresh weights) from `get_config()` output; validated like a model file."""
        if custom_objects:
            raise ValueError("from_config: custom_objects are not supported")
        return architecture.model_from_config(config, cls)

    def save(
        self,
        filepath,
        overwrite: bool = True,
        include_optimizer: bool = True,
        metadata: dict | None = None,
        report=None,
    ):
        """Writes a `.maas` file (atomically): architecture, weights, compile config, optimizer
        state (unless include_optimizer=False), input schema, `metadata` (a JSON-able dict) and a
        validation report (`report`, default `model.report`; loading restores it as `model.report`)."""
        maas.save_model(
            self, filepath, overwrite=overwrite, include_optimizer=include_optimizer, metadata=metadata, report=report
        )
        if report is not None:
            self.report = report

    def validation_report(self, x, y, groups=None, reference=None, cutoff=0.5, **options):
        """The validation report / model card on data (x, y): model details, intended use (from
        metadata), discrimination, calibration, stability, fair lending (with `groups`) and
        explanations (`maasfin.reports.validation_report` lists the options). Returns a Report."""
        return reports.validation_report(self, x, y, groups=groups, reference=reference, cutoff=cutoff, **options)

    def save_weights(self, filepath, overwrite: bool = True) -> None:
        """Writes the weights to a `.weights.safetensors` file (atomically)."""
        saving_weights.save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath, skip_mismatch: bool = False) -> None:
        """Reads weights saved by `save_weights` (or the weights of a `.maas` file), validated
        against this model's weight names and shapes."""
        saving_weights.load_weights(self, filepath, skip_mismatch=skip_mismatch)

    def to_bytes(self, include_optimizer: bool = True) -> bytes:
        """The `.maas` file as bytes, for in-memory transport (`maasfin.models.from_bytes`)."""
        return maas.to_bytes(self, include_optimizer=include_optimizer)

    def export(self, filepath, format="tf_saved_model", verbose=None, input_signature=None, **kwargs) -> None:
        """Keras's `model.export`: `format="onnx"` writes the inference graph as an ONNX file
        (atomically; needs `pip install 'maasfin[onnx]'`; see docs/export.md). `opset_version`
        (default 17) may be given. Other formats (Keras's default "tf_saved_model") are not available."""
        if format != "onnx":
            raise ValueError(
                f"export: format={format!r} is not supported; maasfin exports format='onnx' "
                "(model.export('model.onnx', format='onnx'))"
            )
        if input_signature is not None:
            raise ValueError(
                "export: input_signature is not supported; the ONNX inputs are the model's inputs "
                "with a dynamic batch dimension"
            )
        unknown = sorted(set(kwargs) - {"opset_version"})
        if unknown:
            raise TypeError(f"export: unexpected arguments {unknown}")
        onnx.export_onnx(self, filepath, opset_version=kwargs.get("opset_version"), verbose=bool(verbose))

    def __reduce__(self):
        # pickle and copy.deepcopy go through the .maas format: a built model as its bytes, an
        # unbuilt one as its config only.
        if self.built:
            return maas.from_bytes, (self.to_bytes(),)
        return architecture.from_config_document, (dumps(saving_config.config_document(self)),)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"
