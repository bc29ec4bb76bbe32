"""Reading Keras 3 model files: `.keras` (a zip of config.json + model.weights.h5) and legacy `.h5`.

`maasfin.models.load_model("model.keras")` dispatches here. Sequential and functional models made
of the layers maasfin has load with their weights: Dense, Activation, the merge layers,
normalization, noise and preprocessing layers, Conv1D/2D, poolings, reshaping layers, Embedding,
SimpleRNN/LSTM/GRU, Bidirectional and TimeDistributed (whose wrapped layer's config is translated
the same way) and MultiHeadAttention (whose query/value/key tensors and `use_causal_mask` come from
the call recorded in the file). Recurrent layers' `return_state` outputs ([name, k] in maasfin's
wiring) and `initial_state` arguments are wired; the masks Keras writes as `not_equal`/`any` ops
and `mask=` arguments are dropped after checking that each layer reads exactly the mask maasfin
derives from Masking / Embedding(mask_zero=True). Each weight is matched to maasfin's in Keras's own order: the
nested groups of model.weights.h5 (`cell/vars`, `forward_layer/...`, `layer/vars`,
`query_dense/vars` ...) or the `weight_names` of a legacy `.h5`. The compile config (optimizer,
loss, metrics) is translated when maasfin has the same classes. Keras's optimizer state is not
imported: `fit` on the loaded model starts a fresh optimizer. A Keras option maasfin lacks is
refused with an error naming the layer and the option, unless it is off or does nothing here.

The same rules as for `.maas` files apply: nothing from the file is executed or imported (class
names are looked up in maasfin's allowlists, `"module"` fields are ignored), every field is
validated, and the translated architecture goes through the same checks (saving.py) before any
tensor is used. HDF5 is read with h5py (`pip install 'maasfin[keras]'`) in a separate, resource-
limited process (see `_CHILD`), because the HDF5 C library is not hardened against hostile files:
a file that crashes it crashes only that process and is reported as a ModelFileError. Only hard
links are followed (no soft, external or virtual data) and only float32 datasets are used, each of
exactly the shape the architecture needs.
"""
from __future__ import annotations

import inspect
import re
import zlib

import numpy as np

from maasfin import layers as layers_module, losses as losses_module, metrics as metrics_module
from maasfin import saving
from maasfin import archive, file_format
from maasfin.file_format import LIMITS, ModelFileError, _fail

__all__ = ["load_keras_model"]

KERAS_MEMBERS = ("config.json", "metadata.json", "model.weights.h5")
_SKIP = {"module", "registered_name", "build_config", "compile_config", "shared_object_id"}


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
          "jit_compile": None, "is_legacy_optimizer": None,
          # Recurrent layers: unit_forget_bias only initialises the bias (the file's weights replace
          # it).
          "unit_forget_bias": None}
# Keras options that maasfin lacks on some layers but always behaves as (a file with any other
# value is refused by name).
_FIXED = {"data_format": "channels_last"}


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
        elif key in _INERT or _is_off(value) or (key in _FIXED and value == _FIXED[key]):
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


_WRAPPERS = ("TimeDistributed", "Bidirectional")
_INPUT_DTYPES = ("int32", "int64", "bool")  # integer inputs (indices for Embedding, lookups) besides float32


def _backward_matches(fwd: dict, bwd, src: str, where: str) -> None:
    """Keras stores Bidirectional's backward layer in full; maasfin's is a copy of the forward
    layer with go_backwards flipped, so any other difference is refused by field."""
    if not isinstance(bwd, dict) or bwd.get("class_name") != fwd.get("class_name") \
            or not isinstance(bwd.get("config"), dict):
        raise _fail(src, f"{where} has a backward_layer of another class than its layer; maasfin's backward "
                         "layer is a copy of the forward layer")

    def plain(v):  # without Keras's bookkeeping (module, registered_name, shared_object_id, ...)
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items() if k not in _SKIP}
        return [plain(x) for x in v] if isinstance(v, list) else v
    a, b = plain(fwd["config"]), plain(bwd["config"])
    ignore = {"name", "go_backwards"}
    diff = sorted(k for k in set(a) | set(b) if k not in ignore and a.get(k) != b.get(k)
                  and not (k.endswith("_initializer") and _get(a.get(k), "class_name") == _get(b.get(k), "class_name"))
                  and not (k == "dtype" and _dtype_ok(a.get(k)) and _dtype_ok(b.get(k))))
    if diff or bool(a.get("go_backwards")) == bool(b.get("go_backwards")):
        raise _fail(src, f"{where} has a backward_layer that differs from its layer in "
                         f"{diff or ['go_backwards']}; maasfin's backward layer is a copy of the forward layer "
                         "with go_backwards flipped")


