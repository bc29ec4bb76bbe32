"""Calibrated probabilities as part of the model: `calibrate` and `adjust_prior` (maasfin.calibration).

Both return a new model whose graph carries the correction (a `maasfin.layers.Calibration` layer,
or a shifted intercept), so that saving, serving, explanations and ONNX export need nothing more.
The calibration metrics are in `maasfin.metrics` (brier_score, expected_calibration_error, ...).
"""

from maasfin.calibration.calibrator import adjust_prior, calibrate

__all__ = ["calibrate", "adjust_prior"]
