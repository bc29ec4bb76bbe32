"""Reading Keras 3 model files: `.keras` (a zip of config.json + model.weights.h5) and legacy `.h5`.

`maasfin.models.load_model("model.keras")` dispatches here. Models made of the layers maasfin has
(Dense, Activation, Dropout, Add, Concatenate, BatchNormalization, LayerNormalization,
GaussianNoise, GaussianDropout, AlphaDropout, InputLayer) load with their weights; the compile
config (optimizer, loss, metrics) is translated when maasfin has the same classes. Keras's
optimizer state is not imported: `fit` on the loaded model starts a fresh optimizer.

The same rules as for `.maas` files apply: nothing from the file is executed or imported (class
names are looked up in maasfin's allowlists, `"module"` fields are ignored), every field is
validated, and the translated architecture goes through the same checks (saving.py) before any
tensor is read. HDF5 is read with h5py (`pip install 'maasfin[keras]'`), following hard links only
(no soft, external or virtual data), float32 datasets of exactly the expected shapes.
One caveat: the HDF5 container itself is parsed by the HDF5 C library, which is not hardened
against hostile files the way the .maas reader is; load Keras files you trust, and exchange
models with others as `.maas` files.
"""
from __future__ import annotations

import inspect
import io
import json
import re
import zlib

import numpy as np

from maasfin import layers as layers_module, losses as losses_module, metrics as metrics_module
from maasfin import saving
from maasfin.saving import ModelFileError, _fail

__all__ = ["load_keras_model"]

KERAS_MEMBERS = ("config.json", "metadata.json", "model.weights.h5")
_SKIP = {"module", "registered_name", "build_config", "compile_config", "shared_object_id"}


def _h5py():
    try:
        import h5py
    except ImportError:  # pragma: no cover - h5py is in the [test] and [keras] extras
        raise ImportError("loading Keras .keras/.h5 files needs h5py: pip install 'maasfin[keras]'") from None
    return h5py


def _keras_snake(name: str) -> str:
    """keras.src.utils.naming.to_snake_case: how Keras names a layer's group in model.weights.h5."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _accepted(cls) -> tuple[set[str], bool]:
    """Argument names the class's constructor chain accepts, and whether it takes arbitrary keys."""
    names, open_ = set(), False
    for klass in cls.__mro__:
        init = vars(klass).get("__init__")
        if init is None:
            continue
        for p in inspect.signature(init).parameters.values():
            if p.kind is inspect.Parameter.VAR_KEYWORD:
                open_ = True
            elif p.name != "self":
                names.add(p.name)
        if klass is layers_module.Layer:
            break
    return names, open_


def _is_off(value) -> bool:
    return value is None or value is False or value == [] or value == {}


def _dtype_ok(value) -> bool:
    if value in (None, "float32"):
        return True
    return (isinstance(value, dict) and isinstance(value.get("config"), dict)
            and value["config"].get("name") == "float32")


# Keras options that maasfin lacks and that do nothing at their Keras default.
_INERT = {"renorm_momentum": None, "renorm_clipping": None, "ema_momentum": None, "ema_overwrite_frequency": None,
          "jit_compile": None, "is_legacy_optimizer": None}


def _kwargs(cls, config: dict, src: str, where: str, convert) -> dict:
    """Keyword arguments for a maasfin class from a Keras config: the keys it accepts (values
    passed through `convert`), Keras-only keys only when they are off (None/False/[])."""
    names, _ = _accepted(cls)
    out = {}
    for key, value in config.items():
        if key in _SKIP:
            continue
        if key == "dtype":
            if not _dtype_ok(value):
                raise _fail(src, f"{where} has dtype {value!r}; maasfin computes in float32 only")
            continue
        if key in names:
            out[key] = convert(key, value)
        elif key in _INERT or _is_off(value):
            continue
        else:
            raise _fail(src, f"{where} uses the Keras option {key}={value!r}, which maasfin does not support")
    return out


