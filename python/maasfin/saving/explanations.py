"""Explanation state in a model file: baselines, reason codes and drift references, written and checked."""

from __future__ import annotations

import math

from maasfin import explain
from maasfin.explain.representative import MAX_ROWS, reference_scores
from maasfin.saving.file_format import check_dict, check_list, check_object, check_str, fail, type_name


def explanation_state(model) -> dict:
    """What explanations and drift reports compare against (see explain.py), kept with the model
    so that an explanation can be reproduced later."""
    return {
        "baseline": getattr(model, "_explain_baseline", None),
        "reason_codes": getattr(model, "_reason_codes", None),
        "drift_reference": getattr(model, "_drift_reference", None),
        # the model's outputs on its representative rows (explain/representative.py), recomputed and
        # compared by a server's warm-up
        "reference_scores": reference_scores(model),
    }


def finite_list(x, src: str, where: str, length=None, max_len: int = 1_000_000) -> list:
    values = check_list(x, src, where, max_len)
    if length is not None and len(values) != length:
        raise fail(src, f"{where} has {len(values)} values, expected {length}")
    out = []
    for i, v in enumerate(values):
        try:
            f = float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan
        except OverflowError:  # an integer too large for a float
            f = math.nan
        if not math.isfinite(f):
            raise fail(src, f"{where}[{i}] must be a finite number, got {type_name(v)}")
        out.append(f)
    return out


def check_bins(x, src: str, where: str) -> dict:
    check_object(x, src, where, ("edges", "proportions"))
    edges = finite_list(x["edges"], src, f"{where}.edges", max_len=10_000)
    props = finite_list(x["proportions"], src, f"{where}.proportions", length=len(edges) + 1)
    if any(b <= a for a, b in zip(edges, edges[1:])):
        raise fail(src, f"{where}.edges must increase")
    if any(p < 0 for p in props) or abs(sum(props) - 1.0) > 1e-6:
        raise fail(src, f"{where}.proportions must be >= 0 and sum to 1")
    return {"edges": edges, "proportions": props}


def load_explanations(doc, model, src: str) -> None:
    if doc is None:
        return
    check_object(doc, src, "explanations", ("baseline", "reason_codes", "drift_reference"), ("reference_scores",))
    if doc["baseline"] is not None:
        if not model.built:
            raise fail(src, "explanations.baseline needs a built model")
        # the input width, or the encoded width for models with preprocessing layers
        model._explain_baseline = finite_list(
            doc["baseline"], src, "explanations.baseline", length=explain.baseline_width(model)
        )
    if doc["reason_codes"] is not None:
        codes = check_dict(doc["reason_codes"], src, "explanations.reason_codes")
        table = {}
        for k, v in list(codes.items())[:100_000]:
            check_str(k, src, "explanations.reason_codes key")
            check_object(v, src, f"explanations.reason_codes[{k!r}]", ("code", "text"))
            table[k] = {
                "code": check_str(v["code"], src, f"explanations.reason_codes[{k!r}].code"),
                "text": check_str(v["text"], src, f"explanations.reason_codes[{k!r}].text", 4096, allow_empty=True),
            }
        model._reason_codes = table
    if doc["drift_reference"] is not None:
        if not model.built:
            raise fail(src, "explanations.drift_reference needs a built model")
        width = len(explain.raw_feature_names(model))
        ref = check_object(doc["drift_reference"], src, "explanations.drift_reference", ("features", "score"))
        feats = check_list(ref["features"], src, "explanations.drift_reference.features", width)
        if len(feats) != width:
            raise fail(src, f"explanations.drift_reference.features has {len(feats)} entries, expected {width}")
        model._drift_reference = {
            "features": [
                None if f is None else check_bins(f, src, f"explanations.drift_reference.features[{i}]")
                for i, f in enumerate(feats)
            ],
            "score": None
            if ref["score"] is None
            else check_bins(ref["score"], src, "explanations.drift_reference.score"),
        }
    if doc.get("reference_scores") is not None:  # absent from files written before maasfin recorded them
        where = "explanations.reference_scores"
        rows = check_list(doc["reference_scores"], src, where, MAX_ROWS)
        if not rows:
            raise fail(src, f"{where} must not be empty")
        width = len(check_list(rows[0], src, f"{where}[0]", 1_000_000))
        model._reference_scores = [finite_list(r, src, f"{where}[{i}]", length=width) for i, r in enumerate(rows)]
