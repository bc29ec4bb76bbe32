"""`validation_report`: the model card and validation evidence of a binary credit model on given data."""

from __future__ import annotations

import numpy as np

from maasfin.data import is_frame, is_series
from maasfin.fairness.lending import check_cutoff
from maasfin.metrics.calibration import check_binary_inputs
from maasfin.reports import sections
from maasfin.reports.document import FORMAT, FORMAT_VERSION, Report, to_plain

__all__ = ["validation_report"]

_FN = "validation_report"


def _positive_int(v, what: str, lo: int = 1, hi: int = 1_000_000) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= v <= hi:
        raise ValueError(f"{_FN}: {what} must be an integer in [{lo}, {hi}], got {v!r}")
    return int(v)


def _group_labels(groups) -> list | None:
    if groups is None:
        return None
    if is_frame(groups):
        return [[str(c), [str(v) for v in groups[c].tolist()]] for c in groups.columns]
    if is_series(groups):
        return [[str(groups.name), [str(v) for v in groups.tolist()]]]
    if isinstance(groups, dict):
        return [[str(k), [str(v) for v in np.asarray(vals, dtype=object).tolist()]] for k, vals in groups.items()]
    a = np.asarray(groups, dtype=object)
    columns = [a] if a.ndim == 1 else list(a.reshape(a.shape[0], -1).T)
    return [[f"group_{j}", [str(v) for v in c.tolist()]] for j, c in enumerate(columns)]


def validation_report(
    model,
    x,
    y,
    groups=None,
    reference=None,
    cutoff: float = 0.5,
    *,
    metadata: dict | None = None,
    seed: int = 0,
    n_bootstrap: int = 200,
    confidence: float = 0.95,
    explain_rows: int = 1000,
    steps: int = 64,
    top_k: int = 4,
    monotonicity: dict | None = None,
) -> Report:
    """The validation report of a binary model whose first output is the probability of the
    adverse outcome (default), on data `x` (anything `model.predict` takes) with 0/1 labels `y`.

    groups/reference/cutoff: the fair-lending section (`maasfin.fairness.report`; approved when
    the probability is below `cutoff`); without groups the section is null. metadata: owner and
    intended use (defaults to the metadata the model was loaded with). seed, n_bootstrap,
    confidence: the bootstrap intervals of AUC, Gini and KS. explain_rows, steps, top_k: the
    explanation section (integrated gradients of the first `explain_rows` rows). monotonicity:
    an optional JSON object from a monotonicity check, stored as its own section. The same
    inputs and seed give a byte-identical `to_json()`."""
    if metadata is None:
        metadata = getattr(model, "metadata", None) or {}
    if not isinstance(metadata, dict):
        raise TypeError(f"{_FN}: metadata must be a dict, got {type(metadata).__name__}")
    seed = _positive_int(seed, "seed", 0, 2**63 - 1)
    n_bootstrap = _positive_int(n_bootstrap, "n_bootstrap", 0, 100_000)
    explain_rows = _positive_int(explain_rows, "explain_rows")
    steps = _positive_int(steps, "steps", 1, 4096)
    top_k = _positive_int(top_k, "top_k", 1, 1000)
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0 < confidence < 1:
        raise ValueError(f"{_FN}: confidence must be in (0, 1), got {confidence!r}")
    if monotonicity is not None and not isinstance(monotonicity, dict):
        raise TypeError(
            f"{_FN}: monotonicity must be a dict (a check's result) or None, got {type(monotonicity).__name__}"
        )
    cutoff = check_cutoff(cutoff, _FN)
    if groups is None and reference is not None:
        raise ValueError(f"{_FN}: reference={reference!r} was given without groups; pass the group columns as groups=")
    xs = model.prepare_inputs(x, "x")
    p = np.asarray(model.predict_arrays(xs), dtype=np.float64)
    p = p.reshape(p.shape[0], -1)
    if p.shape[1] != 1:
        raise ValueError(
            f"{_FN}: the model has {p.shape[1]} outputs per row; a validation report needs one "
            "probability of the adverse outcome"
        )
    p = p[:, 0]
    yv, p, _ = check_binary_inputs(y, p, _FN, both_classes=True, names=("y", "the model's predictions for x"))
    labels = _group_labels(groups)
    data = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": sections.model_details(model, seed, metadata),
        "intended_use": sections.intended_use(metadata),
        "data": sections.data_summary(xs, yv, labels),
        "discrimination": sections.discrimination(yv, p, seed, n_bootstrap, float(confidence)),
        "calibration": sections.calibration(yv, p),
        "stability": sections.stability(model, x),
        "fairness": None if groups is None else sections.fairness_section(yv, p, groups, cutoff, reference),
        "explanations": sections.explanations(model, xs, explain_rows, steps, top_k),
        "monotonicity": None if monotonicity is None else to_plain(monotonicity),
    }
    return Report(data)
