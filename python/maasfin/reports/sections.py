"""The sections of a validation report, each computed by the public functions it reports on.

Every number comes from a maasfin function a reader can call again: `metrics.roc_auc_score`,
`ks_statistic`, `gini`, `gains_table`, `calibration_curve`, `brier_score`,
`expected_calibration_error`, `hosmer_lemeshow`, `model.drift` (PSI), `fairness.report` and
`explain.attribute` (integrated gradients). Bootstrap intervals resample rows with a NumPy
generator seeded by the report's `seed`.
"""

from __future__ import annotations

import hashlib
import platform

import numpy as np

from maasfin import explain, fairness, metrics
from maasfin.reports.document import INTENDED_USE_KEYS
from maasfin.version import VERSION

__all__ = [
    "model_details",
    "intended_use",
    "data_summary",
    "discrimination",
    "roc_points",
    "calibration",
    "stability",
    "fairness_section",
    "explanations",
]


def _records(frame) -> list[dict]:
    return [dict(zip(frame.columns, row)) for row in frame.itertuples(index=False, name=None)]


def model_details(model, seed: int, metadata: dict) -> dict:
    """Architecture, parameter counts, training history, seeds and library versions."""
    layers = []
    for layer in model.layers:
        try:
            shape = [None if d is None else int(d) for d in layer.output_shape]
        except (AttributeError, ValueError, TypeError):
            shape = []
        layers.append({"name": layer.name, "class": type(layer).__name__, "output_shape": shape,
                       "params": int(layer.count_params())})  # fmt: skip
    h = getattr(model, "history", None)
    history = None
    if h is not None and getattr(h, "epoch", None):
        logs = {str(k): [float(v) for v in vals] for k, vals in h.history.items()}
        history = {"epochs": len(h.epoch), "logs": logs}
    training = metadata.get("seed")
    return {
        "name": model.name,
        "class": type(model).__name__,
        "n_params": int(model.count_params()),
        "n_trainable_params": int(sum(l.count_trainable_params() for l in model.layers)),
        "inputs": list(model.signature.feature_names or model.signature.input_names()),
        "layers": layers,
        "history": history,
        "seeds": {"bootstrap": int(seed), "training": training if isinstance(training, int) else None},
        "versions": {"maasfin": VERSION, "numpy": np.__version__, "python": platform.python_version()},
    }


def intended_use(metadata: dict) -> dict:
    """The model's owner and intended use, from its metadata (strings only; others shown as JSON)."""
    out = {}
    for k in INTENDED_USE_KEYS:
        v = metadata.get(k)
        out[k] = None if v is None else (v if isinstance(v, str) else str(v))
    return out


