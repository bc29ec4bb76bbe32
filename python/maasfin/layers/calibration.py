"""Calibration: the layer that maps a predicted probability to a calibrated one, and its fitting.

Keras has no such layer. `maasfin.calibration.calibrate` fits one on held-out predictions and
appends it to a model, so that saving, serving, explanations and ONNX export carry the calibrator
with the model. The math runs in the C++ core (cpp/src/layers/calibration.cpp); the fits are here,
as `adapt` is for preprocessing layers.
"""

from __future__ import annotations

import numpy as np

from maasfin import _core
from maasfin.layers.preprocessing.base import PreprocessingLayer
from maasfin.metrics.calibration import check_binary_inputs

__all__ = ["Calibration", "METHODS", "EPSILON", "fit_isotonic", "fit_platt", "fit_beta", "clipped_logs"]

METHODS = ("isotonic", "platt", "beta")
EPSILON = 1e-7  # the core's kCalibrationEpsilon: Platt and beta clip p to [EPSILON, 1 - EPSILON]
_WEIGHTS = {"isotonic": ("x_thresholds", "y_thresholds"), "platt": ("slope", "intercept"), "beta": ("a", "b", "c")}


class Calibration(PreprocessingLayer):
    """Maps a predicted probability (input shape (1,)) to a calibrated probability.

    - method="isotonic": piecewise-linear interpolation through `num_knots` knots, the input clipped
      to the first and last knot (scikit-learn's IsotonicRegression(out_of_bounds="clip")). Weights:
      x_thresholds, y_thresholds.
    - "platt": sigmoid(slope * logit(p) + intercept). Weights: slope, intercept.
    - "beta": sigmoid(a * ln(p) - b * ln(1 - p) + c) (Kull et al., 2017). Weights: a, b, c.

    Platt and beta clip p to [1e-7, 1 - 1e-7] first. The weights are non-trainable: `fit(y_prob,
    y_true)` learns them (maximum likelihood, or pool-adjacent-violators for isotonic); an unfitted
    layer is the identity (isotonic: num_knots >= 2 knots on the diagonal)."""

    def __init__(self, method="isotonic", num_knots=None, **kwargs):
        super().__init__(**kwargs)
        if method not in METHODS:
            raise ValueError(
                f"{self._where}: unknown method {method!r}; valid methods: {', '.join(repr(m) for m in METHODS)}"
            )
        self.method = method
        if method == "isotonic":
            if num_knots is None:
                num_knots = 2
            if isinstance(num_knots, bool) or not isinstance(num_knots, (int, np.integer)) or num_knots < 1:
                raise ValueError(f"{self._where}: num_knots must be a positive integer, got {num_knots!r}")
            self.num_knots = int(num_knots)
        else:
            if num_knots is not None:
                raise ValueError(f"{self._where}: num_knots is for method='isotonic' only, got {num_knots!r}")
            self.num_knots = None
        self._fitted = None  # weight name -> values, from fit

    def _make_core(self):
        return _core.Calibration(self.method, self.num_knots or 0)

    # -- fitting -------------------------------------------------------------------------------------
    def fit(self, y_prob, y_true, sample_weight=None):
        """Learns the calibration map from predicted probabilities and 0/1 outcomes; returns self.
        An isotonic layer takes the number of knots the fit finds (before it is built)."""
        y, p, w = check_binary_inputs(y_true, y_prob, f"{self._where}.fit", sample_weight, both_classes=True)
        w = np.ones_like(p) if w is None else w
        fitted = {"isotonic": fit_isotonic, "platt": fit_platt, "beta": fit_beta}[self.method](p, y, w)
        if self.method == "isotonic":
            k = fitted["x_thresholds"].size
            if self._graph is not None and k != self.num_knots:
                raise ValueError(
                    f"{self._where} is built with {self.num_knots} knots; the fit found {k}. Fit before building"
                )
            self.num_knots = k
        self._fitted = fitted
        self._state_changed()
        return self

    @classmethod
    def with_parameters(cls, method: str, name=None, **values):
        """A layer with a given map instead of a fitted one: the weights by name (slope and
        intercept; a, b and c; or x_thresholds and y_thresholds)."""
        want = _WEIGHTS.get(method)
        if want is not None and sorted(values) != sorted(want):
            raise ValueError(f"Calibration.with_parameters: method {method!r} takes {list(want)}, got {sorted(values)}")
        layer = cls(method, num_knots=np.size(values["x_thresholds"]) if method == "isotonic" else None, name=name)
        fitted = {k: np.asarray(v, dtype=np.float64).reshape(-1) for k, v in values.items()}
        for k, v in fitted.items():
            if not np.all(np.isfinite(v)) or (method != "isotonic" and v.size != 1):
                raise ValueError(f"Calibration.with_parameters: {k} must be finite (one value for {method!r})")
        layer._fitted = fitted
        return layer

    def _state(self, shapes):
        if self._fitted is not None:
            return self._fitted
        if self.method == "isotonic":
            k = shapes["x_thresholds"][0]
            knots = np.linspace(0.0, 1.0, k) if k > 1 else np.zeros(1)
            return {"x_thresholds": knots, "y_thresholds": knots}
        return {}  # the core's initial values are the identity (slope 1, intercept 0; a = b = 1, c = 0)

    def set_weights(self, weights) -> None:
        weights = list(weights)
        if self.method == "isotonic" and len(weights) == 2:
            x, y = (np.asarray(v, dtype=np.float32).reshape(-1) for v in weights)
            if x.size > 1 and not np.all(np.diff(x) > 0):
                raise ValueError(f"{self._where}: weight 'x_thresholds' must increase strictly")
            if x.size and not (np.all((y >= 0) & (y <= 1)) and np.all(np.diff(y) >= 0)):
                raise ValueError(f"{self._where}: weight 'y_thresholds' must be non-decreasing probabilities in [0, 1]")
        super().set_weights(weights)

    @property
    def parameters(self) -> dict:
        """The fitted map by weight name (float64 arrays): the knots, or the coefficients."""
        if self._graph is not None:
            return {n: w.astype(np.float64) for (n, _, _), w in zip(self._param_specs(), self.get_weights())}
        if self._fitted is not None:
            return {n: np.asarray(v, np.float32).astype(np.float64) for n, v in self._fitted.items()}
        raise ValueError(f"{self._where} is neither fitted nor built")

    def monotonic_direction(self):
        """+1 when the map is non-decreasing: always for isotonic; Platt with slope >= 0; beta with
        a, b >= 0 (an unfitted layer is the identity); None otherwise. Models check it again once
        weights are loaded (Model.monotonic_features)."""
        if self.method == "isotonic":
            return 1
        values = self.parameters if self._graph is not None else self._fitted
        if values is None:
            return 1  # the core's initial map is the identity
        if self.method == "platt":
            return 1 if float(np.ravel(values["slope"])[0]) >= 0 else None
        return 1 if float(np.ravel(values["a"])[0]) >= 0 and float(np.ravel(values["b"])[0]) >= 0 else None

    def get_config(self):
        cfg = {**super().get_config(), "method": self.method}
        if self.method == "isotonic":
            cfg["num_knots"] = self.num_knots
        return cfg


