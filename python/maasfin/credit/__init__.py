"""Credit-risk modelling: WoE scorecards (scorecard.py)."""

from maasfin.credit.scorecard import Scorecard

__all__ = ["Scorecard"]
