"""`save_estimator`: a fitted scikit-learn, XGBoost or LightGBM model written to a `.maas` file (file-format.md)."""

from __future__ import annotations

import datetime
import hashlib
import os

import numpy as np

from maasfin.explain import monitoring
from maasfin.saving.archive import atomic_write, write_archive
from maasfin.saving.checks import check_suffix
from maasfin.saving.estimators.convert import check_fitted_columns, library_of, run, to_onnx
from maasfin.saving.estimators.linear import linear_state, with_mean
from maasfin.saving.estimators.schema import STRING, InputSchema
from maasfin.saving.estimators.trees import covers
from maasfin.saving.file_format import (
    CONFIG,
    FORMAT_NAME,
    FORMAT_VERSION,
    METADATA,
    ONNX_GRAPH,
    dumps,
    jsonable,
    validate_user_metadata,
)
from maasfin.version import VERSION

BACKGROUND_ROWS = 100
REFERENCE_ROWS = 4096


def _evenly(n: int, k: int) -> np.ndarray:
    return np.arange(n) if n <= k else np.linspace(0, n - 1, k).astype(np.int64)


def explanation_state(schema: InputSchema, xs: list, scores: np.ndarray) -> dict:
    """The drift reference (deciles per numeric feature, one bin per category, the score's
    deciles) and the explanation background (up to 100 evenly spaced rows) of the example;
    `save_estimator` adds the node covers of a tree ensemble (TreeSHAP)."""
    flat = np.concatenate(xs, axis=1)
    pick = _evenly(flat.shape[0], REFERENCE_ROWS)
    features = []
    for j, dtype in enumerate(schema.dtypes):
        col = flat[pick, j]
        if not np.isfinite(col).any():
            features.append(None)
        elif dtype == STRING:
            features.append(monitoring.reference_categories(col))
        else:
            features.append(monitoring.reference_bins(col))
    score = scores[pick, 0]
    background = flat[_evenly(flat.shape[0], BACKGROUND_ROWS)]
    return {
        "baseline": None,
        "reason_codes": None,
        "drift_reference": {
            "features": features,
            "score": monitoring.reference_bins(score) if np.isfinite(score).any() else None,
        },
        "background": [[None if not np.isfinite(v) else float(v) for v in row] for row in background],
        "tree_covers": None,
    }


def save_estimator(estimator, path, example, feature_names=None, metadata=None, overwrite: bool = True) -> None:
    """Writes a fitted scikit-learn estimator or Pipeline, XGBoost or LightGBM model to a `.maas`
    file: its ONNX graph (verified on `example` to 1e-5, or a ValueError naming the step), the
    input schema of `example` (names, numeric or string, categories), the drift reference and
    explanation background from `example`, and the usual metadata and hashes. Never a pickle."""
    p = check_suffix(path, (".maas",), "save_estimator")
    if not overwrite and os.path.exists(p):
        raise FileExistsError(f"save_estimator: '{p}' exists and overwrite=False")
    library = library_of(estimator)
    if metadata is not None:
        metadata = validate_user_metadata(metadata)
    schema = InputSchema.from_example(example, feature_names)
    check_fitted_columns(estimator, schema)
    graph, info, scores = to_onnx(estimator, library, schema, example)
    xs = schema.prepare(example, "example")
    state = explanation_state(schema, xs, scores)
    import onnx

    proto = onnx.ModelProto.FromString(graph)
    if info["layout"] == "matrix":
        state["tree_covers"] = covers(proto, estimator, library, np.concatenate(xs, axis=1))
    linear = linear_state(estimator, proto, schema.names) if library == "scikit-learn" else None
    if linear is not None:
        proto, entry = linear
        z, _ = run(proto, schema, info["layout"], xs, entry["encoded_output"])
        state["linear"] = with_mean(entry, z)
        graph = proto.SerializeToString()
    doc = {
        "estimator": jsonable(info, "save_estimator"),
        "input_schema": schema.document(),
        "explanations": state,
    }
    meta = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "maasfin_version": VERSION,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "history": None,
        "sha256": {ONNX_GRAPH: hashlib.sha256(graph).hexdigest()},
    }
    if metadata is not None:
        meta["user_metadata"] = metadata
    members = {CONFIG: dumps(doc), ONNX_GRAPH: graph, METADATA: dumps(meta)}
    atomic_write(p, lambda f: write_archive(f, members))