def _layer(entry, src: str, where: str, input_rank: int | None = None, call: dict | None = None,
           wrapped: bool = False):
    """A maasfin layer from a Keras layer entry {class_name, config, ...}. `call` holds config
    values that Keras records on the call (MultiHeadAttention's use_causal_mask); `wrapped` marks
    the layer inside a TimeDistributed/Bidirectional."""
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
    if "/" in lname:  # Keras refuses such names; weights are keyed "<layer>/<weight>"
        raise _fail(src, f"{where} is named {lname!r}; Keras layer names cannot contain '/'")
    if wrapped and (name in _WRAPPERS or name == "InputLayer"):
        raise _fail(src, f"{where} is a Keras {name!r} layer; a wrapper must hold an ordinary layer")
    where = f"Keras layer '{lname}' ({name})"
    if name == "InputLayer":
        shape = cfg.get("batch_shape", cfg.get("batch_input_shape"))
        if not isinstance(shape, list) or len(shape) < 2 or shape[0] is not None and not isinstance(shape[0], int):
            raise _fail(src, f"{where} has no batch_shape")
        if any(d is None for d in shape[1:]):
            raise _fail(src, f"{where} has a variable dimension (per-sample shape {shape[1:]}); maasfin models have "
                             "fixed per-sample shapes: build the Keras model on keras.Input(shape=...) with every "
                             "dimension given (for example the number of timesteps) and save it again")
        for key in ("sparse", "ragged", "optional"):
            if cfg.get(key):
                raise _fail(src, f"{where} is {key}, which maasfin does not support")
        dtype = cfg.get("dtype")
        if not _dtype_ok(dtype) and dtype not in _INPUT_DTYPES:
            raise _fail(src, f"{where} has dtype {dtype!r}; maasfin takes float32, int32, int64 or bool inputs")
        return layers_module.InputLayer(shape=file_format._shape(shape[1:], src, f"{where} batch_shape"), name=lname,
                                        dtype=dtype if dtype in _INPUT_DTYPES else None)
    if name in _WRAPPERS:
        inner = cfg.get("layer")
        if not isinstance(inner, dict) or not isinstance(inner.get("config"), dict):
            raise _fail(src, f"{where} has no layer config")
        if name == "Bidirectional":
            backward = cfg.pop("backward_layer", None)
            if backward is not None:
                _backward_matches(inner, backward, src, where)
            # Keras names the wrapped layers forward_<name> / backward_<name>; maasfin adds the prefixes.
            iname = inner["config"].get("name")
            if isinstance(iname, str) and iname.startswith("forward_") and len(iname) > len("forward_"):
                inner = {**inner, "config": {**inner["config"], "name": iname[len("forward_"):]}}
        cfg["layer"] = _layer(inner, src, f"{where} layer", _rank(inner), wrapped=True)
    if call:
        cfg.update(call)
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
    if (name in ("Dropout", "GaussianNoise", "GaussianDropout", "AlphaDropout", "SpatialDropout1D",
                 "SpatialDropout2D", "SpatialDropout3D")
            or name in _RECURRENT and (cfg.get("dropout") or cfg.get("recurrent_dropout"))) \
            and cfg.get("seed") is None:
        cfg["seed"] = zlib.crc32(lname.encode())  # Keras drew one at random; any fixed seed serves
    kwargs = _kwargs(cls, cfg, src, where, lambda k, v: _nested(k, v, src, where))
    try:
        return cls(**kwargs)
    except Exception as e:
        raise _fail(src, f"{where} cannot be built in maasfin: {e}") from None


def _get(d, key):
    return d.get(key) if isinstance(d, dict) else None


def _rank(entry) -> int | None:
    shape = _get(_get(entry, "build_config"), "input_shape")
    return len(shape) if isinstance(shape, list) and shape and not isinstance(shape[0], list) else None


