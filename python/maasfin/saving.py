"""Model files (`.maas`), weights files (`.weights.safetensors`) and their safe reader.

A `.maas` file is a zip archive of four members (docs/file-format.md documents every field):

    config.json            architecture, compile config and input schema
    weights.safetensors    one float32 tensor per layer weight, named "<layer name>/<weight name>"
    optimizer.safetensors  optional: the optimizer's step count and slots, for exact resumption
    metadata.json          format name and version, maasfin version, creation time, training
                           summary, SHA-256 of the tensor members, user metadata

Loading reads data only. Nothing in a file is executed or imported: no pickle, no eval, and
class names are looked up in allowlists of maasfin's own classes (`_layer_classes()` and
friends). Every member and field is validated (sizes before reading, types, shapes against the
architecture, float32 dtypes, hashes), and every failure is a `ModelFileError`, a ValueError.
Writes are atomic: a temporary file in the target's directory, fsync, os.replace, fsync of the
directory, so a crash leaves either the old file or the new one, never a torn one.

This module holds the model-level logic; the format's constants, limits and field checks live in
file_format.py, and the byte-level archive, safetensors and atomic-write code in archive.py.
"""
from __future__ import annotations

import datetime
import hashlib
import inspect
import io
import json
import math
import os
import re
import warnings

import numpy as np

from maasfin import _core, layers as layers_module, losses as losses_module, metrics as metrics_module
from maasfin import optimizers as optimizers_module, utils
from maasfin.archive import (_encode_safetensors, _parse_safetensors, _read_archive, _read_file, _write_archive,
                             atomic_write)
from maasfin.file_format import (CONFIG, FORMAT_NAME, FORMAT_VERSION, LIMITS, METADATA, OPTIMIZER,
                                 OPTIMIZER_FORMAT_NAME, WEIGHTS, WEIGHTS_FORMAT_NAME, _REQUIRED, ModelFileError,
                                 _dict, _dumps, _fail, _int, _jsonable, _list, _loads, _norm, _obj, _shape, _str,
                                 _type_name, validate_user_metadata)

__all__ = ["ModelFileError", "save_model", "load_model", "to_bytes", "from_bytes", "read_metadata",
           "save_weights", "load_weights", "model_from_config", "LIMITS"]

# -- class allowlists ----------------------------------------------------------------------------
def _exported(module, base) -> dict[str, type]:
    """The subclasses of `base` that `module` exports in __all__: the only classes a file can name."""
    out = {}
    for name in module.__all__:
        obj = vars(module).get(name)
        if isinstance(obj, type) and issubclass(obj, base) and obj is not base and obj.__name__ == name:
            out[name] = obj
    return out


def _layer_classes() -> dict[str, type]:
    return _exported(layers_module, layers_module.Layer)


def _optimizer_classes() -> dict[str, type]:
    return _exported(optimizers_module, optimizers_module.Optimizer)


def _loss_classes() -> dict[str, type]:
    return _exported(losses_module, losses_module.Loss)


def _metric_classes() -> dict[str, type]:
    return _exported(metrics_module, metrics_module.Metric)


def _schedule_classes() -> dict[str, type]:
    from maasfin import schedules
    return _exported(schedules, schedules.LearningRateSchedule)


def _class_entry(obj, registry: dict, what: str) -> dict:
    name = type(obj).__name__
    if registry.get(name) is not type(obj):
        raise ValueError(f"cannot save {what} of class {type(obj).__module__}.{name}: only maasfin's own "
                         f"classes can be saved ({', '.join(sorted(registry))})")
    return {"class_name": name, "config": _jsonable(obj.get_config(), f"{what} '{name}' config")}


def _resolve(entry, registry: dict, src: str, where: str) -> tuple[type, dict]:
    _obj(entry, src, where, ("class_name", "config"))
    name = _str(entry["class_name"], src, f"{where}.class_name", 128)
    cls = registry.get(name)
    if cls is None:
        raise _fail(src, f"{where} names unknown class {name!r}; allowed: {', '.join(sorted(registry))}")
    _dict(entry["config"], src, f"{where}.config")
    return cls, entry["config"]


def _check_round_trip(obj, config: dict, src: str, where: str) -> None:
    got, want = _norm(obj.get_config()), _norm(config)
    if got != want:
        diff = sorted(k for k in set(got) | set(want) if got.get(k, "<absent>") != want.get(k, "<absent>"))
        raise _fail(src, f"{where} config is not one maasfin writes: field(s) {diff} do not round-trip "
                         f"(file: {[want.get(k, '<absent>') for k in diff]}, "
                         f"as constructed: {[got.get(k, '<absent>') for k in diff]})")


def _construct(cls, config: dict, src: str, where: str, check: bool = True):
    """Instantiates an allowlisted class from its config: from_config if it has one, else the
    constructor with the config keys it accepts; then the config must round-trip exactly."""
    try:
        if hasattr(cls, "from_config"):
            obj = cls.from_config(dict(config))
        else:
            params = inspect.signature(cls).parameters
            var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
            obj = cls(**{k: v for k, v in config.items() if var_kw or k in params})
    except ModelFileError:
        raise
    except RecursionError:
        raise
    except Exception as e:  # the class's own validation refused the values
        raise _fail(src, f"{where} ({cls.__name__}) has an invalid config: {e}") from None
    if check:
        _check_round_trip(obj, config, src, where)
    return obj


# -- writing: configs ----------------------------------------------------------------------------
def _layer_entry(layer) -> dict:
    return _class_entry(layer, _layer_classes(), f"layer '{layer.name}'")


def _check_saveable(model) -> None:
    from maasfin.models import Model, Sequential
    if type(model) not in (Model, Sequential):
        raise ValueError(f"cannot save model '{model.name}' of class {type(model).__name__}: only Sequential "
                         "and functional Model(inputs, outputs) models can be saved")
    names = [layer.name for layer in _all_layers(model)]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"cannot save model '{model.name}': several layers are named {dup}; layer names "
                         "must be unique within a model")


def _all_layers(model) -> list:
    """Input layers first, then the other layers in model order."""
    from maasfin.models import Sequential
    if isinstance(model, Sequential):
        return ([model._input_layer] if model._input_layer is not None else []) + model.layers
    return [t.layer for t in model._inputs] + model.layers


