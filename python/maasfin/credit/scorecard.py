"""Scorecard: WoE binning of every feature and a logistic model, as a maasfin model, scaled to points.

The model is one named input per raw feature -> WoEEncoding -> Concatenate -> Dense(1, sigmoid),
so it is saved, served (raw records) and explained like any maasfin model. The logistic
coefficients are fitted to convergence by Newton's method (IRLS) on the WoE values the core
produces, rounded to float32 and written into the Dense layer; `score` and the points table use
those same float32 values, so the points of a row's bins sum to its score.

Scaling: score = base_score + pdo / ln 2 * (ln(odds of good) - ln(base_odds)), where the event
(y = 1) is "bad" and the odds of good are (1 - p) / p. The intercept and the offset are spread
evenly over the features.
"""

from __future__ import annotations

import math

import numpy as np

from maasfin import explain
from maasfin.data import is_frame, is_series, pd
from maasfin.layers import Concatenate, Dense, Input, WoEEncoding
from maasfin.models import Model

__all__ = ["Scorecard", "fit_logistic"]

_BINNING_ARGS = (
    "max_n_bins",
    "min_bin_size",
    "monotonic_trend",
    "special_values",
    "missing",
    "max_n_prebins",
    "min_prebin_size",
)


def fit_logistic(x: np.ndarray, y: np.ndarray, max_iter: int = 100, tol: float = 1e-10) -> tuple[np.ndarray, float]:
    """Unpenalised logistic regression by Newton's method (IRLS): (coefficients, intercept).
    Least-squares steps give the minimum-norm step when columns are collinear."""
    n, p = x.shape
    a = np.hstack([x, np.ones((n, 1))])
    beta = np.zeros(p + 1)
    for _ in range(max_iter):
        z = a @ beta
        prob = 1.0 / (1.0 + np.exp(-z))
        w = prob * (1.0 - prob)
        grad = a.T @ (y - prob)
        hess = a.T @ (a * w[:, None])
        step = np.linalg.lstsq(hess, grad, rcond=None)[0]
        beta += step
        if not np.all(np.isfinite(beta)):
            raise ValueError("Scorecard: the logistic fit diverged (the classes are separable by the WoE values)")
        if np.max(np.abs(step)) < tol:
            break
    return beta[:p], float(beta[p])


def _positive(value, arg: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"Scorecard: {arg} must be a positive finite number, got {value!r}")
    return float(value)