def _history_ref(t, src: str, where: str):
    """The maasfin wiring ref of a Keras 3 `__keras_tensor__` (or a Keras 2 [name, 0, k, {}] entry):
    the layer name, or [name, k] for output k > 0 of a layer with several outputs (return_state)."""
    if isinstance(t, dict) and t.get("class_name") == "__keras_tensor__":
        hist = _get(t.get("config"), "keras_history")
    else:
        hist = t
    if not (isinstance(hist, list) and len(hist) >= 3 and isinstance(hist[0], str) and hist[1] == 0
            and isinstance(hist[2], int) and not isinstance(hist[2], bool) and 0 <= hist[2] < 64):
        raise _fail(src, f"{where} has an input maasfin cannot wire (shared layers are not supported)")
    return hist[0] if hist[2] == 0 else [hist[0], hist[2]]


def _is_tensor(value) -> bool:
    return isinstance(value, dict) and value.get("class_name") == "__keras_tensor__"


_MHA_TENSORS = ("query", "value", "key", "attention_mask")
_MHA_OFF = ("query_mask", "value_mask", "key_mask")


def _attention_call(args: list, kwargs: dict, src: str, where: str) -> tuple[list, dict]:
    """The tensors of a recorded MultiHeadAttention call, in maasfin's input order
    [query, value] + [key] + [attention_mask], and its use_causal_mask."""
    if len(args) > 3:
        raise _fail(src, f"{where} is called with {len(args)} positional arguments; expected query, value, key")
    call = dict(zip(("query", "value", "key"), args))
    for k, v in kwargs.items():
        if k in call:
            raise _fail(src, f"{where} is called with {k} twice")
        call[k] = v
    for k, v in call.items():
        if k in _MHA_TENSORS:
            if v is not None and not _is_tensor(v):
                raise _fail(src, f"{where} is called with {k}={v!r}; maasfin needs a tensor of the model")
        elif k in ("use_causal_mask", "return_attention_scores"):
            if not isinstance(v, bool):
                raise _fail(src, f"{where} is called with {k}={v!r}; expected true or false")
        elif k == "training" or (k in _MHA_OFF and _is_off(v)):
            continue
        else:
            raise _fail(src, f"{where} is called with the argument {k}={v!r}, which maasfin does not support")
    if call.get("query") is None or call.get("value") is None:
        raise _fail(src, f"{where} is called without a query and a value tensor")
    tensors = [call["query"], call["value"]]
    if call.get("key") is not None or call.get("attention_mask") is not None:
        tensors.append(call.get("key") or call["value"])
    if call.get("attention_mask") is not None:
        tensors.append(call["attention_mask"])
    extra = {"use_causal_mask": bool(call.get("use_causal_mask", False))}
    if call.get("return_attention_scores"):
        extra["return_attention_scores"] = True
    return tensors, extra


def _mask_ref(entry, src: str, where: str):
    """The ref of the tensor a Keras layer receives as `mask` (Keras 3 writes masks into the
    functional wiring), or None."""
    nodes = entry.get("inbound_nodes", [])
    node = nodes[0] if isinstance(nodes, list) and nodes else None
    mask = (node.get("kwargs") or {}).get("mask") if isinstance(node, dict) else None
    return _history_ref(mask, src, where) if mask is not None else None


def _mask_op(entry, ops: dict, src: str, where: str):
    """Keras 3 writes a mask into the functional wiring as ops: Embedding(mask_zero=True)'s as
    `not_equal(x, 0)` on (batch, T), Masking's as `any(not_equal(x, v), axis=-1)`. Returns
    ("step", source ref, value) for a whole step mask, ("elementwise", ...) for the inner not_equal."""
    kind, cfg = entry.get("class_name"), entry.get("config") or {}
    nodes = entry.get("inbound_nodes", [])
    node = nodes[0] if isinstance(nodes, list) and len(nodes) == 1 else None
    args = node.get("args") if isinstance(node, dict) else None
    if kind == "NotEqual" and isinstance(args, list) and len(args) == 2 and _is_tensor(args[0]) \
            and isinstance(args[1], (int, float)) and not isinstance(args[1], bool) and not node.get("kwargs"):
        shape = _get(args[0].get("config"), "shape")
        ref = _history_ref(args[0], src, where)
        return ("step" if isinstance(shape, list) and len(shape) == 2 else "elementwise", ref, float(args[1]))
    if kind == "Any" and isinstance(args, list) and len(args) == 1 and _is_tensor(args[0]) \
            and cfg.get("axis") in (-1, [-1]) and not cfg.get("keepdims"):
        inner = ops.get(_history_ref(args[0], src, where))
        if inner is not None and inner[0] == "elementwise":
            return ("step", inner[1], inner[2])
    raise _fail(src, f"{where}: maasfin reads only the mask ops of Masking and Embedding(mask_zero=True) "
                     "(not_equal, any over the last axis)")


