"""Keras 3 layer and model configs translated into maasfin configs, option by option."""

from __future__ import annotations

import inspect
import zlib

from maasfin import layers as layers_module
from maasfin.saving import file_format
from maasfin.saving.config import layer_entry
from maasfin.saving.file_format import LIMITS, fail
from maasfin.saving.keras.h5 import RECURRENT, config_get
from maasfin.saving.objects import layer_classes, nested_classes

KERAS_MEMBERS = ("config.json", "metadata.json", "model.weights.h5")
_SKIP = {"module", "registered_name", "build_config", "compile_config", "shared_object_id"}


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
    return (
        isinstance(value, dict) and isinstance(value.get("config"), dict) and value["config"].get("name") == "float32"
    )


# Keras options that maasfin lacks and that do nothing at their Keras default.
_INERT = {
    "renorm_momentum": None,
    "renorm_clipping": None,
    "ema_momentum": None,
    "ema_overwrite_frequency": None,
    "jit_compile": None,
    "is_legacy_optimizer": None,
    # Recurrent layers: unit_forget_bias only initialises the bias (the file's weights replace
    # it).
    "unit_forget_bias": None,
}
# Keras options that maasfin lacks on some layers but always behaves as (a file with any other
# value is refused by name).
_FIXED = {"data_format": "channels_last"}


def keras_kwargs(cls, config: dict, src: str, where: str, convert) -> dict:
    """Keyword arguments for a maasfin class from a Keras config: the keys it accepts (values
    passed through `convert`), Keras-only keys only when they are off (None/False/[])."""
    names, _ = _accepted(cls)
    out = {}
    for key, value in config.items():
        if key in _SKIP:
            continue
        if key == "dtype":
            if not _dtype_ok(value):
                raise fail(src, f"{where} has dtype {value!r}; maasfin computes in float32 only")
            continue
        if key in names:
            out[key] = convert(key, value)
        elif key in _INERT or _is_off(value) or (key in _FIXED and value == _FIXED[key]):
            continue
        else:
            raise fail(src, f"{where} uses the Keras option {key}={value!r}, which maasfin does not support")
    return out


def _nested(key: str, value, src: str, where: str):
    """Initializers become names; regularizers/constraints maasfin objects (through allowlists)."""
    if not isinstance(value, dict):
        return value
    name = value.get("class_name")
    if not isinstance(name, str):
        raise fail(src, f"{where} {key} has no class_name")
    cfg = value.get("config") or {}
    if not isinstance(cfg, dict):
        raise fail(src, f"{where} {key} config must be an object")
    if key.endswith("_initializer"):
        return name  # maasfin maps Keras's class names (GlorotUniform, ...) and refuses others
    kinds = nested_classes()
    registry = next((r for suffix, r in kinds.items() if key.endswith(suffix)), None)
    if registry is None or name not in registry:
        raise fail(src, f"{where} {key} is {name!r}, which maasfin does not support")
    ncls = registry[name]
    return ncls(**keras_kwargs(ncls, cfg, src, f"{where} {key}", lambda k, v: v))


_WRAPPERS = ("TimeDistributed", "Bidirectional")
_INPUT_DTYPES = ("int32", "int64", "bool")  # integer inputs (indices for Embedding, lookups) besides float32


def _backward_matches(fwd: dict, bwd, src: str, where: str) -> None:
    """Keras stores Bidirectional's backward layer in full; maasfin's is a copy of the forward
    layer with go_backwards flipped, so any other difference is refused by field."""
    if (
        not isinstance(bwd, dict)
        or bwd.get("class_name") != fwd.get("class_name")
        or not isinstance(bwd.get("config"), dict)
    ):
        raise fail(
            src,
            f"{where} has a backward_layer of another class than its layer; maasfin's backward "
            "layer is a copy of the forward layer",
        )

    def plain(v):  # without Keras's bookkeeping (module, registered_name, shared_object_id, ...)
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items() if k not in _SKIP}
        return [plain(x) for x in v] if isinstance(v, list) else v

    a, b = plain(fwd["config"]), plain(bwd["config"])
    ignore = {"name", "go_backwards"}
    diff = sorted(
        k
        for k in set(a) | set(b)
        if k not in ignore
        and a.get(k) != b.get(k)
        and not (
            k.endswith("_initializer") and config_get(a.get(k), "class_name") == config_get(b.get(k), "class_name")
        )
        and not (k == "dtype" and _dtype_ok(a.get(k)) and _dtype_ok(b.get(k)))
    )
    if diff or bool(a.get("go_backwards")) == bool(b.get("go_backwards")):
        raise fail(
            src,
            f"{where} has a backward_layer that differs from its layer in "
            f"{diff or ['go_backwards']}; maasfin's backward layer is a copy of the forward layer "
            "with go_backwards flipped",
        )


