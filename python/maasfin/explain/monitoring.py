"""Population drift: the Population Stability Index (PSI) between a reference sample and a
current one, per feature and for the score, with the usual bands.

    PSI = sum_b (p_cur_b - p_ref_b) * ln(p_cur_b / p_ref_b)

over bins fixed on the reference (deciles by default; one bin per category for categorical data).
Empty bins are floored at 1e-4 so the index stays finite. Bands: < 0.10 stable,
0.10-0.25 watch, > 0.25 act.
"""

from __future__ import annotations

import numpy as np

__all__ = ["psi", "band", "reference_bins", "reference_categories", "psi_from_reference", "STABLE", "WATCH"]

STABLE, WATCH = 0.10, 0.25
_FLOOR = 1e-4


def band(value: float) -> str:
    if not np.isfinite(value):
        return "unknown"
    return "stable" if value < STABLE else ("watch" if value <= WATCH else "act")


def reference_bins(values, bins: int = 10) -> dict:
    """The reference distribution of one numeric feature: interior quantile edges and the share
    of the reference in each bin. JSON-serialisable, so it can be stored in a model file."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    v = v[np.isfinite(v)]
    if v.size == 0:
        raise ValueError("reference_bins: no finite values")
    if not isinstance(bins, int) or bins < 2:
        raise ValueError(f"reference_bins: bins must be an integer >= 2, got {bins!r}")
    edges = np.unique(np.quantile(v, np.linspace(0, 1, bins + 1)[1:-1]))
    counts = np.bincount(np.searchsorted(edges, v, side="right"), minlength=edges.size + 1)
    return {"edges": edges.tolist(), "proportions": (counts / v.size).tolist()}


def reference_categories(values) -> dict:
    """The reference distribution of one categorical feature given as category codes (e.g. a
    string feature's lookup indices): one bin per category seen, split halfway between codes, in
    the same form as `reference_bins`. A code not seen in the reference counts in the bin of the
    nearest code that was."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    v = v[np.isfinite(v)]
    if v.size == 0:
        raise ValueError("reference_categories: no finite values")
    codes, counts = np.unique(v, return_counts=True)
    return {"edges": ((codes[:-1] + codes[1:]) / 2).tolist(), "proportions": (counts / v.size).tolist()}


def psi_from_reference(reference: dict, current) -> float:
    """PSI of `current` values against a distribution from `reference_bins`."""
    edges = np.asarray(reference["edges"], dtype=np.float64)
    expected = np.asarray(reference["proportions"], dtype=np.float64)
    if expected.size != edges.size + 1:
        raise ValueError("reference: proportions must have one more entry than edges")
    c = np.asarray(current, dtype=np.float64).reshape(-1)
    c = c[np.isfinite(c)]
    if c.size == 0:
        raise ValueError("psi: no finite current values")
    actual = np.bincount(np.searchsorted(edges, c, side="right"), minlength=edges.size + 1) / c.size
    e, a = np.maximum(expected, _FLOOR), np.maximum(actual, _FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def psi(reference, current, bins: int = 10) -> float:
    """PSI between two samples of one numeric feature (bins from the reference's quantiles)."""
    return psi_from_reference(reference_bins(reference, bins), current)