def _nested(key: str, value, src: str, where: str):
    """Initializers become names; regularizers/constraints maasfin objects (through allowlists)."""
    if not isinstance(value, dict):
        return value
    name = value.get("class_name")
    if not isinstance(name, str):
        raise _fail(src, f"{where} {key} has no class_name")
    cfg = value.get("config") or {}
    if not isinstance(cfg, dict):
        raise _fail(src, f"{where} {key} config must be an object")
    if key.endswith("_initializer"):
        return name  # maasfin maps Keras's class names (GlorotUniform, ...) and refuses others
    kinds = saving._nested_classes()
    registry = next((r for suffix, r in kinds.items() if key.endswith(suffix)), None)
    if registry is None or name not in registry:
        raise _fail(src, f"{where} {key} is {name!r}, which maasfin does not support")
    ncls = registry[name]
    return ncls(**_kwargs(ncls, cfg, src, f"{where} {key}", lambda k, v: v))


def _layer(entry, src: str, where: str, input_rank: int | None = None):
    """A maasfin layer from a Keras layer entry {class_name, config, ...}."""
    if not isinstance(entry, dict) or not isinstance(entry.get("class_name"), str) \
            or not isinstance(entry.get("config"), dict):
        raise _fail(src, f"{where} must be an object with class_name and config")
    name, cfg = entry["class_name"], dict(entry["config"])
    cls = saving._layer_classes().get(name)
    if cls is None:
        raise _fail(src, f"{where} is a Keras {name!r} layer, which maasfin does not support; supported: "
                         f"{', '.join(sorted(saving._layer_classes()))}")
    lname = cfg.get("name")
    if not isinstance(lname, str) or not lname:
        raise _fail(src, f"{where} has no name")
    where = f"Keras layer '{lname}' ({name})"
    if name == "InputLayer":
        shape = cfg.get("batch_shape", cfg.get("batch_input_shape"))
        if not isinstance(shape, list) or len(shape) < 2 or shape[0] is not None and not isinstance(shape[0], int):
            raise _fail(src, f"{where} has no batch_shape")
        for key in ("sparse", "ragged", "optional"):
            if cfg.get(key):
                raise _fail(src, f"{where} is {key}, which maasfin does not support")
        if not _dtype_ok(cfg.get("dtype")):
            raise _fail(src, f"{where} has dtype {cfg.get('dtype')!r}; maasfin computes in float32 only")
        return layers_module.InputLayer(shape=saving._shape(shape[1:], src, f"{where} batch_shape"), name=lname)
    if "batch_input_shape" in cfg:  # a Keras 2 style first layer
        bis = cfg.pop("batch_input_shape")
        if isinstance(bis, list) and len(bis) >= 2:
            cfg["input_shape"] = bis[1:]
    for key in ("axis",):
        if key in cfg:
            axis = cfg[key]
            if isinstance(axis, list) and len(axis) == 1:
                axis = axis[0]
            if input_rank is not None and axis == input_rank - 1:
                axis = -1
            cfg[key] = axis
    if name in ("Dropout", "GaussianNoise", "GaussianDropout", "AlphaDropout") and cfg.get("seed") is None:
        cfg["seed"] = zlib.crc32(lname.encode())  # Keras drew one at random; any fixed seed serves
    kwargs = _kwargs(cls, cfg, src, where, lambda k, v: _nested(k, v, src, where))
    try:
        return cls(**kwargs)
    except Exception as e:
        raise _fail(src, f"{where} cannot be built in maasfin: {e}") from None


def _rank(entry) -> int | None:
    shape = (entry.get("build_config") or {}).get("input_shape") if isinstance(entry, dict) else None
    return len(shape) if isinstance(shape, list) and shape and not isinstance(shape[0], list) else None


def _history_name(t, src: str, where: str) -> str:
    """The layer name of a Keras 3 `__keras_tensor__` (or a Keras 2 [name, 0, 0, {}] entry)."""
    if isinstance(t, dict) and t.get("class_name") == "__keras_tensor__":
        hist = (t.get("config") or {}).get("keras_history")
    else:
        hist = t
    if not (isinstance(hist, list) and len(hist) >= 3 and isinstance(hist[0], str) and hist[1] == 0 and hist[2] == 0):
        raise _fail(src, f"{where} has an input maasfin cannot wire (shared layers and multi-output layers are "
                         "not supported)")
    return hist[0]


