"""WoE binning and scorecards on the bundled credit data: maasfin's WoEEncoding against optbinning's
OptimalBinning (IV and fit time per feature, same constraints), the Scorecard's fit time, its
5-fold stratified CV ROC AUC, and the model's predict throughput on raw DataFrame rows.

    python benchmarks/bench_woe.py [--repeat 3]

optbinning (pip install optbinning) and scikit-learn are needed for the reference columns.
"""

import argparse
import time
import warnings

import numpy as np

import maasfin as mf
from maasfin.credit import Scorecard
from maasfin.layers import WoEEncoding
from maasfin.metrics import roc_auc_score


def best_time(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def optbinning_iv(x, y, dtype, trend):
    from optbinning import OptimalBinning

    ob = OptimalBinning(name="x", dtype=dtype, monotonic_trend=trend).fit(x, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ob.binning_table.build()
    return ob.binning_table.iv


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    df = mf.datasets.load_credit()
    y = (df["Status"] == "bad").to_numpy(np.float64)
    x = df.drop(columns="Status")
    print(f"{'feature':<10} {'trend':<11} {'IV maasfin':>10} {'IV optb.':>9} {'maasfin ms':>10} {'optb. ms':>9}")
    for f in x.columns:
        categorical = f in mf.datasets.CREDIT_CATEGORICAL_COLUMNS
        t_m, layer = best_time(lambda: WoEEncoding(name="w").adapt(x[f], y), args.repeat)
        trend = layer.binning["trend"]
        col = x[f].to_numpy(dtype=object if categorical else np.float64)
        ref_trend = "auto" if categorical else trend
        t_o, iv_o = best_time(
            lambda: optbinning_iv(col, y, "categorical" if categorical else "numerical", ref_trend), args.repeat
        )
        print(f"{f:<10} {trend:<11} {layer.iv:>10.4f} {iv_o:>9.4f} {1e3 * t_m:>10.1f} {1e3 * t_o:>9.1f}")
    t_fit, card = best_time(lambda: Scorecard(binning={"max_n_bins": 6}).fit(x, y), args.repeat)
    print(f"\nScorecard.fit (13 features, 4,454 rows): {1e3 * t_fit:.0f} ms")
    big = x.sample(100_000, replace=True, random_state=0).reset_index(drop=True)
    card.model.predict(big.iloc[:1000], verbose=0)
    t_pred, _ = best_time(lambda: card.model.predict(big, verbose=0), args.repeat)
    print(f"model.predict on 100,000 raw DataFrame rows: {1e3 * t_pred:.0f} ms ({len(big) / t_pred:,.0f} rows/s)")
    from sklearn.model_selection import StratifiedKFold

    aucs = []
    for train, test in StratifiedKFold(5, shuffle=True, random_state=0).split(x, y):
        c = Scorecard(binning={"max_n_bins": 6}).fit(x.iloc[train], y[train])
        aucs.append(roc_auc_score(y[test], c.predict_proba(x.iloc[test])))
    print(f"Scorecard 5-fold stratified CV ROC AUC: {np.mean(aucs):.4f} (folds {np.round(aucs, 4).tolist()})")


if __name__ == "__main__":
    main()