def _inbound(entry, src: str, where: str) -> tuple[list, dict]:
    """The refs of the tensors feeding a layer (a recurrent layer's initial states after its
    sequence), and config values recorded on its call. A `mask` tensor is checked by _translate."""
    nodes = entry.get("inbound_nodes", [])
    if not isinstance(nodes, list) or len(nodes) > 1:
        raise _fail(src, f"{where} is called more than once (shared layers are not supported)")
    if not nodes:
        return [], {}
    node, extra = nodes[0], {}
    if isinstance(node, dict):  # Keras 3
        args, kwargs = node.get("args"), node.get("kwargs") or {}
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            raise _fail(src, f"{where} has call arguments maasfin does not support")
        if entry.get("class_name") == "MultiHeadAttention":
            tensors, extra = _attention_call(args, kwargs, src, where)
        else:
            if len(args) != 1:
                raise _fail(src, f"{where} has call arguments maasfin does not support")
            for k, v in kwargs.items():
                if not (k == "training" or (k == "mask" and (v is None or _is_tensor(v)))
                        or (k == "initial_state" and v is not None)):
                    raise _fail(src, f"{where} is called with the argument {k}={v!r}, which maasfin does not "
                                     "support")
            arg = args[0]
            tensors = arg if isinstance(arg, list) else [arg]
            init = kwargs.get("initial_state")
            if init is not None:  # a recurrent layer's initial states follow the sequence
                if len(tensors) != 1:
                    raise _fail(src, f"{where} has call arguments maasfin does not support")
                tensors = tensors + (init if isinstance(init, list) else [init])
    else:  # Keras 2: [[name, 0, 0, {}], ...]
        tensors = node if isinstance(node, list) else []
    refs = [_history_ref(t, src, where) for t in tensors]
    if not refs:
        raise _fail(src, f"{where} has no inputs")
    return refs, extra


def _io_names(value, src: str, what: str) -> list:
    if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str):
        value = [value]  # a single [name, 0, 0]
    if not isinstance(value, list) or not value:
        raise _fail(src, f"Keras config {what} must list layers")
    return [_history_ref(v, src, what) for v in value]


def _translate(model_cfg, src: str) -> dict:
    """A maasfin architecture document from a Keras {class_name, config} model config."""
    if not isinstance(model_cfg, dict) or not isinstance(model_cfg.get("config"), dict):
        raise _fail(src, "Keras config has no model config")
    kind, cfg = model_cfg.get("class_name"), model_cfg["config"]
    name = cfg.get("name") if isinstance(cfg.get("name"), str) and cfg.get("name") else "model"
    entries = cfg.get("layers")
    if not isinstance(entries, list) or len(entries) > LIMITS["layers"]:
        raise _fail(src, "Keras config layers must be a list")
    if kind == "Sequential":
        layers = [_layer(e, src, f"layer {i}", _rank(e)) for i, e in enumerate(entries)]
        out = {"name": name, "layers": [saving._layer_entry(l) for l in layers]}
        bis = cfg.get("build_input_shape")
        if isinstance(bis, list) and len(bis) >= 2 and not isinstance(layers[0] if layers else None,
                                                                       layers_module.InputLayer):
            if any(d is None for d in bis[1:]):
                raise _fail(src, f"Keras Sequential model '{name}' was built on a variable dimension (per-sample "
                                 f"shape {bis[1:]}); maasfin models have fixed per-sample shapes: build it on "
                                 "keras.Input(shape=...) with every dimension given and save it again")
            out["input_shape"] = bis[1:]
        elif layers and isinstance(layers[0], layers_module.InputLayer):
            out["input_shape"] = list(layers[0].shape)
        return {"class_name": "Sequential", "config": out}
    if kind in ("Functional", "Model"):
        out_layers, mask_ops, masks, outputs = [], {}, {}, {}
        for i, e in enumerate(entries):
            lname = _get(_get(e, "config"), "name")
            if isinstance(e, dict) and e.get("class_name") in ("NotEqual", "Any"):
                # Keras's mask ops; maasfin derives the same masks from the layers (checked after building).
                mask_ops[lname] = _mask_op(e, mask_ops, src, f"Keras layer '{lname}' ({e.get('class_name')})")
                continue
            inbound, call = _inbound(e, src, f"Keras layer '{lname}'") if isinstance(e, dict) else ([], {})
            layer = _layer(e, src, f"layer {i}", _rank(e), call)
            mask = _mask_ref(e, src, f"Keras layer '{layer.name}'")
            if mask is not None:
                op = mask_ops.get(mask) if isinstance(mask, str) else None
                if op is None or op[0] != "step":
                    raise _fail(src, f"Keras layer '{layer.name}' is called with the argument mask={mask!r}, which "
                                     "maasfin cannot derive (it reads the masks of Masking and "
                                     "Embedding(mask_zero=True) only)")
                masks[layer.name] = op[1:]
            outputs[layer.name] = layer._num_outputs()
            out_layers.append({**saving._layer_entry(layer), "name": layer.name, "inbound_layers": inbound})
        if any(isinstance(r, str) and r in mask_ops for e in out_layers for r in e["inbound_layers"]):
            raise _fail(src, "a mask op feeds a layer as data; only masks are supported")

        def ref(r):  # output 0 of a layer with several outputs is [name, 0] in maasfin's wiring
            return [r, 0] if isinstance(r, str) and outputs.get(r, 1) > 1 else r
        for e in out_layers:
            e["inbound_layers"] = [ref(r) for r in e["inbound_layers"]]
        return {"class_name": "Functional", "masks": masks,
                "config": {"name": name, "layers": out_layers,
                           "input_layers": _io_names(cfg.get("input_layers"), src, "input_layers"),
                           "output_layers": [ref(r) for r in _io_names(cfg.get("output_layers"), src,
                                                                        "output_layers")]}}
    raise _fail(src, f"Keras model class {kind!r} is not supported (Sequential and functional models are)")