def _inbound(entry, src: str, where: str) -> list[str]:
    nodes = entry.get("inbound_nodes", [])
    if not isinstance(nodes, list) or len(nodes) > 1:
        raise _fail(src, f"{where} is called more than once (shared layers are not supported)")
    if not nodes:
        return []
    node = nodes[0]
    if isinstance(node, dict):  # Keras 3
        args, kwargs = node.get("args"), node.get("kwargs") or {}
        if not isinstance(args, list) or len(args) != 1:
            raise _fail(src, f"{where} has call arguments maasfin does not support")
        if not isinstance(kwargs, dict) or any(k not in ("training", "mask") or (k == "mask" and v is not None)
                                               for k, v in kwargs.items()):
            raise _fail(src, f"{where} is called with {kwargs!r}, which maasfin does not support")
        arg = args[0]
        tensors = arg if isinstance(arg, list) else [arg]
    else:  # Keras 2: [[name, 0, 0, {}], ...]
        tensors = node if isinstance(node, list) else []
    names = [_history_name(t, src, where) for t in tensors]
    if not names:
        raise _fail(src, f"{where} has no inputs")
    return names


def _io_names(value, src: str, what: str) -> list[str]:
    if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str):
        value = [value]  # a single [name, 0, 0]
    if not isinstance(value, list) or not value:
        raise _fail(src, f"Keras config {what} must list layers")
    return [_history_name(v, src, what) for v in value]


def _translate(model_cfg, src: str) -> dict:
    """A maasfin architecture document from a Keras {class_name, config} model config."""
    if not isinstance(model_cfg, dict) or not isinstance(model_cfg.get("config"), dict):
        raise _fail(src, "Keras config has no model config")
    kind, cfg = model_cfg.get("class_name"), model_cfg["config"]
    name = cfg.get("name") if isinstance(cfg.get("name"), str) and cfg.get("name") else "model"
    entries = cfg.get("layers")
    if not isinstance(entries, list) or len(entries) > saving.LIMITS["layers"]:
        raise _fail(src, "Keras config layers must be a list")
    if kind == "Sequential":
        layers = [_layer(e, src, f"layer {i}", _rank(e)) for i, e in enumerate(entries)]
        out = {"name": name, "layers": [saving._layer_entry(l) for l in layers]}
        bis = cfg.get("build_input_shape")
        if isinstance(bis, list) and len(bis) >= 2 and not isinstance(layers[0] if layers else None,
                                                                       layers_module.InputLayer):
            out["input_shape"] = bis[1:]
        elif layers and isinstance(layers[0], layers_module.InputLayer):
            out["input_shape"] = list(layers[0].shape)
        return {"class_name": "Sequential", "config": out}
    if kind in ("Functional", "Model"):
        out_layers = []
        for i, e in enumerate(entries):
            layer = _layer(e, src, f"layer {i}", _rank(e))
            where = f"Keras layer '{layer.name}'"
            out_layers.append({**saving._layer_entry(layer), "name": layer.name,
                               "inbound_layers": _inbound(e, src, where)})
        return {"class_name": "Functional",
                "config": {"name": name, "layers": out_layers,
                           "input_layers": _io_names(cfg.get("input_layers"), src, "input_layers"),
                           "output_layers": _io_names(cfg.get("output_layers"), src, "output_layers")}}
    raise _fail(src, f"Keras model class {kind!r} is not supported (Sequential and functional models are)")


# -- HDF5 ------------------------------------------------------------------------------------------
def _child(group, name: str, src: str, where: str):
    """group[name], following a hard link only (an external or soft link could reach other files)."""
    h5py = _h5py()
    link = group.get(name, getlink=True)
    if link is None:
        raise _fail(src, f"{where}: '{name}' is missing")
    if not isinstance(link, h5py.HardLink):
        raise _fail(src, f"{where}: '{name}' is a {type(link).__name__}; only plain HDF5 objects are read")
    return group[name]


def _path(root, path: str, src: str):
    node = root
    for part in [p for p in path.split("/") if p]:
        if not isinstance(node, _h5py().Group):
            raise _fail(src, f"'{path}' does not lead to a group")
        node = _child(node, part, src, f"'{path}'")
    return node


def _read_dataset(dset, shape: tuple, src: str, where: str) -> np.ndarray:
    h5py = _h5py()
    if not isinstance(dset, h5py.Dataset):
        raise _fail(src, f"{where} is not a dataset")
    if dset.is_virtual or dset.external:
        raise _fail(src, f"{where} refers to data outside the file")
    if dset.dtype != np.dtype("float32"):
        raise _fail(src, f"{where} has dtype {dset.dtype}; only float32 is read")
    if tuple(dset.shape) != tuple(shape):
        raise _fail(src, f"{where} has shape {tuple(dset.shape)}, the architecture needs {tuple(shape)}")
    return np.ascontiguousarray(dset[()], dtype=np.float32)


