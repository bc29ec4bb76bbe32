"""Credit-risk modelling: monotone effects checked on data (and, from other modules, scorecards and recipes)."""

from maasfin.credit.monotonicity import MonotonicityReport, check_monotonicity

__all__ = ["check_monotonicity", "MonotonicityReport"]
