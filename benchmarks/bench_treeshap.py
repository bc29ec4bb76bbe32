"""TreeSHAP for one row (and 1,000 rows) of a 300-tree model: maasfin's core (EstimatorModel.shap_values
and the bare TreeEnsemble kernel) vs shap.TreeExplainer, and one-row predict latency of the saved
estimator vs the estimator itself. `python benchmarks/bench_treeshap.py [--markdown]`."""

from __future__ import annotations

import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _timing import median_us, print_table  # noqa: E402

import maasfin as mf  # noqa: E402
from maasfin.saving import save_estimator  # noqa: E402


def main(markdown: bool) -> None:
    import lightgbm as lgb
    import shap
    import xgboost as xgb
    from sklearn.ensemble import GradientBoostingClassifier

    df = mf.datasets.load_credit()
    y = (df.pop("Status") == "bad").astype(int).to_numpy()
    x = df[mf.datasets.CREDIT_NUMERIC_COLUMNS].astype(np.float32)
    models = {
        "xgboost 300 trees depth 6": xgb.XGBClassifier(n_estimators=300, max_depth=6, n_jobs=1),
        "lightgbm 300 trees 31 leaves": lgb.LGBMClassifier(n_estimators=300, verbose=-1, n_jobs=1),
        "sklearn GradientBoosting 300 trees depth 3": GradientBoostingClassifier(n_estimators=300, random_state=0),
    }
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for name, est in models.items():
            xx = x.fillna(0) if "sklearn" in name else x
            est.fit(xx, y)
            path = os.path.join(d, "m.maas")
            save_estimator(est, path, xx)
            model = mf.load_model(path)
            one = xx.iloc[:1]
            one_np = xx.to_numpy(np.float32)[:1]
            many = xx.to_numpy(np.float32)[:1000]
            explainer = shap.TreeExplainer(est)
            trees = model._trees
            t_shap = median_us(lambda: explainer.shap_values(one_np), 200, 20)
            t_core = median_us(lambda: trees.shap(one_np), 2000, 100)
            t_model = median_us(lambda: model.shap_values(one), 500, 50)
            t_shap_k = median_us(lambda: explainer.shap_values(many), 5, 1)
            t_core_k = median_us(lambda: trees.shap(many), 5, 1)
            rows.append(
                [
                    name,
                    f"{t_core:.0f}",
                    f"{t_model:.0f}",
                    f"{t_shap:.0f}",
                    f"{t_shap / t_core:.1f}x",
                    f"{t_core_k / 1e3:.1f}",
                    f"{t_shap_k / 1e3:.1f}",
                ]
            )
    print_table(
        [
            "model",
            "core 1 row (us)",
            "shap_values(DataFrame row) (us)",
            "shap.TreeExplainer 1 row (us)",
            "speed-up (kernel)",
            "core 1,000 rows (ms)",
            "shap 1,000 rows (ms)",
        ],
        rows,
        markdown,
    )


if __name__ == "__main__":
    main("--markdown" in sys.argv)