# -- the fits (float64; the layer stores float32) ----------------------------------------------------
def clipped_logs(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ln q, ln(1 - q)) for q = p clipped to [EPSILON, 1 - EPSILON], as the core computes them."""
    q = np.clip(np.asarray(p, dtype=np.float64), EPSILON, 1.0 - EPSILON)
    return np.log(q), np.log(1.0 - q)


def fit_isotonic(p: np.ndarray, y: np.ndarray, w: np.ndarray) -> dict:
    """Knots of the weighted isotonic (non-decreasing) regression of y on p, as scikit-learn's
    IsotonicRegression: tied p averaged, pool-adjacent-violators, interior knots of flat runs dropped."""
    keep = w > 0
    p, y, w = p[keep], y[keep], w[keep]
    order = np.lexsort((y, p))
    p, y, w = p[order], y[order], w[order]
    starts = np.flatnonzero(np.r_[True, p[1:] != p[:-1]])
    xs = p[starts]
    sw = np.add.reduceat(w, starts)
    swy = np.add.reduceat(w * y, starts)
    fitted = _pool_adjacent_violators(swy / sw, sw)
    if xs.size > 2:
        inner = (fitted[1:-1] != fitted[:-2]) | (fitted[1:-1] != fitted[2:])
        keep = np.r_[True, inner, True]
        xs, fitted = xs[keep], fitted[keep]
    return {"x_thresholds": xs, "y_thresholds": fitted}


def _pool_adjacent_violators(y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The weighted least-squares non-decreasing fit of y: adjacent blocks that are not increasing
    are pooled into their weighted mean (a stack of blocks, one pass)."""
    sums, weights, counts = [], [], []
    for yi, wi in zip((y * w).tolist(), w.tolist()):
        s, ww, c = yi, wi, 1
        while sums and sums[-1] / weights[-1] >= s / ww:
            s += sums.pop()
            ww += weights.pop()
            c += counts.pop()
        sums.append(s)
        weights.append(ww)
        counts.append(c)
    return np.repeat(np.asarray(sums) / np.asarray(weights), counts)


