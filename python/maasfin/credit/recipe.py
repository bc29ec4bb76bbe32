"""default_model: the credit recipe — raw DataFrame in, a trained, calibrated maasfin model out.

The recipe, step by step (docs/credit.md, "A default model"):

1. Features: every column but the target (or `features=`), encoded by
   `FeatureSpace.from_dataframe` (numbers: median imputation + missing indicator + Normalization;
   strings: one-hot StringLookup whose out-of-vocabulary index also takes missing values, and
   rarer values beyond a column's 63 most frequent).
2. A wide path beside the deep one: each numeric column also gets a quantile Discretization
   (10 bins, after median imputation), one-hot, so the linear part can follow a non-linear effect
   the way a binned scorecard does.
3. A tower: logit = Dense(1)(deep MLP(encoded)) + Dense(1)(encoded ++ bins), sigmoid. The MLP is
   Dense(64, relu) -> Dropout(0.2) -> Dense(32, relu) -> Dropout(0.2), L2(1e-4) on its kernels and
   on the wide kernel. Adam (1e-3), binary cross-entropy, batches of 64 rows
   (on more than ~6k training rows, ~64 steps per epoch: batch_size(n_train), at most 1024).
4. Cross-fitted towers: the rows are cut into `towers` stratified folds; tower k trains on the
   other folds and stops early on fold k (validation loss, patience 5, best weights restored), so
   every row is used for training and every row gets one out-of-fold prediction.
5. One model: the towers side by side on the shared encoding, their probabilities averaged
   (Average), then a Platt Calibration layer fitted on the out-of-fold predictions (monotone, so
   the ranking, ROC AUC and KS are the average's).

The result is an ordinary functional maasfin model: it predicts on raw DataFrames and records
(strings and missing values included), saves to .maas and serves like any other model; its
attribution baseline and drift references are recorded on the training rows, as fit records them.
"""

from __future__ import annotations

import numpy as np

from maasfin import explain, optimizers, seeds
from maasfin import layers as L
from maasfin.callbacks import EarlyStopping
from maasfin.data import numeric_column
from maasfin.models import Model
from maasfin.regularizers import L2
from maasfin.utils import FeatureSpace

__all__ = ["default_model", "stratified_folds", "batch_size", "RECIPE"]

# The recipe's fixed choices (not tuned per data set; docs/credit.md says why each is there).
RECIPE = {
    "hidden_units": (64, 32),
    "dropout": 0.2,
    "l2": 1e-4,
    "wide_bins": 10,
    "learning_rate": 1e-3,
    "batch_size": (64, 1024),  # about n_train / 64 rounded to a power of 2, clipped to this range
    "max_epochs": 100,
    "patience": 5,
    "max_tokens": 64,  # a string column keeps its 63 most frequent values + the out-of-vocabulary slot
}


