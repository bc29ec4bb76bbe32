"""Validation reports and model cards (`maasfin.reports`): evidence a model reviewer reads.

document.py holds `Report` (the sections as JSON data, canonical `to_json`, the strict check of a
stored report), sections.py computes each section from maasfin's public functions,
validation.py builds a report for a model and data (`model.validation_report`), html.py renders
one self-contained HTML page (Jinja2 + matplotlib: the `[report]` extra).
"""

from maasfin.reports.document import FORMAT, FORMAT_VERSION, SCHEMA, Report, check_report
from maasfin.reports.validation import validation_report

__all__ = ["Report", "validation_report", "check_report", "SCHEMA", "FORMAT", "FORMAT_VERSION"]
