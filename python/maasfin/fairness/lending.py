"""The fair-lending report: per group, approval rates, adverse impact, error rates and calibration.

`y_prob` is the probability of the adverse outcome (default, denial) and an applicant is approved
when `y_prob < cutoff`. A "positive" prediction in the error rates is the adverse one (a denial,
`y_prob >= cutoff`) and a positive label is 1 (a default), so TPR = P(denied | bad) and
FPR = P(denied | good): the same convention as fairlearn given `y_pred = (y_prob >= cutoff)`.
"""

from __future__ import annotations

import math

import numpy as np

from maasfin.data import is_frame, is_series, pd
from maasfin.metrics.calibration import expected_calibration_error
from maasfin.metrics.ranking import ks_statistic, roc_auc_score

__all__ = ["report", "two_proportion_p_value", "check_cutoff", "FLAGS", "MISSING_GROUP", "SMALL_GROUP"]

#: The label of the rows whose group value is missing (None, NaN): a group of its own, flagged.
MISSING_GROUP = "(missing)"
#: Groups with fewer rows than this are flagged `small_group`.
SMALL_GROUP = 30
#: The boolean flag columns of the report.
FLAGS = ("small_group", "no_labels", "single_class", "missing_group")
FOUR_FIFTHS = 0.8

_FN = "fairness.report"


def two_proportion_p_value(successes_a: int, n_a: int, successes_b: int, n_b: int) -> tuple[float, float]:
    """(z, two-sided p-value) of the pooled two-proportion z-test of p_a = p_b:
    z = (p_a - p_b) / sqrt(p (1 - p) (1/n_a + 1/n_b)) with p the pooled proportion, and
    p-value = erfc(|z| / sqrt(2)). When both groups are all successes or all failures the
    proportions are equal and the result is (0, 1)."""
    if n_a < 1 or n_b < 1:
        raise ValueError(f"two_proportion_p_value: both groups need rows, got n_a={n_a}, n_b={n_b}")
    pa, pb = successes_a / n_a, successes_b / n_b
    pooled = (successes_a + successes_b) / (n_a + n_b)
    var = pooled * (1.0 - pooled) * (1.0 / n_a + 1.0 / n_b)
    if var <= 0.0:
        return 0.0, 1.0
    z = (pa - pb) / math.sqrt(var)
    return z, math.erfc(abs(z) / math.sqrt(2.0))


# -- the boundary ----------------------------------------------------------------------------------
def _vector(values, what: str) -> np.ndarray:
    a = np.asarray(values)
    if a.ndim == 2 and a.shape[1] == 1:
        a = a.reshape(-1)
    if a.ndim != 1:
        raise ValueError(f"{_FN}: {what} must be 1-D (or one column), got shape {a.shape}")
    return a


def _check_prob(y_prob) -> np.ndarray:
    p = _vector(y_prob, "y_prob")
    if p.size == 0:
        raise ValueError(f"{_FN}: y_prob is empty")
    if p.dtype.kind not in "biuf":
        raise ValueError(f"{_FN}: y_prob must be numeric, got dtype {p.dtype}")
    p = p.astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(p) | (p < 0) | (p > 1))
    if bad.size:
        raise ValueError(
            f"{_FN}: y_prob must be probabilities in [0, 1] (of the adverse outcome), got {p[bad[0]]} "
            f"at index {int(bad[0])} (shape {p.shape})"
        )
    return p


def _check_labels(y_true, n: int):
    """0/1 labels as float64 with NaN where a label is missing, or None (no labels at all)."""
    if y_true is None:
        return None
    y = _vector(y_true, "y_true")
    if y.shape != (n,):
        raise ValueError(f"{_FN}: y_true has shape {np.shape(y_true)} but y_prob has {n} values")
    if y.dtype.kind == "O":
        y = np.array([np.nan if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in y])
    if y.dtype.kind not in "biuf":
        raise ValueError(f"{_FN}: y_true must be 0/1 numbers (1 = default), got dtype {y.dtype}")
    y = y.astype(np.float64)
    bad = np.flatnonzero(~np.isnan(y) & ~np.isin(y, (0.0, 1.0)))
    if bad.size:
        raise ValueError(
            f"{_FN}: y_true must contain only 0, 1 (1 = the adverse outcome) or NaN for a missing label, "
            f"got {y[bad[0]]} at index {int(bad[0])}"
        )
    return y


