"""Explanations and monitoring: attributions and reason codes, population stability, representative rows."""

from maasfin.explain import monitoring
from maasfin.explain.attributions import (
    attribute,
    baseline_output,
    baseline_width,
    drift,
    explain,
    explained_feature_names,
    raw_feature_names,
    reasons,
    reasons_from_attributions,
    record_reference,
    set_reason_codes,
)
from maasfin.explain.representative import representative_rows, score_mismatch

__all__ = [
    "explain",
    "reasons",
    "set_reason_codes",
    "drift",
    "record_reference",
    "attribute",
    "baseline_output",
    "baseline_width",
    "reasons_from_attributions",
    "raw_feature_names",
    "explained_feature_names",
    "monitoring",
    "representative_rows",
    "score_mismatch",
]
