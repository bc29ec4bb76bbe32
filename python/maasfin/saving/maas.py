"""Model files (`.maas`), weights files (`.weights.safetensors`) and their safe reader.

A `.maas` file is a zip archive of up to five members (docs/file-format.md documents every field):

    config.json            architecture, compile config and input schema
    weights.safetensors    one float32 tensor per layer weight, named "<layer name>/<weight name>"
    optimizer.safetensors  optional: the optimizer's step count and slots, for exact resumption
    metadata.json          format name and version, maasfin version, creation time, training
                           summary, SHA-256 of the tensor and report members, user metadata
    report.json            optional: the validation report (maasfin.reports.Report), checked field
                           by field on load and restored as `model.report`

Loading reads data only. Nothing in a file is executed or imported: no pickle, no eval, and
class names are looked up in allowlists of maasfin's own classes (`layer_classes()` and
friends). Every member and field is validated (sizes before reading, types, shapes against the
architecture, float32 dtypes, hashes), and every failure is a `ModelFileError`, a ValueError.
Writes are atomic: a temporary file in the target's directory, fsync, os.replace, fsync of the
directory, so a crash leaves either the old file or the new one, never a torn one.

This module reads and writes the whole file; objects.py, config.py and weights.py hold its parts, file_format.py
the format's constants, limits and field checks, archive.py the byte-level archive and atomic writes.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import math
import os

import numpy as np

from maasfin.reports.document import Report
from maasfin.saving.architecture import build_architecture, check_schema, compile_from_entry, with_rng_preserved
from maasfin.saving.archive import (
    atomic_write,
    encode_safetensors,
    parse_safetensors,
    read_archive,
    read_file,
    write_archive,
)
from maasfin.saving.checks import check_metadata, check_suffix, guard
from maasfin.saving.config import check_saveable, config_document
from maasfin.saving.explanations import load_explanations
from maasfin.saving.file_format import (
    CONFIG,
    FORMAT_NAME,
    FORMAT_VERSION,
    MEMBERS,
    METADATA,
    OPTIMIZER,
    OPTIMIZER_FORMAT_NAME,
    REPORT,
    REQUIRED,
    WEIGHTS,
    check_object,
    dumps,
    fail,
    loads,
    validate_user_metadata,
)
from maasfin.saving.keras import read as keras_read
from maasfin.saving.keras import write as keras_write
from maasfin.saving.tensors import (
    assign_loaded_weights,
    check_weights_meta,
    optimizer_state,
    weight_tensors,
    weights_meta,
)
from maasfin.saving.weights import KERAS_MODEL_SUFFIXES
from maasfin.version import VERSION


# -- saving --------------------------------------------------------------------------------------
def history_summary(model):
    h = getattr(model, "history", None)
    if h is None or not getattr(h, "epoch", None):
        return None
    logs = {}
    for k, v in h.history.items():
        if isinstance(k, str) and v:
            x = v[-1]
            logs[k] = float(x) if isinstance(x, (int, float, np.number)) and math.isfinite(float(x)) else None
    return {"epochs": len(h.epoch), "last_epoch": int(h.epoch[-1]), "logs": logs}


def optimizer_blob(model) -> bytes | None:
    if not model.compiled or not model.built:
        return None
    state = model.optimizer.get_state()
    if not state["iterations"] and not any(np.size(v) for v in state["slots"].values()):
        return None
    meta = {
        "format": OPTIMIZER_FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        "optimizer": type(model.optimizer).__name__,
        "iterations": str(int(state["iterations"])),
        "n_params": str(int(model._graph.param_count)),
    }
    return encode_safetensors({k: np.asarray(v, dtype=np.float32).reshape(-1) for k, v in state["slots"].items()}, meta)


def archive_members(
    model, include_optimizer: bool = True, metadata=None, training_state=None, report=None
) -> dict[str, bytes]:
    check_saveable(model)
    if report is None:
        report = getattr(model, "report", None)
    if report is not None and not isinstance(report, Report):
        raise TypeError(
            f"save: report must be a maasfin Report (model.validation_report(...)), got {type(report).__name__}"
        )
    model._maybe_build()
    if metadata is not None:
        metadata = validate_user_metadata(metadata)
    config = dumps(config_document(model))
    weights = encode_safetensors(weight_tensors(model), weights_meta(model))
    opt = optimizer_blob(model) if include_optimizer else None
    meta = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "maasfin_version": VERSION,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "history": history_summary(model),
        "sha256": {WEIGHTS: hashlib.sha256(weights).hexdigest()},
    }
    if opt is not None:
        meta["sha256"][OPTIMIZER] = hashlib.sha256(opt).hexdigest()
    report_json = None if report is None else report.to_json().encode("utf-8")
    if report_json is not None:
        meta["sha256"][REPORT] = hashlib.sha256(report_json).hexdigest()
    if metadata is not None:
        meta["user_metadata"] = metadata
    if training_state is not None:
        meta["training_state"] = training_state
    members = {CONFIG: config, WEIGHTS: weights}
    if opt is not None:
        members[OPTIMIZER] = opt
    members[METADATA] = dumps(meta)
    if report_json is not None:
        members[REPORT] = report_json
    return members


def save_model(
    model,
    filepath,
    overwrite: bool = True,
    include_optimizer: bool = True,
    metadata=None,
    _training_state=None,
    report=None,
) -> None:
    """Writes `model` to a `.maas` file atomically (see the module docstring), or to a Keras 3
    `.keras` / legacy `.h5` file (keras_write.py). `report` (default: `model.report`, if any) is
    stored as the report.json member."""
    path = check_suffix(filepath, (".maas",) + KERAS_MODEL_SUFFIXES, "save")
    if path.lower().endswith(KERAS_MODEL_SUFFIXES):
        if metadata is not None or report is not None:
            what = "metadata is" if metadata is not None else "a report is"
            raise ValueError(f"save: {what} kept in .maas files only; Keras files have no place for it ('{path}')")
        return keras_write.save_keras_model(model, path, overwrite=overwrite)
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"save: '{path}' exists and overwrite=False")
    members = archive_members(model, include_optimizer, metadata, _training_state, report)
    atomic_write(path, lambda f: write_archive(f, members))


def to_bytes(model, include_optimizer: bool = True) -> bytes:
    buf = io.BytesIO()
    write_archive(buf, archive_members(model, include_optimizer))
    return buf.getvalue()


def load_bytes(data: bytes, src: str, compile: bool):
    members = read_archive(data, src, MEMBERS, REQUIRED)
    meta = check_metadata(loads(members[METADATA], src, METADATA), members, src)  # format version and hashes first
    doc = check_object(
        loads(members[CONFIG], src, CONFIG), src, CONFIG, ("model", "compile_config", "input_schema"), ("explanations",)
    )
    weights, wmeta = parse_safetensors(members[WEIGHTS], src, WEIGHTS, 1_000_000)
    check_weights_meta(wmeta, src, WEIGHTS)
    model = model_from_document(doc, weights, src, compile)
    if doc["compile_config"] is None and OPTIMIZER in members:
        raise fail(src, "holds optimizer state but no compile_config")
    if compile and OPTIMIZER in members:
        if not model.built:
            raise fail(src, "holds optimizer state for an unbuilt model")
        state = optimizer_state(model, members[OPTIMIZER], src)
        model.optimizer.set_state(state, int(model._graph.param_count))
    model.metadata = meta.get("user_metadata")
    model.report = Report.from_json(members[REPORT], f"{src} {REPORT}") if REPORT in members else None
    return model


def model_from_document(doc: dict, weights: dict, src: str, compile: bool = True):
    """A model from a config.json document (`config_document`) and its weights by name
    ("<layer>/<weight>"), with every check a model file gets: how files are read, and how
    `maasfin.calibration` builds a model with a layer appended."""
    model = with_rng_preserved(build_architecture(doc["model"], src, weights))
    assign_loaded_weights(model, weights, src)
    try:
        _ = model.monotonic_features  # declared monotone paths, again with the loaded weights (Calibration)
    except ValueError as e:
        raise fail(src, str(e)) from None
    check_schema(doc["input_schema"], model, src)
    load_explanations(doc.get("explanations"), model, src)
    if doc["compile_config"] is not None and compile:
        compile_from_entry(model, doc["compile_config"], src)
    return model


def load_model(filepath, compile: bool = True, custom_objects=None, safe_mode: bool = True):
    """Loads a `.maas` file. compile=False skips the compile config and the optimizer state.
    custom_objects is accepted for Keras compatibility and must be empty: files cannot name
    classes outside maasfin."""
    if custom_objects:
        raise ValueError(
            "load_model: custom_objects are not supported; model files may only use maasfin's "
            "own layers, losses, metrics and optimizers"
        )
    p = os.fspath(filepath)
    if isinstance(p, str) and p.lower().endswith((".keras", ".h5", ".hdf5")):
        return keras_read.load_keras_model(p, compile=compile)
    src = f"model file '{p}'"
    data = read_file(p, src)
    return guard(lambda: load_bytes(data, src, compile), src)


def from_bytes(data, compile: bool = True):
    """A model from the bytes of `model.to_bytes()` (or of a `.maas` file)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"from_bytes: expected bytes, got {type(data).__name__}")
    data = bytes(data)
    return guard(lambda: load_bytes(data, "model bytes", compile), "model bytes")


def read_metadata(filepath) -> dict:
    """The validated metadata.json of a `.maas` file (format, versions, created, history summary,
    hashes, user_metadata), after checking the whole archive and the hashes."""
    p = os.fspath(filepath)
    src = f"model file '{p}'"
    data = read_file(p, src)

    def read():
        members = read_archive(data, src, MEMBERS, REQUIRED)
        return check_metadata(loads(members[METADATA], src, METADATA), members, src)

    return guard(read, src)