def check_cutoff(cutoff, fn: str = _FN) -> float:
    """`cutoff` as a float in (0, 1), or a ValueError naming `fn` and the value."""
    if isinstance(cutoff, bool) or not isinstance(cutoff, (int, float, np.integer, np.floating)):
        raise ValueError(f"{fn}: cutoff must be a number in (0, 1), got {cutoff!r}")
    c = float(cutoff)
    if not 0.0 < c < 1.0:
        raise ValueError(f"{fn}: cutoff must be in (0, 1) (approve when y_prob < cutoff), got {c}")
    return c


def _label(v) -> str:
    if v is None or (isinstance(v, (float, np.floating)) and math.isnan(v)):
        return MISSING_GROUP
    if type(v).__name__ in ("NaTType", "NAType"):
        return MISSING_GROUP
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (np.integer, np.floating)):
        v = v.item()
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _group_columns(groups, n: int) -> list[tuple[str, np.ndarray]]:
    """(attribute name, labels as strings) per group column."""
    if is_frame(groups):
        if groups.shape[1] == 0:
            raise ValueError(f"{_FN}: groups is a DataFrame without columns")
        cols = [(str(c), groups[c].to_numpy(dtype=object)) for c in groups.columns]
    elif isinstance(groups, dict):
        if not groups:
            raise ValueError(f"{_FN}: groups is an empty dict")
        cols = [(str(k), np.asarray(v, dtype=object)) for k, v in groups.items()]
    elif is_series(groups):
        cols = [(str(groups.name) if groups.name is not None else "group", groups.to_numpy(dtype=object))]
    else:
        a = np.asarray(groups, dtype=object)
        if a.ndim == 2:
            cols = [(f"group_{j}", a[:, j]) for j in range(a.shape[1])]
        else:
            cols = [("group", a)]
    names = [c[0] for c in cols]
    if len(set(names)) != len(names):
        raise ValueError(f"{_FN}: groups has repeated column names {names}")
    out = []
    for name, values in cols:
        if values.ndim != 1 or values.shape[0] != n:
            raise ValueError(
                f"{_FN}: group column {name!r} has shape {values.shape} but y_prob has {n} values; "
                "give one group value per row"
            )
        out.append((name, np.array([_label(v) for v in values], dtype=object)))
    return out


def _reference_for(reference, attribute: str, labels: list[str], rates: dict, n_attr: int) -> str:
    if isinstance(reference, dict):
        if attribute not in reference:
            raise ValueError(f"{_FN}: reference has no entry for group column {attribute!r}; give {sorted(rates)}")
        ref = reference[attribute]
    elif reference is not None:
        if n_attr > 1:
            raise ValueError(f"{_FN}: with several group columns, reference must be a dict column -> reference group")
        ref = reference
    else:  # the group with the highest approval rate (ties: the larger, then the first by name)
        return max(sorted(labels), key=lambda g: (rates[g][0], rates[g][1]))
    key = _label(ref)
    if key not in labels:
        raise ValueError(
            f"{_FN}: reference group {ref!r} does not occur in group column {attribute!r}; groups: {labels}"
        )
    return key


# -- the report ------------------------------------------------------------------------------------
def _cohens_d(a: np.ndarray, b: np.ndarray) -> float:
    """(mean(a) - mean(b)) / pooled standard deviation (n - 1 denominators)."""
    na, nb = a.size, b.size
    if na + nb <= 2:
        return float("nan")
    pooled = ((na - 1) * a.var(ddof=1 if na > 1 else 0) + (nb - 1) * b.var(ddof=1 if nb > 1 else 0)) / (na + nb - 2)
    if pooled <= 0:
        return 0.0 if a.mean() == b.mean() else float("nan")
    return float((a.mean() - b.mean()) / math.sqrt(pooled))


def _label_metrics(y: np.ndarray, p: np.ndarray, denied: np.ndarray) -> dict:
    nan = float("nan")
    out = {"n_labelled": int(y.size), "bad_rate": nan, "tpr": nan, "fpr": nan, "auc": nan, "ks": nan, "ece": nan}
    if y.size == 0:
        return out
    bad, good = y == 1, y == 0
    out["bad_rate"] = float(bad.mean())
    out["ece"] = expected_calibration_error(y, p)
    if bad.any():
        out["tpr"] = float(denied[bad].mean())
    if good.any():
        out["fpr"] = float(denied[good].mean())
    if bad.any() and good.any():
        out["auc"] = roc_auc_score(y, p)
        out["ks"] = ks_statistic(y, p)
    return out


