"""Explanations of predictions: per-feature attributions (integrated gradients, computed in the
C++ core with the GIL released), reason codes for adverse decisions, and drift reports.

The functions take a model; `Model.explain`, `Model.reasons`, `Model.set_reason_codes` and
`Model.drift` call them.
"""
from __future__ import annotations

import numpy as np

from maasfin import _core, data, monitoring

__all__ = ["explain", "reasons", "set_reason_codes", "drift", "record_reference"]


def _inputs(model, x, what: str = "x"):
    if len(model._input_shapes if model.built else [None]) != 1:
        raise ValueError("explanations need a model with one input")
    arr = model._prepare_x(x, what)[0]
    return arr.reshape(arr.shape[0], -1)


def _feature_names(model, width: int) -> list[str]:
    names = model.feature_names
    return list(names) if names is not None and len(names) == width else [f"feature_{j}" for j in range(width)]


_REFERENCE_ROWS = 4096
_REFERENCE_FEATURES = 512


def record_reference(model, x: np.ndarray) -> None:
    """Stores, at fit time, what explanations and drift reports compare against: the per-feature
    training means (the default attribution baseline) and the reference distributions (deciles)
    of every feature and of the score."""
    # At most 4,096 evenly spaced rows: deciles and means are stable at that size, and the cost of
    # fit's last step stays small for wide inputs (sequences, images).
    if x.shape[0] > _REFERENCE_ROWS:
        x = np.ascontiguousarray(x[np.linspace(0, x.shape[0] - 1, _REFERENCE_ROWS).astype(np.int64)])
    flat = x.reshape(x.shape[0], -1)
    # Inputs may hold NaN where the model imputes them: the baseline is the mean of what is there.
    finite = np.isfinite(flat)
    counts = finite.sum(axis=0)
    sums = np.where(finite, flat, 0).sum(axis=0, dtype=np.float64)
    model._explain_baseline = np.where(counts > 0, sums / np.maximum(counts, 1), 0.0).astype(np.float32).tolist()
    score = model._graph.predict([x], 4096).reshape(x.shape[0], -1)[:, 0]
    if flat.shape[1] > _REFERENCE_FEATURES:  # sequences/images: per-position deciles mean little
        model._drift_reference = None
        return
    model._drift_reference = {
        "features": [monitoring.reference_bins(flat[:, j]) if counts[j] else None for j in range(flat.shape[1])],
        # A model whose training diverged scores NaN: it gets no score reference.
        "score": monitoring.reference_bins(score) if np.isfinite(score).any() else None,
    }


def _baseline(model, baseline, width: int, rows: int) -> np.ndarray:
    if baseline is None:
        stored = getattr(model, "_explain_baseline", None)
        if stored is None:
            raise ValueError("this model has no stored baseline (it records one at fit); pass baseline=...")
        b = np.asarray(stored, dtype=np.float32).reshape(1, -1)
    elif isinstance(baseline, str):
        if baseline != "zeros":
            raise ValueError(f"baseline must be None, 'zeros', or an array, got {baseline!r}")
        b = np.zeros((1, width), np.float32)
    else:
        b = _inputs(model, baseline, "baseline") if not isinstance(baseline, np.ndarray) or baseline.ndim > 1 \
            else np.ascontiguousarray(baseline, dtype=np.float32).reshape(1, -1)
    if b.shape[1] != width:
        raise ValueError(f"baseline has {b.shape[1]} features, the model takes {width}")
    if b.shape[0] not in (1, rows):
        raise ValueError(f"baseline must have 1 row or {rows} rows, got {b.shape[0]}")
    data.check_finite(b, "baseline")
    return np.ascontiguousarray(b)