def model_config(model) -> dict:
    """The architecture of `model` (Keras's `model.get_config()`): layer configs and wiring."""
    from maasfin.models import Sequential
    if isinstance(model, Sequential):
        cfg = {"name": model.name, "layers": [_layer_entry(l) for l in _all_layers(model)]}
        if model.built:
            cfg["input_shape"] = list(model._input_shapes[0])
        return cfg
    entries = [{**_layer_entry(t.layer), "name": t.layer.name, "inbound_layers": []} for t in model._inputs]
    for t in model._order:
        entries.append({**_layer_entry(t.layer), "name": t.layer.name,
                        "inbound_layers": [_tensor_ref(u) for u in t.inputs]})
    return {"name": model.name, "layers": entries, "input_layers": [t.layer.name for t in model._inputs],
            "output_layers": [_tensor_ref(model._outputs[0])]}


def _tensor_ref(t) -> str | list:
    """A tensor in saved wiring: its layer's name, or [name, output index] for a layer with several
    outputs (LSTM with return_state)."""
    return t.layer.name if t.layer._num_outputs() == 1 else [t.layer.name, int(t.index)]


def _parse_ref(x, src: str, where: str) -> tuple[str, int | None]:
    if isinstance(x, list):
        if len(x) != 2:
            raise _fail(src, f"{where} must be a layer name or [name, output index], got a list of {len(x)}")
        return _str(x[0], src, where, 1024), _int(x[1], src, f"{where} output index", 0, 64)
    return _str(x, src, where, 1024), None


def _metric_entry(m):
    if isinstance(m, str):
        return m
    if isinstance(m, type):
        m = m()
    return _class_entry(m, _metric_classes(), "metric")


def _metric_split(model) -> tuple[list, list]:
    """(metrics, weighted_metrics) as given to compile()."""
    plain, weighted = [], []
    for item in model._metric_ids:
        m, w = item if isinstance(item, tuple) else (item, False)
        (weighted if w else plain).append(m)
    return plain, weighted


def _compile_config(model):
    if not model.compiled:
        return None
    plain, weighted = _metric_split(model)
    return {"optimizer": _class_entry(model.optimizer, _optimizer_classes(), "optimizer"),
            "loss": _class_entry(model.loss, _loss_classes(), "loss"),
            "metrics": [_metric_entry(m) for m in plain],
            "weighted_metrics": [_metric_entry(m) for m in weighted]}


def _input_schema(model) -> dict:
    from maasfin.models import Sequential
    if isinstance(model, Sequential):
        shape = model._input_shapes[0] if model.built else model._declared_input_shape()
        name = model._input_layer.name if model._input_layer is not None else "input_layer"
        inputs = [{"name": name, "shape": None if shape is None else list(shape), "dtype": "float32"}]
    else:
        inputs = [{"name": t.name, "shape": list(t.shape[1:]), "dtype": t.layer.dtype} for t in model._inputs]
    return {"inputs": inputs, "feature_names": model.feature_names}


def _config_document(model) -> dict:
    from maasfin.models import Sequential
    return {"model": {"class_name": "Sequential" if isinstance(model, Sequential) else "Functional",
                      "config": model_config(model)},
            "compile_config": _compile_config(model),
            "input_schema": _input_schema(model),
            "explanations": _explanations(model)}


def _explanations(model) -> dict:
    """What explanations and drift reports compare against (see explain.py), kept with the model
    so that an explanation can be reproduced later."""
    return {"baseline": getattr(model, "_explain_baseline", None),
            "reason_codes": getattr(model, "_reason_codes", None),
            "drift_reference": getattr(model, "_drift_reference", None)}


def _finite_list(x, src: str, where: str, length=None, max_len: int = 1_000_000) -> list:
    values = _list(x, src, where, max_len)
    if length is not None and len(values) != length:
        raise _fail(src, f"{where} has {len(values)} values, expected {length}")
    out = []
    for i, v in enumerate(values):
        try:
            f = float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan
        except OverflowError:  # an integer too large for a float
            f = math.nan
        if not math.isfinite(f):
            raise _fail(src, f"{where}[{i}] must be a finite number, got {_type_name(v)}")
        out.append(f)
    return out


def _bins(x, src: str, where: str) -> dict:
    _obj(x, src, where, ("edges", "proportions"))
    edges = _finite_list(x["edges"], src, f"{where}.edges", max_len=10_000)
    props = _finite_list(x["proportions"], src, f"{where}.proportions", length=len(edges) + 1)
    if any(b <= a for a, b in zip(edges, edges[1:])):
        raise _fail(src, f"{where}.edges must increase")
    if any(p < 0 for p in props) or abs(sum(props) - 1.0) > 1e-6:
        raise _fail(src, f"{where}.proportions must be >= 0 and sum to 1")
    return {"edges": edges, "proportions": props}


def _load_explanations(doc, model, src: str) -> None:
    if doc is None:
        return
    _obj(doc, src, "explanations", ("baseline", "reason_codes", "drift_reference"))
    from maasfin import explain
    if doc["baseline"] is not None:
        if not model.built:
            raise _fail(src, "explanations.baseline needs a built model")
        # the input width, or the encoded width for models with preprocessing layers
        model._explain_baseline = _finite_list(doc["baseline"], src, "explanations.baseline",
                                               length=explain.baseline_width(model))
    if doc["reason_codes"] is not None:
        codes = _dict(doc["reason_codes"], src, "explanations.reason_codes")
        table = {}
        for k, v in list(codes.items())[:100_000]:
            _str(k, src, "explanations.reason_codes key")
            _obj(v, src, f"explanations.reason_codes[{k!r}]", ("code", "text"))
            table[k] = {"code": _str(v["code"], src, f"explanations.reason_codes[{k!r}].code"),
                        "text": _str(v["text"], src, f"explanations.reason_codes[{k!r}].text", 4096, allow_empty=True)}
        model._reason_codes = table
    if doc["drift_reference"] is not None:
        if not model.built:
            raise _fail(src, "explanations.drift_reference needs a built model")
        width = len(explain.raw_feature_names(model))
        ref = _obj(doc["drift_reference"], src, "explanations.drift_reference", ("features", "score"))
        feats = _list(ref["features"], src, "explanations.drift_reference.features", width)
        if len(feats) != width:
            raise _fail(src, f"explanations.drift_reference.features has {len(feats)} entries, expected {width}")
        model._drift_reference = {
            "features": [None if f is None else _bins(f, src, f"explanations.drift_reference.features[{i}]")
                         for i, f in enumerate(feats)],
            "score": None if ref["score"] is None else _bins(ref["score"], src, "explanations.drift_reference.score")}


# -- tensors -------------------------------------------------------------------------------------
def _weight_specs(model) -> list[tuple[str, tuple[int, ...]]]:
    return [(f"{layer.name}/{pname}", tuple(int(d) for d in shape))
            for layer in model.layers for pname, shape, _ in layer._param_specs()]