# -- HDF5, parsed in a child process -------------------------------------------------------------
# The HDF5 C library is not hardened against hostile files (a few flipped bits can crash it), so
# HDF5 is never parsed in this process. A child (`python -I`, memory and CPU limits, a timeout)
# walks the file, following hard links only, and sends back every float32 dataset under the
# requested groups as safetensors, with an index of groups, the attributes maasfin needs, refused
# links and skipped datasets. A crash of the child is a ModelFileError here, not a dead server.
_CHILD = r"""
import io, json, sys
def fail(code, msg):
    sys.stderr.write(msg[:2000]); sys.stderr.flush(); sys.exit(code)
mem, seconds, cap = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
prefixes = [p for p in sys.argv[4].split(",") if p]
try:
    import resource
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds))
except Exception:
    pass
try:
    import h5py, numpy as np, safetensors.numpy
except ImportError as e:
    fail(2, "MAASFIN-IMPORT " + str(e))
WANT = ("model_config", "training_config", "keras_version", "backend", "weight_names", "layer_names", "name")
def value(v):
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, str):
        return v
    if isinstance(v, np.ndarray) and (v.dtype.kind in "OSU" or v.size == 0):
        return [x.decode("utf-8", "replace") if isinstance(x, bytes) else str(x) for x in v.reshape(-1).tolist()]
    return None
index = {"groups": {}, "links": {}, "skipped": {}}
tensors, state = {}, {"objects": 0, "bytes": 0}
def walk(group, path, depth):
    if depth > 32:
        fail(3, "groups are nested more than 32 levels deep")
    children = []
    for name in group:
        state["objects"] += 1
        if state["objects"] > 100000:
            fail(3, "holds more than 100000 objects")
        child = name if not path else path + "/" + name
        children.append(name)
        if not path and prefixes and name not in prefixes:
            continue
        link = group.get(name, getlink=True)
        if not isinstance(link, h5py.HardLink):
            index["links"][child] = type(link).__name__
            continue
        obj = group[name]
        if isinstance(obj, h5py.Group):
            walk(obj, child, depth + 1)
        elif isinstance(obj, h5py.Dataset):
            if obj.is_virtual or obj.external:
                index["skipped"][child] = "refers to data outside the file"
            elif obj.dtype != np.float32:
                index["skipped"][child] = "has dtype %s; only float32 is read" % obj.dtype
            else:
                state["bytes"] += 4 * int(np.prod(obj.shape, dtype=np.int64))
                if state["bytes"] > cap:
                    fail(3, "float32 datasets hold more than the limit of %d bytes" % cap)
                tensors[child] = np.ascontiguousarray(obj[()], dtype=np.float32).reshape(obj.shape)
    attrs = {}
    for k in WANT:
        if k in group.attrs:
            v = value(group.attrs[k])
            if v is not None:
                attrs[k] = v
    index["groups"][path] = {"children": children, "attrs": attrs}
try:
    f = h5py.File(io.BytesIO(sys.stdin.buffer.read()), "r")
except Exception as e:
    fail(3, "is not a readable HDF5 file (%s)" % e)
try:
    walk(f, "", 0)
except Exception as e:
    fail(3, "could not be read as HDF5 (%s: %s)" % (type(e).__name__, e))
sys.stdout.buffer.write(safetensors.numpy.save(tensors, metadata={"index": json.dumps(index)}))
"""


