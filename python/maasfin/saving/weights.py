"""Weights files: `.weights.safetensors` (or a `.maas` file's weights) and Keras `.weights.h5`, by suffix."""

from __future__ import annotations

import os

from maasfin.saving.architecture import check_weights_match
from maasfin.saving.archive import atomic_write, encode_safetensors, parse_safetensors, read_archive, read_file
from maasfin.saving.checks import check_metadata, check_suffix, guard
from maasfin.saving.config import check_saveable
from maasfin.saving.file_format import LIMITS, MEMBERS, METADATA, REQUIRED, WEIGHTS, fail, loads
from maasfin.saving.keras import read as keras_read
from maasfin.saving.keras import write as keras_write
from maasfin.saving.tensors import check_weights_meta, weight_specs, weight_tensors, weights_meta

# -- weights files -------------------------------------------------------------------------------
KERAS_MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")
KERAS_WEIGHTS_SUFFIX = ".weights.h5"


def save_weights(model, filepath, overwrite: bool = True) -> None:
    path = check_suffix(filepath, (".weights.safetensors", KERAS_WEIGHTS_SUFFIX), "save_weights")
    if path.endswith(KERAS_WEIGHTS_SUFFIX):
        return keras_write.save_keras_weights(model, path, overwrite=overwrite)
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"save_weights: '{path}' exists and overwrite=False")
    check_saveable(model)
    model._require_built("weights")
    blob = encode_safetensors(weight_tensors(model), weights_meta(model))
    atomic_write(path, lambda f: f.write(blob))


def assign_weights(model, weights: dict, file_layers, src: str) -> None:
    """By name when every name matches; else by position, as Keras does, when the file's layers
    hold the same weight names and shapes in the same order (the same architecture built under
    other automatic names)."""
    specs = weight_specs(model)
    if set(weights) == {k for k, _ in specs}:
        mapping = {k: k for k, _ in specs}
    else:
        model_layers = [l for l in model.layers if l._param_specs()]
        if len(file_layers) != len(model_layers):
            check_weights_match(specs, weights, src)  # raises with the differences
        mapping = {}
        for layer, fname in zip(model_layers, file_layers):
            for pname, _, _ in layer._param_specs():
                mapping[f"{layer.name}/{pname}"] = f"{fname}/{pname}"
        if set(mapping.values()) != set(weights):
            raise fail(
                src, f"weights {sorted(weights)} do not match model '{model.name}' (weights {[k for k, _ in specs]})"
            )
    for key, shape in specs:
        if weights[mapping[key]].shape != shape:
            raise fail(
                src,
                f"weight {mapping[key]!r} has shape {weights[mapping[key]].shape}, "
                f"model '{model.name}' needs {shape} for {key!r}",
            )
    for layer in model.layers:
        arrays = [weights[mapping[f"{layer.name}/{p}"]] for p, _, _ in layer._param_specs()]
        if arrays:
            try:
                layer.set_weights(arrays)
            except ValueError as e:
                raise fail(src, f"weights are invalid: {e}") from None


def read_weights_member(data: bytes, src: str):
    """(weights, layer order or None) from a .weights.safetensors blob or a .maas archive."""
    if data[:4] == b"PK\x03\x04":
        members = read_archive(data, src, MEMBERS, REQUIRED)
        check_metadata(loads(members[METADATA], src, METADATA), members, src)
        weights, meta = parse_safetensors(members[WEIGHTS], src, WEIGHTS, 1_000_000)
        return weights, check_weights_meta(meta, src, WEIGHTS)
    if len(data) > LIMITS[WEIGHTS]:
        raise fail(src, f"is more than the limit of {LIMITS[WEIGHTS]} bytes")
    weights, meta = parse_safetensors(data, src, "weights file", 1_000_000)
    return weights, check_weights_meta(meta, src, "weights file")


def load_weights(model, filepath, skip_mismatch: bool = False) -> None:
    """Loads weights from a `.weights.safetensors` file (or the weights of a `.maas` file)."""
    if skip_mismatch:
        raise ValueError("load_weights: skip_mismatch=True is not supported")
    p = os.fspath(filepath)
    if isinstance(p, str) and p.endswith(KERAS_WEIGHTS_SUFFIX):
        return keras_read.load_keras_weights(model, p)
    src = f"weights file '{p}'"
    model._require_built("weights")
    data = read_file(p, src)

    def run():
        weights, order = read_weights_member(data, src)
        assign_weights(model, weights, order, src)

    guard(run, src)
