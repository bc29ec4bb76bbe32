"""Credit-risk modelling (maasfin.credit): the default recipe for credit tables."""

from maasfin.credit.recipe import default_model

__all__ = ["default_model"]
