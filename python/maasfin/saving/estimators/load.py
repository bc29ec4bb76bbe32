"""An estimator's `.maas` file read back: config.json checked field by field, the ONNX graph checked, a session made."""

from __future__ import annotations

import numpy as np

from maasfin.saving.estimators.graph import check_graph, session
from maasfin.saving.estimators.linear import LinearContributions
from maasfin.saving.estimators.model import EstimatorModel
from maasfin.saving.estimators.schema import FLOAT, InputSchema
from maasfin.saving.estimators.trees import tree_ensemble
from maasfin.saving.explanations import check_bins, finite_list
from maasfin.saving.file_format import (
    CONFIG,
    ONNX_GRAPH,
    check_list,
    check_object,
    check_str,
    fail,
    loads,
    type_name,
)

LIBRARIES = ("scikit-learn", "xgboost", "lightgbm")
MAX_CLASSES = 100_000


def _info(doc, src: str) -> dict:
    fields = ("class", "library", "library_version", "task", "classes", "output", "layout", "steps")
    info = check_object(doc, src, "estimator", fields, ("verified_max_abs_diff",))
    for k in ("class", "library_version", "output"):
        check_str(info[k], src, f"estimator.{k}", 256)
    if info["library"] not in LIBRARIES:
        raise fail(src, f"estimator.library must be one of {list(LIBRARIES)}, got {info['library']!r}")
    if info["task"] not in ("classification", "regression"):
        raise fail(src, f"estimator.task must be 'classification' or 'regression', got {info['task']!r}")
    if info["layout"] not in ("columns", "matrix"):
        raise fail(src, f"estimator.layout must be 'columns' or 'matrix', got {info['layout']!r}")
    classes = check_list(info["classes"], src, "estimator.classes", MAX_CLASSES)
    for i, c in enumerate(classes):
        if not isinstance(c, (str, int, float)):
            raise fail(src, f"estimator.classes[{i}] must be a string or a number, got {type_name(c)}")
    if (info["task"] == "classification") != (len(classes) >= 2):
        raise fail(src, "estimator.classes must list two or more classes exactly for a classifier")
    for i, s in enumerate(check_list(info["steps"], src, "estimator.steps", 1000)):
        check_str(s, src, f"estimator.steps[{i}]", 512)
    return info


def _explanations(doc, src: str, schema: InputSchema) -> dict:
    check_object(
        doc,
        src,
        "explanations",
        ("baseline", "reason_codes", "drift_reference", "background"),
        ("tree_covers", "linear"),
    )
    if doc["baseline"] is not None or doc["reason_codes"] is not None:
        raise fail(src, "explanations.baseline and reason_codes must be null in an estimator's file")
    width = len(schema.names)
    out = {"drift_reference": None, "background": None, "tree_covers": None, "linear": None}
    if doc.get("linear") is not None:
        out["linear"] = LinearContributions(doc["linear"], src, width)
    if doc.get("tree_covers") is not None:
        values = finite_list(doc["tree_covers"], src, "explanations.tree_covers", max_len=50_000_000)
        if any(v < 0 for v in values):
            raise fail(src, "explanations.tree_covers must be >= 0")
        out["tree_covers"] = values
    if doc["drift_reference"] is not None:
        ref = check_object(doc["drift_reference"], src, "explanations.drift_reference", ("features", "score"))
        feats = check_list(ref["features"], src, "explanations.drift_reference.features", width)
        if len(feats) != width:
            raise fail(src, f"explanations.drift_reference.features has {len(feats)} entries, expected {width}")
        out["drift_reference"] = {
            "features": [
                None if f is None else check_bins(f, src, f"explanations.drift_reference.features[{i}]")
                for i, f in enumerate(feats)
            ],
            "score": None
            if ref["score"] is None
            else check_bins(ref["score"], src, "explanations.drift_reference.score"),
        }
    if doc["background"] is not None:
        rows = check_list(doc["background"], src, "explanations.background", 10_000)
        bg = np.empty((len(rows), width), np.float32)
        for i, row in enumerate(rows):
            check_list(row, src, f"explanations.background[{i}]", width)
            if len(row) != width:
                raise fail(src, f"explanations.background[{i}] has {len(row)} values, expected {width}")
            for j, v in enumerate(row):
                if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
                    raise fail(src, f"explanations.background[{i}][{j}] must be a number or null")
                bg[i, j] = np.nan if v is None else v
        try:
            schema.check_codes([np.ascontiguousarray(bg[:, j : j + 1]) for j in range(width)])
        except ValueError as e:
            raise fail(src, f"explanations.background: {e}") from None
        out["background"] = bg
    return out


def load_estimator(members: dict, src: str) -> EstimatorModel:
    """The `EstimatorModel` of an archive's checked members (config.json, model.onnx)."""
    doc = check_object(loads(members[CONFIG], src, CONFIG), src, CONFIG, ("estimator", "input_schema", "explanations"))
    info = _info(doc["estimator"], src)
    schema = InputSchema.from_document(doc["input_schema"], src)
    if info["layout"] == "matrix" and any(d != FLOAT for d in schema.dtypes):
        raise fail(src, "estimator.layout 'matrix' takes numeric features only")
    explanations = _explanations(doc["explanations"], src, schema)
    inputs = list(schema.names) if info["layout"] == "columns" else ["input"]
    extra = [explanations["linear"].output] if explanations["linear"] is not None else []
    proto = check_graph(members[ONNX_GRAPH], src, inputs, [info["output"], *extra])
    sess = session(members[ONNX_GRAPH], src)
    if info["layout"] == "matrix":
        try:
            explanations["trees"] = tree_ensemble(proto, len(schema.names))
        except ValueError as e:  # not an explainable ensemble (or a hostile one)
            if explanations["tree_covers"] is not None:
                raise fail(src, f"explanations.tree_covers: {e}") from None
    if explanations["tree_covers"] is not None:
        if explanations.get("trees") is None:
            raise fail(src, "explanations.tree_covers is given for a graph without a tree ensemble")
        try:
            explanations["trees"].set_cover(explanations["tree_covers"])
        except ValueError as e:
            raise fail(src, f"explanations.tree_covers: {e}") from None
    model = EstimatorModel(info["class"], schema, info, sess, explanations)
    try:  # one row through the graph: inputs of the schema's types, an output of the declared width
        row = [np.zeros((1, 1), np.float32) for _ in schema.names]
        y = model.predict_arrays(row)
    except Exception as e:  # noqa: BLE001 - ONNX Runtime reports type and shape errors in many ways
        raise fail(src, f"model.onnx does not run on the input schema: {type(e).__name__}: {str(e)[:300]}") from None
    if y.shape != (1, model.signature.output.shape[0]):
        raise fail(src, f"model.onnx outputs shape {y.shape[1:]}, expected {model.signature.output.shape}")
    return model