def _extract_h5(data: bytes, src: str, what: str, prefixes: tuple[str, ...]):
    """(tensors by HDF5 path, index) of an HDF5 blob, read by the sandboxed child."""
    import subprocess
    import sys
    cap = LIMITS["model.weights.h5"]
    seconds = int(LIMITS["hdf5_seconds"])
    mem = int(LIMITS["hdf5_memory"]) + 3 * len(data)
    env = {k: v for k, v in __import__("os").environ.items() if k in ("PATH", "LD_LIBRARY_PATH", "HOME", "LANG")}
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    try:
        proc = subprocess.run([sys.executable, "-I", "-c", _CHILD, str(mem), str(seconds), str(cap), ",".join(prefixes)],
                              input=data, capture_output=True, timeout=2 * seconds + 10, env=env)
    except subprocess.TimeoutExpired:
        raise _fail(src, f"{what}: the HDF5 reader did not finish within {2 * seconds + 10} s") from None
    err = proc.stderr.decode("utf-8", "replace")
    if proc.returncode < 0:
        raise _fail(src, f"{what}: the HDF5 reader crashed on this file (signal {-proc.returncode}); "
                         "the file is corrupt or hostile")
    if proc.returncode == 2 and err.startswith("MAASFIN-IMPORT"):
        raise ImportError("loading Keras .keras/.h5 files needs h5py: pip install 'maasfin[keras]'")
    if proc.returncode == 3:
        raise _fail(src, f"{what} {err}")
    if proc.returncode != 0:
        raise _fail(src, f"{what}: the HDF5 reader failed (exit status {proc.returncode}): {err[-300:]}")
    tensors, meta = archive._parse_safetensors(proc.stdout, src, f"{what} (as read)", 1_000_000)
    index = file_format._loads(meta.get("index", "").encode("utf-8"), src, f"{what} index")
    file_format._obj(index, src, f"{what} index", ("groups", "links", "skipped"))
    return tensors, index


class _H5:
    """The extracted view of an HDF5 file: groups with children and attributes, float32 tensors."""

    def __init__(self, tensors: dict, index: dict, src: str, what: str):
        self.tensors, self.index, self.src, self.what = tensors, index, src, what

    def group(self, path: str) -> dict:
        g = self.index["groups"].get(path)
        if not isinstance(g, dict):
            self._missing(path)
        return g

    def attrs(self, path: str) -> dict:
        a = self.group(path).get("attrs")
        return a if isinstance(a, dict) else {}

    def dataset(self, path: str, shape: tuple) -> np.ndarray:
        a = self.tensors.get(path)
        if a is None:
            self._missing(path)
        if tuple(a.shape) != tuple(shape):
            raise _fail(self.src, f"{self.what} {path} has shape {tuple(a.shape)}, the architecture needs "
                                  f"{tuple(shape)}")
        return a

    def _missing(self, path: str):
        if path in self.index["links"]:
            raise _fail(self.src, f"{self.what} {path} is a {self.index['links'][path]}; only plain HDF5 objects "
                                  "are read")
        if path in self.index["skipped"]:
            raise _fail(self.src, f"{self.what} {path} {self.index['skipped'][path]}")
        raise _fail(self.src, f"{self.what} has no {path}")


def _group_specs(specs) -> dict[str, list]:
    by_layer: dict[str, list] = {}
    for key, shape in specs:
        lname, _, _ = key.partition("/")  # weight names may hold '/', Keras layer names never do
        by_layer.setdefault(lname, []).append((key, shape))
    return by_layer


def _keras_paths(model_cfg) -> dict[str, tuple[str, dict]]:
    """Layer name -> (its group in model.weights.h5 ("layers/dense_1"), its Keras entry): Keras
    names the groups by class, in the order of model.layers (which excludes the InputLayer in a
    Sequential model)."""
    cfg, counts, paths = model_cfg["config"], {}, {}
    for e in cfg["layers"]:
        if model_cfg["class_name"] == "Sequential" and e["class_name"] == "InputLayer":
            continue
        base = _keras_snake(e["class_name"])
        n = counts.get(base, 0)
        counts[base] = n + 1
        paths[e["config"]["name"]] = (f"layers/{base}" if n == 0 else f"layers/{base}_{n}", e)
    return paths


