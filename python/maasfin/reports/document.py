"""The validation report as data: `Report`, its canonical JSON and the strict check of a stored one.

A report is a JSON document (docs/governance.md lists its sections). `Report.to_json()` is
canonical: the same report gives the same bytes, so the same inputs and seed give byte-identical
JSON. `Report.from_json` reads data only and checks every field against `SCHEMA` (types, lengths,
nesting), as the `.maas` reader does for its `report.json` member; failures are `ModelFileError`s
naming the field.
"""

from __future__ import annotations

import json
import math

import numpy as np

from maasfin.reports import html
from maasfin.saving.file_format import check_int, check_str, fail, loads, type_name

__all__ = ["Report", "FORMAT", "FORMAT_VERSION", "SCHEMA", "check_report", "to_plain"]

FORMAT, FORMAT_VERSION = "maasfin.validation_report", 1
_MAX_LIST = 100_000
_MAX_STR = 100_000

NUM, NUMN, INT, INTN, STR, STRN, BOOL, JSON = "num", "num?", "int", "int?", "str", "str?", "bool", "json"


def obj(fields: dict, nullable: bool = False):
    return ("obj", fields, nullable)


def lst(spec):
    return ("list", spec)


def mapping(spec):
    return ("map", spec)


_CI = obj({"value": NUM, "lower": NUMN, "upper": NUMN})
_GAINS = {k: INT for k in ("bin", "count", "bads", "goods")} | {
    k: NUM for k in ("bad_rate", "min_prob", "max_prob", "cum_bads_pct", "cum_goods_pct", "ks", "max_ks", "lift")
}
_GAINS["cum_lift"] = NUM
_FAIRNESS_ROW = (
    {"attribute": STR, "group": STR, "is_reference": BOOL, "n": INT, "approvals": INT}
    | {k: NUMN for k in ("approval_rate", "air")}
    | {"four_fifths_flag": BOOL}
    | {k: NUMN for k in ("approval_z", "approval_p_value", "mean_score", "smd")}
    | {"n_labelled": INT}
    | {k: NUMN for k in ("bad_rate", "tpr", "fpr", "tpr_diff", "fpr_diff", "equalized_odds_diff", "auc", "ks", "ece")}
    | {k: BOOL for k in ("small_group", "no_labels", "single_class", "missing_group")}
)
#: Metadata keys shown as the report's intended use and ownership (model.save(metadata=...)).
INTENDED_USE_KEYS = ("owner", "intended_use", "out_of_scope_use", "limitations", "contact")

#: Every field of a report: the schema `check_report` enforces.
SCHEMA = obj(
    {
        "format": STR,
        "format_version": INT,
        "model": obj(
            {
                "name": STR,
                "class": STR,
                "n_params": INT,
                "n_trainable_params": INT,
                "inputs": lst(STR),
                "layers": lst(obj({"name": STR, "class": STR, "output_shape": lst(INTN), "params": INT})),
                "history": obj({"epochs": INT, "logs": mapping(lst(NUMN))}, nullable=True),
                "seeds": obj({"bootstrap": INT, "training": INTN}),
                "versions": mapping(STR),
            }
        ),
        "intended_use": obj({k: STRN for k in INTENDED_USE_KEYS}),
        "data": obj(
            {"rows": INT, "events": INT, "event_rate": NUM, "x_sha256": STR, "y_sha256": STR, "groups_sha256": STRN}
        ),
        "discrimination": obj(
            {
                "confidence": NUM,
                "n_bootstrap": INT,
                "n_bootstrap_used": INT,
                "seed": INT,
                "auc": _CI,
                "gini": _CI,
                "ks": _CI,
                "roc_curve": obj({"fpr": lst(NUM), "tpr": lst(NUM)}),
                "gains_table": lst(obj(_GAINS)),
            }
        ),
        "calibration": obj(
            {
                "n_bins": INT,
                "brier": NUM,
                "ece": NUM,
                "curve": obj({"prob_true": lst(NUM), "prob_pred": lst(NUM)}),
                "hosmer_lemeshow": obj({"statistic": NUMN, "p_value": NUM, "groups": INT}),
            }
        ),
        "stability": obj(
            {"available": BOOL, "reason": STRN, "features": lst(obj({"feature": STR, "psi": NUMN, "band": STR}))}
        ),
        "fairness": obj({"cutoff": NUM, "rows": lst(obj(_FAIRNESS_ROW))}, nullable=True),
        "explanations": obj(
            {
                "available": BOOL,
                "reason": STRN,
                "method": STR,
                "steps": INT,
                "rows": INT,
                "top_k": INT,
                "ranking": lst(obj({"feature": STR, "mean_abs": NUM, "mean": NUM})),
                "reason_codes": lst(obj({"feature": STR, "code": STRN, "text": STRN, "top1": INT, "top_k": INT})),
                "completeness": obj({"method": STR, "max_abs_error": NUM, "mean_abs_error": NUM}, nullable=True),
            }
        ),
        # Filled by a monotonicity check (maasfin.credit) when one is declared: any JSON object.
        "monotonicity": JSON,
    }
)


def to_plain(x):
    """A copy of `x` in JSON types: NumPy scalars and arrays become Python numbers and lists,
    NaN and infinities become None (JSON has no such numbers), tuples become lists."""
    if isinstance(x, dict):
        return {str(k): to_plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple, np.ndarray)):
        return [to_plain(v) for v in x]
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(float(x)) else None
    if x is None or isinstance(x, str):
        return x
    raise TypeError(f"report: {type(x).__name__} value {x!r} is not JSON data")


