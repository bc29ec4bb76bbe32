"""A model's tensors in files: weights by name, their metadata and checks, and optimizer state."""

from __future__ import annotations

import json
import re

import numpy as np

from maasfin import _core
from maasfin.saving.archive import parse_safetensors
from maasfin.saving.file_format import (
    FORMAT_VERSION,
    OPTIMIZER,
    OPTIMIZER_FORMAT_NAME,
    WEIGHTS_FORMAT_NAME,
    check_object,
    fail,
    loads,
)


# -- tensors -------------------------------------------------------------------------------------
def weight_specs(model) -> list[tuple[str, tuple[int, ...]]]:
    return [
        (f"{layer.name}/{pname}", tuple(int(d) for d in shape))
        for layer in model.layers
        for pname, shape, _ in layer._param_specs()
    ]


def weight_tensors(model) -> dict[str, np.ndarray]:
    out = {}
    if model.built:
        for layer in model.layers:
            for (pname, _, _), w in zip(layer._param_specs(), layer.get_weights()):
                out[f"{layer.name}/{pname}"] = np.ascontiguousarray(w, dtype=np.float32)
    return out


def weights_meta(model) -> dict[str, str]:
    """The weights member's __metadata__: format, version and the weighted layers in model order."""
    return {
        "format": WEIGHTS_FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        "layers": json.dumps([l.name for l in model.layers if l._param_specs()]),
    }


def check_weights_meta(meta: dict, src: str, what: str) -> list[str]:
    """Validates a weights __metadata__ and returns its layer order."""
    check_object(meta, src, f"{what} __metadata__", ("format", "format_version", "layers"))
    if meta["format"] != WEIGHTS_FORMAT_NAME:
        raise fail(src, f"{what} is not a maasfin weights file (format {meta['format']!r})")
    if meta["format_version"] != str(FORMAT_VERSION):
        raise fail(
            src,
            f"{what} has unknown weights format version {meta['format_version']!r}; this maasfin "
            f"reads version {FORMAT_VERSION}",
        )
    order = loads(meta["layers"].encode("utf-8"), src, f"{what} layer list")
    if not isinstance(order, list) or not all(isinstance(n, str) for n in order) or len(set(order)) != len(order):
        raise fail(src, f"{what} layer list must be a list of distinct layer names")
    return order


def optimizer_state(model, blob: bytes, src: str) -> dict:
    """Validates optimizer.safetensors against the model and its optimizer; returns the state."""
    n = int(model._graph.param_count)
    tensors, meta = parse_safetensors(blob, src, OPTIMIZER, 64)
    check_object(
        meta,
        src,
        "optimizer.safetensors __metadata__",
        ("format", "format_version", "optimizer", "iterations", "n_params"),
    )
    if meta["format"] != OPTIMIZER_FORMAT_NAME or meta["format_version"] != str(FORMAT_VERSION):
        raise fail(src, f"optimizer.safetensors has format {meta['format']!r} version {meta['format_version']!r}")
    if meta["optimizer"] != type(model.optimizer).__name__:
        raise fail(
            src,
            f"optimizer.safetensors holds the state of a {meta['optimizer']!r} optimizer, "
            f"but the model is compiled with {type(model.optimizer).__name__}",
        )
    if not re.fullmatch(r"[0-9]{1,19}", meta["iterations"]) or int(meta["iterations"]) >= 2**63:
        raise fail(src, f"optimizer.safetensors iterations {meta['iterations']!r} is not a step count")
    if meta["n_params"] != str(n):
        raise fail(src, f"optimizer.safetensors is for {meta['n_params']} parameters, the model has {n}")
    # The slots the core allocates for this optimizer and arena (nothing is allocated to ask).
    core = model.optimizer._make_core()
    if hasattr(model.optimizer, "_configure"):
        core = model.optimizer._configure(core)
    expected = core.slot_sizes(n)
    if set(tensors) != set(expected):
        raise fail(
            src,
            f"optimizer.safetensors holds slots {sorted(tensors)}, "
            f"{type(model.optimizer).__name__} has {sorted(expected)}",
        )
    for name, size in expected.items():
        a = tensors[name]
        if a.shape != (size,):
            raise fail(src, f"optimizer slot {name!r} has shape {a.shape}, expected ({size},)")
        if _core.first_nonfinite(a) >= 0:
            raise fail(src, f"optimizer slot {name!r} contains NaN or infinity")
    return {"iterations": int(meta["iterations"]), "slots": tensors}


# -- loading: the whole file ---------------------------------------------------------------------
def assign_loaded_weights(model, weights: dict, src: str) -> None:
    """Writes validated tensors, keyed "<layer>/<weight>", into a freshly built model."""
    if not model.built:
        return
    for layer in model.layers:
        arrays = [weights[f"{layer.name}/{p}"] for p, _, _ in layer._param_specs()]
        if arrays:
            try:
                layer.set_weights(arrays)
            except ValueError as e:
                raise fail(src, f"weights are invalid: {e}") from None