def _layer(entry, src: str, where: str, input_rank: int | None = None, call: dict | None = None, wrapped: bool = False):
    """A maasfin layer from a Keras layer entry {class_name, config, ...}. `call` holds config
    values that Keras records on the call (MultiHeadAttention's use_causal_mask); `wrapped` marks
    the layer inside a TimeDistributed/Bidirectional."""
    if (
        not isinstance(entry, dict)
        or not isinstance(entry.get("class_name"), str)
        or not isinstance(entry.get("config"), dict)
    ):
        raise fail(src, f"{where} must be an object with class_name and config")
    name, cfg = entry["class_name"], dict(entry["config"])
    cls = layer_classes().get(name)
    if cls is None:
        raise fail(
            src,
            f"{where} is a Keras {name!r} layer, which maasfin does not support; supported: "
            f"{', '.join(sorted(layer_classes()))}",
        )
    lname = cfg.get("name")
    if not isinstance(lname, str) or not lname:
        raise fail(src, f"{where} has no name")
    if "/" in lname:  # Keras refuses such names; weights are keyed "<layer>/<weight>"
        raise fail(src, f"{where} is named {lname!r}; Keras layer names cannot contain '/'")
    if wrapped and (name in _WRAPPERS or name == "InputLayer"):
        raise fail(src, f"{where} is a Keras {name!r} layer; a wrapper must hold an ordinary layer")
    where = f"Keras layer '{lname}' ({name})"
    if name == "InputLayer":
        shape = cfg.get("batch_shape", cfg.get("batch_input_shape"))
        if not isinstance(shape, list) or len(shape) < 2 or shape[0] is not None and not isinstance(shape[0], int):
            raise fail(src, f"{where} has no batch_shape")
        if any(d is None for d in shape[1:]):
            raise fail(
                src,
                f"{where} has a variable dimension (per-sample shape {shape[1:]}); maasfin models have "
                "fixed per-sample shapes: build the Keras model on keras.Input(shape=...) with every "
                "dimension given (for example the number of timesteps) and save it again",
            )
        for key in ("sparse", "ragged", "optional"):
            if cfg.get(key):
                raise fail(src, f"{where} is {key}, which maasfin does not support")
        dtype = cfg.get("dtype")
        if not _dtype_ok(dtype) and dtype not in _INPUT_DTYPES:
            raise fail(src, f"{where} has dtype {dtype!r}; maasfin takes float32, int32, int64 or bool inputs")
        return layers_module.InputLayer(
            shape=file_format.check_shape(shape[1:], src, f"{where} batch_shape"),
            name=lname,
            dtype=dtype if dtype in _INPUT_DTYPES else None,
        )
    if name in _WRAPPERS:
        inner = cfg.get("layer")
        if not isinstance(inner, dict) or not isinstance(inner.get("config"), dict):
            raise fail(src, f"{where} has no layer config")
        if name == "Bidirectional":
            backward = cfg.pop("backward_layer", None)
            if backward is not None:
                _backward_matches(inner, backward, src, where)
            # Keras names the wrapped layers forward_<name> / backward_<name>; maasfin adds the prefixes.
            iname = inner["config"].get("name")
            if isinstance(iname, str) and iname.startswith("forward_") and len(iname) > len("forward_"):
                inner = {**inner, "config": {**inner["config"], "name": iname[len("forward_") :]}}
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
    if (
        name
        in (
            "Dropout",
            "GaussianNoise",
            "GaussianDropout",
            "AlphaDropout",
            "SpatialDropout1D",
            "SpatialDropout2D",
            "SpatialDropout3D",
        )
        or name in RECURRENT
        and (cfg.get("dropout") or cfg.get("recurrent_dropout"))
    ) and cfg.get("seed") is None:
        cfg["seed"] = zlib.crc32(lname.encode())  # Keras drew one at random; any fixed seed serves
    kwargs = keras_kwargs(cls, cfg, src, where, lambda k, v: _nested(k, v, src, where))
    try:
        return cls(**kwargs)
    except Exception as e:
        raise fail(src, f"{where} cannot be built in maasfin: {e}") from None