def _weight_tensors(model) -> dict[str, np.ndarray]:
    out = {}
    if model.built:
        for layer in model.layers:
            for (pname, _, _), w in zip(layer._param_specs(), layer.get_weights()):
                out[f"{layer.name}/{pname}"] = np.ascontiguousarray(w, dtype=np.float32)
    return out


def _weights_meta(model) -> dict[str, str]:
    """The weights member's __metadata__: format, version and the weighted layers in model order."""
    return {"format": WEIGHTS_FORMAT_NAME, "format_version": str(FORMAT_VERSION),
            "layers": json.dumps([l.name for l in model.layers if l._param_specs()])}


def _check_weights_meta(meta: dict, src: str, what: str) -> list[str]:
    """Validates a weights __metadata__ and returns its layer order."""
    _obj(meta, src, f"{what} __metadata__", ("format", "format_version", "layers"))
    if meta["format"] != WEIGHTS_FORMAT_NAME:
        raise _fail(src, f"{what} is not a maasfin weights file (format {meta['format']!r})")
    if meta["format_version"] != str(FORMAT_VERSION):
        raise _fail(src, f"{what} has unknown weights format version {meta['format_version']!r}; this maasfin "
                         f"reads version {FORMAT_VERSION}")
    order = _loads(meta["layers"].encode("utf-8"), src, f"{what} layer list")
    if not isinstance(order, list) or not all(isinstance(n, str) for n in order) or len(set(order)) != len(order):
        raise _fail(src, f"{what} layer list must be a list of distinct layer names")
    return order


# -- saving --------------------------------------------------------------------------------------
def _history_summary(model):
    h = getattr(model, "history", None)
    if h is None or not getattr(h, "epoch", None):
        return None
    logs = {}
    for k, v in h.history.items():
        if isinstance(k, str) and v:
            x = v[-1]
            logs[k] = float(x) if isinstance(x, (int, float, np.number)) and math.isfinite(float(x)) else None
    return {"epochs": len(h.epoch), "last_epoch": int(h.epoch[-1]), "logs": logs}


def _optimizer_blob(model) -> bytes | None:
    if not model.compiled or not model.built:
        return None
    state = model.optimizer.get_state()
    if not state["iterations"] and not any(np.size(v) for v in state["slots"].values()):
        return None
    meta = {"format": OPTIMIZER_FORMAT_NAME, "format_version": str(FORMAT_VERSION),
            "optimizer": type(model.optimizer).__name__, "iterations": str(int(state["iterations"])),
            "n_params": str(int(model._graph.param_count))}
    return _encode_safetensors({k: np.asarray(v, dtype=np.float32).reshape(-1) for k, v in state["slots"].items()},
                               meta)


def _archive_members(model, include_optimizer: bool = True, metadata=None, training_state=None) -> dict[str, bytes]:
    from maasfin import __version__
    _check_saveable(model)
    model._maybe_build()
    if metadata is not None:
        metadata = validate_user_metadata(metadata)
    config = _dumps(_config_document(model))
    weights = _encode_safetensors(_weight_tensors(model), _weights_meta(model))
    opt = _optimizer_blob(model) if include_optimizer else None
    meta = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "maasfin_version": __version__,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "history": _history_summary(model),
            "sha256": {WEIGHTS: hashlib.sha256(weights).hexdigest()}}
    if opt is not None:
        meta["sha256"][OPTIMIZER] = hashlib.sha256(opt).hexdigest()
    if metadata is not None:
        meta["user_metadata"] = metadata
    if training_state is not None:
        meta["training_state"] = training_state
    members = {CONFIG: config, WEIGHTS: weights}
    if opt is not None:
        members[OPTIMIZER] = opt
    members[METADATA] = _dumps(meta)
    return members


def _check_suffix(path, suffixes: tuple[str, ...], what: str) -> str:
    p = os.fspath(path)
    if not isinstance(p, str):
        raise TypeError(f"{what}: filepath must be a str or os.PathLike, got {type(path).__name__}")
    if not p.endswith(suffixes):
        raise ValueError(f"{what}: the filepath must end in {' or '.join(repr(s) for s in suffixes)}, got '{p}'")
    return p


def save_model(model, filepath, overwrite: bool = True, include_optimizer: bool = True, metadata=None,
               _training_state=None) -> None:
    """Writes `model` to a `.maas` file atomically (see the module docstring), or to a Keras 3
    `.keras` / legacy `.h5` file (keras_export.py)."""
    path = _check_suffix(filepath, (".maas",) + KERAS_MODEL_SUFFIXES, "save")
    if path.lower().endswith(KERAS_MODEL_SUFFIXES):
        if metadata is not None:
            raise ValueError(f"save: metadata is kept in .maas files only; Keras files have no place for it ('{path}')")
        from maasfin import keras_export
        return keras_export.save_keras_model(model, path, overwrite=overwrite)
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"save: '{path}' exists and overwrite=False")
    members = _archive_members(model, include_optimizer, metadata, _training_state)
    atomic_write(path, lambda f: _write_archive(f, members))


def to_bytes(model, include_optimizer: bool = True) -> bytes:
    buf = io.BytesIO()
    _write_archive(buf, _archive_members(model, include_optimizer))
    return buf.getvalue()


