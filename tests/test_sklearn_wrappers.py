"""maasfin.wrappers: scikit-learn's estimator checks, searches, calibration, pipelines and safe pickling."""

import copy
import pickle
import pickletools

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.datasets import make_classification
from sklearn.impute import SimpleImputer
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import maasfin
from maasfin.datasets import CREDIT_CATEGORICAL_COLUMNS, CREDIT_NUMERIC_COLUMNS, load_credit
from maasfin.wrappers import SKLearnClassifier, SKLearnRegressor


def build_classifier(X, y, units=8, seed=0):
    """Keras's documented builder shape: output width from the one-hot targets. Seeded, so every
    fit on the same data gives the same model (as scikit-learn's checks of refits expect)."""
    maasfin.utils.set_random_seed(seed)
    inp = maasfin.Input(shape=(X.shape[1],))
    h = maasfin.layers.Dense(units, activation="relu")(inp)
    out = maasfin.layers.Dense(y.shape[1], activation="softmax")(h)
    model = maasfin.Model(inp, out)
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    return model


def build_binary_sigmoid(X, y, units=8):
    maasfin.utils.set_random_seed(0)
    model = maasfin.Sequential(
        [
            maasfin.Input(shape=(X.shape[1],)),
            maasfin.layers.Dense(units, activation="relu"),
            maasfin.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(optimizer="adam", loss="binary_crossentropy")
    return model


def build_regressor(X, y, units=8):
    maasfin.utils.set_random_seed(0)
    inp = maasfin.Input(shape=(X.shape[1],))
    h = maasfin.layers.Dense(units, activation="relu")(inp)
    out = maasfin.layers.Dense(1 if y.ndim == 1 else y.shape[1])(h)
    model = maasfin.Model(inp, out)
    model.compile(optimizer="adam", loss="mse")
    return model


# The estimator checks that do not apply to a network trained by stochastic gradient descent.
# Skipped by scikit-learn itself (reported as SkipTest, no entry needed here):
#   check_pipeline_consistency - the wrappers carry Keras's `non_deterministic` tag (a builder that
#       does not seed gives different weights at each fit); the builders above do seed, and
#       test_refits_are_reproducible checks what that check would.
#   check_array_api_input - runs only with SCIPY_ARRAY_API=1; the wrappers take NumPy/pandas.
EXPECTED_FAILED = {
    "check_sample_weight_equivalence_on_dense_data": (
        "minibatch SGD: an integer weight k scales a row's loss in its batch, which is not the "
        "same optimisation path as k copies of the row spread over batches"
    ),
}


@parametrize_with_checks(
    [
        SKLearnClassifier(build_classifier, fit_kwargs={"epochs": 5}),
        SKLearnRegressor(build_regressor, fit_kwargs={"epochs": 5}),
    ],
    expected_failed_checks=lambda est: EXPECTED_FAILED,
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def blobs():
    X, y = make_classification(n_samples=300, n_features=6, n_informative=4, n_classes=3, random_state=0)
    return X.astype(np.float32), y


def test_classifier_fit_predict_and_attributes(blobs):
    X, y = blobs
    labels = np.array(["a", "b", "c"])[y]
    est = SKLearnClassifier(build_classifier, model_kwargs={"units": 16}, fit_kwargs={"epochs": 30})
    assert est.fit(X, labels) is est
    assert list(est.classes_) == ["a", "b", "c"]
    assert est.n_features_in_ == 6
    proba = est.predict_proba(X)
    assert proba.shape == (300, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    # predict is the label of the largest probability, and the probabilities are the model's outputs
    np.testing.assert_array_equal(est.predict(X), est.classes_[np.argmax(proba, axis=1)])
    np.testing.assert_array_equal(proba, est.model_.predict(X, verbose=0).astype(np.float64))
    assert est.score(X, labels) == pytest.approx(np.mean(est.predict(X) == labels))
    assert est.score(X, labels) > 0.7
    assert len(est.history_["loss"]) == 30 == est.epoch_
    assert est.history_["loss"][-1] < est.history_["loss"][0]


def test_binary_sigmoid_model_gets_column_targets(blobs):
    X, y = blobs
    yb = (y == 1).astype(int)
    est = SKLearnClassifier(build_binary_sigmoid, fit_kwargs={"epochs": 20}).fit(X, yb)
    p1 = est.model_.predict(X, verbose=0)[:, 0].astype(np.float64)
    np.testing.assert_allclose(est.predict_proba(X), np.column_stack([1 - p1, p1]))
    assert est.score(X, yb) > 0.7


def test_feature_names_in_from_dataframe(blobs):
    pd = pytest.importorskip("pandas")
    X, y = blobs
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(6)])
    est = SKLearnRegressor(build_regressor, fit_kwargs={"epochs": 2}).fit(frame, y.astype(float))
    assert list(est.feature_names_in_) == [f"f{i}" for i in range(6)]
    with pytest.raises(ValueError, match="feature names"):
        est.predict(frame[[f"f{i}" for i in reversed(range(6))]])


def test_regressor_one_and_two_outputs(blobs):
    X, _ = blobs
    y = X[:, 0] * 2.0 - X[:, 1]
    est = SKLearnRegressor(build_regressor, fit_kwargs={"epochs": 60}).fit(X, y)
    assert est.predict(X).shape == (300,)
    assert est.score(X, y) > 0.8  # R^2 of a simple linear target
    y2 = np.column_stack([y, -y])
    assert SKLearnRegressor(build_regressor, fit_kwargs={"epochs": 2}).fit(X, y2).predict(X).shape == (300, 2)


def test_get_set_params_and_clone(blobs):
    est = SKLearnClassifier(build_classifier, model_kwargs={"units": 4}, fit_kwargs={"epochs": 2})
    params = est.get_params()
    assert params == {
        "model": build_classifier,
        "warm_start": False,
        "model_kwargs": {"units": 4},
        "fit_kwargs": {"epochs": 2},
    }
    est.set_params(model_kwargs={"units": 8})
    twin = clone(est)
    assert twin.get_params()["model_kwargs"] == {"units": 8} and twin.fit_kwargs == {"epochs": 2}
    assert not hasattr(twin, "model_")


def test_model_instance_is_copied_through_the_safe_format(blobs):
    X, y = blobs
    maasfin.utils.set_random_seed(3)
    model = build_classifier(X, np.zeros((1, 3)), units=8)
    before = [w.copy() for w in model.get_weights()]
    est = SKLearnClassifier(model, fit_kwargs={"epochs": 3, "shuffle": False})
    first = est.fit(X, y).predict_proba(X)
    second = clone(est).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(first, second)  # both fits start from the given weights
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)  # the given model is never trained
    assert est.model_ is not model


def test_warm_start_continues_from_the_fitted_weights(blobs):
    X, y = blobs
    est = SKLearnClassifier(build_classifier, warm_start=True, fit_kwargs={"epochs": 2, "shuffle": False})
    est.fit(X, y)
    fitted = est.model_
    loss_after_first = est.history_["loss"][-1]
    est.fit(X, y)
    assert est.model_ is fitted
    assert est.history_["loss"][0] < loss_after_first + 1e-6


def test_pickle_goes_through_maas_bytes(blobs):
    X, y = blobs
    est = SKLearnClassifier(build_classifier, fit_kwargs={"epochs": 2}).fit(X, y)
    raw = pickle.dumps(est)
    globals_ = {arg for op, arg, _ in pickletools.genops(raw) if op.name in ("GLOBAL", "STACK_GLOBAL") and arg}
    strings = [arg for op, arg, _ in pickletools.genops(raw) if isinstance(arg, str)]
    assert "from_bytes" in strings and "maasfin.saving.maas" in strings  # the model travels as a .maas file
    assert b"PK\x03\x04" in raw  # ... whose bytes are a zip (config.json, weights.safetensors)
    assert not any("_core" in str(g) for g in globals_) and "maasfin._core" not in strings
    back = pickle.loads(raw)
    np.testing.assert_array_equal(back.predict_proba(X), est.predict_proba(X))
    np.testing.assert_array_equal(copy.deepcopy(est).predict(X), est.predict(X))


def test_bad_configuration_is_refused_by_name(blobs):
    X, y = blobs

    def uncompiled(X, y):
        return maasfin.Sequential([maasfin.Input(shape=(X.shape[1],)), maasfin.layers.Dense(3, activation="softmax")])

    with pytest.raises(ValueError, match="must be compiled"):
        SKLearnClassifier(uncompiled).fit(X, y)

    def four_units(X, y):
        return build_classifier(X, np.zeros((1, 4)))

    with pytest.raises(ValueError, match=r"outputs shape \(None, 4\) but y has 3 classes"):
        SKLearnClassifier(four_units).fit(X, y)
    with pytest.raises(TypeError, match="fit_kwargs must not set 'x'"):
        SKLearnClassifier(build_classifier, fit_kwargs={"x": X}).fit(X, y)
    with pytest.raises(TypeError, match="model_kwargs must be a dict"):
        SKLearnClassifier(build_classifier, model_kwargs=[1]).fit(X, y)
    with pytest.raises(ValueError, match="continuous"):
        SKLearnClassifier(build_classifier).fit(X, X[:, 0])
    with pytest.raises(ValueError, match=r"sample_weight has shape \(3,\) but X has 300 rows"):
        SKLearnClassifier(build_classifier).fit(X, y, sample_weight=[1, 2, 3])


def test_grid_search_in_two_processes_matches_the_manual_search(blobs):
    X, y = blobs
    grid = {"model_kwargs": [{"units": 2}, {"units": 16}], "fit_kwargs": [{"epochs": 2}, {"epochs": 25}]}
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    search = GridSearchCV(SKLearnClassifier(build_classifier), grid, cv=cv, n_jobs=2).fit(X, y)
    manual = {}
    for mk in grid["model_kwargs"]:
        for fk in grid["fit_kwargs"]:
            est = SKLearnClassifier(build_classifier, model_kwargs=mk, fit_kwargs=fk)
            manual[(mk["units"], fk["epochs"])] = cross_val_score(est, X, y, cv=cv).mean()
    best = max(manual, key=manual.get)
    assert (search.best_params_["model_kwargs"]["units"], search.best_params_["fit_kwargs"]["epochs"]) == best
    assert search.best_score_ == pytest.approx(manual[best])
    assert search.best_estimator_.score(X, y) > 0.7


def test_cross_val_score_equals_the_fold_loop(blobs):
    X, y = blobs
    est = SKLearnClassifier(build_classifier, fit_kwargs={"epochs": 10})
    cv = StratifiedKFold(4, shuffle=True, random_state=1)
    scores = cross_val_score(est, X, y, cv=cv)
    expected = []
    for train, test in cv.split(X, y):
        fitted = clone(est).fit(X[train], y[train])
        expected.append(np.mean(fitted.predict(X[test]) == y[test]))
    np.testing.assert_allclose(scores, expected)


@pytest.fixture(scope="module")
def credit():
    df = load_credit()
    df = df[df["Status"].notna()]
    return df.drop(columns="Status"), (df["Status"] == "bad").astype(int).to_numpy()


def _credit_pipeline(**kwargs):
    pre = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), CREDIT_NUMERIC_COLUMNS),
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), CREDIT_CATEGORICAL_COLUMNS),
        ]
    )
    return Pipeline([("pre", pre), ("net", SKLearnClassifier(build_classifier, **kwargs))])