def _rank(entry) -> int | None:
    shape = config_get(config_get(entry, "build_config"), "input_shape")
    return len(shape) if isinstance(shape, list) and shape and not isinstance(shape[0], list) else None


def _history_ref(t, src: str, where: str):
    """The maasfin wiring ref of a Keras 3 `__keras_tensor__` (or a Keras 2 [name, 0, k, {}] entry):
    the layer name, or [name, k] for output k > 0 of a layer with several outputs (return_state)."""
    if isinstance(t, dict) and t.get("class_name") == "__keras_tensor__":
        hist = config_get(t.get("config"), "keras_history")
    else:
        hist = t
    if not (
        isinstance(hist, list)
        and len(hist) >= 3
        and isinstance(hist[0], str)
        and hist[1] == 0
        and isinstance(hist[2], int)
        and not isinstance(hist[2], bool)
        and 0 <= hist[2] < 64
    ):
        raise fail(src, f"{where} has an input maasfin cannot wire (shared layers are not supported)")
    return hist[0] if hist[2] == 0 else [hist[0], hist[2]]


def _is_tensor(value) -> bool:
    return isinstance(value, dict) and value.get("class_name") == "__keras_tensor__"


_MHA_TENSORS = ("query", "value", "key", "attention_mask")
_MHA_OFF = ("query_mask", "value_mask", "key_mask")


def _attention_call(args: list, kwargs: dict, src: str, where: str) -> tuple[list, dict]:
    """The tensors of a recorded MultiHeadAttention call, in maasfin's input order
    [query, value] + [key] + [attention_mask], and its use_causal_mask."""
    if len(args) > 3:
        raise fail(src, f"{where} is called with {len(args)} positional arguments; expected query, value, key")
    call = dict(zip(("query", "value", "key"), args))
    for k, v in kwargs.items():
        if k in call:
            raise fail(src, f"{where} is called with {k} twice")
        call[k] = v
    for k, v in call.items():
        if k in _MHA_TENSORS:
            if v is not None and not _is_tensor(v):
                raise fail(src, f"{where} is called with {k}={v!r}; maasfin needs a tensor of the model")
        elif k in ("use_causal_mask", "return_attention_scores"):
            if not isinstance(v, bool):
                raise fail(src, f"{where} is called with {k}={v!r}; expected true or false")
        elif k == "training" or (k in _MHA_OFF and _is_off(v)):
            continue
        else:
            raise fail(src, f"{where} is called with the argument {k}={v!r}, which maasfin does not support")
    if call.get("query") is None or call.get("value") is None:
        raise fail(src, f"{where} is called without a query and a value tensor")
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
    if (
        kind == "NotEqual"
        and isinstance(args, list)
        and len(args) == 2
        and _is_tensor(args[0])
        and isinstance(args[1], (int, float))
        and not isinstance(args[1], bool)
        and not node.get("kwargs")
    ):
        shape = config_get(args[0].get("config"), "shape")
        ref = _history_ref(args[0], src, where)
        return ("step" if isinstance(shape, list) and len(shape) == 2 else "elementwise", ref, float(args[1]))
    if (
        kind == "Any"
        and isinstance(args, list)
        and len(args) == 1
        and _is_tensor(args[0])
        and cfg.get("axis") in (-1, [-1])
        and not cfg.get("keepdims")
    ):
        inner = ops.get(_history_ref(args[0], src, where))
        if inner is not None and inner[0] == "elementwise":
            return ("step", inner[1], inner[2])
    raise fail(
        src,
        f"{where}: maasfin reads only the mask ops of Masking and Embedding(mask_zero=True) "
        "(not_equal, any over the last axis)",
    )


