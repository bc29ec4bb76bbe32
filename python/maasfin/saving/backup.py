"""Training state for BackupAndRestore: generator states written into a backup, and restoring from one."""

from __future__ import annotations

import os

import numpy as np

from maasfin.saving.archive import parse_safetensors, read_archive, read_file
from maasfin.saving.checks import check_metadata, guard
from maasfin.saving.file_format import (
    CONFIG,
    MEMBERS,
    METADATA,
    OPTIMIZER,
    REQUIRED,
    WEIGHTS,
    check_dict,
    check_object,
    fail,
    loads,
)
from maasfin.saving.tensors import check_weights_meta, optimizer_state
from maasfin.saving.weights import assign_weights


# -- training state (BackupAndRestore) -----------------------------------------------------------
def generator_state(gen: np.random.Generator) -> dict:
    """A NumPy generator's state as JSON-safe data (128-bit integers as decimal strings)."""
    st = gen.bit_generator.state
    if st.get("bit_generator") != "PCG64":
        raise ValueError(f"cannot save the state of a {st.get('bit_generator')} generator (PCG64 expected)")
    return {
        "bit_generator": "PCG64",
        "state": str(st["state"]["state"]),
        "inc": str(st["state"]["inc"]),
        "has_uint32": int(st["has_uint32"]),
        "uinteger": int(st["uinteger"]),
    }


def set_generator_state(gen: np.random.Generator, state: dict) -> None:
    gen.bit_generator.state = {
        "bit_generator": "PCG64",
        "state": {"state": int(state["state"]), "inc": int(state["inc"])},
        "has_uint32": int(state["has_uint32"]),
        "uinteger": int(state["uinteger"]),
    }


def restore_backup(model, filepath) -> dict:
    """Restores weights and optimizer state from a backup `.maas` file into `model` (the same
    architecture); returns its training_state."""
    p = os.fspath(filepath)
    src = f"backup file '{p}'"
    data = read_file(p, src)

    def run():
        members = read_archive(data, src, MEMBERS, REQUIRED)
        meta = check_metadata(loads(members[METADATA], src, METADATA), members, src)
        if "training_state" not in meta:
            raise fail(src, "is not a BackupAndRestore backup (no training_state)")
        weights, wmeta = parse_safetensors(members[WEIGHTS], src, WEIGHTS, 1_000_000)
        assign_weights(model, weights, check_weights_meta(wmeta, src, WEIGHTS), src)
        if OPTIMIZER in members and model.compiled:
            state = optimizer_state(model, members[OPTIMIZER], src)
            model.optimizer.set_state(state, int(model._graph.param_count))
            # A learning rate changed during training (ReduceLROnPlateau, ...) resumes too.
            doc = check_object(
                loads(members[CONFIG], src, CONFIG),
                src,
                CONFIG,
                ("model", "compile_config", "input_schema"),
                ("explanations",),
            )
            cc = check_dict(doc["compile_config"], src, "compile_config")
            opt = check_object(cc.get("optimizer"), src, "compile_config.optimizer", ("class_name", "config"))
            lr = check_dict(opt["config"], src, "compile_config.optimizer.config").get("learning_rate")
            if getattr(model.optimizer, "_schedule", None) is None and lr is not None:
                if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr >= 0:
                    raise fail(src, f"optimizer learning_rate {lr!r} is not a non-negative number")
                model.optimizer.learning_rate = float(lr)
        return meta["training_state"]

    return guard(run, src)