_RECURRENT = ("SimpleRNN", "LSTM", "GRU")
# MultiHeadAttention keeps its weights in four sublayers, in this (Keras get_weights) order.
_MHA_GROUPS = ("query_dense", "key_dense", "value_dense", "output_dense")


def _vars(h5: _H5, group: str, src: str) -> list[str]:
    """The datasets of one Keras variable group, "<group>/vars/0", "/1", ... in order."""
    path = f"{group}/vars"
    stored = [str(c) for c in h5.group(path).get("children", [])]
    if sorted(stored) != sorted(str(i) for i in range(len(stored))):
        raise _fail(src, f"model.weights.h5 {path} holds {sorted(stored)}, not variables 0..{len(stored) - 1}")
    return [f"{path}/{i}" for i in range(len(stored))]


def _var_paths(h5: _H5, group: str, entry: dict, src: str) -> list[str]:
    """A layer's datasets in model.weights.h5, in Keras's get_weights order (maasfin's order too)."""
    kind = entry.get("class_name")
    if kind in _RECURRENT:
        return _vars(h5, f"{group}/cell", src)
    if kind == "Bidirectional":
        inner = entry["config"]["layer"]
        return _var_paths(h5, f"{group}/forward_layer", inner, src) + \
            _var_paths(h5, f"{group}/backward_layer", inner, src)
    if kind == "TimeDistributed":
        return _var_paths(h5, f"{group}/layer", entry["config"]["layer"], src)
    if kind == "MultiHeadAttention":
        return [p for sub in _MHA_GROUPS for p in _vars(h5, f"{group}/{sub}", src)]
    if kind == "Normalization":  # an adapted Normalization: mean, variance, then Keras's unused int count
        return _vars(h5, group, src)[:2]
    return _vars(h5, group, src)


def _config_state(entry, items, src: str):
    """Weights maasfin keeps as arrays but Keras keeps in the layer's config, or None: a
    Discretization's bin_boundaries (Keras has no variable for them)."""
    if _get(entry, "class_name") != "Discretization" or len(items) != 1:
        return None
    key, shape = items[0]
    bounds = _get(_get(entry, "config"), "bin_boundaries")
    try:
        a = np.asarray(bounds, dtype=np.float32)
    except (TypeError, ValueError):
        raise _fail(src, f"Keras layer {key.partition('/')[0]!r} (Discretization) has invalid bin_boundaries") from None
    if a.shape != tuple(shape) or not np.all(np.isfinite(a)):
        raise _fail(src, f"Keras layer {key.partition('/')[0]!r} (Discretization) has bin_boundaries of shape "
                         f"{a.shape}, the layer needs {tuple(shape)}")
    return {key: a}


def _weights_from_keras_h5(h5: _H5, paths: dict[str, tuple[str, dict]], src: str):
    def resolve(specs) -> dict:
        out = {}
        for lname, items in _group_specs(specs).items():
            state = _config_state(paths.get(lname, (None, None))[1], items, src)
            if state is not None:
                out.update(state)
                continue
            if lname not in paths:
                raise _fail(src, f"layer '{lname}' has no weights in model.weights.h5")
            group, entry = paths[lname]
            stored = _var_paths(h5, group, entry, src)
            if len(stored) != len(items):
                raise _fail(src, f"model.weights.h5 {group} holds {len(stored)} weights, layer '{lname}' has "
                                 f"{len(items)}")
            for path, (key, shape) in zip(stored, items):
                out[key] = h5.dataset(path, shape)
        return out
    return resolve


def _weights_from_legacy_h5(h5: _H5, src: str, entries: dict | None = None):
    def resolve(specs) -> dict:
        out = {}
        for lname, items in _group_specs(specs).items():
            state = _config_state((entries or {}).get(lname), items, src)
            if state is not None:
                out.update(state)
                continue
            names = h5.attrs(f"model_weights/{lname}").get("weight_names", [])
            if isinstance(names, list) and len(names) == len(items) + 1 and str(names[-1]).endswith("/count") \
                    and len(items) == 2 and str(items[0][0]).endswith("/mean"):
                names = names[:-1]  # an adapted Normalization's count, which maasfin does not keep
            if not isinstance(names, list) or len(names) != len(items) or \
                    not all(isinstance(n, str) and ".." not in n.split("/") for n in names):
                raise _fail(src, f"model_weights/{lname} lists {len(names) if isinstance(names, list) else '?'} "
                                 f"weights, the layer has {len(items)}")
            for (key, shape), wname in zip(items, names):
                out[key] = h5.dataset(f"model_weights/{lname}/{wname}".replace("//", "/"), shape)
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
    masks = doc.pop("masks", None)
    resolved = {}

    def capture(specs):
        resolved.update(weights_resolver(specs))
        return resolved
    model = saving._with_rng_preserved(saving._architecture(doc, src, capture))
    if masks is not None:
        _check_masks(model, masks, src)
    saving._assign_loaded_weights(model, resolved, src)
    return model


