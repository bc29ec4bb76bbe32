"""Keras 3 configs of maasfin models, as Keras itself writes them (keras_defaults.json as the template)."""

from __future__ import annotations

import copy
import functools
import inspect
import json
import os
import threading

import numpy as np

from maasfin.layers.base import INITIALIZER_ALIASES
from maasfin.saving.config import check_saveable
from maasfin.saving.objects import model_classes

_POLICY = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": None}
_INPUT_DTYPES = ("int32", "int64", "bool", "string")


@functools.lru_cache(maxsize=1)
def keras_defaults() -> dict:
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "keras_defaults.json")) as f:
        return json.load(f)


KERAS_VERSION = "3.15.1"  # the Keras release whose layout keras_defaults.json records


def import_h5py():
    try:
        import h5py
    except ImportError:
        raise ImportError(
            'writing Keras .keras/.h5/.weights.h5 files needs h5py: pip install "maasfin[keras]"'
        ) from None
    return h5py


def refuse(where: str, why: str) -> ValueError:
    return ValueError(f"cannot write {where} to a Keras file: {why}; save the model as .maas instead")


def keras_object(kind: str, class_name: str, config: dict) -> dict:
    return {
        "module": keras_defaults()[kind][class_name]["module"],
        "class_name": class_name,
        "config": config,
        "registered_name": None,
    }


def _initializer(name: str, where: str) -> dict:
    cls = {v: k for k, v in INITIALIZER_ALIASES.items()}.get(name) or {
        "uniform": "RandomUniform",
        "normal": "RandomNormal",
    }.get(name)
    if cls is None or cls not in keras_defaults()["initializers"]:
        raise refuse(where, f"initializer {name!r} has no Keras equivalent")
    return keras_object("initializers", cls, copy.deepcopy(keras_defaults()["initializers"][cls]["config"]))


def nested_object(kind: str, value, where: str) -> dict:
    """A regularizer/constraint {"class_name", "config"} as a Keras object config."""
    name, cfg = value.get("class_name"), value.get("config") or {}
    spec = keras_defaults()[kind].get(name)
    if spec is None:
        raise refuse(where, f"{name!r} has no Keras equivalent")
    out = copy.deepcopy(spec["config"])
    for k, v in cfg.items():
        if k not in out:
            raise refuse(where, f"{name} option {k}={v!r} has no Keras equivalent")
        out[k] = v
    return keras_object(kind, name, out)


def plain_value(v):
    if isinstance(v, tuple):
        return [plain_value(x) for x in v]
    if isinstance(v, list):
        return [plain_value(x) for x in v]
    if isinstance(v, dict):
        return {k: plain_value(x) for k, x in v.items()}
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    return v


def maasfin_default(cls, key):
    for klass in cls.__mro__:
        init = vars(klass).get("__init__")
        if init is not None:
            p = inspect.signature(init).parameters.get(key)
            if p is not None and p.default is not inspect.Parameter.empty:
                return True, p.default
    return False, None


# Keras stores these as tuples (lists in JSON) even when given an int.
_TUPLES = {
    "Conv1D": ("kernel_size", "strides", "dilation_rate"),
    "Conv2D": ("kernel_size", "strides", "dilation_rate"),
    "MaxPooling1D": ("pool_size", "strides"),
    "AveragePooling1D": ("pool_size", "strides"),
    "MaxPooling2D": ("pool_size", "strides"),
    "AveragePooling2D": ("pool_size", "strides"),
    "ZeroPadding1D": ("padding",),
    "ZeroPadding2D": ("padding",),
}
_RANK = {"Conv1D": 1, "Conv2D": 2, "MaxPooling1D": 1, "AveragePooling1D": 1, "MaxPooling2D": 2, "AveragePooling2D": 2}


def _tuple(cls: str, key: str, v):
    if v is None:
        return None
    if cls == "ZeroPadding1D":
        return [v, v] if isinstance(v, int) else list(v)
    if cls == "ZeroPadding2D":
        if isinstance(v, int):
            return [[v, v], [v, v]]
        return [[p, p] if isinstance(p, int) else list(p) for p in v]
    return [v] * _RANK[cls] if isinstance(v, int) else list(v)


_NEEDS_TENSORFLOW = ("StringLookup", "IntegerLookup", "Hashing", "HashedCrossing")


