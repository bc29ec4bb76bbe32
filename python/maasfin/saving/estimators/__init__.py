"""Estimators in `.maas` files: scikit-learn, XGBoost and LightGBM models stored as verified ONNX graphs.

schema (the input schema and data boundary), convert (estimator to ONNX, verified on the
example), graph (the ONNX reader's checks and the ONNX Runtime session), model (`EstimatorModel`,
the serving surface), save (`save_estimator`) and load (`load_estimator`). docs/file-format.md
documents the file; docs/serving.md serves estimators beside networks.
"""

from maasfin.saving.estimators.load import load_estimator
from maasfin.saving.estimators.model import EstimatorModel
from maasfin.saving.estimators.save import save_estimator

__all__ = ["save_estimator", "load_estimator", "EstimatorModel"]
