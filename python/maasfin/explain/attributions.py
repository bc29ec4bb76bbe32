"""Explanations of predictions: per-feature attributions (integrated gradients, computed in the
C++ core with the GIL released), reason codes for adverse decisions, and drift reports.

The functions take a model; `Model.explain`, `Model.reasons`, `Model.set_reason_codes` and
`Model.drift` call them.
"""

from __future__ import annotations

import numpy as np

from maasfin import _core, data
from maasfin.explain import monitoring

__all__ = [
    "explain",
    "reasons",
    "set_reason_codes",
    "drift",
    "record_reference",
    "attribute",
    "baseline_width",
    "reasons_from_attributions",
    "raw_feature_names",
    "explained_feature_names",
    "monotone_consistent",
]


# -- what is explained: the model's inputs, or its encoded space -----------------------------------
class _Plan:
    """How a built model is explained. `direct`: one input that feeds differentiable layers only;
    attributions are per input value. Otherwise attributions are computed in the encoded space
    (the values after the last lookup, hashing, discretization, embedding or imputation on every
    path: `_core.frontier`) and summed per raw feature: a categorical feature's one-hot slots or
    embedding vector add up to that feature's attribution; a cross is reported under its own name
    ("Home_X_Marital")."""

    def __init__(self, model):
        g = model._graph
        frontier = _core.frontier(g)
        self.direct = (
            len(model._input_shapes) == 1
            and len(frontier) == 1
            and frontier[0]["inputs"] == [0]
            and frontier[0]["sources"] == [(0, j) for j in range(frontier[0]["width"])]
            and frontier[0]["node"] == 0
        )
        self.raw_names = raw_feature_names(model)
        self.width = sum(f["width"] for f in frontier)
        if self.direct:
            self.names = self.raw_names
            self.columns = None
            return
        inputs = _input_names(model)
        offsets = np.cumsum([0] + [int(np.prod(s)) for s in model._input_shapes])
        names, column = [], []
        for f in frontier:
            for inp, element in f["sources"]:
                if inp < 0:
                    key = "_X_".join(inputs[i] for i in f["inputs"])
                elif element < 0 or offsets[inp + 1] - offsets[inp] == 1:
                    key = inputs[inp] if len(inputs) > 1 else self.raw_names[0] if offsets[1] == 1 else inputs[inp]
                else:
                    key = self.raw_names[offsets[inp] + element]
                if key not in names:
                    names.append(key)
                column.append(names.index(key))
        self.names = names
        # slots -> reported features: attributions (N x slots) @ groups (slots x features)
        self.groups = np.zeros((self.width, len(names)), np.float64)
        self.groups[np.arange(self.width), column] = 1.0
        self.columns = column


def _plan(model) -> _Plan:
    if not model.built:
        raise ValueError("the model is not built: fit or build it before explaining")
    plan = getattr(model, "_explain_plan", None)
    if plan is None or plan[0] is not model._graph:
        plan = (model._graph, _Plan(model))
        model._explain_plan = plan
    return plan[1]


def raw_feature_names(model) -> list[str]:
    """One name per raw input value (the columns drift reports use): the DataFrame's column names
    for a single-input model trained on one, each input's name for inputs of one value
    (FeatureSpace models), "name[j]" for wider inputs of a multi-input model, else feature_0,
    feature_1, ..."""
    widths = [int(np.prod(s)) for s in model._input_shapes]
    if len(widths) == 1 and (widths[0] > 1 or model.feature_names is not None or not getattr(model, "_inputs", None)):
        return _feature_names(model, widths[0])
    out = []
    for name, w in zip(_input_names(model), widths):
        out.extend([name] if w == 1 else [f"{name}[{j}]" for j in range(w)])
    return out


def _input_names(model) -> list[str]:
    inputs = getattr(model, "_inputs", None)  # a Sequential has one unnamed input
    return [t.name for t in inputs] if inputs else ["input"]


def explained_feature_names(model) -> list[str]:
    """The names under which `explain` reports attributions (and reason codes are looked up)."""
    return list(_plan(model).names)


def baseline_width(model) -> int:
    """How many values a stored baseline holds: the input width, or the encoded width."""
    return _plan(model).width


def _flat(xs: list) -> np.ndarray:
    n = xs[0].shape[0]
    return xs[0].reshape(n, -1) if len(xs) == 1 else np.concatenate([a.reshape(n, -1) for a in xs], axis=1)


def _inputs(model, x, what: str = "x") -> np.ndarray:
    """Every raw input value of every row, flattened and concatenated (N x raw width)."""
    return _flat(model._prepare_x(x, what))


