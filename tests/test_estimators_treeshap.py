"""Exact TreeSHAP in the core over saved estimators' ONNX tree ensembles: equal to shap.TreeExplainer
(a test-only reference) to 1e-5 on 1,000 rows, equal to the core's subset-enumeration twin, and
summing to the margin."""

import numpy as np
import pytest

pytest.importorskip("skl2onnx")
pytest.importorskip("onnxruntime")
shap = pytest.importorskip("shap")

from sklearn.ensemble import (  # noqa: E402
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)

import maasfin as mf  # noqa: E402
from maasfin import _core  # noqa: E402
from maasfin.saving import save_estimator  # noqa: E402

NUM = mf.datasets.CREDIT_NUMERIC_COLUMNS


@pytest.fixture(scope="module")
def credit():
    df = mf.datasets.load_credit().iloc[:1000].reset_index(drop=True)
    y = (df.pop("Status") == "bad").astype(int).to_numpy()
    x = df[NUM].astype(np.float32)
    return x, y


def _models():
    xgb = pytest.importorskip("xgboost")
    lgb = pytest.importorskip("lightgbm")
    return {
        "random_forest": lambda: RandomForestClassifier(30, max_depth=6, random_state=0),
        "extra_trees": lambda: ExtraTreesClassifier(20, max_depth=6, random_state=0),
        "gradient_boosting": lambda: GradientBoostingClassifier(n_estimators=40, max_depth=3, random_state=0),
        "gradient_boosting_regressor": lambda: GradientBoostingRegressor(n_estimators=30, random_state=0),
        "hist_gradient_boosting": lambda: HistGradientBoostingClassifier(max_iter=30, random_state=0),
        "xgboost": lambda: xgb.XGBClassifier(n_estimators=40, max_depth=4),
        "lightgbm": lambda: lgb.LGBMClassifier(n_estimators=40, verbose=-1),
    }


KINDS = [
    "random_forest",
    "extra_trees",
    "gradient_boosting",
    "gradient_boosting_regressor",
    "hist_gradient_boosting",
    "xgboost",
    "lightgbm",
]


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("kind", KINDS)
def test_treeshap_equals_shap_tree_explainer(credit, tmp_path, kind):
    x, y = credit
    nan_free = kind not in ("hist_gradient_boosting", "xgboost", "lightgbm")
    x = x.fillna(0) if nan_free else x  # scikit-learn's forests and GradientBoosting take no NaN
    target = x["Amount"].to_numpy() if kind.endswith("regressor") else y
    est = _models()[kind]().fit(x, target)
    save_estimator(est, tmp_path / "m.maas", x)
    model = mf.load_model(tmp_path / "m.maas")
    phi = model.shap_values(x)
    assert phi.shape == (1000, len(NUM) + 1)
    values = np.asarray(shap.TreeExplainer(est).shap_values(x.to_numpy(np.float32)))
    values = values[..., 1] if values.ndim == 3 else values  # forests: the positive class's probability
    scale = max(1.0, float(np.abs(values).max()))
    np.testing.assert_allclose(phi[:, :-1], values, atol=1e-5 * scale, rtol=0)
    np.testing.assert_allclose(phi.sum(axis=1), model.margin(x), atol=1e-9 * scale, rtol=0)  # additivity


def test_treeshap_equals_the_subset_enumeration_twin(credit, tmp_path):
    x, y = credit
    est = GradientBoostingClassifier(n_estimators=20, max_depth=4, random_state=0).fit(x.fillna(0), y)
    save_estimator(est, tmp_path / "m.maas", x.fillna(0))
    trees = mf.load_model(tmp_path / "m.maas")._trees
    rows = x.fillna(0).to_numpy(np.float32)[:100]
    np.testing.assert_allclose(trees.shap(rows), trees.shap(rows, reference=True), atol=1e-12, rtol=0)


def test_margin_is_the_served_log_odds(credit, tmp_path):
    x, y = credit
    est = GradientBoostingClassifier(n_estimators=20, random_state=0).fit(x.fillna(0), y)
    save_estimator(est, tmp_path / "m.maas", x.fillna(0))
    model = mf.load_model(tmp_path / "m.maas")
    p = model.predict(x.fillna(0))[:, 1].astype(np.float64)
    np.testing.assert_allclose(1 / (1 + np.exp(-model.margin(x.fillna(0)))), p, atol=1e-6)


