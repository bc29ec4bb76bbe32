"""Monotone effects on the bundled credit data: 5-fold stratified CV ROC AUC of a monotone network
(MonotonicDense, declared effects per raw feature) against the same network unconstrained, and
the monotonicity violations of both on 10,000 rows x 50 grid points per declared feature.

    python benchmarks/bench_monotonic_cv.py [--seeds 3] [--epochs 30]

Both models: FeatureSpace.from_dataframe (numeric: median imputation + missing indicator +
Normalization; strings: StringLookup one-hot) -> 32 hidden units (relu) -> Dropout(0.2) -> one
sigmoid output, Adam, batch 64, the same folds and seeds. The monotone model declares
Income -1, Seniority -1, Assets -1, Debt +1, Amount +1 on its first MonotonicDense (the other
features are free there) and its output layer is MonotonicDense(1, "sigmoid", is_convex=True).
"""

import argparse
import time
import warnings

import numpy as np

import maasfin as mf
from maasfin.credit import check_monotonicity
from maasfin.layers import Dense, Dropout, MonotonicDense
from maasfin.models import Model
from maasfin.utils import FeatureSpace

DECLARED = {"Income": -1, "Seniority": -1, "Assets": -1, "Debt": 1, "Amount": 1}


def make_model(train, monotone: bool):
    fs = FeatureSpace.from_dataframe(train)
    fs.adapt(train)
    x = fs.get_encoded_features()
    if monotone:
        h = MonotonicDense(32, "relu", monotonicity_indicator=DECLARED)(x)
        out = MonotonicDense(1, "sigmoid", is_convex=True)(Dropout(0.2)(h))
    else:
        out = Dense(1, activation="sigmoid")(Dropout(0.2)(Dense(32, activation="relu")(x)))
    model = Model(fs.get_inputs(), out)
    model.compile("adam", "binary_crossentropy")
    return model


def main():
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()
    df = mf.datasets.load_credit()
    y = (df["Status"] == "bad").to_numpy(np.float32)
    X = df.drop(columns="Status")
    big = X.sample(n=10_000, replace=True, random_state=1).reset_index(drop=True)
    folds = list(StratifiedKFold(5, shuffle=True, random_state=0).split(X, y))
    results = {}
    for monotone in (False, True):
        label = "monotone" if monotone else "unconstrained"
        means, violations, t0 = [], [], time.perf_counter()
        for seed in range(args.seeds):
            aucs = []
            for k, (tr, te) in enumerate(folds):
                mf.utils.set_random_seed(1000 * seed + k)
                model = make_model(X.iloc[tr], monotone)
                model.fit(X.iloc[tr], y[tr], epochs=args.epochs, batch_size=64, verbose=0)
                aucs.append(roc_auc_score(y[te], model.predict(X.iloc[te]).ravel()))
            means.append(float(np.mean(aucs)))
            reports = check_monotonicity(model, big, DECLARED, grid=50)  # the last fold's model
            violations.append(sum(r.count for r in reports.values()))
            print(f"{label:14s} seed {seed}: folds {np.round(aucs, 4).tolist()}  mean AUC {means[-1]:.4f}  "
                  f"violations {violations[-1]} / {sum(r.checked for r in reports.values())}")  # fmt: skip
        results[label] = means
        print(f"{label:14s} mean AUC over seeds {np.mean(means):.4f}  ({time.perf_counter() - t0:.1f} s)")
    gap = np.mean(results["unconstrained"]) - np.mean(results["monotone"])
    print(f"AUC cost of the declared monotone effects: {gap:+.4f}")


if __name__ == "__main__":
    warnings.simplefilter("ignore", UserWarning)
    main()