def _logistic(features: np.ndarray, y: np.ndarray, w: np.ndarray, what: str) -> np.ndarray:
    """Maximum-likelihood logistic regression of y on [features, 1] (Newton's method with step
    halving); returns the coefficients, the intercept last."""
    x = np.column_stack([features, np.ones(y.size)])
    coef = np.zeros(x.shape[1])

    def nll(c):
        z = x @ c
        return float(np.sum(w * (np.logaddexp(0.0, z) - y * z)))

    current = nll(coef)
    for _ in range(200):
        z = x @ coef
        mu = np.exp(-np.logaddexp(0.0, -z))
        grad = x.T @ (w * (y - mu))
        hess = (x * (w * mu * (1.0 - mu))[:, None]).T @ x
        try:
            step = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            raise ValueError(f"{what}: the probabilities give a singular fit; use method='isotonic'") from None
        t = 1.0
        while t > 1e-12:
            trial = nll(coef + t * step)
            if trial <= current + 1e-12 * abs(current):
                break
            t *= 0.5
        coef, current = coef + t * step, trial
        if np.max(np.abs(t * step)) <= 1e-11 * (1.0 + np.max(np.abs(coef))):
            break
    else:
        raise ValueError(
            f"{what}: the maximum-likelihood fit does not converge (the probabilities separate the two "
            "classes perfectly?); use method='isotonic'"
        )
    if not np.all(np.isfinite(coef)) or np.max(np.abs(coef)) > 1e6:
        raise ValueError(f"{what}: the fit diverges (the probabilities separate the classes); use method='isotonic'")
    return coef


def _check_varies(p: np.ndarray, what: str) -> None:
    if np.ptp(np.clip(p, EPSILON, 1.0 - EPSILON)) == 0:
        raise ValueError(f"{what}: y_prob takes a single value; the map cannot be fitted (use method='isotonic')")


def fit_platt(p: np.ndarray, y: np.ndarray, w: np.ndarray) -> dict:
    """Platt scaling: slope and intercept of the logistic regression of y on logit(p), by maximum likelihood."""
    _check_varies(p, "Platt calibration")
    lp, lq = clipped_logs(p)
    slope, intercept = _logistic((lp - lq)[:, None], y, w, "Platt calibration")
    return {"slope": np.array([slope]), "intercept": np.array([intercept])}


def fit_beta(p: np.ndarray, y: np.ndarray, w: np.ndarray) -> dict:
    """Beta calibration (Kull et al., 2017): the logistic regression of y on [ln p, -ln(1 - p)] by
    maximum likelihood; a negative a or b is set to 0 and the other refitted, as the authors'
    betacal does, so that the map never decreases."""
    _check_varies(p, "beta calibration")
    lp, lq = clipped_logs(p)
    a, b, c = _logistic(np.column_stack([lp, -lq]), y, w, "beta calibration")
    if a < 0:
        a = 0.0
        b, c = _logistic(-lq[:, None], y, w, "beta calibration")
    elif b < 0:
        b = 0.0
        a, c = _logistic(lp[:, None], y, w, "beta calibration")
    return {"a": np.array([a]), "b": np.array([b]), "c": np.array([c])}