def _sha(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def data_summary(xs: list[np.ndarray], y: np.ndarray, group_labels: list | None) -> dict:
    """Rows, events and SHA-256 fingerprints of the inputs (as the model reads them), the labels
    (float64) and the group columns (their labels as JSON)."""
    groups_sha = None
    if group_labels is not None:
        groups_sha = hashlib.sha256(repr(group_labels).encode("utf-8")).hexdigest()
    return {
        "rows": int(y.size),
        "events": int(y.sum()),
        "event_rate": float(y.mean()),
        "x_sha256": _sha(*xs),
        "y_sha256": _sha(y),
        "groups_sha256": groups_sha,
    }


def roc_points(y: np.ndarray, p: np.ndarray, max_points: int = 2001) -> dict:
    """The ROC curve: (FPR, TPR) after each distinct score, from the highest down, starting at
    (0, 0): scikit-learn's roc_curve(drop_intermediate=False). Longer curves keep `max_points`
    evenly spaced points (the first and last included)."""
    order = np.argsort(-p, kind="stable")
    ys, ps = y[order], p[order]
    ends = np.r_[np.flatnonzero(ps[1:] != ps[:-1]), ps.size - 1]
    tp = np.cumsum(ys)[ends]
    fp = (ends + 1) - tp
    tpr, fpr = np.r_[0.0, tp / tp[-1]], np.r_[0.0, fp / fp[-1]]
    if tpr.size > max_points:
        keep = np.unique(np.linspace(0, tpr.size - 1, max_points).round().astype(int))
        tpr, fpr = tpr[keep], fpr[keep]
    return {"fpr": fpr.tolist(), "tpr": tpr.tolist()}


def _interval(values: np.ndarray, point: float, confidence: float) -> dict:
    if values.size == 0:
        return {"value": point, "lower": None, "upper": None}
    lo, hi = np.quantile(values, [(1 - confidence) / 2, (1 + confidence) / 2])
    return {"value": point, "lower": float(lo), "upper": float(hi)}


def discrimination(y: np.ndarray, p: np.ndarray, seed: int, n_bootstrap: int, confidence: float) -> dict:
    """ROC AUC, Gini and KS with percentile bootstrap intervals (rows resampled with replacement;
    resamples holding one class are skipped and counted out of `n_bootstrap_used`), the ROC curve
    and the gains table."""
    rng = np.random.default_rng(seed)
    aucs, kss = [], []
    for _ in range(n_bootstrap):
        idx = rng.integers(0, y.size, y.size)
        yb = y[idx]
        if yb.min() == yb.max():
            continue
        aucs.append(metrics.roc_auc_score(yb, p[idx]))
        kss.append(metrics.ks_statistic(yb, p[idx]))
    aucs, kss = np.asarray(aucs), np.asarray(kss)
    return {
        "confidence": float(confidence),
        "n_bootstrap": int(n_bootstrap),
        "n_bootstrap_used": int(aucs.size),
        "seed": int(seed),
        "auc": _interval(aucs, metrics.roc_auc_score(y, p), confidence),
        "gini": _interval(2 * aucs - 1, metrics.gini(y, p), confidence),
        "ks": _interval(kss, metrics.ks_statistic(y, p), confidence),
        "roc_curve": roc_points(y, p),
        "gains_table": _records(metrics.gains_table(y, p)),
    }


def calibration(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> dict:
    """The calibration curve (n_bins uniform bins), Brier score, ECE and Hosmer-Lemeshow (10 groups)."""
    prob_true, prob_pred = metrics.calibration_curve(y, p, n_bins=n_bins)
    hl = metrics.hosmer_lemeshow(y, p, groups=10)
    return {
        "n_bins": n_bins,
        "brier": metrics.brier_score(y, p),
        "ece": metrics.expected_calibration_error(y, p, n_bins=n_bins),
        "curve": {"prob_true": prob_true.tolist(), "prob_pred": prob_pred.tolist()},
        "hosmer_lemeshow": {"statistic": hl.statistic, "p_value": hl.p_value, "groups": 10},
    }


def stability(model, x) -> dict:
    """PSI per feature and for the score against the reference stored at fit (`model.drift`)."""
    if model.drift_reference is None:
        return {"available": False, "reason": "the model has no stored drift reference (fit records one)",
                "features": []}  # fmt: skip
    frame = model.drift(x)
    return {"available": True, "reason": None, "features": _records(frame)}


def fairness_section(y, p, groups, cutoff: float, reference) -> dict:
    """`fairness.report` of the score at `cutoff`."""
    frame = fairness.report(y, p, groups, cutoff, reference=reference)
    return {"cutoff": float(cutoff), "rows": _records(frame)}


def explanations(model, xs: list[np.ndarray], rows: int, steps: int, top_k: int) -> dict:
    """Integrated-gradients attributions of the first `rows` rows: the features ranked by mean
    |attribution|, how often each is the first (and among the `top_k`) adverse reason, and the
    completeness error |sum of attributions - (f(x) - f(baseline))| (for models explained in
    their encoded space, whose baseline output is not computed, the spread of the implied
    f(baseline) = f(x) - sum of attributions around its median)."""
    base = {"method": "integrated_gradients", "steps": int(steps), "top_k": int(top_k)}
    try:
        sub = [np.ascontiguousarray(a[:rows]) for a in xs]
        values, names = explain.attribute(model, sub, steps=steps)
    except ValueError as e:
        return {"available": False, "reason": str(e), **base, "rows": 0, "ranking": [], "reason_codes": [],
                "completeness": None}  # fmt: skip
    a = np.asarray(values, dtype=np.float64)
    mean_abs, mean = np.abs(a).mean(axis=0), a.mean(axis=0)
    order = np.argsort(-mean_abs, kind="stable")
    ranking = [{"feature": names[j], "mean_abs": float(mean_abs[j]), "mean": float(mean[j])} for j in order]
    counts: dict = {}
    for row in explain.reasons_from_attributions(model, a, top_k=top_k):
        for k, r in enumerate(row):
            entry = counts.setdefault(r["feature"], {"feature": r["feature"], "code": r["code"], "text": r["text"],
                                                     "top1": 0, "top_k": 0})  # fmt: skip
            entry["top1"] += k == 0
            entry["top_k"] += 1
    reason_codes = sorted(counts.values(), key=lambda r: (-r["top1"], -r["top_k"], names.index(r["feature"])))
    f = np.asarray(model.predict_arrays(sub), dtype=np.float64).reshape(a.shape[0], -1)[:, 0]
    fb = explain.baseline_output(model)
    if fb is not None:
        err = np.abs(a.sum(axis=1) - (f - fb))
        method = "exact"
    else:
        implied = f - a.sum(axis=1)
        err = np.abs(implied - np.median(implied))
        method = "implied_baseline_spread"
    completeness = {"method": method, "max_abs_error": float(err.max()), "mean_abs_error": float(err.mean())}
    return {"available": True, "reason": None, **base, "rows": int(a.shape[0]), "ranking": ranking,
            "reason_codes": reason_codes, "completeness": completeness}  # fmt: skip