def _check_json(x, src: str, where: str, depth: int = 0) -> None:
    if depth > 16:
        raise fail(src, f"{where} is nested more than 16 levels deep")
    if isinstance(x, dict):
        for k, v in x.items():
            check_str(k, src, f"{where} key", 1024)
            _check_json(v, src, f"{where}.{k}", depth + 1)
    elif isinstance(x, list):
        if len(x) > _MAX_LIST:
            raise fail(src, f"{where} has {len(x)} entries, more than the limit of {_MAX_LIST}")
        for i, v in enumerate(x):
            _check_json(v, src, f"{where}[{i}]", depth + 1)
    elif isinstance(x, str):
        check_str(x, src, where, _MAX_STR, allow_empty=True)
    elif not (x is None or isinstance(x, (bool, int, float))):
        raise fail(src, f"{where} must be JSON data, got {type_name(x)}")


def _check(x, spec, src: str, where: str) -> None:
    if isinstance(spec, str):
        if spec.endswith("?") and x is None:
            return
        kind = spec.rstrip("?")
        if kind == "json":
            _check_json(x, src, where)
        elif kind == "num":
            if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
                raise fail(
                    src, f"{where} must be a number{' or null' if spec.endswith('?') else ''}, got {type_name(x)}"
                )
        elif kind == "int":
            check_int(x, src, where, -(2**63), 2**63 - 1)
        elif kind == "str":
            check_str(x, src, where, _MAX_STR, allow_empty=True)
        elif kind == "bool" and not isinstance(x, bool):
            raise fail(src, f"{where} must be a boolean, got {type_name(x)}")
        return
    if spec[0] == "obj":
        _, fields, nullable = spec
        if x is None and nullable:
            return
        if not isinstance(x, dict):
            raise fail(src, f"{where} must be an object, got {type_name(x)}")
        missing = [k for k in fields if k not in x]
        unknown = sorted(set(x) - set(fields))
        if missing or unknown:
            raise fail(src, f"{where} is missing field(s) {missing} / has unknown field(s) {unknown}")
        for k, sub in fields.items():
            _check(x[k], sub, src, f"{where}.{k}")
    elif spec[0] == "list":
        if not isinstance(x, list):
            raise fail(src, f"{where} must be a list, got {type_name(x)}")
        if len(x) > _MAX_LIST:
            raise fail(src, f"{where} has {len(x)} entries, more than the limit of {_MAX_LIST}")
        for i, v in enumerate(x):
            _check(v, spec[1], src, f"{where}[{i}]")
    elif spec[0] == "map":
        if not isinstance(x, dict):
            raise fail(src, f"{where} must be an object, got {type_name(x)}")
        for k, v in x.items():
            check_str(k, src, f"{where} key", 1024)
            _check(v, spec[1], src, f"{where}[{k!r}]")


def check_report(doc, src: str) -> dict:
    """`doc` if it is a validation report of this format version with every field as SCHEMA says."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise fail(src, f"the report is not a {FORMAT!r} document")
    if doc.get("format_version") != FORMAT_VERSION or isinstance(doc.get("format_version"), bool):
        raise fail(
            src, f"the report has format version {doc.get('format_version')!r}; this maasfin reads {FORMAT_VERSION}"
        )
    _check(doc, SCHEMA, src, "report")
    _check_consistent(doc, src)
    return doc


def _check_consistent(doc: dict, src: str) -> None:
    """What the page draws must be drawable: curves of equal lengths with values in [0, 1]."""
    pairs = (
        ("discrimination.roc_curve", doc["discrimination"]["roc_curve"], ("fpr", "tpr"), 2),
        ("calibration.curve", doc["calibration"]["curve"], ("prob_true", "prob_pred"), 1),
    )
    for where, curve, (a, b), least in pairs:
        if len(curve[a]) != len(curve[b]) or len(curve[a]) < least:
            raise fail(
                src,
                f"report.{where}.{a} and .{b} must be lists of the same length (at least {least}), "
                f"got {len(curve[a])} and {len(curve[b])}",
            )
        if any(not 0.0 <= v <= 1.0 for v in curve[a] + curve[b]):
            raise fail(src, f"report.{where} values must lie in [0, 1]")
    gains = doc["discrimination"]["gains_table"]
    if not gains or any(r["count"] < 1 for r in gains):
        raise fail(src, "report.discrimination.gains_table must have rows, each with a count of at least 1")


class Report:
    """A model's validation report (model card): sections of plain JSON data, `to_json()` and
    `to_html()`. Index it by section name: `report["discrimination"]["auc"]["value"]`."""

    def __init__(self, data: dict):
        self.data = check_report(to_plain(data), "report")

    def __getitem__(self, section: str):
        return self.data[section]

    @property
    def sections(self) -> list[str]:
        return [k for k in self.data if k not in ("format", "format_version")]

    def to_json(self) -> str:
        """Canonical JSON: the same report always gives the same text."""
        return json.dumps(self.data, indent=1, ensure_ascii=False, allow_nan=False)

    @classmethod
    def from_json(cls, text, src: str = "report") -> Report:
        """A report from `to_json()` text or bytes, parsed strictly and checked field by field
        (a `ModelFileError`, a ValueError, names the field)."""
        raw = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        doc = loads(raw, src, "report")
        out = cls.__new__(cls)
        out.data = check_report(doc, src)
        return out

    def to_html(self, path=None) -> str:
        """One self-contained HTML page (inline CSS and SVG charts, no scripts, no network); also
        written to `path` if given. Needs `pip install "maasfin[report]"` (Jinja2, matplotlib)."""
        page = html.render(self.data)
        if path is not None:
            with open(path, "w", encoding="utf-8") as f:
                f.write(page)
        return page

    def __eq__(self, other) -> bool:
        return isinstance(other, Report) and self.to_json() == other.to_json()

    def __repr__(self) -> str:
        return f"<Report of model {self.data['model']['name']!r}: {', '.join(self.sections)}>"