def explain(model, x, method: str = "integrated_gradients", baseline=None, steps: int = 64, output: int = 0,
            tolerance: float | None = None):
    """Signed contribution of every input feature to output column `output`, per row.

    Integrated gradients; each row's attributions sum to f(x) - f(baseline) (completeness). By
    default the path integral uses `steps` Gauss-Legendre points in one batched pass: exact to
    ~1e-7 for smooth activations (tanh, sigmoid, gelu, ...), but for ReLU networks the gradient
    jumps along the path and the sum is only within ~1e-3..1e-2 of f(x) - f(baseline). Pass
    `tolerance` (e.g. 1e-5) for adaptive Gauss-Kronrod integration that refines around those
    jumps until the completeness error is about `tolerance` (slower). The default baseline is the
    training mean stored at fit. Returns a DataFrame with the model's feature names when it has
    them, else an ndarray."""
    if method != "integrated_gradients":
        raise ValueError(f"unknown explanation method {method!r}; valid: 'integrated_gradients'")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or not 1 <= steps <= 4096:
        raise ValueError(f"steps must be an integer in [1, 4096], got {steps!r}")
    x2 = _inputs(model, x)
    width = x2.shape[1]
    b = _baseline(model, baseline, width, x2.shape[0])
    outputs = int(np.prod(model._graph.output_shape))
    if isinstance(output, bool) or not isinstance(output, (int, np.integer)) or not 0 <= output < outputs:
        raise ValueError(f"output must be an integer in [0, {outputs}), got {output!r}")
    if tolerance is not None and not (isinstance(tolerance, (int, float)) and 0 < tolerance < 1):
        raise ValueError(f"tolerance must be None or a number in (0, 1), got {tolerance!r}")
    attributions = _core.integrated_gradients(model._graph, x2, b, int(output), int(steps), float(tolerance or 0.0))
    if model.feature_names is not None:
        import pandas as pd
        return pd.DataFrame(attributions, columns=_feature_names(model, width))
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
        known = set(_feature_names(model, int(np.prod(model._input_shapes[0]))))
        unknown = sorted(set(table) - known)
        if unknown:
            raise ValueError(f"reason codes name unknown feature(s) {unknown}; the model's features: {sorted(known)}")
    model._reason_codes = table


def reasons(model, x, top_k: int = 4, direction: str = "adverse", adverse: str = "high", baseline=None,
            steps: int = 64, output: int = 0, tolerance: float | None = None) -> list[list[dict]]:
    """Per row, the top-k features that pushed the score toward the adverse outcome (a higher
    score when adverse='high', the default for a probability of default), with their codes, texts
    and contributions. Features with no adverse contribution are never reported."""
    if direction != "adverse":
        raise ValueError(f"direction must be 'adverse', got {direction!r}")
    if adverse not in ("high", "low"):
        raise ValueError(f"adverse must be 'high' or 'low', got {adverse!r}")
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
    a = explain(model, x, baseline=baseline, steps=steps, output=output, tolerance=tolerance)
    return reasons_from_attributions(model, np.asarray(a, dtype=np.float64), top_k, adverse)


def reasons_from_attributions(model, values: np.ndarray, top_k: int = 4, adverse: str = "high") -> list[list[dict]]:
    """`reasons` for attributions already computed (rows x features)."""
    names = _feature_names(model, values.shape[1])
    table = getattr(model, "_reason_codes", None) or {}
    sign = 1.0 if adverse == "high" else -1.0
    out = []
    for row in values * sign:
        order = np.argsort(-row, kind="stable")
        picked = [j for j in order if row[j] > 0][:top_k]
        out.append([{"feature": names[j], "code": table.get(names[j], {}).get("code"),
                     "text": table.get(names[j], {}).get("text"), "contribution": float(row[j] * sign)}
                    for j in picked])
    return out


def drift(model, x_current):
    """PSI per feature and for the score against the reference recorded at fit, with bands.
    Returns a DataFrame (feature, psi, band); the score is the last row, named 'score'."""
    import pandas as pd

    ref = getattr(model, "_drift_reference", None)
    if ref is None:
        raise ValueError("this model has no drift reference (fit records one for inputs of up to "
                         f"{_REFERENCE_FEATURES} features)")
    x2 = _inputs(model, x_current, "x_current")
    names = _feature_names(model, x2.shape[1])
    rows = [(names[j], monitoring.psi_from_reference(ref["features"][j], x2[:, j])
             if ref["features"][j] is not None and np.isfinite(x2[:, j]).any() else float("nan"))
            for j in range(x2.shape[1])]
    score = model._graph.predict([x2.reshape((-1,) + tuple(model._input_shapes[0]))], 4096)
    score = score.reshape(score.shape[0], -1)[:, 0]
    usable = ref["score"] is not None and np.isfinite(score).any()
    rows.append(("score", monitoring.psi_from_reference(ref["score"], score) if usable else float("nan")))
    return pd.DataFrame({"feature": [r[0] for r in rows], "psi": [r[1] for r in rows],
                         "band": [monitoring.band(r[1]) for r in rows]})
