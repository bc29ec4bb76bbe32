"""Metrics: the stateful ones of `compile(metrics=...)` and scores as functions (`maasfin.metrics`).

stateful.py holds the core-backed metric classes (Keras's names, plus `BrierScore` and
`ExpectedCalibrationError`), ranking.py the exact ROC AUC / KS / Gini functions and the gains table,
calibration.py the calibration functions with scikit-learn's argument order, distributions.py the
chi-squared and beta functions their tests use.
"""

from maasfin.metrics.calibration import (
    HosmerLemeshowResult,
    binomial_test_by_grade,
    brier_score,
    calibration_curve,
    expected_calibration_error,
    hosmer_lemeshow,
)
from maasfin.metrics.ranking import gains_table, gini, ks_statistic, roc_auc_score
from maasfin.metrics.stateful import (
    AUC,
    BY_NAME,
    BinaryAccuracy,
    BrierScore,
    CategoricalAccuracy,
    ExpectedCalibrationError,
    F1Score,
    FBetaScore,
    Gini,
    KolmogorovSmirnov,
    MeanAbsoluteError,
    MeanSquaredError,
    Metric,
    Precision,
    Recall,
    RootMeanSquaredError,
    SparseCategoricalAccuracy,
    SparseTopKCategoricalAccuracy,
    TopKCategoricalAccuracy,
    get,
    resolve,
)

__all__ = [
    "Metric",
    "BinaryAccuracy",
    "CategoricalAccuracy",
    "SparseCategoricalAccuracy",
    "TopKCategoricalAccuracy",
    "SparseTopKCategoricalAccuracy",
    "Precision",
    "Recall",
    "F1Score",
    "FBetaScore",
    "AUC",
    "KolmogorovSmirnov",
    "Gini",
    "MeanSquaredError",
    "RootMeanSquaredError",
    "MeanAbsoluteError",
    "BrierScore",
    "ExpectedCalibrationError",
    "BY_NAME",
    "get",
    "resolve",
    "roc_auc_score",
    "ks_statistic",
    "gini",
    "gains_table",
    "brier_score",
    "expected_calibration_error",
    "calibration_curve",
    "hosmer_lemeshow",
    "HosmerLemeshowResult",
    "binomial_test_by_grade",
]