def test_hostile_tree_arrays_are_refused():
    ok = dict(
        roots=[0],
        feature=[0, -1, -1],
        threshold=[0.5, 0, 0],
        yes=[1, 0, 0],
        no=[2, 0, 0],
        mode=[0, 0, 0],
        missing_yes=[0, 0, 0],
        value=[0, 1.0, 2.0],
        num_features=1,
        base=0.0,
    )
    _core.TreeEnsemble(**ok)
    for change, needle in [
        ({"yes": [0, 0, 0]}, "reached twice"),
        ({"no": [7, 0, 0]}, "bad child"),
        ({"feature": [3, -1, -1]}, "missing feature"),
        ({"roots": [5]}, "root index"),
        ({"value": [0, float("nan"), 1]}, "non-finite"),
        ({"mode": [2, 0, 0]}, "bad mode"),
    ]:
        with pytest.raises(ValueError, match=needle):
            _core.TreeEnsemble(**{**ok, **change})


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_kernel_shap_enumerating_every_coalition_is_the_exact_shapley_value(credit, tmp_path):
    import itertools
    import math

    from sklearn.neural_network import MLPClassifier

    x, y = credit
    x = (x.fillna(0) / 1000).to_numpy(np.float32)
    est = MLPClassifier((8,), max_iter=50, random_state=0).fit(x, y)
    save_estimator(est, tmp_path / "m.maas", x)
    model = mf.load_model(tmp_path / "m.maas")
    bg = np.asarray(model.background, np.float32)[:20]
    model.background = bg
    rows = x[:2]
    phi = model.shap_values(rows)  # 2^9 - 2 = 510 coalitions <= 2048: all enumerated
    F = rows.shape[1]

    def value(row, subset):
        hybrid = bg.copy()
        hybrid[:, list(subset)] = row[list(subset)]
        return est.predict_proba(hybrid)[:, 1].mean()

    for r, row in enumerate(rows):
        v = {s: value(row, s) for k in range(F + 1) for s in itertools.combinations(range(F), k)}
        for j in range(F):
            exact = sum(
                math.factorial(len(s))
                * math.factorial(F - len(s) - 1)
                / math.factorial(F)
                * (v[tuple(sorted(s + (j,)))] - v[s])
                for s in v
                if j not in s
            )
            assert phi[r, j] == pytest.approx(exact, abs=1e-5)
    np.testing.assert_allclose(phi.sum(axis=1), est.predict_proba(rows)[:, 1], atol=1e-5)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("kind", ["random_forest", "gradient_boosting", "xgboost", "lightgbm"])
def test_interventional_treeshap_equals_shap_with_the_stored_background(credit, tmp_path, kind):
    x, y = credit
    x = x.fillna(0) if kind in ("random_forest", "gradient_boosting") else x
    est = _models()[kind]().fit(x, y)
    save_estimator(est, tmp_path / "m.maas", x)
    model = mf.load_model(tmp_path / "m.maas")
    rows = x.iloc[:300]
    phi = model.shap_values(rows, feature_perturbation="interventional")
    bg = np.asarray(model.background, np.float32)
    explainer = shap.TreeExplainer(est, data=bg, feature_perturbation="interventional", model_output="raw")
    values = np.asarray(explainer.shap_values(rows.to_numpy(np.float32)))
    values = values[..., 1] if values.ndim == 3 else values
    np.testing.assert_allclose(phi[:, :-1], values, atol=1e-5, rtol=0)
    np.testing.assert_allclose(phi.sum(axis=1), model.margin(rows), atol=1e-9, rtol=0)
    np.testing.assert_allclose(phi[0, -1], model._trees.margin(bg).mean(), atol=1e-12)
    twin = model._trees.shap_interventional(rows.to_numpy(np.float32)[:5], bg, reference=True)
    np.testing.assert_allclose(phi[:5], twin, atol=1e-12, rtol=0)
