"""Fair-lending analysis (`maasfin.fairness`): approval rates, adverse impact ratios and error rates per group.

lending.py holds `report`, the per-group table a fair-lending review reads (ECOA/Reg B's adverse
impact ratio with its four-fifths flag, equal opportunity and equalized odds, ranking and
calibration per group, two-proportion z-tests).
"""

from maasfin.fairness.lending import FLAGS, MISSING_GROUP, report, two_proportion_p_value

__all__ = ["report", "two_proportion_p_value", "FLAGS", "MISSING_GROUP"]