def _feature_names(model, width: int) -> list[str]:
    names = model.feature_names
    return list(names) if names is not None and len(names) == width else [f"feature_{j}" for j in range(width)]


_REFERENCE_ROWS = 4096
_REFERENCE_FEATURES = 512


def _sample(xs: list) -> list:
    n = xs[0].shape[0]
    if n <= _REFERENCE_ROWS:
        return xs
    pick = np.linspace(0, n - 1, _REFERENCE_ROWS).astype(np.int64)
    return [np.ascontiguousarray(a[pick]) for a in xs]


def _nanmean(flat: np.ndarray) -> list:
    finite = np.isfinite(flat)
    counts = finite.sum(axis=0)
    sums = np.where(finite, flat, 0).sum(axis=0, dtype=np.float64)
    return np.where(counts > 0, sums / np.maximum(counts, 1), 0.0).astype(np.float32).tolist()


def _categorical_inputs(model) -> list[bool]:
    """Per raw input value: whether it is a category code (a string input's lookup index)."""
    out = []
    for t, s in zip(getattr(model, "_inputs", [None]), model._input_shapes):
        out.extend([getattr(t, "dtype", "float32") == "string"] * int(np.prod(s)))
    return out


def record_reference(model, xs) -> None:
    """Stores, at fit time, what explanations and drift reports compare against: the attribution
    baseline (the per-value training means, in the encoded space for models with preprocessing
    layers) and the reference distributions of every raw feature (deciles; one bin per category
    for string features) and of the score."""
    # At most 4,096 evenly spaced rows: deciles and means are stable at that size, and the cost of
    # fit's last step stays small for wide inputs (sequences, images).
    xs = _sample(list(xs) if isinstance(xs, (list, tuple)) else [xs])
    plan = _plan(model)
    flat = _flat(xs)
    # Inputs may hold NaN where the model imputes them: the baseline is the mean of what is there.
    model._explain_baseline = _nanmean(flat if plan.direct else _core.encode(model._graph, xs))
    score = model._graph.predict(xs, 4096).reshape(flat.shape[0], -1)[:, 0]
    if flat.shape[1] > _REFERENCE_FEATURES:  # sequences/images: per-position deciles mean little
        model._drift_reference = None
        return
    categorical = _categorical_inputs(model)
    features = []
    for j in range(flat.shape[1]):
        col = flat[:, j]
        if not np.isfinite(col).any():
            features.append(None)
        else:
            features.append(monitoring.reference_categories(col) if categorical[j] else monitoring.reference_bins(col))
    model._drift_reference = {
        "features": features,
        # A model whose training diverged scores NaN: it gets no score reference.
        "score": monitoring.reference_bins(score) if np.isfinite(score).any() else None,
    }


def _baseline(model, plan: _Plan, baseline, rows: int) -> np.ndarray:
    width = plan.width
    if baseline is None:
        stored = getattr(model, "_explain_baseline", None)
        if stored is None:
            raise ValueError("this model has no stored baseline (it records one at fit); pass baseline=...")
        b = np.asarray(stored, dtype=np.float32).reshape(1, -1)
    elif isinstance(baseline, str):
        if baseline != "zeros":
            raise ValueError(f"baseline must be None, 'zeros', or an array, got {baseline!r}")
        b = np.zeros((1, width), np.float32)
    elif plan.direct:
        b = (
            _inputs(model, baseline, "baseline")
            if not isinstance(baseline, np.ndarray) or baseline.ndim > 1
            else np.ascontiguousarray(baseline, dtype=np.float32).reshape(1, -1)
        )
    else:  # raw records, a DataFrame or input arrays, encoded like x
        b = _core.encode(model._graph, model._prepare_x(baseline, "baseline"))
    if b.shape[1] != width:
        raise ValueError(f"baseline has {b.shape[1]} values per row, the model takes {width}")
    if b.shape[0] not in (1, rows):
        raise ValueError(f"baseline must have 1 row or {rows} rows, got {b.shape[0]}")
    data.check_finite(b, "baseline")
    return np.ascontiguousarray(b)


def baseline_output(model, output: int = 0) -> float | None:
    """The model's output column `output` at the stored explanation baseline, for models explained
    in their input space (attributions of a row then sum to its output minus this); None for
    models explained in the encoded space or without a stored baseline."""
    plan = _plan(model)
    stored = getattr(model, "_explain_baseline", None)
    if not plan.direct or stored is None:
        return None
    b = np.ascontiguousarray(np.asarray(stored, dtype=np.float32).reshape((1,) + tuple(model._input_shapes[0])))
    return float(model._graph.predict([b], 1).reshape(1, -1)[0, output])