# -- loading: metadata ---------------------------------------------------------------------------
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def _check_metadata(meta, members: dict[str, bytes], src: str) -> dict:
    if not isinstance(meta, dict):
        raise _fail(src, f"metadata.json must be an object, got {_type_name(meta)}")
    fmt = meta.get("format")
    if fmt != FORMAT_NAME:
        raise _fail(src, f"metadata.json format is {fmt!r}, not {FORMAT_NAME!r}: not a maasfin model file")
    version = meta.get("format_version")
    if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION:
        raise _fail(src, f"was written in model format version {version} by a newer maasfin "
                         f"({meta.get('maasfin_version')!r}); this maasfin reads format version {FORMAT_VERSION}: upgrade maasfin")
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise _fail(src, f"has unknown model format version {version!r}; this maasfin reads version {FORMAT_VERSION}")
    _obj(meta, src, "metadata.json", ("format", "format_version", "maasfin_version", "created", "history", "sha256"),
         ("user_metadata", "training_state"))
    _str(meta["maasfin_version"], src, "metadata.json maasfin_version", 64)
    created = _str(meta["created"], src, "metadata.json created", 64)
    try:
        when = datetime.datetime.fromisoformat(created.replace("Z", "+00:00"))
    except ValueError:
        raise _fail(src, f"metadata.json created {created!r} is not an ISO-8601 time") from None
    if when.utcoffset() is None:
        raise _fail(src, f"metadata.json created {created!r} has no time zone (UTC expected)")
    if meta["history"] is not None:
        h = _obj(meta["history"], src, "metadata.json history", ("epochs", "last_epoch", "logs"))
        _int(h["epochs"], src, "metadata.json history.epochs")
        _int(h["last_epoch"], src, "metadata.json history.last_epoch")
        logs = _dict(h["logs"], src, "metadata.json history.logs")
        for k, v in logs.items():
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
                raise _fail(src, f"metadata.json history.logs[{k!r}] must be a number or null")
    hashes = _obj(meta["sha256"], src, "metadata.json sha256", (WEIGHTS,), (OPTIMIZER,))
    for name in (WEIGHTS, OPTIMIZER):
        if (name in hashes) != (name in members):
            raise _fail(src, f"metadata.json sha256 {'lists' if name in hashes else 'does not list'} member "
                             f"{name!r}, which the archive {'does not hold' if name in hashes else 'holds'}")
        if name in hashes:
            h = hashes[name]
            if not isinstance(h, str) or not _HEX64.match(h):
                raise _fail(src, f"metadata.json sha256[{name!r}] must be 64 lowercase hex digits")
            if hashlib.sha256(members[name]).hexdigest() != h:
                raise _fail(src, f"member {name!r} does not match its SHA-256 in metadata.json "
                                 "(the file is corrupt or was modified)")
    if "user_metadata" in meta:
        try:
            validate_user_metadata(meta["user_metadata"])
        except (TypeError, ValueError) as e:
            raise _fail(src, f"metadata.json user_metadata is invalid: {e}") from None
    if "training_state" in meta:
        _check_training_state(meta["training_state"], src)
    return meta


# -- loading: architecture -----------------------------------------------------------------------
def _preflight(inputs: list[tuple[str, tuple]], nodes: list[tuple[object, list]], src: str):
    """Shapes and parameter specs of a model, from a throwaway core graph that allocates nothing:
    checks every layer's output size before the real model is built. Returns [(key, shape)]."""
    g = _core.Graph()
    ids = {}
    for name, shape in inputs:
        ids[(name, 0)] = g.add_input(list(shape), name)
    specs = []
    for layer, inbound in nodes:
        where = f"layer '{layer.name}'"
        try:
            node = g.add_layer(layer._make_core_named(), [ids[_ref_key(r)] for r in inbound])
            params = [(p, tuple(int(d) for d in s)) for p, s, _ in g.layer_params(node)]
            parts = layer._take_outputs(g, node)
            shapes = [tuple(int(d) for d in g.node_shape(n)) for n in parts]
        except (ValueError, TypeError, RuntimeError) as e:
            raise _fail(src, f"{where} cannot be applied to its inputs: {e}") from None
        for shape in shapes:
            if not shape or any(d <= 0 for d in shape) or math.prod(shape) > LIMITS["elements_per_sample"]:
                raise _fail(src, f"{where} would output shape {shape}, over the limit of "
                                 f"{LIMITS['elements_per_sample']} elements per sample")
        for k, n in enumerate(parts):
            ids[(layer.name, k)] = n
        specs += [(f"{layer.name}/{p}", s) for p, s in params]
    return specs


def _check_ref(layer, index, src: str, where: str) -> None:
    """A reference names one output: [name, k] for a layer with several outputs, a plain name otherwise."""
    n = layer._num_outputs()
    if (n == 1) != (index is None) or (index is not None and index >= n):
        raise _fail(src, f"{where} refers to output {index!r} of layer '{layer.name}', which has {n} output(s); "
                         "use the plain name for one output and [name, index] for several")


def _ref_key(ref: tuple[str, int | None]) -> tuple[str, int]:
    return ref[0], ref[1] or 0


def _check_weights_match(specs, weights: dict | None, src: str) -> None:
    if weights is None:  # architecture only (from_config)
        total = sum(math.prod(s) for _, s in specs)
        if total * 4 > LIMITS[WEIGHTS]:
            raise _fail(src, f"the architecture has {total} parameters, more than the weights limit allows")
        return
    want = dict(specs)
    missing = [k for k, _ in specs if k not in weights]
    extra = sorted(k for k in weights if k not in want)
    if missing or extra:
        raise _fail(src, f"weights do not match the architecture: missing {missing}, unexpected {extra}")
    for k, shape in specs:
        if weights[k].shape != shape:
            raise _fail(src, f"weight {k!r} has shape {weights[k].shape}, the architecture needs {shape}")


def _nested_classes() -> dict[str, dict[str, type]]:
    """Allowlists for objects inside layer configs, by the suffix of the argument's name."""
    from maasfin import constraints, regularizers
    return {"_regularizer": _exported(regularizers, regularizers.Regularizer),
            "_constraint": _exported(constraints, constraints.Constraint)}


_WRAPPERS = ("TimeDistributed", "Bidirectional")


def _make_layer(entry, src: str, where: str):
    """A layer from {class_name, config}. Objects nested in the config (regularizers, constraints)
    are built here through their allowlists and handed to the layer as objects, so the layer
    never resolves a name from the file itself."""
    cls, config = _resolve(entry, _layer_classes(), src, where)
    kinds, resolved = _nested_classes(), {}
    for key, value in config.items():
        if key == "layer" and isinstance(value, dict) and cls.__name__ in _WRAPPERS:
            # A wrapper's inner layer: any allowlisted layer but another wrapper (bounded nesting).
            _obj(value, src, f"{where} layer", ("class_name", "config"))
            if value["class_name"] in _WRAPPERS or value["class_name"] == "InputLayer":
                raise _fail(src, f"{where} wraps a {value['class_name']!r}; a wrapper holds an ordinary layer")
            resolved[key] = _make_layer(value, src, f"{where} layer")
            continue
        if isinstance(value, dict):
            registry = next((r for suffix, r in kinds.items() if key.endswith(suffix)), None)
            if registry is None:
                raise _fail(src, f"{where} config field {key!r} holds an object; only regularizers and "
                                 "constraints may")
            ncls, ncfg = _resolve(value, registry, src, f"{where} {key}")
            value = _construct(ncls, ncfg, src, f"{where} {key}")
        resolved[key] = value
    layer = _construct(cls, resolved, src, where, check=False)
    _check_round_trip(layer, config, src, where)
    return layer