def _check_masks(model, masks: dict, src: str) -> None:
    """Every layer must read exactly the mask Keras wired to it (maasfin derives masks from the
    Masking / Embedding layers; a model where the two disagree is refused, not run differently)."""
    for layer in model.layers:
        want, got = masks.get(layer.name), layer._mask_in
        got = None if got is None else (got.source.layer.name if got.source.index == 0 else
                                        [got.source.layer.name, got.source.index], got.value)
        if want is not None:
            want = (want[0], want[1])
        if want != got:
            raise _fail(src, f"Keras layer '{layer.name}' reads the mask {want!r} but maasfin would give it {got!r}")


def _load_keras_zip(data: bytes, src: str, compile: bool):
    members = archive._read_archive(data, src, KERAS_MEMBERS, ("config.json", "model.weights.h5"))
    if "metadata.json" in members:
        meta = file_format._loads(members["metadata.json"], src, "metadata.json")
        version = meta.get("keras_version") if isinstance(meta, dict) else None
        if not (isinstance(version, str) and version.startswith("3.")):
            raise _fail(src, f"was written by Keras {version!r}; maasfin reads Keras 3 files")
    cfg = file_format._loads(members["config.json"], src, "config.json")
    if not isinstance(cfg, dict):
        raise _fail(src, "config.json must be an object")
    translated = _translate(cfg, src)  # validates the layer list before anything else is read
    h5 = _H5(*_extract_h5(members["model.weights.h5"], src, "model.weights.h5", ("layers",)), src, "model.weights.h5")
    paths = _keras_paths({"class_name": translated["class_name"], "config": cfg["config"]})
    model = _build(cfg, _weights_from_keras_h5(h5, paths, src), src)
    if compile and cfg.get("compile_config"):  # Keras writes {} for a model that was never compiled
        _compile(model, cfg["compile_config"], src)
    return model


def _utf8(text, src: str, what: str) -> bytes:
    if not isinstance(text, str) or len(text) > LIMITS["config.json"]:
        raise _fail(src, f"{what} must be a JSON string of at most {LIMITS['config.json']} characters")
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise _fail(src, f"{what} is not UTF-8 text") from None


def _load_legacy_h5(data: bytes, src: str, compile: bool):
    if data[:8] != b"\x89HDF\r\n\x1a\n":
        raise _fail(src, "is not an HDF5 file")
    h5 = _H5(*_extract_h5(data, src, "HDF5 file", ("model_weights",)), src, "HDF5 file")
    root = h5.attrs("")
    raw = root.get("model_config")
    if raw is None:
        raise _fail(src, "has no model_config: it holds weights only (use model.load_weights in Keras)")
    version = root.get("keras_version")
    if not (isinstance(version, str) and version.startswith("3.")):
        raise _fail(src, f"was written by Keras {version!r}; maasfin reads files written by Keras 3")
    cfg = file_format._loads(_utf8(raw, src, "model_config"), src, "model_config")
    layer_entries = _get(cfg, "config") and _get(cfg["config"], "layers")
    entries = {_get(_get(e, "config"), "name"): e for e in layer_entries} if isinstance(layer_entries, list) else {}
    model = _build(cfg, _weights_from_legacy_h5(h5, src, entries), src)
    training = root.get("training_config")
    if compile and training is not None:
        _compile(model, file_format._loads(_utf8(training, src, "training_config"), src, "training_config"), src)
    return model


def load_keras_model(filepath, compile: bool = True):
    """Loads a Keras 3 `.keras` or legacy `.h5` file as a maasfin model (see the module docstring)."""
    p = str(filepath)
    src = f"Keras file '{p}'"
    data = archive._read_file(p, src)
    if p.lower().endswith(".keras"):
        return saving._guard(lambda: _load_keras_zip(data, src, compile), src)
    return saving._guard(lambda: _load_legacy_h5(data, src, compile), src)