def _keras_layer_config(layer, where: str) -> tuple[str, dict]:
    """(Keras class name, Keras config) of a maasfin layer."""
    cls = type(layer).__name__
    spec = keras_defaults()["layers"].get(cls)
    if cls in _NEEDS_TENSORFLOW:
        raise refuse(
            where,
            f"maasfin does not write {cls} to Keras files: Keras 3's {cls} needs TensorFlow, so "
            "the file would not load under Keras's jax or torch backends",
        )
    if spec is None or cls == "InputLayer":
        raise refuse(where, f"{cls} has no Keras equivalent that maasfin writes")
    mcfg = plain_value(layer.get_config())
    out = copy.deepcopy(spec["config"])
    out["name"] = layer.name
    if "trainable" in out:
        out["trainable"] = bool(getattr(layer, "trainable", True))
    if isinstance(out.get("dtype"), dict):
        out["dtype"] = copy.deepcopy(_POLICY)
    if mcfg.get("activity_regularizer") is not None:  # Keras's base Layer config records it after dtype
        items = list(out.items())
        at = [k for k, _ in items].index("dtype") + 1 if "dtype" in out else 0
        out = dict(
            items[:at]
            + [("activity_regularizer", None)]
            + [(k, v) for k, v in items[at:] if k != "activity_regularizer"]
        )
    for key, value in mcfg.items():
        if key in ("name", "trainable", "dtype", "input_shape") or (
            cls == "MultiHeadAttention" and key in ("use_causal_mask", "return_attention_scores")
        ):
            # input_shape becomes the model's InputLayer; MultiHeadAttention's use_causal_mask is a
            # call argument in Keras (inbound_nodes).
            continue
        if key not in out:
            has, default = maasfin_default(type(layer), key)
            if (has and plain_value(default) == value) or value is None:
                continue
            raise refuse(where, f"its option {key}={value!r} has no Keras equivalent")
        if key.endswith("_initializer") and isinstance(value, str):
            value = _initializer(value, f"{where} {key}")
        elif key.endswith("_regularizer") and isinstance(value, dict):
            value = nested_object("regularizers", value, f"{where} {key}")
        elif key.endswith("_constraint") and isinstance(value, dict):
            value = nested_object("constraints", value, f"{where} {key}")
        elif key in _TUPLES.get(cls, ()):
            value = _tuple(cls, key, value)
        out[key] = value
    if cls in (
        "Dropout",
        "GaussianNoise",
        "GaussianDropout",
        "AlphaDropout",
        "SimpleRNN",
        "LSTM",
        "GRU",
        "MultiHeadAttention",
        "SpatialDropout1D",
        "SpatialDropout2D",
        "SpatialDropout3D",
    ):
        if "seed" in out:
            out["seed"] = None  # Keras draws its own; these layers are inactive in predict
    if cls in _TUPLES and cls.startswith(("Max", "Average")) and out.get("strides") is None:
        out["strides"] = list(out["pool_size"])  # Keras records strides = pool_size
    if cls in ("TimeDistributed", "Bidirectional"):
        inner = layer.layer
        inner_shape = _inner_input_shape(layer)
        icls, icfg = _keras_layer_config(inner, f"{where} layer")
        if cls == "Bidirectional":
            zero = bool(icfg.get("return_sequences"))  # Keras's Bidirectional sets it so
            fwd = {**copy.deepcopy(icfg), "name": "forward_" + inner.name, "zero_output_for_mask": zero}
            bwd = {
                **copy.deepcopy(icfg),
                "name": "backward_" + inner.name,
                "zero_output_for_mask": zero,
                "go_backwards": not icfg.get("go_backwards", False),
            }
            out["layer"] = _entry(icls, fwd, inner_shape)
            out["backward_layer"] = _entry(icls, bwd, inner_shape)
        else:
            out["layer"] = _entry(icls, icfg, inner_shape)
    return cls, out


def _inner_input_shape(layer):
    shape = _input_shape(layer)
    if shape is None:
        return None
    if type(layer).__name__ == "TimeDistributed":
        return [shape[0]] + list(shape[2:])
    return shape


def _entry(cls: str, cfg: dict, input_shape) -> dict:
    e = {"module": keras_defaults()["layers"][cls]["module"], "class_name": cls, "config": cfg, "registered_name": None}
    if keras_defaults()["layers"][cls]["build_config"] and input_shape is not None:
        e["build_config"] = {"input_shape": input_shape}
    return e


# Per export, per thread: layer id -> (Keras build input shapes with the batch None, whether a
# MultiHeadAttention was given a key tensor other than its value). Set by keras_config for the
# duration of one write.
_STATE = threading.local()