def _with_rng_preserved(fn):
    """Building a model draws initialisation seeds; loading must not move the global stream. The
    warning that a layer drops a mask was given when the model was made; loading stays quiet."""
    gen = utils.seed_generator()
    state = gen.bit_generator.state
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*does not support masking", category=UserWarning)
            warnings.filterwarnings("ignore", message=r".*not use the mask of its input sequence", category=UserWarning)
            return fn()
    finally:
        gen.bit_generator.state = state


def _sequential_from_config(cfg, src: str, weights):
    from maasfin.models import Sequential
    _obj(cfg, src, "Sequential config", ("name", "layers"), ("input_shape",))
    name = _str(cfg["name"], src, "model name", 256)
    entries = _list(cfg["layers"], src, "Sequential layers", LIMITS["layers"])
    built_layers = [_make_layer(e, src, f"layer {i}") for i, e in enumerate(entries)]
    input_layer = None
    if built_layers and isinstance(built_layers[0], layers_module.InputLayer):
        input_layer, built_layers = built_layers[0], built_layers[1:]
    if any(isinstance(l, layers_module.InputLayer) for l in built_layers):
        raise _fail(src, "a Sequential model may hold an InputLayer only as its first layer")
    if not built_layers:
        raise _fail(src, "the Sequential model has no layers")
    names = [l.name for l in ([input_layer] if input_layer else []) + built_layers]
    if len(set(names)) != len(names):
        raise _fail(src, f"layer names must be unique, got {names}")
    declared = input_layer.shape if input_layer is not None else built_layers[0]._input_shape_arg
    shape = None
    if "input_shape" in cfg:
        shape = _shape(cfg["input_shape"], src, "Sequential input_shape")
        if declared is not None and tuple(declared) != shape:
            raise _fail(src, f"Sequential input_shape {list(shape)} contradicts the declared input shape {list(declared)}")
    elif declared is not None:
        shape = tuple(declared)
        if math.prod(shape) > LIMITS["elements_per_sample"]:
            raise _fail(src, f"input shape {list(shape)} is too large")
    in_name = input_layer.name if input_layer is not None else "input_layer"
    chain = []
    for i, layer in enumerate(built_layers):
        chain.append((layer, [(in_name if i == 0 else built_layers[i - 1].name, None)]))
    if shape is None:
        # Unbuilt: no weights may be stored; bound the size the model would have on 1 feature.
        if callable(weights):
            weights = weights([])
        if weights:
            raise _fail(src, "an unbuilt Sequential model (no input_shape) cannot hold weights")
        _check_weights_match(_preflight([(in_name, (1,))], chain, src), None, src)
    else:
        specs = _preflight([(in_name, shape)], chain, src)
        if callable(weights):  # a reader that fetches tensors once it knows their expected shapes
            weights = weights(specs)
        _check_weights_match(specs, weights, src)

    def build():
        model = Sequential(name=name)
        if input_layer is not None:
            model.add(input_layer)
        for layer in built_layers:
            model.add(layer)
        if shape is not None and (weights is not None or "input_shape" in cfg):
            model._ensure_built([shape])
        return model
    return build


def _functional_from_config(cfg, src: str, weights):
    from maasfin.models import Model
    _obj(cfg, src, "Functional config", ("name", "layers", "input_layers", "output_layers"))
    name = _str(cfg["name"], src, "model name", 256)
    entries = _list(cfg["layers"], src, "Functional layers", LIMITS["layers"])
    input_names = [_str(n, src, "input_layers entry", 1024) for n in _list(cfg["input_layers"], src, "input_layers", 1024)]
    outs = _list(cfg["output_layers"], src, "output_layers", 1)
    if len(outs) != 1:
        raise _fail(src, "output_layers must name exactly one layer")
    output_ref = _parse_ref(outs[0], src, "output_layers entry")
    output_name = output_ref[0]
    by_name, inputs, nodes, order = {}, [], [], []
    for i, e in enumerate(entries):
        where = f"layer {i}"
        _obj(e, src, where, ("class_name", "config", "name", "inbound_layers"))
        lname = _str(e["name"], src, f"{where} name", 1024)
        if lname in by_name:
            raise _fail(src, f"two layers are named {lname!r}")
        layer = _make_layer({"class_name": e["class_name"], "config": e["config"]}, src, f"layer '{lname}'")
        if layer.name != lname:
            raise _fail(src, f"{where} is named {lname!r} but its config names it {layer.name!r}")
        inbound = [_parse_ref(r, src, f"layer '{lname}' inbound_layers entry")
                   for r in _list(e["inbound_layers"], src, f"layer '{lname}' inbound_layers", 1024)]
        for n, k in inbound:
            if n not in by_name:
                raise _fail(src, f"layer '{lname}' takes input from {n!r}, which is not a layer defined before it")
            _check_ref(by_name[n], k, src, f"layer '{lname}'")
        is_input = isinstance(layer, layers_module.InputLayer)
        if is_input != (not inbound):
            raise _fail(src, f"layer '{lname}': an InputLayer must have no inbound layers and any other layer "
                             "at least one")
        if is_input:
            if lname not in input_names:
                raise _fail(src, f"InputLayer '{lname}' is not listed in input_layers")
            inputs.append((lname, tuple(layer.shape)))
        else:
            nodes.append((layer, list(inbound)))
        by_name[lname] = layer
        order.append((layer, list(inbound)))
    if sorted(input_names) != sorted(n for n, _ in inputs) or len(set(input_names)) != len(input_names):
        raise _fail(src, f"input_layers {input_names} must list each InputLayer exactly once")
    if output_name not in by_name or isinstance(by_name[output_name], layers_module.InputLayer):
        raise _fail(src, f"output layer {output_name!r} is not a non-input layer of the model")
    _check_ref(by_name[output_name], output_ref[1], src, "output_layers")
    used = {output_name}
    for layer, inbound in reversed(order):
        if layer.name in used:
            used.update(n for n, _ in inbound)
    unused = [l.name for l, _ in nodes if l.name not in used] + [n for n in input_names if n not in used]
    if unused:
        raise _fail(src, f"layer(s) {unused} do not lead to the output")
    for lname, shape in inputs:
        if math.prod(shape) > LIMITS["elements_per_sample"]:
            raise _fail(src, f"input '{lname}' shape {list(shape)} is too large")
    for layer, inbound in nodes:  # a Hashing on a string Input encodes at the data boundary
        if hasattr(layer, "_string_input") and any(
                isinstance(by_name[n], layers_module.InputLayer) and by_name[n].dtype == "string" for n, _ in inbound):
            layer._string_input = True
    specs = _preflight(inputs, nodes, src)
    if callable(weights):  # a reader that fetches tensors once it knows their expected shapes
        weights = weights(specs)
    _check_weights_match(specs, weights, src)

    def build():
        tensors = {n: by_name[n].output for n in input_names}

        def tensor(ref):
            out = tensors[ref[0]]
            return out[ref[1]] if ref[1] is not None else out
        for layer, inbound in nodes:
            args = [tensor(r) for r in inbound]
            tensors[layer.name] = layer(args[0] if len(args) == 1 else args)
        model = Model(inputs=[tensors[n] for n in input_names], outputs=tensor(output_ref), name=name)
        if weights is not None:
            model._ensure_built()
        return model
    return build