def _group_specs(specs) -> dict[str, list]:
    by_layer: dict[str, list] = {}
    for key, shape in specs:
        lname, _, _ = key.rpartition("/")
        by_layer.setdefault(lname, []).append((key, shape))
    return by_layer


def _keras_paths(model_cfg) -> dict[str, str]:
    """Layer name -> its group in model.weights.h5 ("layers/dense_1"): Keras names the groups by
    class, in the order of model.layers (which excludes the InputLayer in a Sequential model)."""
    cfg, counts, paths = model_cfg["config"], {}, {}
    for e in cfg["layers"]:
        if model_cfg["class_name"] == "Sequential" and e["class_name"] == "InputLayer":
            continue
        base = _keras_snake(e["class_name"])
        n = counts.get(base, 0)
        counts[base] = n + 1
        paths[e["config"]["name"]] = f"layers/{base}" if n == 0 else f"layers/{base}_{n}"
    return paths


def _weights_from_keras_h5(h5, paths: dict[str, str], src: str):
    def resolve(specs) -> dict:
        out = {}
        for lname, items in _group_specs(specs).items():
            if lname not in paths:
                raise _fail(src, f"layer '{lname}' has no weights in model.weights.h5")
            group = _path(h5, f"{paths[lname]}/vars", src)
            stored = sorted(k for k in group.keys())
            if stored != sorted(str(i) for i in range(len(items))):
                raise _fail(src, f"model.weights.h5 {paths[lname]}/vars holds {stored}, layer '{lname}' has "
                                 f"{len(items)} weights")
            for i, (key, shape) in enumerate(items):
                out[key] = _read_dataset(_child(group, str(i), src, paths[lname]), shape, src,
                                         f"model.weights.h5 {paths[lname]}/vars/{i}")
        return out
    return resolve


def _str_list(value) -> list[str]:
    items = list(value) if isinstance(value, (list, np.ndarray)) else []
    return [v.decode("utf-8") if isinstance(v, bytes) else v for v in items]


def _weights_from_legacy_h5(h5, src: str):
    def resolve(specs) -> dict:
        root = _path(h5, "model_weights", src)
        out = {}
        for lname, items in _group_specs(specs).items():
            group = _path(root, lname, src)
            names = _str_list(group.attrs.get("weight_names", []))
            if len(names) != len(items) or not all(isinstance(n, str) for n in names):
                raise _fail(src, f"model_weights/{lname} lists {len(names)} weights, the layer has {len(items)}")
            for (key, shape), wname in zip(items, names):
                out[key] = _read_dataset(_path(group, wname, src), shape, src, f"model_weights/{lname}/{wname}")
        return out
    return resolve


# -- compile config --------------------------------------------------------------------------------
def _keras_object(entry, registry: dict, src: str, what: str):
    if not isinstance(entry, dict) or not isinstance(entry.get("class_name"), str):
        raise _fail(src, f"{what} {entry!r} is not a Keras object config")
    cls = registry.get(entry["class_name"])
    if cls is None:
        raise _fail(src, f"{what} {entry['class_name']!r} has no maasfin equivalent")
    cfg = entry.get("config") or {}
    if not isinstance(cfg, dict):
        raise _fail(src, f"{what} config must be an object")

    def convert(key, value):
        if key == "learning_rate" and isinstance(value, dict):
            return _keras_object(value, saving._schedule_classes(), src, "learning-rate schedule")
        return value
    try:
        return cls(**_kwargs(cls, cfg, src, f"{what} {entry['class_name']}", convert))
    except ModelFileError:
        raise
    except Exception as e:
        raise _fail(src, f"{what} {entry['class_name']} cannot be built in maasfin: {e}") from None


def _named(value, table: dict, registry: dict, src: str, what: str):
    if isinstance(value, str):
        if what == "metric" and value in ("accuracy", "acc"):
            return value
        if value not in table:
            raise _fail(src, f"{what} {value!r} has no maasfin equivalent")
        return value
    return _keras_object(value, registry, src, what)