def _shapes() -> dict:
    return getattr(_STATE, "shapes", {})


def _input_shape(layer):
    """The layer's Keras build input shape (with the batch None), a list of them for merge layers."""
    shapes = _shapes().get(id(layer), (None, False))[0]
    if shapes is None:
        return None
    return shapes[0] if len(shapes) == 1 else shapes


def _tensor(t) -> dict:
    dtype = t.layer.dtype if type(t.layer).__name__ == "InputLayer" and t.layer.dtype else "float32"
    return {
        "class_name": "__keras_tensor__",
        "config": {
            "shape": [None] + [int(d) for d in t.shape[1:]],
            "dtype": dtype,
            "keras_history": [t.layer.name, 0, int(getattr(t, "index", 0))],
        },
    }


def _input_entry(name: str, shape, dtype) -> dict:
    cfg = copy.deepcopy(keras_defaults()["layers"]["InputLayer"]["config"])
    cfg.update({"batch_shape": [None] + [int(d) for d in shape], "dtype": dtype or "float32", "name": name})
    return {
        "module": keras_defaults()["layers"]["InputLayer"]["module"],
        "class_name": "InputLayer",
        "config": cfg,
        "registered_name": None,
    }


def _layer_entry(layer, where: str) -> dict:
    cls, cfg = _keras_layer_config(layer, where)
    e = _entry(cls, cfg, _input_shape(layer))
    if cls == "MultiHeadAttention" and "build_config" in e:
        shapes, key_given = _shapes()[id(layer)]
        sd = {"query_shape": shapes[0], "value_shape": shapes[1]}
        if len(shapes) > 2 and key_given:
            sd["key_shape"] = shapes[2]
        e["build_config"] = {"shapes_dict": sd}
        # Keras records, once built, the attention axes (all but batch and features) and the
        # output_shape as a tuple.
        if cfg.get("attention_axes") is None:
            cfg["attention_axes"] = list(range(1, len(shapes[0]) - 1))
        if isinstance(cfg.get("output_shape"), int):
            cfg["output_shape"] = [cfg["output_shape"]]
    return e


def _call_inputs(t) -> list:
    """A node's input tensors in Keras's flattened call order (args, then kwargs sorted by name)."""
    if type(t.layer).__name__ == "MultiHeadAttention":
        ins = list(t.inputs)
        kw = {}
        if len(ins) > 2 and ins[2] is not ins[1]:
            kw["key"] = ins[2]
        if len(ins) > 3:
            kw["attention_mask"] = ins[3]
        return ins[:2] + [kw[k] for k in sorted(kw)]
    return list(t.inputs)


def keras_order(model) -> list:
    """One tensor per layer of a functional model (the one its layer was attached at), in Keras's
    model.layers order (keras.src.ops.function.map_graph): by decreasing depth, then by depth-first
    discovery from the outputs. A layer with several outputs (return_state) is one node."""
    rep = {id(t.layer): t for t in list(model._inputs) + list(model._order)}
    inputs = {id(t.layer) for t in model._inputs}
    index, finished, order = {}, set(), []

    def visit(layer_id):
        if layer_id in finished:
            return
        index.setdefault(layer_id, len(index))
        if layer_id not in inputs:
            for u in _call_inputs(rep[layer_id]):
                visit(id(u.layer))
        finished.add(layer_id)
        order.append(layer_id)

    for t in model._outputs:
        visit(id(t.layer))
    depth = {}
    for layer_id in reversed(order):
        d = depth.setdefault(layer_id, 0)
        if layer_id not in inputs:
            for u in _call_inputs(rep[layer_id]):
                depth[id(u.layer)] = max(d + 1, depth.get(id(u.layer), 0))
    for layer_id in inputs:
        if layer_id not in depth:
            depth[layer_id], index[layer_id] = 0, -1
    return [rep[i] for i in sorted(depth, key=lambda i: (-depth[i], index[i]))]


def _check_no_masks(model) -> None:
    """Keras records a mask as a tensor of its mask op in the call arguments; maasfin does not
    write those yet, so a model whose tensors carry masks is refused."""
    Sequential = model_classes()[1]
    layers = model.layers if isinstance(model, Sequential) else [t.layer for t in model._order]
    for layer in layers:
        cls = type(layer).__name__
        if cls == "Masking" or getattr(layer, "mask_zero", False) or getattr(layer, "_mask_in", None) is not None:
            raise refuse(
                f"layer '{layer.name}' ({cls})",
                "maasfin does not write masks (Masking, "
                "Embedding(mask_zero=True) and the layers that read their mask) to Keras files yet",
            )