def stratified_folds(y: np.ndarray, k: int, seed: int) -> np.ndarray:
    """A fold number in [0, k) per row: each class's rows shuffled (seeded) and dealt round-robin,
    so every fold holds floor or ceil of 1/k of each class."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(y), dtype=np.int64)
    offset = 0
    for cls in np.unique(y):
        rows = rng.permutation(np.flatnonzero(y == cls))
        fold[rows] = (np.arange(rows.size) + offset) % k
        offset += rows.size  # the next class continues the deal, so fold sizes stay balanced
    return fold


def batch_size(n_train: int) -> int:
    """64 rows per step up to ~6k training rows, then ~64 steps per epoch (a power of 2, at most 1024):
    large tables train in seconds per epoch instead of minutes, small ones keep many updates."""
    low, high = RECIPE["batch_size"]
    return int(min(high, max(low, 2 ** round(np.log2(max(n_train, 1) / 64)))))


def _int_arg(value, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"default_model: {name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _binary_target(column, target: str, positive) -> np.ndarray:
    """The target column as 0/1 float32 (1 = `positive`), with errors naming the column."""
    import pandas as pd

    missing = column.isna().to_numpy()
    if missing.any():
        raise ValueError(
            f"default_model: target column {target!r} has {int(missing.sum())} missing value(s) "
            f"(first at row {int(np.flatnonzero(missing)[0])}); drop those rows first"
        )
    labels = list(pd.unique(column))
    if positive is None:
        if not set(labels) <= {0, 1}:
            raise ValueError(
                f"default_model: target column {target!r} has labels {labels[:10]}; pass positive=<the label "
                "of a default (the event to predict)>"
            )
        positive = 1
    if not any(lab == positive for lab in labels):
        raise ValueError(
            f"default_model: positive label {positive!r} does not occur in target column {target!r} "
            f"(labels: {labels[:10]})"
        )
    if len(labels) != 2:
        what = "only one class" if len(labels) == 1 else f"{len(labels)} classes"
        raise ValueError(
            f"default_model: target column {target!r} must have exactly two classes, found {what} ({labels[:10]})"
        )
    return (column == positive).to_numpy(dtype=np.float32)


def _check_frame(df, target, positive, features, towers):
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"default_model: df must be a pandas DataFrame, got {type(df).__name__}")
    if not isinstance(target, str) or target not in df.columns:
        raise ValueError(
            f"default_model: target {target!r} is not a column of df (columns: {[str(c) for c in df.columns]})"
        )
    if features is None:
        features = [c for c in df.columns if c != target]
    else:
        features = [features] if isinstance(features, str) else list(features)
        unknown = [c for c in features if c not in df.columns]
        if unknown:
            raise ValueError(
                f"default_model: features {unknown} are not columns of df (columns: {[str(c) for c in df.columns]})"
            )
        if target in features:
            raise ValueError(f"default_model: the target {target!r} is also listed in features")
    if not features:
        raise ValueError(f"default_model: df has no feature columns besides the target {target!r}")
    odd = [c for c in features if not isinstance(c, str)]
    if odd:
        raise ValueError(
            f"default_model: feature column names must be strings (the model's input names), got {odd[:5]}"
        )
    twice = sorted({c for c in features if list(df.columns).count(c) > 1})
    if twice:
        raise ValueError(f"default_model: column(s) {twice} appear more than once in df")
    y = _binary_target(df[target], target, positive)
    counts = np.bincount(y.astype(np.int64), minlength=2)
    if counts.min() < 2 * towers:
        raise ValueError(
            f"default_model: target column {target!r} has {int(counts[1])} positive and {int(counts[0])} "
            f"negative rows; {towers} towers need at least {2 * towers} of each"
        )
    return df[features].reset_index(drop=True), y


def _feature_space(X) -> FeatureSpace:
    """FeatureSpace.from_dataframe, with a string column of many values (an employer, a postcode)
    limited to its most frequent tokens; rarer ones share the out-of-vocabulary slot."""
    fs = FeatureSpace.from_dataframe(X, name="features")
    cap = RECIPE["max_tokens"]
    many = {
        col: FeatureSpace.string_categorical(max_tokens=cap)
        for col, feature in fs.features.items()
        if feature.kind == "string_categorical" and X[col].nunique(dropna=True) >= cap
    }
    return FeatureSpace.from_dataframe(X, features=many, name="features") if many else fs


class _Graph:
    """Builds the recipe's graph on raw columns X: the shared encoding, the wide bins and towers."""

    def __init__(self, X):
        self.fs = _feature_space(X)
        self.fs.adapt(X)
        self.inputs = self.fs.get_inputs()
        encoded = self.fs.get_encoded_features()
        parts = [encoded]
        for col, feature in self.fs.features.items():
            if feature.kind != "float_normalized":
                continue
            raw = numeric_column(X[col], f"feature '{col}'", allow_missing=True).astype(np.float64).reshape(-1, 1)
            imp = L.Imputation(strategy="median", name=f"{col}_wide_imputed")
            imp.adapt(raw)
            filled = np.where(np.isnan(raw), np.nanmedian(raw), raw)
            bins = L.Discretization(num_bins=RECIPE["wide_bins"], output_mode="one_hot", name=f"{col}_wide_bins")
            bins.adapt(filled)
            parts.append(bins(imp(self.inputs[col])))
        self.encoded = encoded
        self.wide = parts[0] if len(parts) == 1 else L.Concatenate(name="wide_concat")(parts)

    def tower(self, k: int):
        """Tower k's probability; its layers are named t<k>_... so weights move by name."""
        h = self.encoded
        for j, units in enumerate(RECIPE["hidden_units"]):
            h = L.Dense(units, activation="relu", kernel_regularizer=L2(RECIPE["l2"]), name=f"t{k}_dense{j}")(h)
            h = L.Dropout(RECIPE["dropout"], name=f"t{k}_dropout{j}")(h)
        deep = L.Dense(1, name=f"t{k}_deep")(h)
        wide = L.Dense(1, kernel_regularizer=L2(RECIPE["l2"]), name=f"t{k}_wide")(self.wide)
        return L.Activation("sigmoid", name=f"t{k}_probability")(L.Add(name=f"t{k}_logit")([deep, wide]))