def attribute(
    model, xs: list, baseline=None, steps: int = 64, output: int = 0, tolerance: float | None = None
) -> tuple[np.ndarray, list[str]]:
    """Attributions (N x reported features, float32) of prepared inputs `xs`, and the features'
    names. `explain` validates the arguments and calls this; the server calls it directly."""
    plan = _plan(model)
    n = xs[0].shape[0]
    b = _baseline(model, plan, baseline, n)
    g = model._graph
    if plan.direct:
        x2 = np.ascontiguousarray(_flat(xs))
        return _core.integrated_gradients(g, x2, b, int(output), int(steps), float(tolerance or 0.0)), plan.names
    z = _core.encode(g, xs)
    slots = _core.integrated_gradients_encoded(g, z, b, int(output), int(steps), float(tolerance or 0.0))
    return (slots.astype(np.float64) @ plan.groups).astype(np.float32), plan.names


def explain(
    model,
    x,
    method: str = "integrated_gradients",
    baseline=None,
    steps: int = 64,
    output: int = 0,
    tolerance: float | None = None,
):
    """Signed contribution of every input feature to output column `output`, per row.

    Integrated gradients; each row's attributions sum to f(x) - f(baseline) (completeness). By
    default the path integral uses `steps` Gauss-Legendre points in one batched pass: exact to
    ~1e-7 for smooth activations (tanh, sigmoid, gelu, ...), but for ReLU networks the gradient
    jumps along the path and the sum is only within ~1e-3..1e-2 of f(x) - f(baseline). Pass
    `tolerance` (e.g. 1e-5) for adaptive Gauss-Kronrod integration that refines around those
    jumps until the completeness error is about `tolerance` (slower). The default baseline is the
    training mean stored at fit.

    Models whose inputs pass through lookups, hashing, discretization, embeddings or imputation
    (FeatureSpace models, string inputs), or that have several inputs, are explained in their
    encoded space: the path runs from the mean encoded training row to the row's encoded values,
    and each raw feature's attribution is the sum over its encoded values (a categorical
    feature's one-hot slots or embedding). Then `baseline` is raw input like `x` (or 'zeros' in
    the encoded space). Returns a DataFrame with the features' names when they are known, else
    an ndarray."""
    if method != "integrated_gradients":
        raise ValueError(f"unknown explanation method {method!r}; valid: 'integrated_gradients'")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or not 1 <= steps <= 4096:
        raise ValueError(f"steps must be an integer in [1, 4096], got {steps!r}")
    xs = model._prepare_x(x)
    outputs = int(np.prod(model._graph.output_shape))
    if isinstance(output, bool) or not isinstance(output, (int, np.integer)) or not 0 <= output < outputs:
        raise ValueError(f"output must be an integer in [0, {outputs}), got {output!r}")
    if tolerance is not None and not (isinstance(tolerance, (int, float)) and 0 < tolerance < 1):
        raise ValueError(f"tolerance must be None or a number in (0, 1), got {tolerance!r}")
    if xs[0].shape[0] == 0:
        raise ValueError("x has no rows")
    attributions, names = attribute(model, xs, baseline, steps, output, tolerance)
    if model.feature_names is not None or not _plan(model).direct:
        import pandas as pd

        return pd.DataFrame(attributions, columns=names)
    return attributions


def set_reason_codes(model, codes: dict) -> None:
    """feature name -> (code, text) or {"code": ..., "text": ...}; stored in the model file."""
    if not isinstance(codes, dict) or not codes:
        raise ValueError("reason codes must be a non-empty dict: feature -> (code, text)")
    table = {}
    for feature, entry in codes.items():
        if isinstance(entry, dict):
            code, text = entry.get("code"), entry.get("text")
        elif isinstance(entry, (tuple, list)) and len(entry) == 2:
            code, text = entry
        else:
            raise ValueError(f"reason code for {feature!r} must be (code, text) or a dict with 'code' and 'text'")
        if not isinstance(code, str) or not isinstance(text, str) or not code:
            raise ValueError(f"reason code for {feature!r}: code and text must be strings")
        table[str(feature)] = {"code": code, "text": text}
    if model.built:
        known = set(explained_feature_names(model))
        unknown = sorted(set(table) - known)
        if unknown:
            raise ValueError(f"reason codes name unknown feature(s) {unknown}; the model's features: {sorted(known)}")
    model._reason_codes = table