def test_pipeline_with_column_transformer_on_credit_data(credit):
    X, y = credit
    pipe = _credit_pipeline(model_kwargs={"units": 16}, fit_kwargs={"epochs": 15, "batch_size": 64})
    pipe.fit(X.iloc[:3500], y[:3500])
    # the pipeline is its steps composed: the wrapper sees the transformed matrix
    Z = pipe.named_steps["pre"].transform(X.iloc[3500:])
    np.testing.assert_array_equal(pipe.predict_proba(X.iloc[3500:]), pipe.named_steps["net"].predict_proba(Z))
    assert pipe.named_steps["net"].n_features_in_ == Z.shape[1]
    from sklearn.metrics import roc_auc_score

    auc = roc_auc_score(y[3500:], pipe.predict_proba(X.iloc[3500:])[:, 1])
    assert auc > 0.75  # a logistic regression on these features reaches ~0.83


def test_calibrated_classifier_cv(credit):
    X, y = credit
    pre = _credit_pipeline().named_steps["pre"].fit(X.iloc[:3500])
    Z, Zt = pre.transform(X.iloc[:3500]), pre.transform(X.iloc[3500:])
    base = SKLearnClassifier(build_classifier, model_kwargs={"units": 16}, fit_kwargs={"epochs": 10, "batch_size": 64})
    cal = CalibratedClassifierCV(base, method="isotonic", cv=3).fit(Z, y[:3500])
    assert len(cal.calibrated_classifiers_) == 3
    p = cal.predict_proba(Zt)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    # the calibrated probability is the mean of the folds' isotonic maps of the wrapped network's scores
    folds = [c.calibrators[0].predict(c.estimator.predict_proba(Zt)[:, 1]) for c in cal.calibrated_classifiers_]
    np.testing.assert_allclose(p[:, 1], np.mean(folds, axis=0), atol=1e-12)
    # isotonic calibration on held-out folds: the mean predicted rate is close to the observed one
    assert abs(p[:, 1].mean() - y[3500:].mean()) < 0.05
