"""Writing Keras 3 files: `.keras` (zip of metadata.json, config.json, model.weights.h5), legacy
`.h5` and `.weights.h5` weights files, as Keras 3 itself writes them for the same model.

`model.save("model.keras")`, `model.save("model.h5")`, `model.save_weights("x.weights.h5")` and
`model.load_weights("x.weights.h5")` dispatch here (py). The config of every layer is
Keras's own: the Keras default config of the class (keras_defaults.json, extracted from Keras by
tests/fixtures/keras/make_keras_defaults.py, in Keras's key order) with maasfin's values written
over it; initializers, regularizers and constraints become Keras object configs; every layer gets
Keras's `build_config`, functional layers their `inbound_nodes` (`__keras_tensor__` with
`keras_history`). Weights go to the HDF5 groups Keras's loader visits: `layers/<snake class
name>[_n]/vars/<i>`, with the nested groups of recurrent cells, Bidirectional, TimeDistributed and
MultiHeadAttention. A layer or option Keras lacks (Imputation, maasfin-only arguments not at their
default) is refused with an error naming the layer: such a model saves as `.maas`.

The optimizer's state is not written (Keras starts a fresh optimizer, as maasfin does when it reads
Keras files). HDF5 is written with h5py (`pip install "maasfin[keras]"`) in this process: the data
is maasfin's own, nothing is parsed.
"""

from __future__ import annotations

import copy
import datetime
import io
import json
import os

import numpy as np

from maasfin.saving import archive
from maasfin.saving.checks import check_suffix
from maasfin.saving.config import check_saveable, metric_split
from maasfin.saving.keras.config import (
    KERAS_VERSION,
    import_h5py,
    keras_config,
    keras_defaults,
    keras_object,
    keras_order,
    maasfin_default,
    nested_object,
    plain_value,
    refuse,
)
from maasfin.saving.keras.h5 import keras_snake
from maasfin.saving.objects import model_classes

__all__ = ["save_keras_model", "save_keras_weights"]

_MHA_GROUPS = ("query_dense", "key_dense", "value_dense", "output_dense")


# -- compile config --------------------------------------------------------------------------------
def _compile_object(kind: str, obj, what: str) -> dict:
    name = type(obj).__name__
    spec = keras_defaults()[kind].get(name)
    if spec is None:
        raise refuse(what, f"{kind[:-1]} {name} has no Keras equivalent")
    out = copy.deepcopy(spec["config"])
    for k, v in plain_value(obj.get_config()).items():
        if k == "learning_rate" and isinstance(v, dict):  # a schedule, as {"class_name", "config"}
            v = nested_object("schedules", v, f"{what} learning-rate schedule")
        if k not in out:
            has, default = maasfin_default(type(obj), k)
            if (has and plain_value(default) == v) or v is None:
                continue
            raise refuse(what, f"{name} option {k}={v!r} is not in the config Keras keeps for {name}")
        out[k] = v
    return keras_object(kind, name, out)


def compile_config(model):
    if not model.compiled:
        return None
    plain, weighted = metric_split(model)

    def metric(m):
        if isinstance(m, str):
            return m
        return _compile_object("metrics", m() if isinstance(m, type) else m, "a metric")

    loss = model.loss
    return {
        "optimizer": _compile_object("optimizers", model.optimizer, "the optimizer"),
        "loss": _compile_object("losses", loss, "the loss"),
        "loss_weights": None,
        "metrics": [metric(m) for m in plain] or None,
        "weighted_metrics": [metric(m) for m in weighted] or None,
        "run_eagerly": False,
        "steps_per_execution": 1,
        "jit_compile": False,
    }


def _var_groups(layer, group: str, weights: list) -> list[tuple[str, list, str]]:
    """[(HDF5 group, its arrays, Keras's name of that object)] for one layer, as Keras nests them."""
    cls = type(layer).__name__
    snake = {"SimpleRNN": "simple_rnn_cell", "LSTM": "lstm_cell", "GRU": "gru_cell"}
    if cls in snake:
        return [(group, [], layer.name), (f"{group}/cell", weights, snake[cls])]
    if cls == "Bidirectional":
        half = len(weights) // 2
        return (
            [(group, [], layer.name)]
            + _var_groups(layer.layer, f"{group}/forward_layer", weights[:half])
            + _var_groups(layer.layer, f"{group}/backward_layer", weights[half:])
        )
    if cls == "TimeDistributed":
        return [(group, [], layer.name)] + _var_groups(layer.layer, f"{group}/layer", weights)
    if cls == "MultiHeadAttention":
        per = 2 if layer.use_bias else 1
        names = ("query", "key", "value", "attention_output")
        return [
            (group, [], layer.name),
            (f"{group}/_dropout_layer", [], "dropout"),
            (f"{group}/_softmax", [], "softmax"),
        ] + [
            (f"{group}/{sub}", weights[i * per : (i + 1) * per], n)
            for i, (sub, n) in enumerate(zip(_MHA_GROUPS, names))
        ]
    if cls == "Discretization":
        return [(group, [], layer.name)]  # Keras keeps the bin boundaries in the config only
    if cls == "Normalization" and weights:
        # Keras's adapted Normalization also holds `count` (an int scalar kept "for backwards
        # compatibility", unused by the layer); maasfin does not track it.
        return [(group, list(weights) + [np.array(0, dtype=np.int32)], layer.name)]
    return [(group, weights, layer.name)]