def reasons(
    model,
    x,
    top_k: int = 4,
    direction: str = "adverse",
    adverse: str = "high",
    baseline=None,
    steps: int = 64,
    output: int = 0,
    tolerance: float | None = None,
) -> list[list[dict]]:
    """Per row, the top-k features that pushed the score toward the adverse outcome (a higher
    score when adverse='high', the default for a probability of default), with their codes, texts
    and contributions. Features with no adverse contribution are never reported."""
    if direction != "adverse":
        raise ValueError(f"direction must be 'adverse', got {direction!r}")
    if adverse not in ("high", "low"):
        raise ValueError(f"adverse must be 'high' or 'low', got {adverse!r}")
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
    a = np.asarray(explain(model, x, baseline=baseline, steps=steps, output=output, tolerance=tolerance), np.float64)
    return reasons_from_attributions(model, a, top_k, adverse, xs=model._prepare_x(x), baseline=baseline)


def monotone_consistent(model, xs: list, baseline, values: np.ndarray) -> np.ndarray:
    """Per row and reported feature: False where a feature declared monotone (model.monotonic_features,
    direction d) has a contribution whose sign is not d times the sign of its value's move from the
    baseline (its first encoded slot: the imputed value, the bin index or the input itself). Reason
    codes drop those contributions, so they never cite a monotone feature against its direction."""
    plan = _plan(model)
    ok = np.ones(values.shape, dtype=bool)
    b = _baseline(model, plan, baseline, xs[0].shape[0]).astype(np.float64)
    z = (_flat(xs) if plan.direct else _core.encode(model._graph, xs)).astype(np.float64)
    for f, d in model.monotonic_features.items():
        if f not in plan.names:
            continue
        k = plan.names.index(f)
        slot = k if plan.direct else plan.columns.index(k)
        move = np.sign(z[:, slot] - b[:, slot] if b.shape[0] == z.shape[0] else z[:, slot] - b[0, slot])
        ok[:, k] = np.sign(values[:, k]) == d * move
    return ok


def reasons_from_attributions(
    model, values: np.ndarray, top_k: int = 4, adverse: str = "high", xs=None, baseline=None
) -> list[list[dict]]:
    """`reasons` for attributions already computed (rows x features) of the prepared inputs `xs`
    (needed for a model with monotone features: their contributions against the declared direction
    are never cited, see monotone_consistent)."""
    if getattr(model, "monotonic_features", None):
        if xs is None:
            raise ValueError("reason codes of a model with monotone features need the explained inputs (xs)")
        values = np.where(monotone_consistent(model, xs, baseline, values), values, 0.0)
    names = explained_feature_names(model)
    table = getattr(model, "_reason_codes", None) or {}
    sign = 1.0 if adverse == "high" else -1.0
    out = []
    for row in values * sign:
        order = np.argsort(-row, kind="stable")
        picked = [j for j in order if row[j] > 0][:top_k]
        out.append(
            [
                {
                    "feature": names[j],
                    "code": table.get(names[j], {}).get("code"),
                    "text": table.get(names[j], {}).get("text"),
                    "contribution": float(row[j] * sign),
                }
                for j in picked
            ]
        )
    return out


def drift(model, x_current):
    """PSI per feature and for the score against the reference recorded at fit, with bands.
    Returns a DataFrame (feature, psi, band); the score is the last row, named 'score'."""
    import pandas as pd

    ref = getattr(model, "_drift_reference", None)
    if ref is None:
        raise ValueError(
            f"this model has no drift reference (fit records one for inputs of up to {_REFERENCE_FEATURES} features)"
        )
    xs = model._prepare_x(x_current, "x_current")
    x2 = _flat(xs)
    names = raw_feature_names(model)
    rows = [
        (
            names[j],
            monitoring.psi_from_reference(ref["features"][j], x2[:, j])
            if ref["features"][j] is not None and np.isfinite(x2[:, j]).any()
            else float("nan"),
        )
        for j in range(x2.shape[1])
    ]
    score = model._graph.predict(xs, 4096)
    score = score.reshape(score.shape[0], -1)[:, 0]
    usable = ref["score"] is not None and np.isfinite(score).any()
    rows.append(("score", monitoring.psi_from_reference(ref["score"], score) if usable else float("nan")))
    return pd.DataFrame(
        {"feature": [r[0] for r in rows], "psi": [r[1] for r in rows], "band": [monitoring.band(r[1]) for r in rows]}
    )
