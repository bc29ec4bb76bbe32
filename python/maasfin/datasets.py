"""Data sets shipped inside the package."""

from __future__ import annotations

from importlib import resources

__all__ = ["load_credit", "CREDIT_NUMERIC_COLUMNS", "CREDIT_CATEGORICAL_COLUMNS"]

CREDIT_NUMERIC_COLUMNS = ["Seniority", "Time", "Age", "Expenses", "Income", "Assets", "Debt", "Amount", "Price"]
CREDIT_CATEGORICAL_COLUMNS = ["Home", "Marital", "Records", "Job"]


def load_credit():
    """The credit-scoring data set as a pandas DataFrame (4,454 applicants x 14 columns).

    `Status` is the target ("good"/"bad"); missing cells are NaN. MIT licence, Copyright 2019
    Max Kuhn, RStudio (see maasfin/data/LICENSE.credit_data).
    """
    import pandas as pd

    with resources.files("maasfin").joinpath("data/credit_data.csv").open("rb") as f:
        return pd.read_csv(f)