def _architecture(doc_model, src: str, weights):
    """Validates an architecture and returns a function that builds the model."""
    _obj(doc_model, src, "model", ("class_name", "config"))
    kind = doc_model["class_name"]
    if kind == "Sequential":
        return _sequential_from_config(doc_model["config"], src, weights)
    if kind == "Functional":
        return _functional_from_config(doc_model["config"], src, weights)
    raise _fail(src, f"model class {kind!r} is not one of 'Sequential', 'Functional'")


def model_from_config(config, cls=None, src: str = "model config"):
    """Builds a new, freshly initialised model from `Model.get_config()` output (Keras's from_config)."""
    from maasfin.models import Sequential
    if not isinstance(config, dict):
        raise TypeError(f"from_config: config must be a dict, got {type(config).__name__}")
    config = _norm(config)
    functional = "input_layers" in config
    if cls is Sequential and functional:
        raise _fail(src, "this is a functional model's config; use Model.from_config")
    build = _architecture({"class_name": "Functional" if functional else "Sequential", "config": config},
                          src, None)
    return build()


def _from_config_document(raw: bytes):
    """Unpickles a model that was pickled before it was built: its config.json document only."""
    src = "pickled model"

    def run():
        doc = _obj(_loads(raw, src, CONFIG), src, CONFIG, ("model", "compile_config", "input_schema"),
                   ("explanations",))
        model = _with_rng_preserved(_architecture(doc["model"], src, None))
        _check_schema(doc["input_schema"], model, src)
        if doc["compile_config"] is not None:
            _compile(model, doc["compile_config"], src)
        return model
    return _guard(run, src)


# -- loading: compile config and optimizer state -------------------------------------------------
def _metric_from_entry(entry, src: str, where: str):
    if isinstance(entry, str):
        if entry not in ("accuracy", "acc"):
            try:
                metrics_module.get(entry)  # a lookup in maasfin's table of metric names
            except ValueError:
                raise _fail(src, f"{where} is unknown metric {entry!r}") from None
        return entry
    cls, config = _resolve(entry, _metric_classes(), src, where)
    return _construct(cls, config, src, where)


def _optimizer_from_entry(entry, src: str):
    """The optimizer; a learning-rate schedule in its config is resolved through the schedule
    allowlist here, never by the optimizer looking up a name from the file."""
    cls, config = _resolve(entry, _optimizer_classes(), src, "compile_config.optimizer")
    config = dict(config)
    lr = config.get("learning_rate")
    if isinstance(lr, dict):
        scls, scfg = _resolve(lr, _schedule_classes(), src, "optimizer learning_rate schedule")
        config["learning_rate"] = _construct(scls, scfg, src, "learning_rate schedule")
    try:
        params = inspect.signature(cls).parameters
        var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        optimizer = cls(**{k: v for k, v in config.items() if var_kw or k in params})
    except Exception as e:  # the optimizer's own validation refused the values
        raise _fail(src, f"optimizer ({cls.__name__}) has an invalid config: {e}") from None
    _check_round_trip(optimizer, entry["config"], src, "optimizer")
    return optimizer


def _compile(model, cc, src: str):
    _obj(cc, src, "compile_config", ("optimizer", "loss", "metrics", "weighted_metrics"))
    optimizer = _optimizer_from_entry(cc["optimizer"], src)
    cls, config = _resolve(cc["loss"], _loss_classes(), src, "compile_config.loss")
    loss = _construct(cls, config, src, "loss")
    metrics = [_metric_from_entry(m, src, f"compile_config.metrics[{i}]")
               for i, m in enumerate(_list(cc["metrics"], src, "compile_config.metrics", 64))]
    weighted = [_metric_from_entry(m, src, f"compile_config.weighted_metrics[{i}]")
                for i, m in enumerate(_list(cc["weighted_metrics"], src, "compile_config.weighted_metrics", 64))]
    try:
        model.compile(optimizer=optimizer, loss=loss, metrics=metrics, weighted_metrics=weighted or None)
    except (TypeError, ValueError) as e:
        raise _fail(src, f"compile_config is invalid: {e}") from None


def _optimizer_state(model, blob: bytes, src: str) -> dict:
    """Validates optimizer.safetensors against the model and its optimizer; returns the state."""
    n = int(model._graph.param_count)
    tensors, meta = _parse_safetensors(blob, src, OPTIMIZER, 64)
    _obj(meta, src, "optimizer.safetensors __metadata__",
         ("format", "format_version", "optimizer", "iterations", "n_params"))
    if meta["format"] != OPTIMIZER_FORMAT_NAME or meta["format_version"] != str(FORMAT_VERSION):
        raise _fail(src, f"optimizer.safetensors has format {meta['format']!r} version {meta['format_version']!r}")
    if meta["optimizer"] != type(model.optimizer).__name__:
        raise _fail(src, f"optimizer.safetensors holds the state of a {meta['optimizer']!r} optimizer, "
                         f"but the model is compiled with {type(model.optimizer).__name__}")
    if not re.fullmatch(r"[0-9]{1,19}", meta["iterations"]) or int(meta["iterations"]) >= 2**63:
        raise _fail(src, f"optimizer.safetensors iterations {meta['iterations']!r} is not a step count")
    if meta["n_params"] != str(n):
        raise _fail(src, f"optimizer.safetensors is for {meta['n_params']} parameters, the model has {n}")
    # The slots the core allocates for this optimizer and arena, found by one step on zeros.
    probe = model.optimizer._make_core()
    if hasattr(model.optimizer, "_configure"):
        probe = model.optimizer._configure(probe)
    _core.optimizer_step(probe, np.zeros(n, np.float32), np.zeros(n, np.float32))
    expected = {name: probe.get_slot(name).size for name in probe.slot_names()}
    if set(tensors) != set(expected):
        raise _fail(src, f"optimizer.safetensors holds slots {sorted(tensors)}, "
                         f"{type(model.optimizer).__name__} has {sorted(expected)}")
    for name, size in expected.items():
        a = tensors[name]
        if a.shape != (size,):
            raise _fail(src, f"optimizer slot {name!r} has shape {a.shape}, expected ({size},)")
        if _core.first_nonfinite(a) >= 0:
            raise _fail(src, f"optimizer slot {name!r} contains NaN or infinity")
    return {"iterations": int(meta["iterations"]), "slots": tensors}