def _inbound(entry, src: str, where: str) -> tuple[list, dict]:
    """The refs of the tensors feeding a layer (a recurrent layer's initial states after its
    sequence), and config values recorded on its call. A `mask` tensor is checked by translate."""
    nodes = entry.get("inbound_nodes", [])
    if not isinstance(nodes, list) or len(nodes) > 1:
        raise fail(src, f"{where} is called more than once (shared layers are not supported)")
    if not nodes:
        return [], {}
    node, extra = nodes[0], {}
    if isinstance(node, dict):  # Keras 3
        args, kwargs = node.get("args"), node.get("kwargs") or {}
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            raise fail(src, f"{where} has call arguments maasfin does not support")
        if entry.get("class_name") == "MultiHeadAttention":
            tensors, extra = _attention_call(args, kwargs, src, where)
        else:
            if len(args) != 1:
                raise fail(src, f"{where} has call arguments maasfin does not support")
            for k, v in kwargs.items():
                if not (
                    k == "training"
                    or (k == "mask" and (v is None or _is_tensor(v)))
                    or (k == "initial_state" and v is not None)
                ):
                    raise fail(src, f"{where} is called with the argument {k}={v!r}, which maasfin does not support")
            arg = args[0]
            tensors = arg if isinstance(arg, list) else [arg]
            init = kwargs.get("initial_state")
            if init is not None:  # a recurrent layer's initial states follow the sequence
                if len(tensors) != 1:
                    raise fail(src, f"{where} has call arguments maasfin does not support")
                tensors = tensors + (init if isinstance(init, list) else [init])
    else:  # Keras 2: [[name, 0, 0, {}], ...]
        tensors = node if isinstance(node, list) else []
    refs = [_history_ref(t, src, where) for t in tensors]
    if not refs:
        raise fail(src, f"{where} has no inputs")
    return refs, extra


def _io_names(value, src: str, what: str) -> list:
    if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str):
        value = [value]  # a single [name, 0, 0]
    if not isinstance(value, list) or not value:
        raise fail(src, f"Keras config {what} must list layers")
    return [_history_ref(v, src, what) for v in value]


def translate(model_cfg, src: str) -> dict:
    """A maasfin architecture document from a Keras {class_name, config} model config."""
    if not isinstance(model_cfg, dict) or not isinstance(model_cfg.get("config"), dict):
        raise fail(src, "Keras config has no model config")
    kind, cfg = model_cfg.get("class_name"), model_cfg["config"]
    name = cfg.get("name") if isinstance(cfg.get("name"), str) and cfg.get("name") else "model"
    entries = cfg.get("layers")
    if not isinstance(entries, list) or len(entries) > LIMITS["layers"]:
        raise fail(src, "Keras config layers must be a list")
    if kind == "Sequential":
        layers = [_layer(e, src, f"layer {i}", _rank(e)) for i, e in enumerate(entries)]
        out = {"name": name, "layers": [layer_entry(l) for l in layers]}
        bis = cfg.get("build_input_shape")
        if (
            isinstance(bis, list)
            and len(bis) >= 2
            and not isinstance(layers[0] if layers else None, layers_module.InputLayer)
        ):
            if any(d is None for d in bis[1:]):
                raise fail(
                    src,
                    f"Keras Sequential model '{name}' was built on a variable dimension (per-sample "
                    f"shape {bis[1:]}); maasfin models have fixed per-sample shapes: build it on "
                    "keras.Input(shape=...) with every dimension given and save it again",
                )
            out["input_shape"] = bis[1:]
        elif layers and isinstance(layers[0], layers_module.InputLayer):
            out["input_shape"] = list(layers[0].shape)
        return {"class_name": "Sequential", "config": out}
    if kind in ("Functional", "Model"):
        out_layers, mask_ops, masks, outputs = [], {}, {}, {}
        for i, e in enumerate(entries):
            lname = config_get(config_get(e, "config"), "name")
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
                    raise fail(
                        src,
                        f"Keras layer '{layer.name}' is called with the argument mask={mask!r}, which "
                        "maasfin cannot derive (it reads the masks of Masking and "
                        "Embedding(mask_zero=True) only)",
                    )
                masks[layer.name] = op[1:]
            outputs[layer.name] = layer._num_outputs()
            out_layers.append({**layer_entry(layer), "name": layer.name, "inbound_layers": inbound})
        if any(isinstance(r, str) and r in mask_ops for e in out_layers for r in e["inbound_layers"]):
            raise fail(src, "a mask op feeds a layer as data; only masks are supported")

        def ref(r):  # output 0 of a layer with several outputs is [name, 0] in maasfin's wiring
            return [r, 0] if isinstance(r, str) and outputs.get(r, 1) > 1 else r

        for e in out_layers:
            e["inbound_layers"] = [ref(r) for r in e["inbound_layers"]]
        return {
            "class_name": "Functional",
            "masks": masks,
            "config": {
                "name": name,
                "layers": out_layers,
                "input_layers": _io_names(cfg.get("input_layers"), src, "input_layers"),
                "output_layers": [ref(r) for r in _io_names(cfg.get("output_layers"), src, "output_layers")],
            },
        }
    raise fail(src, f"Keras model class {kind!r} is not supported (Sequential and functional models are)")


# -- HDF5, parsed in a child process -------------------------------------------------------------
