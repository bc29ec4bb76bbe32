"""The classes a file may name and how objects are built from their {class_name, config} entries."""

from __future__ import annotations

import inspect

from maasfin import registry
from maasfin.saving.file_format import ModelFileError, check_dict, check_object, check_str, fail, jsonable, normalized


# -- class allowlists ----------------------------------------------------------------------------
def model_classes() -> tuple[type, type]:
    """(Model, Sequential): the model classes, registered by maasfin.models."""
    return registry.get("model", "Model"), registry.get("model", "Sequential")


def layer_classes() -> dict[str, type]:
    return registry.classes("layer")


def optimizer_classes() -> dict[str, type]:
    return registry.classes("optimizer")


def loss_classes() -> dict[str, type]:
    return registry.classes("loss")


def metric_classes() -> dict[str, type]:
    return registry.classes("metric")


def schedule_classes() -> dict[str, type]:
    return registry.classes("schedule")


def class_entry(obj, registry: dict, what: str) -> dict:
    name = type(obj).__name__
    if registry.get(name) is not type(obj):
        raise ValueError(
            f"cannot save {what} of class {type(obj).__module__}.{name}: only maasfin's own "
            f"classes can be saved ({', '.join(sorted(registry))})"
        )
    return {"class_name": name, "config": jsonable(obj.get_config(), f"{what} '{name}' config")}


def resolve_entry(entry, registry: dict, src: str, where: str) -> tuple[type, dict]:
    check_object(entry, src, where, ("class_name", "config"))
    name = check_str(entry["class_name"], src, f"{where}.class_name", 128)
    cls = registry.get(name)
    if cls is None:
        raise fail(src, f"{where} names unknown class {name!r}; allowed: {', '.join(sorted(registry))}")
    check_dict(entry["config"], src, f"{where}.config")
    return cls, entry["config"]


def check_round_trip(obj, config: dict, src: str, where: str) -> None:
    got, want = normalized(obj.get_config()), normalized(config)
    if got != want:
        diff = sorted(k for k in set(got) | set(want) if got.get(k, "<absent>") != want.get(k, "<absent>"))
        raise fail(
            src,
            f"{where} config is not one maasfin writes: field(s) {diff} do not round-trip "
            f"(file: {[want.get(k, '<absent>') for k in diff]}, "
            f"as constructed: {[got.get(k, '<absent>') for k in diff]})",
        )


def construct(cls, config: dict, src: str, where: str, check: bool = True):
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
        raise fail(src, f"{where} ({cls.__name__}) has an invalid config: {e}") from None
    if check:
        check_round_trip(obj, config, src, where)
    return obj


def nested_classes() -> dict[str, dict[str, type]]:
    """Allowlists for objects inside layer configs, by the suffix of the argument's name."""
    return {"_regularizer": registry.classes("regularizer"), "_constraint": registry.classes("constraint")}


WRAPPERS = ("TimeDistributed", "Bidirectional")
# Config fields that hold plain data as a JSON object: {name: number}, no class inside.
PLAIN_DICTS = ("monotonicity_indicator",)


def make_layer(entry, src: str, where: str):
    """A layer from {class_name, config}. Objects nested in the config (regularizers, constraints)
    are built here through their allowlists and handed to the layer as objects, so the layer
    never resolves a name from the file itself."""
    cls, config = resolve_entry(entry, layer_classes(), src, where)
    kinds, resolved = nested_classes(), {}
    for key, value in config.items():
        if key == "layer" and isinstance(value, dict) and cls.__name__ in WRAPPERS:
            # A wrapper's inner layer: any allowlisted layer but another wrapper (bounded nesting).
            check_object(value, src, f"{where} layer", ("class_name", "config"))
            if value["class_name"] in WRAPPERS or value["class_name"] == "InputLayer":
                raise fail(src, f"{where} wraps a {value['class_name']!r}; a wrapper holds an ordinary layer")
            resolved[key] = make_layer(value, src, f"{where} layer")
            continue
        if isinstance(value, dict) and key in PLAIN_DICTS:
            bad = [k for k, v in value.items() if isinstance(v, (dict, list, bool)) or not isinstance(v, (int, float))]
            if bad:
                raise fail(src, f"{where} config field {key!r} must map names to numbers; {bad[0]!r} does not")
            resolved[key] = dict(value)
            continue
        if isinstance(value, dict):
            registry = next((r for suffix, r in kinds.items() if key.endswith(suffix)), None)
            if registry is None:
                raise fail(src, f"{where} config field {key!r} holds an object; only regularizers and constraints may")
            ncls, ncfg = resolve_entry(value, registry, src, f"{where} {key}")
            value = construct(ncls, ncfg, src, f"{where} {key}")
        resolved[key] = value
    layer = construct(cls, resolved, src, where, check=False)
    check_round_trip(layer, config, src, where)
    return layer