def _layer_shapes(model) -> dict:
    """{id(layer): (Keras build input shapes, batch None; whether a key tensor was given)}."""
    Sequential = model_classes()[1]
    out = {}
    if isinstance(model, Sequential):
        shape = (None,) + tuple(model._input_shapes[0])
        for layer in model.layers:
            out[id(layer)] = ([list(shape)], False)
            shape = layer.output_shape
    else:
        for t in model._order:
            out[id(t.layer)] = (
                [[None] + [int(d) for d in u.shape[1:]] for u in t.inputs],
                len(t.inputs) > 2 and t.inputs[2] is not t.inputs[1],
            )
    return out


def keras_config(model) -> dict:
    """The Keras 3 config.json of `model` (without compile_config)."""
    check_saveable(model)
    model._maybe_build()
    if not model.built:
        raise ValueError(
            f"cannot write model '{model.name}' to a Keras file before it is built: give it an input "
            "shape (keras.Input) or call it on data first"
        )
    _check_no_masks(model)
    _STATE.shapes = _layer_shapes(model)
    try:
        return _model_config(model)
    finally:
        _STATE.shapes = {}


def _model_config(model) -> dict:
    Sequential = model_classes()[1]
    if isinstance(model, Sequential):
        first = model._input_layer
        in_shape = list(model._input_shapes[0])
        layers = [
            _input_entry(
                first.name if first is not None else "input_layer", in_shape, first.dtype if first is not None else None
            )
        ]
        layers += [_layer_entry(l, f"layer '{l.name}' ({type(l).__name__})") for l in model.layers]
        return {
            "module": "keras",
            "class_name": "Sequential",
            "config": {
                "name": model.name,
                "trainable": True,
                "dtype": copy.deepcopy(_POLICY),
                "layers": layers,
                "build_input_shape": [None] + in_shape,
            },
            "registered_name": None,
            "build_config": {"input_shape": [None] + in_shape},
        }
    entries = []
    inputs = {id(t) for t in model._inputs}
    for t in keras_order(model):
        if id(t) in inputs:
            if t.layer.dtype not in (None, "float32", "int32", "int64", "bool"):
                raise refuse(
                    f"input '{t.layer.name}'",
                    f"Keras models take no {t.layer.dtype} inputs (string features need TensorFlow under Keras 3)",
                )
            e = _input_entry(t.layer.name, t.shape[1:], t.layer.dtype)
            entries.append({**e, "name": t.layer.name, "inbound_nodes": []})
            continue
        layer = t.layer
        where = f"layer '{layer.name}' ({type(layer).__name__})"
        e = _layer_entry(layer, where)
        tensors = [_tensor(u) for u in t.inputs]
        if type(layer).__name__ == "MultiHeadAttention":
            kwargs = {}
            if len(tensors) > 2 and t.inputs[2] is not t.inputs[1]:  # maasfin passes the value as the key
                kwargs["key"] = tensors[2]
            if len(tensors) > 3:
                kwargs["attention_mask"] = tensors[3]
            if layer.use_causal_mask:
                kwargs["use_causal_mask"] = True
            if layer.return_attention_scores:
                kwargs["return_attention_scores"] = True
            node = {"args": tensors[:2], "kwargs": kwargs}
        else:
            # The call arguments Keras records (training=False, mask=None on the layers that take them).
            kwargs = copy.deepcopy(keras_defaults()["layers"][type(layer).__name__].get("call_kwargs", {}))
            node = {"args": [tensors if len(tensors) > 1 else tensors[0]], "kwargs": kwargs}
        entries.append({**e, "name": layer.name, "inbound_nodes": [node]})
    ins = [[t.layer.name, 0, 0] for t in model._inputs]
    out = model._outputs[0]
    return {
        "module": "keras.src.models.functional",
        "class_name": "Functional",
        "config": {
            "name": model.name,
            "trainable": True,
            "layers": entries,
            "input_layers": ins[0] if len(ins) == 1 else ins,
            "output_layers": [out.layer.name, 0, int(getattr(out, "index", 0))],
        },
        "registered_name": "Functional",
        "build_config": {"input_shape": None},
    }


# -- weights ---------------------------------------------------------------------------------------