# -- loading: the whole file ---------------------------------------------------------------------
def _check_schema(schema, model, src: str) -> None:
    _obj(schema, src, "input_schema", ("inputs", "feature_names"))
    want = _input_schema(model)["inputs"]
    got = _list(schema["inputs"], src, "input_schema.inputs", 1024)
    if _norm(got) != _norm(want):
        raise _fail(src, f"input_schema.inputs {got} does not match the architecture's inputs {want}")
    names = schema["feature_names"]
    if names is not None:
        names = _list(names, src, "input_schema.feature_names", LIMITS["elements_per_sample"])
        for i, c in enumerate(names):
            _str(c, src, f"input_schema.feature_names[{i}]", 1024, allow_empty=True)
        shapes = [i["shape"] for i in want]
        if len(shapes) != 1 or shapes[0] != [len(names)]:
            raise _fail(src, f"input_schema.feature_names has {len(names)} names but the model's input shape "
                             f"is {shapes}")
        model._feature_names = list(names)


def _assign_loaded_weights(model, weights: dict, src: str) -> None:
    """Writes validated tensors, keyed "<layer>/<weight>", into a freshly built model."""
    if not model.built:
        return
    for layer in model.layers:
        arrays = [weights[f"{layer.name}/{p}"] for p, _, _ in layer._param_specs()]
        if arrays:
            try:
                layer.set_weights(arrays)
            except ValueError as e:
                raise _fail(src, f"weights are invalid: {e}") from None


def _load(data: bytes, src: str, compile: bool):
    members = _read_archive(data, src, (CONFIG, WEIGHTS, OPTIMIZER, METADATA), _REQUIRED)
    _check_metadata(_loads(members[METADATA], src, METADATA), members, src)  # format version and hashes first
    doc = _obj(_loads(members[CONFIG], src, CONFIG), src, CONFIG, ("model", "compile_config", "input_schema"),
               ("explanations",))
    weights, wmeta = _parse_safetensors(members[WEIGHTS], src, WEIGHTS, 1_000_000)
    _check_weights_meta(wmeta, src, WEIGHTS)
    model = _with_rng_preserved(_architecture(doc["model"], src, weights))
    _assign_loaded_weights(model, weights, src)
    _check_schema(doc["input_schema"], model, src)
    _load_explanations(doc.get("explanations"), model, src)
    if doc["compile_config"] is not None:
        if compile:
            _compile(model, doc["compile_config"], src)
    elif OPTIMIZER in members:
        raise _fail(src, "holds optimizer state but no compile_config")
    if compile and OPTIMIZER in members:
        if not model.built:
            raise _fail(src, "holds optimizer state for an unbuilt model")
        state = _optimizer_state(model, members[OPTIMIZER], src)
        model.optimizer.set_state(state, int(model._graph.param_count))
    return model


def _guard(fn, src: str):
    """Runs a loader; anything but a ModelFileError escaping it is a bug, reported as one."""
    try:
        return fn()
    except ModelFileError:
        raise
    except RecursionError:
        raise _fail(src, "is nested too deeply to load") from None
    except Exception as e:  # a check missing above: still refuse the file, and keep the cause
        raise _fail(src, f"could not be loaded ({type(e).__name__}: {e})") from e


def load_model(filepath, compile: bool = True, custom_objects=None, safe_mode: bool = True):
    """Loads a `.maas` file. compile=False skips the compile config and the optimizer state.
    custom_objects is accepted for Keras compatibility and must be empty: files cannot name
    classes outside maasfin."""
    if custom_objects:
        raise ValueError("load_model: custom_objects are not supported; model files may only use maasfin's "
                         "own layers, losses, metrics and optimizers")
    p = os.fspath(filepath)
    if isinstance(p, str) and p.lower().endswith((".keras", ".h5", ".hdf5")):
        from maasfin import keras_io
        return keras_io.load_keras_model(p, compile=compile)
    src = f"model file '{p}'"
    data = _read_file(p, src)
    return _guard(lambda: _load(data, src, compile), src)


