"""Estimators to ONNX graphs: skl2onnx for scikit-learn, onnxmltools for XGBoost and LightGBM, verified on the example.

A Pipeline whose first step is a ColumnTransformer takes one (rows, 1) input per raw feature
(strings included, layout "columns"); any other estimator takes one float32 matrix (layout
"matrix", numeric features only). Classifiers output predict_proba's columns (ZipMap off).
`verify` runs the graph on the example and compares with the estimator; on a mismatch or a
conversion failure, `locate` converts the pipeline's prefixes one by one to name the step at fault.
"""

from __future__ import annotations

import warnings

import numpy as np

from maasfin.saving.estimators.graph import require_onnx, require_onnxruntime, session
from maasfin.saving.estimators.schema import FLOAT, STRING, InputSchema

TOLERANCE = 1e-5
OPSET = {"": 17, "ai.onnx.ml": 3}


def library_of(estimator) -> str:
    module = type(estimator).__module__.split(".")[0]
    if module == "sklearn":
        return "scikit-learn"
    if module in ("xgboost", "lightgbm"):
        return module
    raise TypeError(
        f"save_estimator: {type(estimator).__name__} (from {module!r}) is not a scikit-learn, XGBoost or "
        "LightGBM model; save maasfin networks with model.save"
    )


def _skl2onnx(what: str):
    try:
        import skl2onnx
    except ImportError as e:
        raise ImportError(f"{what} needs skl2onnx: pip install 'maasfin[sklearn]'") from e
    return skl2onnx


def _onnxmltools(what: str, extra: str):
    try:
        import onnxmltools
    except ImportError as e:
        raise ImportError(f"{what} needs onnxmltools: pip install 'maasfin[{extra}]'") from e
    return onnxmltools


def final_step(estimator):
    steps = getattr(estimator, "steps", None)
    return final_step(steps[-1][1]) if steps else estimator


def layout_of(estimator, library: str, schema: InputSchema) -> str:
    steps = getattr(estimator, "steps", None)
    first = steps[0][1] if steps else estimator
    if library == "scikit-learn" and type(first).__name__ == "ColumnTransformer":
        return "columns"
    if schema.strings:
        names = [n for n, d in zip(schema.names, schema.dtypes) if d == STRING]
        raise ValueError(
            f"save_estimator: string feature(s) {names} need a Pipeline whose first step is a ColumnTransformer "
            f"(with a OneHotEncoder for them); {type(first).__name__} takes numbers only"
        )
    return "matrix"


def task_of(estimator) -> tuple[str, list]:
    last = final_step(estimator)
    if hasattr(last, "classes_") and hasattr(estimator, "predict_proba"):
        return "classification", [c.item() if isinstance(c, np.generic) else c for c in last.classes_]
    if hasattr(last, "classes_"):
        raise ValueError(
            f"save_estimator: classifier {type(last).__name__} has no predict_proba; fit it with probabilities "
            "(SVC(probability=True), or wrap it in CalibratedClassifierCV)"
        )
    return "regression", []


def _types(schema: InputSchema, layout: str):
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    if layout == "matrix":
        return [("input", FloatTensorType([None, len(schema.names)]))]
    return [(n, StringTensorType([None, 1]) if d == STRING else FloatTensorType([None, 1])) for n, d in _pairs(schema)]


def _pairs(schema: InputSchema):
    return list(zip(schema.names, schema.dtypes))


