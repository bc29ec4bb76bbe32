"""ONNX export: `model.export("credit.onnx", format="onnx")` (docs/export.md).

The model's inference graph is rebuilt from its layers' configs and weights with `onnx.helper`,
one small group of standard ONNX operators per layer, so that any ONNX runtime scores like
`model.predict` (to float32 rounding). Training-only behaviour is dropped: Dropout and the noise
layers are identities and BatchNormalization uses its moving statistics, as at predict.

Graph inputs are the model's inputs, by name, as float32 tensors `(batch, *shape)` with a dynamic
batch dimension; the one graph output is named after the model's output layer. Layers without a
converter are refused with a ValueError that names them; nothing is written then.
"""

from __future__ import annotations

import json
import os

import numpy as np

from maasfin.saving.archive import atomic_write
from maasfin.saving.objects import model_classes
from maasfin.saving.onnx.converters import converter_table, supported_layers
from maasfin.saving.onnx.graph import DEFAULT_OPSET, MAX_PROTO_BYTES, MIN_OPSET, OnnxGraph, import_onnx
from maasfin.version import VERSION

__all__ = ["to_onnx", "export_onnx", "DEFAULT_OPSET", "supported_layers"]


# -- the model ---------------------------------------------------------------------------------
def _structure(model):
    """[(input name, per-sample shape)], [(layer, [input tensor names], per-sample input shapes)]."""
    Model, Sequential = model_classes()
    if type(model) not in (Model, Sequential):
        raise ValueError(
            f"cannot export model '{model.name}' of class {type(model).__name__} to ONNX: only "
            "Sequential and functional Model(inputs, outputs) models can be exported"
        )
    model._require_built("ONNX graph")
    masked = [layer.name for layer in model.layers if layer._mask_in is not None]
    if masked:
        raise ValueError(
            f"cannot export model '{model.name}' to ONNX: layer(s) {masked} read a Keras mask "
            "(Masking / Embedding(mask_zero=True)), which the ONNX export does not carry"
        )
    if isinstance(model, Sequential):
        name = model._input_layer.name if model._input_layer is not None else "input_layer"
        inputs = [(name, tuple(model._input_shapes[0]))]
        steps, prev, shape = [], name, tuple(model._input_shapes[0])
        for layer in model.layers:
            steps.append((layer, [prev], [shape]))
            prev, shape = layer.name, tuple(layer.output_shape[1:])
        return inputs, steps
    for t in model._inputs:
        if t.dtype == "string":
            consumer = next(u.layer for u in model._order if any(v is t for v in u.inputs))
            raise ValueError(
                f"cannot export model '{model.name}' to ONNX: the string input '{t.name}' (encoded by "
                f"{type(consumer).__name__} '{consumer.name}' outside the graph) has no ONNX form; "
                "only numeric inputs can be exported"
            )
    inputs = [(t.name, tuple(t.shape[1:])) for t in model._inputs]
    steps = [(t.layer, [u.name for u in t.inputs], [tuple(u.shape[1:]) for u in t.inputs]) for t in model._order]
    return inputs, steps


def to_onnx(model, opset_version: int | None = None):
    """The model's inference graph as an `onnx.ModelProto` (checked with `onnx.checker`)."""
    onnx, helper, _ = import_onnx()
    newest = onnx.defs.onnx_opset_version()
    opset = DEFAULT_OPSET if opset_version is None else opset_version
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)) or not MIN_OPSET <= opset <= newest:
        raise ValueError(
            f"export: opset_version must be an integer in [{MIN_OPSET}, {newest}] (the installed onnx "
            f"package's newest), got {opset_version!r}"
        )
    opset = int(opset)
    inputs, steps = _structure(model)
    if not steps:
        raise ValueError(f"cannot export model '{model.name}' to ONNX: it has no layers")
    converters = converter_table()
    unsupported = [f"{type(layer).__name__} '{layer.name}'" for layer, _, _ in steps if type(layer) not in converters]
    if unsupported:
        raise ValueError(
            f"cannot export model '{model.name}' to ONNX: no ONNX conversion for layer(s) "
            f"{', '.join(unsupported)}; supported layers: {', '.join(supported_layers())}"
        )
    names = [n for n, _ in inputs] + [layer.name for layer, _, _ in steps]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"cannot export model '{model.name}' to ONNX: several inputs/layers are named {dup}")

    g = OnnxGraph(opset, set(names))
    for layer, xs, shapes in steps:
        converters[type(layer)](g, layer, xs, layer.name, shapes)
    out_layer = steps[-1][0]
    f32 = onnx.TensorProto.FLOAT
    graph = helper.make_graph(
        g.nodes,
        model.name,
        [helper.make_tensor_value_info(n, f32, ["batch", *s]) for n, s in inputs],
        [helper.make_tensor_value_info(out_layer.name, f32, ["batch", *out_layer.output_shape[1:]])],
        initializer=g.initializers,
    )
    opsets = [helper.make_opsetid("", opset)]
    proto = helper.make_model(
        graph,
        opset_imports=opsets,
        producer_name="maasfin",
        producer_version=VERSION,
        ir_version=helper.find_min_ir_version_for(opsets),
        doc_string=f"maasfin model '{model.name}' (inference graph)",
    )
    meta = {
        "maasfin.model_name": model.name,
        "maasfin.version": VERSION,
        "maasfin.inputs": json.dumps([{"name": n, "shape": list(s)} for n, s in inputs]),
    }
    if model.feature_names is not None:
        meta["maasfin.feature_names"] = json.dumps(model.feature_names)
    helper.set_model_props(proto, meta)
    if proto.ByteSize() > MAX_PROTO_BYTES:
        raise ValueError(f"cannot export model '{model.name}' to ONNX: the graph is larger than protobuf's 2 GiB limit")
    onnx.checker.check_model(proto, full_check=True)
    return proto


def export_onnx(model, filepath, opset_version: int | None = None, verbose: bool = False) -> None:
    """Writes `to_onnx(model)` to `filepath` atomically (temporary file, fsync, os.replace)."""
    path = os.fspath(filepath)
    if not isinstance(path, str):
        raise TypeError(f"export: filepath must be a str or os.PathLike, got {type(filepath).__name__}")
    data = to_onnx(model, opset_version).SerializeToString()
    atomic_write(path, lambda f: f.write(data))
    if verbose:
        print(f"Saved ONNX model '{model.name}' to {path} ({len(data):,} bytes)")