class Scorecard:
    """A points scorecard on WoE-binned features (event y = 1 is "bad").

    `binning`: WoEEncoding arguments for every feature (max_n_bins, min_bin_size, monotonic_trend,
    special_values, missing, max_n_prebins, min_prebin_size); a key naming a feature maps to a dict
    of arguments for that feature only."""

    def __init__(self, pdo=20, base_score=600, base_odds=50, binning=None):
        self.pdo = _positive(pdo, "pdo")
        self.base_odds = _positive(base_odds, "base_odds")
        if isinstance(base_score, bool) or not isinstance(base_score, (int, float)) or not math.isfinite(base_score):
            raise ValueError(f"Scorecard: base_score must be a finite number, got {base_score!r}")
        self.base_score = float(base_score)
        self.binning = dict(binning or {})
        self.features: list[str] | None = None
        self.model = None
        self.layers: dict[str, WoEEncoding] = {}
        self.coefficients: np.ndarray | None = None
        self.intercept: float | None = None

    @property
    def factor(self) -> float:
        return self.pdo / math.log(2.0)

    @property
    def offset(self) -> float:
        return self.base_score - self.factor * math.log(self.base_odds)

    # -- fitting -----------------------------------------------------------------------------------
    def _args_for(self, feature: str) -> dict:
        args = {k: v for k, v in self.binning.items() if k in _BINNING_ARGS}
        args.update(self.binning.get(feature, {}))
        return args

    def fit(self, df, y, features=None):
        """Bins every feature of `df` (or `features`) against the 0/1 target `y` and fits the logistic model."""
        if not is_frame(df):
            raise TypeError(f"Scorecard.fit: df must be a pandas DataFrame, got {type(df).__name__}")
        if not all(isinstance(c, str) for c in df.columns):
            raise ValueError(
                f"Scorecard.fit: column names must be strings (they name the model's inputs), got {list(df.columns)}"
            )
        cols = list(df.columns)
        features = cols if features is None else [str(f) for f in features]
        unknown = [f for f in features if f not in cols]
        if unknown:
            raise ValueError(f"Scorecard.fit: unknown feature(s) {unknown}; the DataFrame has {cols}")
        if not features:
            raise ValueError("Scorecard.fit: no features to bin")
        bad_keys = [k for k in self.binning if k not in _BINNING_ARGS and k not in features]
        if bad_keys:
            raise ValueError(
                f"Scorecard: binning names unknown feature(s) or argument(s) {bad_keys}; features: {features}, "
                f"arguments: {list(_BINNING_ARGS)}"
            )
        yy = y.to_numpy(dtype=np.float64, na_value=np.nan) if is_series(y) else np.asarray(y, dtype=np.float64)
        yy = yy.reshape(-1)
        if yy.size != len(df):
            raise ValueError(f"Scorecard.fit: df has {len(df)} rows but y has {yy.size}")
        layers, inputs, encoded, columns = {}, [], [], []
        for f in features:
            layer = WoEEncoding(name=f"woe_{f}", **self._args_for(f))
            try:
                layer.adapt(df[f], yy)
            except (ValueError, TypeError) as e:
                raise type(e)(f"Scorecard: feature {f!r}: {e}") from e
            layers[f] = layer
            categorical = layer.binning["kind"] == "categorical"
            inp = Input(shape=(1,), name=f, dtype="string" if categorical else "float32")
            inputs.append(inp)
            encoded.append(layer(inp))
            columns.append(np.asarray(layer(df[f]), dtype=np.float64).reshape(-1))
        x = np.column_stack(columns)
        beta, b0 = fit_logistic(x, yy)
        beta32, b32 = beta.astype(np.float32), np.float32(b0)
        merged = Concatenate(name="woe")(encoded) if len(encoded) > 1 else encoded[0]
        dense = Dense(1, activation="sigmoid", name="logistic")
        model = Model(inputs, dense(merged), name="scorecard")
        model.compile(optimizer="adam", loss="binary_crossentropy")
        model.build()
        dense.set_weights([beta32.reshape(-1, 1), np.asarray([b32])])
        # What fit would record: the explanation baseline and the drift reference of the served model.
        explain.record_reference(model, model.prepare_inputs(df[features]))
        self.features, self.layers, self.model = features, layers, model
        self.coefficients, self.intercept = beta32.astype(np.float64), float(b32)
        return self

    # -- using it ----------------------------------------------------------------------------------
    def _require_fitted(self) -> None:
        if self.model is None:
            raise ValueError("Scorecard is not fitted: call fit(df, y) first")

    def _woe(self, df) -> np.ndarray:
        self._require_fitted()
        if not is_frame(df):
            raise TypeError(f"Scorecard: expected a pandas DataFrame, got {type(df).__name__}")
        missing = [f for f in self.features if f not in df.columns]
        if missing:
            raise ValueError(
                f"Scorecard: the DataFrame lacks feature(s) {missing}; the scorecard needs {self.features}"
            )
        return np.column_stack([np.asarray(self.layers[f](df[f]), dtype=np.float64).reshape(-1) for f in self.features])

    def points(self, df):
        """Points of each row's bin per feature (a DataFrame, one column per feature)."""
        w = self._woe(df)
        p = len(self.features)
        pts = -self.factor * (w * self.coefficients + self.intercept / p) + self.offset / p
        return pd.DataFrame(pts, columns=self.features, index=df.index)

    def score(self, df) -> np.ndarray:
        """base_score + pdo / ln 2 * (ln(odds of good) - ln base_odds), per row (float64)."""
        z = self._woe(df) @ self.coefficients + self.intercept
        return self.offset - self.factor * z

    def predict_proba(self, df) -> np.ndarray:
        """Probability of the event (y = 1) per row: the model's prediction (as the server answers)."""
        self._require_fitted()
        self._woe(df)  # the same checks as score
        return self.model.predict(df[self.features], verbose=0).reshape(-1).astype(np.float64)

    def points_table(self):
        """Per feature and bin (bins, Special, Missing; Unseen for string features): WoE, coefficient, points."""
        self._require_fitted()
        p = len(self.features)
        rows = []
        for f, beta in zip(self.features, self.coefficients):
            layer = self.layers[f]
            table = layer.binning_table().drop(index="Totals")
            woe = layer.woe().astype(np.float64)
            labels, counts = list(table["Bin"]), list(table["Count"])
            if layer.binning["kind"] == "categorical":
                labels, counts, woe = labels + ["Unseen"], counts + [0], np.append(woe, 0.0)
            for label, count, w in zip(labels, counts, woe):
                pts = -self.factor * (beta * w + self.intercept / p) + self.offset / p
                rows.append(
                    {"Feature": f, "Bin": label, "Count": int(count), "WoE": w, "Coefficient": beta, "Points": pts}
                )
        return pd.DataFrame(rows)

    def reasons(self, df, n: int = 3):
        """The n features that cost each row the most points against the best bin of that feature
        (points lost, descending; only features that lost points): columns reason_k, points_lost_k."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"Scorecard.reasons: n must be a positive integer, got {n!r}")
        pts = self.points(df)
        table = self.points_table()
        best = table[table["Count"] > 0].groupby("Feature")["Points"].max()
        lost = best.reindex(self.features).to_numpy()[None, :] - pts.to_numpy()
        order = np.argsort(-lost, axis=1, kind="stable")[:, :n]
        out = {}
        for k in range(min(n, len(self.features))):
            idx = order[:, k]
            val = lost[np.arange(len(pts)), idx]
            out[f"reason_{k + 1}"] = [self.features[i] if v > 1e-9 else None for i, v in zip(idx, val)]
            out[f"points_lost_{k + 1}"] = np.where(val > 1e-9, val, 0.0)
        return pd.DataFrame(out, index=df.index)
