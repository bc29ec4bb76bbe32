"""save_estimator / load_model for scikit-learn, XGBoost and LightGBM models: predictions equal the
estimator's predict_proba to 1e-5 on raw credit data (strings, missing values); bad input is refused
naming the step, the feature or the member."""

import hashlib
import io
import json
import zipfile

import numpy as np
import pytest

pytest.importorskip("skl2onnx")
pytest.importorskip("onnxruntime")

import onnx  # noqa: E402
from sklearn.calibration import CalibratedClassifierCV  # noqa: E402
from sklearn.compose import ColumnTransformer  # noqa: E402
from sklearn.ensemble import (  # noqa: E402
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.neural_network import MLPClassifier  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler  # noqa: E402
from sklearn.svm import SVC, LinearSVC  # noqa: E402

import maasfin as mf  # noqa: E402
from maasfin.saving import EstimatorModel, ModelFileError, read_metadata, save_estimator  # noqa: E402

CAT = mf.datasets.CREDIT_CATEGORICAL_COLUMNS
NUM = mf.datasets.CREDIT_NUMERIC_COLUMNS


@pytest.fixture(scope="module")
def credit():
    df = mf.datasets.load_credit()
    y = (df.pop("Status") == "bad").astype(int).to_numpy()
    return df.iloc[:900].reset_index(drop=True), y[:900], df.iloc[900:1300].reset_index(drop=True)


def _pre(scale: bool):
    num = [("impute", SimpleImputer(strategy="median"))] + ([("scale", StandardScaler())] if scale else [])
    return ColumnTransformer([("num", Pipeline(num), NUM), ("cat", OneHotEncoder(handle_unknown="ignore"), CAT)])


CLASSIFIERS = {
    "logistic": (lambda: LogisticRegression(max_iter=2000), True),
    "random_forest": (lambda: RandomForestClassifier(30, max_depth=6, random_state=0), False),
    "extra_trees": (lambda: ExtraTreesClassifier(30, max_depth=6, random_state=0), False),
    "gradient_boosting": (lambda: GradientBoostingClassifier(n_estimators=40, random_state=0), False),
    "hist_gradient_boosting": (lambda: HistGradientBoostingClassifier(max_iter=40, random_state=0), False),
    "svc": (lambda: CalibratedClassifierCV(SVC(random_state=0), ensemble=False, cv=3), True),
    "mlp": (lambda: MLPClassifier((16,), max_iter=300, random_state=0), True),
    "calibrated": (lambda: CalibratedClassifierCV(LogisticRegression(max_iter=2000), cv=3), True),
}


def _float32(frame):
    out = frame.copy()
    out[NUM] = out[NUM].astype(np.float32)
    return out


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("kind", list(CLASSIFIERS))
def test_pipeline_round_trip_equals_predict_proba(credit, tmp_path, kind):
    x, y, holdout = credit
    make, scale = CLASSIFIERS[kind]
    pipe = Pipeline([("pre", _pre(scale)), ("clf", make())]).fit(x, y)
    path = str(tmp_path / f"{kind}.maas")
    save_estimator(pipe, path, x, metadata={"owner": "risk"})
    model = mf.load_model(path)
    assert isinstance(model, EstimatorModel)
    assert holdout[CAT].isna().any().any() or holdout[NUM].isna().any().any()
    got = model.predict(holdout)
    want = pipe.predict_proba(_float32(holdout))
    assert got.shape == want.shape == (len(holdout), 2)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    records = [{k: (None if v != v else v) for k, v in r.items()} for r in holdout.iloc[:20].to_dict("records")]
    np.testing.assert_allclose(model.predict(records), want[:20], atol=1e-5, rtol=0)
    sig = model.signature
    assert [s.name for s in sig.inputs] == list(x.columns) and sig.raw and sig.strings
    assert [s.dtype for s in sig.inputs] == ["string" if c in CAT else "float32" for c in x.columns]
    assert model.classes == [0, 1]
    assert read_metadata(path)["user_metadata"] == {"owner": "risk"}
    with zipfile.ZipFile(path) as z:
        assert sorted(z.namelist()) == ["config.json", "metadata.json", "model.onnx"]


def test_regressor_round_trip(credit, tmp_path):
    x, y, holdout = credit
    pipe = Pipeline([("pre", _pre(False)), ("rf", RandomForestRegressor(20, max_depth=5, random_state=0))])
    pipe.fit(x, x["Amount"].to_numpy())
    save_estimator(pipe, tmp_path / "r.maas", x)
    model = mf.load_model(tmp_path / "r.maas")
    np.testing.assert_allclose(model.predict(holdout).ravel(), pipe.predict(_float32(holdout)), rtol=1e-5, atol=1e-3)
    assert model.signature.output.shape == (1,) and model.classes is None


@pytest.mark.parametrize("library", ["xgboost", "lightgbm"])
def test_gradient_boosting_libraries_round_trip(credit, tmp_path, library):
    lib = pytest.importorskip(library)
    pytest.importorskip("onnxmltools")
    x, y, holdout = credit
    est = (
        lib.XGBClassifier(n_estimators=40, max_depth=4)
        if library == "xgboost"
        else lib.LGBMClassifier(n_estimators=40, verbose=-1)
    )
    est.fit(x[NUM], y)
    save_estimator(est, tmp_path / "g.maas", x[NUM])
    model = mf.load_model(tmp_path / "g.maas")
    assert holdout[NUM].isna().any().any()
    np.testing.assert_allclose(
        model.predict(holdout[NUM]), est.predict_proba(holdout[NUM].astype(np.float32)), atol=1e-5, rtol=0
    )
    np.testing.assert_allclose(
        model.predict(holdout[NUM].to_numpy()), est.predict_proba(holdout[NUM].astype(np.float32)), atol=1e-5, rtol=0
    )


def test_drift_reference_and_background_come_from_the_example(credit, tmp_path):
    x, y, _ = credit
    pipe = Pipeline([("pre", _pre(True)), ("clf", LogisticRegression(max_iter=2000))]).fit(x, y)
    save_estimator(pipe, tmp_path / "m.maas", x)
    model = mf.load_model(tmp_path / "m.maas")
    ref = model.drift_reference
    j = list(x.columns).index("Age")
    expected = mf.explain.monitoring.reference_bins(x["Age"].to_numpy(np.float32))
    np.testing.assert_allclose(ref["features"][j]["edges"], expected["edges"])
    k = list(x.columns).index("Home")  # one bin per category, codes in sorted category order
    counts = x["Home"].value_counts().sort_index()
    np.testing.assert_allclose(ref["features"][k]["proportions"], counts / counts.sum())
    score = pipe.predict_proba(_float32(x))[:, 0]
    np.testing.assert_allclose(
        ref["score"]["edges"], mf.explain.monitoring.reference_bins(score)["edges"], rtol=1e-5, atol=1e-6
    )
    assert model.background.shape == (100, x.shape[1])
    assert mf.explain.raw_feature_names(model) == list(x.columns)


# -- bad input -------------------------------------------------------------------------------------
def test_unconvertible_step_is_named(credit, tmp_path):
    x, y, _ = credit
    pipe = Pipeline(
        [("pre", _pre(True)), ("square", FunctionTransformer(np.square)), ("clf", LogisticRegression(max_iter=500))]
    ).fit(x, y)
    with pytest.raises(ValueError, match=r"step 'square' \(FunctionTransformer\)"):
        save_estimator(pipe, tmp_path / "m.maas", x)
    assert not (tmp_path / "m.maas").exists()


def test_columns_other_than_the_fitted_ones_are_refused(credit, tmp_path):
    x, y, _ = credit
    pipe = Pipeline([("pre", _pre(True)), ("clf", LogisticRegression(max_iter=500))]).fit(x, y)
    with pytest.raises(ValueError, match=r"fitted on columns .*'Seniority'.* but example has columns"):
        save_estimator(pipe, tmp_path / "m.maas", x[list(reversed(x.columns))])


def test_classifier_without_probabilities_and_foreign_objects_are_refused(credit, tmp_path):
    x, y, _ = credit
    svm = Pipeline([("pre", _pre(True)), ("svm", LinearSVC())]).fit(x, y)
    with pytest.raises(ValueError, match="LinearSVC has no predict_proba"):
        save_estimator(svm, tmp_path / "m.maas", x)
    with pytest.raises(TypeError, match="not a scikit-learn, XGBoost or LightGBM model"):
        save_estimator(object(), tmp_path / "m.maas", x)
    with pytest.raises(ValueError, match="must end in '.maas'"):
        save_estimator(svm, tmp_path / "m.pkl", x)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_strings_without_a_column_transformer_are_refused(credit, tmp_path):
    x, y, _ = credit
    cats = x[CAT].fillna("none")
    pipe = Pipeline([("onehot", OneHotEncoder(handle_unknown="ignore")), ("lr", LogisticRegression())]).fit(cats, y)
    with pytest.raises(ValueError, match=r"string feature\(s\) \['Home'.* takes numbers only"):
        save_estimator(pipe, tmp_path / "m.maas", cats)


@pytest.fixture(scope="module")
def saved(credit, tmp_path_factory):
    x, y, _ = credit
    pipe = Pipeline([("pre", _pre(True)), ("clf", LogisticRegression(max_iter=2000))]).fit(x, y)
    path = str(tmp_path_factory.mktemp("m") / "m.maas")
    save_estimator(pipe, path, x)
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    return path, members


def test_unseen_categories_and_unknown_features_name_the_feature(credit, saved):
    x, _, _ = credit
    model = mf.load_model(saved[0])
    rec = {k: (None if v != v else v) for k, v in x.iloc[0].to_dict().items()}
    with pytest.raises(ValueError, match=r"x\['Job'\] row 0 holds 'astronaut', not one of the"):
        model.predict([{**rec, "Job": "astronaut"}])
    with pytest.raises(ValueError, match=r"missing feature\(s\) \['Age'\]"):
        model.predict(x.drop(columns="Age"))
    with pytest.raises(ValueError, match=r"has shape \(2, 3\) but the estimator takes 13 features"):
        model.predict(np.zeros((2, 3)))


def repack(members: dict, **changes) -> bytes:
    """An archive of `members` with `changes` applied and metadata.json's hash of model.onnx updated."""
    members = {**members, **changes}
    meta = json.loads(members["metadata.json"])
    if "model.onnx" in members:
        meta["sha256"]["model.onnx"] = hashlib.sha256(members["model.onnx"]).hexdigest()
    members["metadata.json"] = json.dumps(meta).encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for k, v in members.items():
            z.writestr(k, v)
    return buf.getvalue()


def _load(data: bytes, tmp_path):
    p = tmp_path / "bad.maas"
    p.write_bytes(data)
    return mf.load_model(str(p))


def _graph(members):
    return onnx.ModelProto.FromString(members["model.onnx"])


def test_pickles_custom_domains_and_external_data_are_refused(saved, tmp_path):
    _, members = saved
    with pytest.raises(ModelFileError, match="holds a pickle 'model.pkl'"):
        _load(repack(members, **{"model.pkl": b"\x80\x04cos\nsystem\n."}), tmp_path)
    with pytest.raises(ModelFileError, match="model.onnx is not an ONNX model"):
        _load(repack(members, **{"model.onnx": b"\x80\x04cos\nsystem\n(S'echo hi'\ntR."}), tmp_path)
    g = _graph(members)
    g.graph.node[0].domain = "com.evil"
    g.opset_import.append(onnx.helper.make_opsetid("com.evil", 1))
    with pytest.raises(ModelFileError, match="non-standard operator domain 'com.evil'"):
        _load(repack(members, **{"model.onnx": g.SerializeToString()}), tmp_path)
    g = _graph(members)
    t = next(t for t in g.graph.initializer if t.raw_data) if any(t.raw_data for t in g.graph.initializer) else None
    t = t or g.graph.initializer[0]
    t.data_location = onnx.TensorProto.EXTERNAL
    t.external_data.add(key="location", value="/etc/passwd")
    with pytest.raises(ModelFileError, match="refers to external data"):
        _load(repack(members, **{"model.onnx": g.SerializeToString()}), tmp_path)
    with pytest.raises(ModelFileError, match="does not match its SHA-256"):
        bad = dict(members)
        bad["model.onnx"] = members["model.onnx"][:-1] + b"\x00"
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            for k, v in bad.items():
                z.writestr(k, v)
        _load(buf.getvalue(), tmp_path)


def test_config_fields_are_checked(saved, tmp_path):
    _, members = saved
    doc = json.loads(members["config.json"])
    doc["input_schema"]["features"][0]["dtype"] = "int8"
    with pytest.raises(ModelFileError, match=r"input_schema.features\[0\].dtype must be"):
        _load(repack(members, **{"config.json": json.dumps(doc).encode()}), tmp_path)
    doc = json.loads(members["config.json"])
    doc["estimator"]["output"] = "nope"
    with pytest.raises(ModelFileError, match=r"has no output\(s\) \['nope'\]"):
        _load(repack(members, **{"config.json": json.dumps(doc).encode()}), tmp_path)
    doc = json.loads(members["config.json"])
    f = doc["input_schema"]["features"]
    f[0], f[2] = f[2], f[0]  # two numeric features swapped
    with pytest.raises(ModelFileError, match="model.onnx takes inputs"):
        _load(repack(members, **{"config.json": json.dumps(doc).encode()}), tmp_path)


def test_linear_contributions_are_exact_per_raw_feature(credit, tmp_path):
    x, y, holdout = credit
    pipe = Pipeline([("pre", _pre(True)), ("clf", LogisticRegression(max_iter=2000))]).fit(x, y)
    save_estimator(pipe, tmp_path / "m.maas", x)
    model = mf.load_model(tmp_path / "m.maas")
    phi = model.shap_values(holdout)

    def dense(a):
        return np.asarray(a.toarray() if hasattr(a, "toarray") else a, dtype=np.float64)

    z, z0 = dense(pipe[0].transform(_float32(holdout))), dense(pipe[0].transform(_float32(x)))
    parts = (z - z0.mean(axis=0)) * pipe[-1].coef_.ravel()
    names = list(pipe[0].get_feature_names_out())
    for j, c in enumerate(x.columns):  # each raw feature: its scaled column, or its one-hot columns
        cols = [k for k, n in enumerate(names) if n == f"num__{c}" or n.startswith(f"cat__{c}_")]
        np.testing.assert_allclose(phi[:, j], parts[:, cols].sum(axis=1), atol=1e-5, rtol=0)
    np.testing.assert_allclose(phi.sum(axis=1), pipe.decision_function(_float32(holdout)), atol=1e-5, rtol=0)
    reasons = model.reasons(holdout.iloc[:3], top_k=2)
    for row, r in zip(phi[:3, :-1], reasons):
        assert [d["feature"] for d in r] == [x.columns[j] for j in np.argsort(-row, kind="stable")[:2] if row[j] > 0]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_kernel_shap_of_a_pipeline_with_strings_is_seeded_and_additive(credit, tmp_path):
    x, y, holdout = credit
    pipe = Pipeline([("pre", _pre(True)), ("mlp", MLPClassifier((8,), max_iter=100, random_state=0))]).fit(x, y)
    save_estimator(pipe, tmp_path / "m.maas", x)
    model = mf.load_model(tmp_path / "m.maas")
    model.background = model.background[:20]
    rows = holdout.iloc[:2]
    phi = model.shap_values(rows)  # 2^13 coalitions > 2048: sampled with the fixed seed
    np.testing.assert_array_equal(phi, model.shap_values(rows))
    np.testing.assert_allclose(phi.sum(axis=1), pipe.predict_proba(_float32(rows))[:, 1], atol=1e-5)
    bg = np.asarray(model.background, np.float32)
    base = model.predict_arrays([bg[:, j : j + 1] for j in range(bg.shape[1])])[:, 1].astype(np.float64).mean()
    assert phi[0, -1] == pytest.approx(base, abs=1e-6)