def _layer_groups(model) -> list[tuple[object, str]]:
    """(layer, its group "layers/<snake>[_n]") in Keras's model.layers order (functional models list
    their InputLayers too, Sequential models do not)."""
    Sequential = model_classes()[1]
    layers = list(model.layers) if isinstance(model, Sequential) else [t.layer for t in keras_order(model)]
    counts, out = {}, []
    for layer in layers:
        base = keras_snake(type(layer).__name__)
        n = counts.get(base, 0)
        counts[base] = n + 1
        out.append((layer, f"layers/{base}" if n == 0 else f"layers/{base}_{n}"))
    return out


def _write_weights_h5(model, f) -> None:
    h5py = import_h5py()
    with h5py.File(f, "w") as h5:
        h5.create_group("layers")
        for layer, group in _layer_groups(model):
            weights = layer.get_weights() if type(layer).__name__ != "InputLayer" and layer._param_specs() else []
            for path, arrays, name in _var_groups(layer, group, weights):
                g = h5.require_group(f"{path}/vars")
                g.attrs["name"] = name
                for i, a in enumerate(arrays):
                    a = np.asarray(a)
                    data = np.ascontiguousarray(a, dtype=np.float32) if a.dtype.kind == "f" else a
                    g.create_dataset(str(i), data=data)
        top = h5.create_group("vars")
        top.attrs["name"] = model.name


def _weights_blob(model) -> bytes:
    buf = io.BytesIO()
    _write_weights_h5(model, buf)
    return buf.getvalue()


def _check_path(path, suffixes, what):
    return check_suffix(path, suffixes, what)


def save_keras_model(model, filepath, overwrite: bool = True) -> None:
    """model.save("x.keras") / ("x.h5"): the Keras 3 zip, or the legacy HDF5 file."""
    path = os.fspath(filepath)
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"save: '{path}' exists and overwrite=False")
    import_h5py()
    cfg = keras_config(model)
    cc = compile_config(model)
    if path.lower().endswith(".keras"):
        cfg["compile_config"] = cc if cc is not None else {}
        members = {
            "metadata.json": json.dumps(
                {"keras_version": KERAS_VERSION, "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S")}
            ).encode(),
            "config.json": json.dumps(cfg).encode(),
            "model.weights.h5": _weights_blob(model),
        }
        archive.atomic_write(path, lambda f: archive.write_archive(f, members))
    else:
        archive.atomic_write(path, lambda f: _write_legacy_h5(model, cfg, cc, f))


def _write_legacy_h5(model, cfg: dict, cc, f) -> None:
    """Keras 3's legacy_h5_format.save_model_to_hdf5: the model config and training config as root
    attributes, each layer's weights under model_weights/<layer>/<model>/<layer>/<weight>."""
    h5py = import_h5py()
    top = {k: v for k, v in cfg["config"].items() if k != "layers"}
    top["layers"] = [
        {k: v for k, v in e.items() if k not in ("module", "registered_name", "build_config")}
        for e in cfg["config"]["layers"]
    ]
    legacy = {"class_name": cfg["class_name"], "config": top}
    if cc is not None:  # legacy_h5_format: the optimizer under optimizer_config, objects without module

        def bare(o):
            return {"class_name": o["class_name"], "config": o["config"]} if isinstance(o, dict) else o

        cc = {
            "loss": bare(cc["loss"]),
            "loss_weights": None,
            "metrics": [bare(m) for m in cc["metrics"]] if cc["metrics"] else None,
            "weighted_metrics": [bare(m) for m in cc["weighted_metrics"]] if cc["weighted_metrics"] else None,
            "run_eagerly": False,
            "steps_per_execution": 1,
            "jit_compile": False,
            "optimizer_config": bare(cc["optimizer"]),
        }
    with h5py.File(f, "w") as h5:
        h5.attrs["backend"] = "jax"
        h5.attrs["keras_version"] = KERAS_VERSION
        h5.attrs["model_config"] = json.dumps(legacy)
        if cc is not None:
            h5.attrs["training_config"] = json.dumps(cc)
        mw = h5.create_group("model_weights")
        mw.attrs["backend"] = "jax"
        mw.attrs["keras_version"] = KERAS_VERSION
        layers = [layer for layer, _ in _layer_groups(model)]  # Keras loads them by position
        mw.attrs["layer_names"] = np.array([l.name for l in layers], dtype=h5py.string_dtype())
        for layer in layers:
            g = mw.create_group(layer.name)
            specs = layer._param_specs() if type(layer).__name__ not in ("InputLayer", "Discretization") else []
            wnames = [f"{model.name}/{layer.name}/{p}" for p, _, _ in specs]
            arrays = [np.ascontiguousarray(a, dtype=np.float32) for a in layer.get_weights()] if specs else []
            if type(layer).__name__ == "Normalization" and specs:  # Keras's count (see _var_groups)
                wnames.append(f"{model.name}/{layer.name}/count")
                arrays.append(np.array(0, dtype=np.int32))
            g.attrs["weight_names"] = np.array(wnames, dtype=h5py.string_dtype()) if wnames else np.array([], "float64")
            for wname, a in zip(wnames, arrays):
                g.create_dataset(wname, data=a)
        top = mw.create_group("top_level_model_weights")
        top.attrs["weight_names"] = np.array([], "float64")


def save_keras_weights(model, filepath, overwrite: bool = True) -> None:
    """model.save_weights("x.weights.h5"): Keras 3's weights file (model.weights.h5's layout)."""
    path = os.fspath(filepath)
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"save_weights: '{path}' exists and overwrite=False")
    import_h5py()
    check_saveable(model)
    model._require_built("weights")
    keras_config(model)  # refuses layers Keras lacks
    blob = _weights_blob(model)
    archive.atomic_write(path, lambda f: f.write(blob))