def _compile(model, metrics=("auc",)):
    model.compile(optimizers.Adam(RECIPE["learning_rate"]), "binary_crossentropy", metrics=list(metrics))
    return model


def _train_tower(X, y, k, fold):
    """Tower k trained on the rows outside fold k, stopped early on fold k; returns the model and
    its predictions on fold k."""
    graph = _Graph(X)
    model = _compile(Model(graph.inputs, graph.tower(k), name=f"tower_{k}"), metrics=())
    train, held = fold != k, fold == k
    stop = EarlyStopping(monitor="val_loss", patience=RECIPE["patience"], restore_best_weights=True)
    model.fit(
        X[train],
        y[train],
        validation_data=(X[held], y[held]),
        epochs=RECIPE["max_epochs"],
        batch_size=batch_size(int(train.sum())),
        verbose=0,
        callbacks=[stop],
    )
    return model, model.predict(X[held], verbose=0).reshape(-1)


def default_model(df, target, positive=None, *, features=None, towers=5, seed=0):
    """A compiled, trained and calibrated model of P(target == positive) from a raw DataFrame.

    df: a pandas DataFrame of raw columns (numbers, strings, missing values) and the target.
    target: the target column's name; positive: its label for the event (a default, "bad");
    optional when the target is 0/1. features: the columns to use (default: all but the target).
    towers: the number of cross-fitted towers averaged in the model (>= 2). seed: the seed of
    the folds and of every tower's initialisation and shuffling (same seed, same model).

    The recipe is described in this module's docstring and in docs/credit.md. The model takes
    the feature columns by name (a DataFrame, a dict of columns or records) and returns the
    calibrated probability of the event, shape (N, 1).
    """
    towers = _int_arg(towers, "towers", 2)
    seed = _int_arg(seed, "seed", 0)
    X, y = _check_frame(df, target, positive, features, towers)
    seeds.set_random_seed(seed)
    fold = stratified_folds(y, towers, seed)
    trained, oof = [], np.empty(len(y), dtype=np.float64)
    for k in range(towers):
        model, held_pred = _train_tower(X, y, k, fold)
        trained.append(model)
        oof[fold == k] = held_pred

    graph = _Graph(X)
    average = L.Average(name="average")([graph.tower(k) for k in range(towers)])
    calibration = L.Calibration("platt", name="calibration").fit(oof, y)
    final = _compile(Model(graph.inputs, calibration(average), name="credit_default_model"))
    final.build()
    for k, model in enumerate(trained):
        for layer in model.layers:
            if layer.name.startswith(f"t{k}_") and layer.get_weights():
                final.get_layer(layer.name).set_weights(layer.get_weights())
    # what fit records for any model: the attribution baseline and the drift references (features, score)
    explain.record_reference(final, final.prepare_inputs(X, "df"))
    return final
