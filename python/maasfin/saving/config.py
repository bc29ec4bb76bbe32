"""Model configs written: a model's architecture, compile config and input schema as JSON."""

from __future__ import annotations

from maasfin.saving.explanations import explanation_state
from maasfin.saving.file_format import (
    check_int,
    check_str,
    fail,
)
from maasfin.saving.objects import (
    class_entry,
    layer_classes,
    loss_classes,
    metric_classes,
    model_classes,
    optimizer_classes,
)


# -- writing: configs ----------------------------------------------------------------------------
def layer_entry(layer) -> dict:
    return class_entry(layer, layer_classes(), f"layer '{layer.name}'")


def check_saveable(model) -> None:
    Model, Sequential = model_classes()
    if type(model) not in (Model, Sequential):
        raise ValueError(
            f"cannot save model '{model.name}' of class {type(model).__name__}: only Sequential "
            "and functional Model(inputs, outputs) models can be saved"
        )
    names = [layer.name for layer in all_layers(model)]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(
            f"cannot save model '{model.name}': several layers are named {dup}; layer names "
            "must be unique within a model"
        )


def all_layers(model) -> list:
    """Input layers first, then the other layers in model order."""
    Sequential = model_classes()[1]
    if isinstance(model, Sequential):
        return ([model._input_layer] if model._input_layer is not None else []) + model.layers
    return [t.layer for t in model._inputs] + model.layers


def model_config(model) -> dict:
    """The architecture of `model` (Keras's `model.get_config()`): layer configs and wiring."""
    Sequential = model_classes()[1]
    if isinstance(model, Sequential):
        cfg = {"name": model.name, "layers": [layer_entry(l) for l in all_layers(model)]}
        if model.built:
            cfg["input_shape"] = list(model._input_shapes[0])
        return cfg
    entries = [{**layer_entry(t.layer), "name": t.layer.name, "inbound_layers": []} for t in model._inputs]
    for t in model._order:
        entries.append(
            {**layer_entry(t.layer), "name": t.layer.name, "inbound_layers": [tensor_ref(u) for u in t.inputs]}
        )
    return {
        "name": model.name,
        "layers": entries,
        "input_layers": [t.layer.name for t in model._inputs],
        "output_layers": [tensor_ref(model._outputs[0])],
    }


def tensor_ref(t) -> str | list:
    """A tensor in saved wiring: its layer's name, or [name, output index] for a layer with several
    outputs (LSTM with return_state)."""
    return t.layer.name if t.layer._num_outputs() == 1 else [t.layer.name, int(t.index)]


def parse_ref(x, src: str, where: str) -> tuple[str, int | None]:
    if isinstance(x, list):
        if len(x) != 2:
            raise fail(src, f"{where} must be a layer name or [name, output index], got a list of {len(x)}")
        return check_str(x[0], src, where, 1024), check_int(x[1], src, f"{where} output index", 0, 64)
    return check_str(x, src, where, 1024), None


def metric_entry(m):
    if isinstance(m, str):
        return m
    if isinstance(m, type):
        m = m()
    return class_entry(m, metric_classes(), "metric")


def metric_split(model) -> tuple[list, list]:
    """(metrics, weighted_metrics) as given to compile()."""
    plain, weighted = [], []
    for item in model._metric_ids:
        m, w = item if isinstance(item, tuple) else (item, False)
        (weighted if w else plain).append(m)
    return plain, weighted


def compile_entry(model):
    if not model.compiled:
        return None
    plain, weighted = metric_split(model)
    return {
        "optimizer": class_entry(model.optimizer, optimizer_classes(), "optimizer"),
        "loss": class_entry(model.loss, loss_classes(), "loss"),
        "metrics": [metric_entry(m) for m in plain],
        "weighted_metrics": [metric_entry(m) for m in weighted],
    }


def schema_of(model) -> dict:
    Sequential = model_classes()[1]
    if isinstance(model, Sequential):
        shape = model._input_shapes[0] if model.built else model._declared_input_shape()
        name = model._input_layer.name if model._input_layer is not None else "input_layer"
        inputs = [{"name": name, "shape": None if shape is None else list(shape), "dtype": "float32"}]
    else:
        inputs = [{"name": t.name, "shape": list(t.shape[1:]), "dtype": t.layer.dtype} for t in model._inputs]
    return {"inputs": inputs, "feature_names": model.feature_names}


def config_document(model) -> dict:
    Sequential = model_classes()[1]
    return {
        "model": {
            "class_name": "Sequential" if isinstance(model, Sequential) else "Functional",
            "config": model_config(model),
        },
        "compile_config": compile_entry(model),
        "input_schema": schema_of(model),
        "explanations": explanation_state(model),
    }
