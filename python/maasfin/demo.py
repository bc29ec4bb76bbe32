"""The credit-scoring demo: `python -m maasfin demo`.

Trains the Keras credit workflow on the bundled data's numeric columns, reports held-out
metrics and scores a few applicants.
"""

from __future__ import annotations

import time

import numpy as np

from maasfin import datasets
from maasfin.layers import Dense
from maasfin.metrics import gini, ks_statistic, roc_auc_score
from maasfin.models import Sequential, load_model
from maasfin.utils import set_random_seed

MONEY_COLUMNS = ["Expenses", "Income", "Assets", "Debt", "Amount", "Price"]


def prepare_credit(seed: int = 42, categorical: bool = True):
    """The credit workflow's preprocessing, with statistics from the training split only:
    median imputation, log1p of the money columns, one-hot columns for the categorical fields
    (`categorical=False` keeps the nine numeric columns only), and standardisation.

    Standardising rather than min-max scaling matters for a 10-epoch run: min-max scaling leaves
    the skewed money columns squeezed near 0 and the model under-fits (held-out ROC AUC ~0.79
    after 10 epochs against ~0.82-0.83 standardised; both reach ~0.82 given 60 epochs).

    Returns (x_train, x_test, y_train, y_test, raw_test) with DataFrames for x; y is 1 for "bad".
    """
    import pandas as pd

    df = datasets.load_credit()
    y = (df["Status"] == "bad").astype(np.float32).to_numpy()
    x = df[datasets.CREDIT_NUMERIC_COLUMNS].astype(np.float64)
    x[MONEY_COLUMNS] = np.log1p(x[MONEY_COLUMNS])
    if categorical:
        dummies = pd.get_dummies(df[datasets.CREDIT_CATEGORICAL_COLUMNS], dummy_na=True, dtype=np.float64)
        x = pd.concat([x, dummies], axis=1)
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(df))
    n_test = len(df) // 5
    test, train = idx[:n_test], idx[n_test:]
    x_train, x_test = x.iloc[train], x.iloc[test]
    med = x_train.median()
    x_train, x_test = x_train.fillna(med), x_test.fillna(med)
    mean, std = x_train.mean(), x_train.std().replace(0, 1)
    return (x_train - mean) / std, (x_test - mean) / std, y[train], y[test], df.iloc[test]


def build_credit_model(n_features: int):

    model = Sequential()
    model.add(Dense(32, activation="relu", input_dim=n_features))
    model.add(Dense(1, activation="sigmoid"))
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return model


def run(verbose: int = 2, seed: int = 7) -> dict:

    set_random_seed(seed)
    x_train, x_test, y_train, y_test, raw_test = prepare_credit()
    model = build_credit_model(x_train.shape[1])
    model.summary()
    t0 = time.perf_counter()
    model.fit(x_train, y_train, epochs=10, batch_size=32, verbose=verbose)
    train_s = time.perf_counter() - t0
    loss, acc = model.evaluate(x_test, y_test, verbose=0)
    # Columns in a different order still match by name.
    p = model.predict(x_test[x_test.columns[::-1]]).reshape(-1)
    auc, ks = roc_auc_score(y_test, p), ks_statistic(y_test, p)
    print(f"\nTrained on {len(y_train)} applicants in {train_s:.2f} s")
    print(
        f"Held-out {len(y_test)} applicants: loss {loss:.4f}  accuracy {acc:.4f}  "
        f"ROC AUC {auc:.4f}  Gini {gini(y_test, p):.4f}  KS {ks:.4f}"
    )
    print("\nA few applicants (probability of default):")
    show = raw_test[["Age", "Income", "Amount", "Price", "Status"]].head(5).copy()
    show["p_default"] = np.round(p[:5], 3)
    print(show.to_string(index=False))

    # Save, reload and score the same applicants: the model file is the unit of deployment.
    import os
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "credit.maas")
        model.save(path, metadata={"dataset": "credit", "seed": seed})
        size = os.path.getsize(path)
        reloaded = load_model(path)
    applicants = x_test.head(5)
    p_saved, p_reloaded = model.predict(applicants), reloaded.predict(applicants)
    same = bool(np.array_equal(p_saved, p_reloaded))
    print(
        f"\nSaved to credit.maas ({size:,} bytes) and reloaded: the reloaded model scores the same "
        f"{len(applicants)} applicants {'identically (bit for bit)' if same else 'DIFFERENTLY'}."
    )
    return {"auc": auc, "ks": ks, "accuracy": acc, "loss": loss, "reloaded_identical": same}