def from_bytes(data, compile: bool = True):
    """A model from the bytes of `model.to_bytes()` (or of a `.maas` file)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"from_bytes: expected bytes, got {type(data).__name__}")
    data = bytes(data)
    return _guard(lambda: _load(data, "model bytes", compile), "model bytes")


def read_metadata(filepath) -> dict:
    """The validated metadata.json of a `.maas` file (format, versions, created, history summary,
    hashes, user_metadata), after checking the whole archive and the hashes."""
    p = os.fspath(filepath)
    src = f"model file '{p}'"
    data = _read_file(p, src)

    def read():
        members = _read_archive(data, src, (CONFIG, WEIGHTS, OPTIMIZER, METADATA), _REQUIRED)
        return _check_metadata(_loads(members[METADATA], src, METADATA), members, src)
    return _guard(read, src)


# -- weights files -------------------------------------------------------------------------------
KERAS_MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")
KERAS_WEIGHTS_SUFFIX = ".weights.h5"


def save_weights(model, filepath, overwrite: bool = True) -> None:
    path = _check_suffix(filepath, (".weights.safetensors", KERAS_WEIGHTS_SUFFIX), "save_weights")
    if path.endswith(KERAS_WEIGHTS_SUFFIX):
        from maasfin import keras_export
        return keras_export.save_keras_weights(model, path, overwrite=overwrite)
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"save_weights: '{path}' exists and overwrite=False")
    _check_saveable(model)
    model._require_built("weights")
    blob = _encode_safetensors(_weight_tensors(model), _weights_meta(model))
    atomic_write(path, lambda f: f.write(blob))


def _assign_weights(model, weights: dict, file_layers, src: str) -> None:
    """By name when every name matches; else by position, as Keras does, when the file's layers
    hold the same weight names and shapes in the same order (the same architecture built under
    other automatic names)."""
    specs = _weight_specs(model)
    if set(weights) == {k for k, _ in specs}:
        mapping = {k: k for k, _ in specs}
    else:
        model_layers = [l for l in model.layers if l._param_specs()]
        if len(file_layers) != len(model_layers):
            _check_weights_match(specs, weights, src)  # raises with the differences
        mapping = {}
        for layer, fname in zip(model_layers, file_layers):
            for pname, _, _ in layer._param_specs():
                mapping[f"{layer.name}/{pname}"] = f"{fname}/{pname}"
        if set(mapping.values()) != set(weights):
            raise _fail(src, f"weights {sorted(weights)} do not match model '{model.name}' "
                             f"(weights {[k for k, _ in specs]})")
    for key, shape in specs:
        if weights[mapping[key]].shape != shape:
            raise _fail(src, f"weight {mapping[key]!r} has shape {weights[mapping[key]].shape}, "
                             f"model '{model.name}' needs {shape} for {key!r}")
    for layer in model.layers:
        arrays = [weights[mapping[f"{layer.name}/{p}"]] for p, _, _ in layer._param_specs()]
        if arrays:
            try:
                layer.set_weights(arrays)
            except ValueError as e:
                raise _fail(src, f"weights are invalid: {e}") from None


def _read_weights_member(data: bytes, src: str):
    """(weights, layer order or None) from a .weights.safetensors blob or a .maas archive."""
    if data[:4] == b"PK\x03\x04":
        members = _read_archive(data, src, (CONFIG, WEIGHTS, OPTIMIZER, METADATA), _REQUIRED)
        _check_metadata(_loads(members[METADATA], src, METADATA), members, src)
        weights, meta = _parse_safetensors(members[WEIGHTS], src, WEIGHTS, 1_000_000)
        return weights, _check_weights_meta(meta, src, WEIGHTS)
    if len(data) > LIMITS[WEIGHTS]:
        raise _fail(src, f"is more than the limit of {LIMITS[WEIGHTS]} bytes")
    weights, meta = _parse_safetensors(data, src, "weights file", 1_000_000)
    return weights, _check_weights_meta(meta, src, "weights file")


def load_weights(model, filepath, skip_mismatch: bool = False) -> None:
    """Loads weights from a `.weights.safetensors` file (or the weights of a `.maas` file)."""
    if skip_mismatch:
        raise ValueError("load_weights: skip_mismatch=True is not supported")
    p = os.fspath(filepath)
    if isinstance(p, str) and p.endswith(KERAS_WEIGHTS_SUFFIX):
        from maasfin import keras_export
        return keras_export.load_keras_weights(model, p)
    src = f"weights file '{p}'"
    model._require_built("weights")
    data = _read_file(p, src)

    def run():
        weights, order = _read_weights_member(data, src)
        _assign_weights(model, weights, order, src)
    _guard(run, src)


# -- training state (BackupAndRestore) -----------------------------------------------------------
def generator_state(gen: np.random.Generator) -> dict:
    """A NumPy generator's state as JSON-safe data (128-bit integers as decimal strings)."""
    st = gen.bit_generator.state
    if st.get("bit_generator") != "PCG64":
        raise ValueError(f"cannot save the state of a {st.get('bit_generator')} generator (PCG64 expected)")
    return {"bit_generator": "PCG64", "state": str(st["state"]["state"]), "inc": str(st["state"]["inc"]),
            "has_uint32": int(st["has_uint32"]), "uinteger": int(st["uinteger"])}


def set_generator_state(gen: np.random.Generator, state: dict) -> None:
    gen.bit_generator.state = {"bit_generator": "PCG64",
                               "state": {"state": int(state["state"]), "inc": int(state["inc"])},
                               "has_uint32": int(state["has_uint32"]), "uinteger": int(state["uinteger"])}


def _check_generator_state(g, src: str, where: str) -> None:
    _obj(g, src, where, ("bit_generator", "state", "inc", "has_uint32", "uinteger"))
    if g["bit_generator"] != "PCG64":
        raise _fail(src, f"{where} is not a PCG64 state")
    for k in ("state", "inc"):
        if not isinstance(g[k], str) or not re.fullmatch(r"[0-9]{1,39}", g[k]) or int(g[k]) >= 2**128:
            raise _fail(src, f"{where}.{k} must be a 128-bit integer as a decimal string")
    _int(g["has_uint32"], src, f"{where}.has_uint32", 0, 1)
    _int(g["uinteger"], src, f"{where}.uinteger", 0, 2**32 - 1)


def _check_training_state(ts, src: str) -> None:
    _obj(ts, src, "metadata.json training_state", ("epoch", "seed_generator"), ("shuffle_generator",))
    _int(ts["epoch"], src, "training_state.epoch", 0, 2**31)
    _check_generator_state(ts["seed_generator"], src, "training_state.seed_generator")
    if ts.get("shuffle_generator") is not None:
        _check_generator_state(ts["shuffle_generator"], src, "training_state.shuffle_generator")


def restore_backup(model, filepath) -> dict:
    """Restores weights and optimizer state from a backup `.maas` file into `model` (the same
    architecture); returns its training_state."""
    p = os.fspath(filepath)
    src = f"backup file '{p}'"
    data = _read_file(p, src)

    def run():
        members = _read_archive(data, src, (CONFIG, WEIGHTS, OPTIMIZER, METADATA), _REQUIRED)
        meta = _check_metadata(_loads(members[METADATA], src, METADATA), members, src)
        if "training_state" not in meta:
            raise _fail(src, "is not a BackupAndRestore backup (no training_state)")
        weights, wmeta = _parse_safetensors(members[WEIGHTS], src, WEIGHTS, 1_000_000)
        _assign_weights(model, weights, _check_weights_meta(wmeta, src, WEIGHTS), src)
        if OPTIMIZER in members and model.compiled:
            state = _optimizer_state(model, members[OPTIMIZER], src)
            model.optimizer.set_state(state, int(model._graph.param_count))
            # A learning rate changed during training (ReduceLROnPlateau, ...) resumes too.
            doc = _obj(_loads(members[CONFIG], src, CONFIG), src, CONFIG,
                       ("model", "compile_config", "input_schema"), ("explanations",))
            cc = _dict(doc["compile_config"], src, "compile_config")
            opt = _obj(cc.get("optimizer"), src, "compile_config.optimizer", ("class_name", "config"))
            lr = _dict(opt["config"], src, "compile_config.optimizer.config").get("learning_rate")
            if getattr(model.optimizer, "_schedule", None) is None and lr is not None:
                if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr >= 0:
                    raise _fail(src, f"optimizer learning_rate {lr!r} is not a non-negative number")
                model.optimizer.learning_rate = float(lr)
        return meta["training_state"]
    return _guard(run, src)
