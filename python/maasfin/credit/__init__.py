"""Credit-risk modelling: WoE scorecards (scorecard.py), monotone effects checked on data
(monotonicity.py) and the default recipe (recipe.py)."""

from maasfin.credit.monotonicity import MonotonicityReport, check_monotonicity
from maasfin.credit.recipe import default_model
from maasfin.credit.scorecard import Scorecard

__all__ = ["Scorecard", "check_monotonicity", "MonotonicityReport", "default_model"]
