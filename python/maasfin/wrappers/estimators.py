"""SKLearnClassifier and SKLearnRegressor: a maasfin model as a scikit-learn estimator (Keras 3 semantics)."""

from __future__ import annotations

import copy

import numpy as np

from maasfin.models import Model

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.utils.multiclass import type_of_target
    from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError('maasfin.wrappers needs scikit-learn; install it with: pip install "maasfin[sklearn]"') from exc

__all__ = ["SKLearnClassifier", "SKLearnRegressor"]


class SKLBase(BaseEstimator):
    """What both wrappers share: building the model, validating X, fitting and pickling.

    Args (Keras 3's keras.wrappers names):
        model: a compiled maasfin model, or a callable `model(X=X, y=y, **model_kwargs)` returning one.
            A model instance is copied (architecture, compile settings and its current weights,
            through the .maas format) before each fit unless `warm_start=True` and a fit already ran.
        warm_start: reuse the fitted model's weights at the next fit.
        model_kwargs: keyword arguments for the `model` callable.
        fit_kwargs: keyword arguments for `model.fit` (epochs, batch_size, ...); keyword arguments
            given to `fit` itself take precedence.

    Attributes after fit: `model_` (the fitted model), `history_` (dict of per-epoch logs),
    `n_features_in_`, `feature_names_in_` (when X is a DataFrame with string column names).
    Pickling stores `model_` (and a model-instance `model`) as .maas bytes: no code and no raw
    weight blobs pass through pickle.
    """

    def __init__(self, model, warm_start=False, model_kwargs=None, fit_kwargs=None):
        self.model = model
        self.warm_start = warm_start
        self.model_kwargs = model_kwargs
        self.fit_kwargs = fit_kwargs

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = True
        return tags

    @property
    def epoch_(self) -> int:
        """The number of epochs run by the last fit."""
        return len(getattr(self, "history_", {}).get("loss", []))

    # -- building ------------------------------------------------------------------------------
    def _check_params(self) -> None:
        if not isinstance(self.warm_start, bool):
            raise ValueError(f"warm_start must be True or False, got {self.warm_start!r}")
        for name in ("model_kwargs", "fit_kwargs"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, dict):
                raise TypeError(f"{name} must be a dict or None, got {type(value).__name__}")
        if not isinstance(self.model, Model) and not callable(self.model):
            raise TypeError(
                f"model must be a compiled maasfin model or a callable returning one, got {type(self.model).__name__}"
            )

    def _get_model(self, X, y):
        if self.warm_start and hasattr(self, "model_"):
            return self.model_
        if isinstance(self.model, Model):
            model = copy.deepcopy(self.model)  # through the .maas format (Model.__reduce__)
        else:
            model = self.model(X=X, y=y, **(self.model_kwargs or {}))
        if not isinstance(model, Model):
            raise TypeError(f"model(X=..., y=...) must return a maasfin model, got {type(model).__name__}")
        if not model.compiled:
            raise ValueError(f"model '{model.name}' must be compiled before it is given to {type(self).__name__}")
        return model

    def _validate_X(self, X, reset: bool):
        return validate_data(self, X, reset=reset, dtype=np.float32, order="C")

    def _fit_kwargs(self, kwargs: dict) -> dict:
        merged = dict(self.fit_kwargs or {})
        merged.update(kwargs)
        for name in ("x", "y", "sample_weight"):
            if name in merged:
                raise TypeError(f"fit_kwargs must not set '{name}'; pass it to fit() directly")
        merged.setdefault("verbose", 0)
        return merged

    def fit(self, X, y, sample_weight=None, **kwargs):
        """Builds (or copies) the model and fits it on (X, y); keyword arguments go to `model.fit`."""
        self._check_params()
        X, y = validate_data(self, X, y, dtype=np.float32, order="C", multi_output=True, y_numeric=False)
        targets = self._process_target(y, reset=True)
        model = self._get_model(X, targets)
        targets = self._adapt_target(model, targets)
        if sample_weight is not None:
            sample_weight = np.asarray(sample_weight, dtype=np.float32)
            if sample_weight.shape != (X.shape[0],):
                raise ValueError(
                    f"sample_weight has shape {sample_weight.shape} but X has {X.shape[0]} rows; "
                    "give one weight per row"
                )
            if not np.all(np.isfinite(sample_weight)) or np.any(sample_weight < 0):
                raise ValueError("sample_weight must hold finite numbers >= 0")
            if not np.any(sample_weight > 0):
                raise ValueError("sample_weight is zero for every row; at least one row must have a positive weight")
        history = model.fit(X, targets, sample_weight=sample_weight, **self._fit_kwargs(kwargs))
        self.history_ = {k: [float(np.mean(v)) for v in vals] for k, vals in history.history.items()}
        self.model_ = model
        return self

    def _raw_predict(self, X) -> np.ndarray:
        check_is_fitted(self, "model_")
        X = self._validate_X(X, reset=False)
        return self.model_.predict(X, verbose=0)

    def _adapt_target(self, model, targets):
        return targets


