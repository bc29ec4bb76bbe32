"""Credit-risk modelling: WoE scorecards (scorecard.py) and the default recipe (recipe.py)."""

from maasfin.credit.recipe import default_model
from maasfin.credit.scorecard import Scorecard

__all__ = ["Scorecard", "default_model"]
