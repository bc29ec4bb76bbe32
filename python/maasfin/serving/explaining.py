"""Explanations in the server: the request options, and attributions and reason codes per row.

Predictions of an explanation request go through the same path as any other (the batcher, so they
equal /v1/predict's); then `explain(plan, predictions)` computes integrated-gradients attributions
against the model's stored baseline and its adverse reason codes (maasfin.explain), and the
request's protocol encodes them (`plan.answer.explanation`).
"""

from __future__ import annotations

import numpy as np

from maasfin import explain as explain_module
from maasfin.serving.errors import RequestError, bad_request
from maasfin.serving.exchange import Plan, Reply


def options(obj: dict, prefix: str) -> dict:
    """Pops and checks the explanation options "top_k" (1..20, default 4) and "steps" (1..512,
    default 64) from a request object; `prefix` names where they were ("parameters.")."""
    found = {k: obj.pop(k) for k in ("top_k", "steps") if k in obj}
    for k, hi in (("top_k", 20), ("steps", 512)):
        v = found.get(k)
        if v is not None and (type(v) is not int or not 1 <= v <= hi):
            raise bad_request(f"'{prefix}{k}' must be an integer in [1, {hi}], got {v!r}")
    return {"top_k": found.get("top_k") or 4, "steps": found.get("steps") or 64}


def explain(plan: Plan, predictions: np.ndarray) -> Reply:
    """The reply to an explanation request: attributions (integrated gradients against the
    model's stored baseline) and adverse reason codes for every row, next to the served
    predictions, in the request's protocol."""
    v = plan.lease.version
    model = v.model
    try:
        values, names = explain_module.attribute(model, plan.xs, steps=plan.explain["steps"])
    except ValueError as e:  # e.g. a model saved without a baseline
        raise RequestError(409, f"model {v.name!r} version {v.version} cannot be explained: {e}") from None
    values = values.astype(np.float64)
    reasons = explain_module.reasons_from_attributions(model, values, plan.explain["top_k"], xs=plan.xs)
    return plan.answer.explanation(predictions, values, names, reasons)