class SKLearnClassifier(ClassifierMixin, SKLBase):
    """A maasfin classifier as a scikit-learn estimator (keras.wrappers.SKLearnClassifier).

    The `model` callable receives X and the one-hot encoded targets (n_samples, n_classes), as in
    Keras. The model's output is either one probability per class (softmax over n_classes units)
    or, for two classes, one unit with the probability of `classes_[1]` (sigmoid).
    `predict_proba` returns (n_samples, n_classes) and `predict` the most probable class label.
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.poor_score = True
        tags.classifier_tags.multi_label = False
        return tags

    def _process_target(self, y, reset=False):
        kind = type_of_target(y, input_name="y", raise_unknown=True)
        if kind not in ("binary", "multiclass"):
            raise ValueError(f"SKLearnClassifier supports binary and multiclass targets; y is {kind!r}")
        y = column_or_1d(y, warn=True)
        if reset:
            self.classes_ = np.unique(y)
            if len(self.classes_) < 2:
                raise ValueError(
                    f"SKLearnClassifier needs at least 2 classes in y; only one class ({self.classes_[0]!r}) is present"
                )
        ids = np.searchsorted(self.classes_, y)
        onehot = np.zeros((y.shape[0], len(self.classes_)), dtype=np.float32)
        onehot[np.arange(y.shape[0]), ids] = 1.0
        return onehot

    def _adapt_target(self, model, targets):
        try:
            width = int(np.prod(model.output_shape[1:]))
        except ValueError:  # not built before data arrives: fit checks the targets' shape
            return targets
        n_classes = targets.shape[1]
        if width == 1 and n_classes == 2:
            return np.ascontiguousarray(targets[:, 1:])
        if width != n_classes:
            raise ValueError(
                f"model '{model.name}' outputs shape {tuple(model.output_shape)} but y has {n_classes} "
                f"classes; build the output with {n_classes} units (or 1 sigmoid unit for 2 classes)"
            )
        return targets

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, shape (n_samples, n_classes), columns in the order of `classes_`."""
        p = self._raw_predict(X).astype(np.float64)
        if p.ndim == 1 or p.shape[1] == 1:
            p = p.reshape(-1, 1)
            return np.hstack([1.0 - p, p])
        return p

    def predict(self, X) -> np.ndarray:
        """The most probable class label per row."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]


class SKLearnRegressor(RegressorMixin, SKLBase):
    """A maasfin regressor as a scikit-learn estimator (keras.wrappers.SKLearnRegressor).

    The `model` callable receives X and y as given (float32). `predict` returns 1-D predictions
    when y was 1-D at fit, else (n_samples, n_outputs), as float64 (scikit-learn's convention).
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.regressor_tags.poor_score = True
        tags.target_tags.multi_output = True
        return tags

    def _process_target(self, y, reset=False):
        y = np.asarray(y, dtype=np.float32)
        if reset:
            self._target_ndim = y.ndim
        return y

    def predict(self, X) -> np.ndarray:
        """Predictions: shape (n_samples,) for a 1-D target at fit, else (n_samples, n_outputs)."""
        p = self._raw_predict(X).astype(np.float64)  # scikit-learn's regressors predict float64
        if self._target_ndim == 1 and p.ndim == 2 and p.shape[1] == 1:
            return p.ravel()
        return p