def _compile(model, cc, src: str) -> None:
    if not isinstance(cc, dict):
        raise _fail(src, "Keras compile config must be an object")
    if cc.get("loss_weights") is not None:
        raise _fail(src, "Keras compile config has loss_weights (multi-output), which maasfin does not support")
    optimizer = _keras_object(cc.get("optimizer", cc.get("optimizer_config")), saving._optimizer_classes(), src,
                              "optimizer")
    loss = _named(cc.get("loss"), losses_module._BY_NAME, saving._loss_classes(), src, "loss")
    lists = []
    for key in ("metrics", "weighted_metrics"):
        items = cc.get(key) or []
        if not isinstance(items, list):
            raise _fail(src, f"Keras compile config {key} must be a list (multi-output metrics are not supported)")
        lists.append([_named(m, metrics_module._BY_NAME, saving._metric_classes(), src, "metric") for m in items])
    try:
        model.compile(optimizer=optimizer, loss=loss, metrics=lists[0], weighted_metrics=lists[1] or None)
    except (TypeError, ValueError) as e:
        raise _fail(src, f"Keras compile config cannot be used: {e}") from None


# -- entry point -----------------------------------------------------------------------------------
def _build(model_cfg, weights_resolver, src: str):
    doc = _translate(model_cfg, src)
    resolved = {}

    def capture(specs):
        resolved.update(weights_resolver(specs))
        return resolved
    model = saving._with_rng_preserved(saving._architecture(doc, src, capture))
    saving._assign_loaded_weights(model, resolved, src)
    return model


def _load_keras_zip(data: bytes, src: str, compile: bool):
    h5py = _h5py()
    members = saving._read_archive(data, src, KERAS_MEMBERS, ("config.json", "model.weights.h5"))
    if "metadata.json" in members:
        meta = saving._loads(members["metadata.json"], src, "metadata.json")
        version = meta.get("keras_version") if isinstance(meta, dict) else None
        if not (isinstance(version, str) and version.startswith("3.")):
            raise _fail(src, f"was written by Keras {version!r}; maasfin reads Keras 3 files")
    cfg = saving._loads(members["config.json"], src, "config.json")
    if not isinstance(cfg, dict):
        raise _fail(src, "config.json must be an object")
    try:
        h5 = h5py.File(io.BytesIO(members["model.weights.h5"]), "r")
    except Exception as e:
        raise _fail(src, f"model.weights.h5 is not a readable HDF5 file ({e})") from None
    with h5:
        translated = _translate(cfg, src)  # validates the layer list before paths are computed
        model = _build(cfg, _weights_from_keras_h5(h5, _keras_paths(
            {"class_name": translated["class_name"], "config": cfg["config"]}), src), src)
    if compile and cfg.get("compile_config") is not None:
        _compile(model, cfg["compile_config"], src)
    return model


def _load_legacy_h5(data: bytes, src: str, compile: bool):
    h5py = _h5py()
    if data[:8] != b"\x89HDF\r\n\x1a\n":
        raise _fail(src, "is not an HDF5 file")
    try:
        h5 = h5py.File(io.BytesIO(data), "r")
    except Exception as e:
        raise _fail(src, f"is not a readable HDF5 file ({e})") from None
    with h5:
        raw = h5.attrs.get("model_config")
        if raw is None:
            raise _fail(src, "has no model_config: it holds weights only (use model.load_weights in Keras)")
        if isinstance(raw, bytes):
            raw = raw.decode("utf-8", "replace")
        if not isinstance(raw, str) or len(raw) > saving.LIMITS["config.json"]:
            raise _fail(src, "model_config must be a JSON string")
        cfg = saving._loads(raw.encode("utf-8"), src, "model_config")
        version = h5.attrs.get("keras_version")
        version = version.decode() if isinstance(version, bytes) else version
        if not (isinstance(version, str) and version.startswith("3.")):
            raise _fail(src, f"was written by Keras {version!r}; maasfin reads files written by Keras 3")
        model = _build(cfg, _weights_from_legacy_h5(h5, src), src)
        training = h5.attrs.get("training_config")
        if compile and training is not None:
            if isinstance(training, bytes):
                training = training.decode("utf-8", "replace")
            _compile(model, saving._loads(str(training).encode("utf-8"), src, "training_config"), src)
    return model


def load_keras_model(filepath, compile: bool = True):
    """Loads a Keras 3 `.keras` or legacy `.h5` file as a maasfin model (see the module docstring)."""
    p = str(filepath)
    src = f"Keras file '{p}'"
    data = saving._read_file(p, src)
    if p.lower().endswith(".keras"):
        return saving._guard(lambda: _load_keras_zip(data, src, compile), src)
    return saving._guard(lambda: _load_legacy_h5(data, src, compile), src)