def convert(estimator, library: str, schema: InputSchema, layout: str, classifier: bool):
    """The ONNX ModelProto of a fitted estimator. The converters' own deprecation warnings are
    silenced (an application that turns warnings into errors would otherwise fail to convert);
    `to_onnx` verifies the result whatever they warned about."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _convert(estimator, library, schema, layout, classifier)


def _convert(estimator, library: str, schema: InputSchema, layout: str, classifier: bool):
    _skl2onnx("save_estimator")
    types = _types(schema, layout)
    if library != "scikit-learn":
        from onnxmltools.convert.common.data_types import FloatTensorType

        types = [("input", FloatTensorType([None, len(schema.names)]))]
    if library == "xgboost":
        import copy

        tools = _onnxmltools("saving an XGBoost model", "xgboost")
        clone = copy.deepcopy(estimator)  # onnxmltools reads f0, f1, ... as feature names
        clone.get_booster().feature_names = None
        return tools.convert_xgboost(clone, initial_types=types, target_opset=15)
    if library == "lightgbm":
        tools = _onnxmltools("saving a LightGBM model", "lightgbm")
        return tools.convert_lightgbm(estimator, initial_types=types, target_opset=15, zipmap=False)
    from skl2onnx import convert_sklearn

    options = {id(final_step(estimator)): {"zipmap": False}} if classifier else None
    return convert_sklearn(estimator, initial_types=types, options=options, target_opset=OPSET)


def reference_frame(example, schema: InputSchema):
    """The example as the server will see it: numeric features as float32, as every input is."""
    if hasattr(example, "columns"):
        out = example[schema.names].copy()
        for n, d in _pairs(schema):
            if d == FLOAT:
                out[n] = out[n].astype(np.float32)
        return out
    return np.asarray(example, dtype=np.float32)


def expected(estimator, x, classifier: bool) -> np.ndarray:
    y = estimator.predict_proba(x) if classifier else estimator.predict(x)
    return np.asarray(y, dtype=np.float64).reshape(len(y), -1)


def run(proto, schema: InputSchema, layout: str, xs: list, output: int | str):
    sess = session(proto.SerializeToString(), "the converted graph", threads=0)
    feeds = schema.onnx_feeds(xs, layout, [i.name for i in sess.get_inputs()])
    name = output if isinstance(output, str) else sess.get_outputs()[output].name
    return np.asarray(sess.run([name], feeds)[0], dtype=np.float64), name


def _dense(y) -> np.ndarray:
    y = y.toarray() if hasattr(y, "toarray") else y
    return np.asarray(y, dtype=np.float64).reshape(np.shape(y)[0], -1)


def locate(estimator, schema: InputSchema, layout: str, x, xs) -> str | None:
    """The first step of a Pipeline whose converted prefix does not reproduce the estimator's
    transform on the example (or does not convert), as "step 'name' (Class): why"; else None."""
    steps = getattr(estimator, "steps", None)
    if not steps:
        return None
    from sklearn.pipeline import Pipeline

    for k in range(1, len(steps)):
        name, step = steps[k - 1]
        prefix = Pipeline(steps[:k])
        label = f"step {name!r} ({type(step).__name__})"
        try:
            proto = convert(prefix, "scikit-learn", schema, layout, classifier=False)
            got, _ = run(proto, schema, layout, xs, 0)
        except Exception as e:  # noqa: BLE001 - the converter's own error names what it refused
            return f"{label} cannot be converted to ONNX: {type(e).__name__}: {str(e)[:300]}"
        want = _dense(prefix.transform(x))
        if got.shape != want.shape:
            return f"{label} converts to an output of shape {got.shape}, not {want.shape}"
        err = float(np.max(np.abs(got - want))) if want.size else 0.0
        if not err <= TOLERANCE * max(1.0, float(np.max(np.abs(want)))):
            return f"{label} converts with a difference of {err:.3g} from scikit-learn on the example"
    name, step = steps[-1]
    return f"step {name!r} ({type(step).__name__})"


def to_onnx(estimator, library: str, schema: InputSchema, example) -> tuple[bytes, dict, np.ndarray]:
    """(ONNX bytes, the config's "estimator" entry, the graph's outputs on the example), verified
    against the estimator on the example to TOLERANCE, or a ValueError naming the step."""
    require_onnx("save_estimator")
    require_onnxruntime("save_estimator")
    layout = layout_of(estimator, library, schema)
    task, classes = task_of(estimator)
    classifier = task == "classification"
    x = reference_frame(example, schema)
    xs = schema.prepare(example, "example")
    try:
        proto = convert(estimator, library, schema, layout, classifier)
    except Exception as e:  # noqa: BLE001 - skl2onnx/onnxmltools refuse in many ways
        where = locate(estimator, schema, layout, x, xs) if library == "scikit-learn" else None
        raise ValueError(
            f"save_estimator: {type(estimator).__name__} cannot be converted to ONNX"
            f"{f' at {where}' if where else ''}: {type(e).__name__}: {str(e)[:300]}"
        ) from e
    got, output = run(proto, schema, layout, xs, 1 if classifier else 0)
    want = expected(estimator, x, classifier)
    got = got.reshape(want.shape[0], -1)
    err = float(np.max(np.abs(got - want))) if got.shape == want.shape else float("inf")
    scale = max(1.0, float(np.max(np.abs(want)))) if want.size else 1.0  # probabilities: absolute; values: relative
    if not err <= TOLERANCE * scale:
        where = locate(estimator, schema, layout, x, xs) if library == "scikit-learn" else None
        raise ValueError(
            f"save_estimator: the ONNX graph of {type(estimator).__name__} differs from the estimator on the "
            f"example by {err:.3g} (more than {TOLERANCE * scale:.3g})"
            + (f"; the first step that differs is {where}" if where else "")
        )
    steps = getattr(estimator, "steps", None)
    info = {
        "class": type(estimator).__name__,
        "library": library,
        "library_version": _version(estimator),
        "task": task,
        "classes": classes,
        "output": output,
        "layout": layout,
        "steps": [f"{n}: {type(s).__name__}" for n, s in steps] if steps else [],
        "verified_max_abs_diff": err,
    }
    return proto.SerializeToString(), info, got


def _version(estimator) -> str:
    import importlib

    module = type(estimator).__module__.split(".")[0]
    return str(getattr(importlib.import_module(module), "__version__", "unknown"))


def check_fitted_columns(estimator, schema: InputSchema) -> None:
    """The estimator must have been fitted on the example's columns, in that order."""
    names = getattr(estimator, "feature_names_in_", None)
    if names is None and hasattr(estimator, "feature_name_") and schema.names[0] != "feature_0":
        names = estimator.feature_name_  # LightGBM
    if names is not None and all(isinstance(n, str) for n in names) and not list(names)[0].startswith("Column_"):
        if list(names) != schema.names:
            raise ValueError(
                f"save_estimator: the estimator was fitted on columns {list(names)}, but example has "
                f"columns {schema.names}"
            )
    n = getattr(estimator, "n_features_in_", None)
    if n is not None and int(n) != len(schema.names):
        raise ValueError(
            f"save_estimator: the estimator was fitted on {int(n)} features, but example has {len(schema.names)}"
        )