def report(y_true, y_prob, groups, cutoff, reference=None):
    """Per group (and per value of each group column), the fair-lending measures of a score.

    y_true: 0/1 outcomes (1 = default), NaN where unknown, or None (approval metrics only).
    y_prob: the probability of the adverse outcome; approved when y_prob < cutoff.
    groups: one value per row (array, Series: its name is the attribute), or several columns
    (DataFrame, dict name -> values). Missing values form a group of their own, `(missing)`.
    reference: the reference group (a dict column -> group with several columns); by default
    the group with the highest approval rate, so that the smallest AIR is fairlearn's
    demographic_parity_ratio of the approvals.

    Returns a pandas DataFrame, one row per (attribute, group) in column order then group name:
    attribute, group, is_reference, n, approvals, approval_rate, air (approval rate / the
    reference's), four_fifths_flag (air < 0.8), approval_z and approval_p_value (pooled
    two-proportion z-test against the reference), mean_score, smd (Cohen's d of y_prob against
    the reference: (mean - mean_ref) / pooled sd), n_labelled, bad_rate, tpr, fpr (denial rates
    of the bad and the good), tpr_diff, fpr_diff (minus the reference's), equalized_odds_diff
    (max of their absolute values), auc, ks, ece (10 uniform bins) and the flags small_group
    (< 30 rows), no_labels, single_class (labels of one class: AUC/KS undefined), missing_group.
    Undefined values are NaN."""
    p = _check_prob(y_prob)
    n = p.size
    y = _check_labels(y_true, n)
    c = check_cutoff(cutoff)
    columns = _group_columns(groups, n)
    approved = p < c
    rows = []
    for attribute, labels in columns:
        names = sorted(set(labels.tolist()))
        rates = {g: (float(approved[labels == g].mean()), int((labels == g).sum())) for g in names}
        ref = _reference_for(reference, attribute, names, rates, len(columns))
        ref_idx = labels == ref
        ref_approved, ref_n = int(approved[ref_idx].sum()), int(ref_idx.sum())
        ref_rate = ref_approved / ref_n
        ref_labels = None
        for g in names:
            idx = labels == g
            gn, ga = int(idx.sum()), int(approved[idx].sum())
            z, pv = two_proportion_p_value(ga, gn, ref_approved, ref_n) if g != ref else (float("nan"),) * 2
            row = {
                "attribute": attribute,
                "group": g,
                "is_reference": g == ref,
                "n": gn,
                "approvals": ga,
                "approval_rate": ga / gn,
                "air": (ga / gn) / ref_rate if ref_rate > 0 else float("nan"),
                "approval_z": z,
                "approval_p_value": pv,
                "mean_score": float(p[idx].mean()),
                "smd": 0.0 if g == ref else _cohens_d(p[idx], p[ref_idx]),
            }
            row["four_fifths_flag"] = bool(row["air"] < FOUR_FIFTHS)
            if y is not None:
                known = idx & ~np.isnan(y)
                row.update(_label_metrics(y[known], p[known], ~approved[known]))
            else:
                row.update(_label_metrics(np.zeros(0), np.zeros(0), np.zeros(0, bool)))
            if g == ref:
                ref_labels = row
            rows.append(row)
        for row in rows:
            if row["attribute"] != attribute:
                continue
            row["tpr_diff"] = row["tpr"] - ref_labels["tpr"]
            row["fpr_diff"] = row["fpr"] - ref_labels["fpr"]
            row["equalized_odds_diff"] = max(abs(row["tpr_diff"]), abs(row["fpr_diff"]))
            if math.isnan(row["tpr_diff"]) or math.isnan(row["fpr_diff"]):
                row["equalized_odds_diff"] = float("nan")
            row["small_group"] = row["n"] < SMALL_GROUP
            row["no_labels"] = row["n_labelled"] == 0
            row["single_class"] = row["n_labelled"] > 0 and math.isnan(row["auc"])
            row["missing_group"] = row["group"] == MISSING_GROUP
    order = [
        "attribute", "group", "is_reference", "n", "approvals", "approval_rate", "air", "four_fifths_flag",
        "approval_z", "approval_p_value", "mean_score", "smd", "n_labelled", "bad_rate", "tpr", "fpr",
        "tpr_diff", "fpr_diff", "equalized_odds_diff", "auc", "ks", "ece", *FLAGS,
    ]  # fmt: skip
    return pd.DataFrame([{k: r[k] for k in order} for r in rows], columns=order)
