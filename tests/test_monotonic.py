"""MonotonicDense, monotone paths from raw features, check_monotonicity and reason codes.

The layer's forward pass is compared with a NumPy transcription of its documented formula; the
guarantee is measured with check_monotonicity on 10,000 rows x 50 grid points per declared feature
after training, after a save/load round trip and after training on data that pushes the other way.
"""

import numpy as np
import pytest
import requests
from serving_support import ServerThread, put

import maasfin as mf
from maasfin import _core
from maasfin.credit import check_monotonicity
from maasfin.layers import (
    CategoryEncoding,
    Concatenate,
    Dense,
    Discretization,
    Dropout,
    Input,
    MonotonicDense,
    Normalization,
    WoEEncoding,
)
from maasfin.models import Model, Sequential
from maasfin.serving import create_app
from maasfin.utils import FeatureSpace

MONOTONE = {"Income": -1, "Seniority": -1, "Debt": 1, "Amount": 1}
ACTS = ["linear", "relu", "sigmoid", "tanh", "elu", "selu", "leaky_relu"]


# -- the layer's math against its documented formula ----------------------------------------------
def _rho(act, u):
    u = u.astype(np.float64)
    return {
        "linear": lambda v: v,
        "relu": lambda v: np.maximum(v, 0),
        "sigmoid": lambda v: 1 / (1 + np.exp(-v)),
        "tanh": np.tanh,
        "elu": lambda v: np.where(v > 0, v, np.expm1(v)),
        "selu": lambda v: 1.0507009873554805 * np.where(v > 0, v, 1.6732632423543772 * np.expm1(v)),
        "leaky_relu": lambda v: np.where(v > 0, v, 0.2 * v),
    }[act](u)


def _reference(layer, x):
    w = layer.get_weights()
    s = np.broadcast_to(np.asarray(layer.resolved_indicator, np.float64), (w[0].shape[0],))[:, None]
    kernel = np.where(s == 0, w[0], s * np.abs(w[0]))
    h = x.astype(np.float64) @ kernel + (w[1] if layer.use_bias else 0)
    if layer.activation == "linear":
        return h
    c, k, _ = layer.split()
    j = np.arange(layer.units)
    r1 = _rho(layer.activation, np.ones(1))[0]
    sat = np.where(h < 0, _rho(layer.activation, h + 1) - r1, r1 - _rho(layer.activation, 1 - h))
    return np.where(j < c, _rho(layer.activation, h), np.where(j < c + k, -_rho(layer.activation, -h), sat))


@pytest.mark.parametrize("act", ACTS)
def test_forward_matches_the_formula_and_is_monotone_for_any_weights(rng, act):
    layer = MonotonicDense(16, activation=act, monotonicity_indicator=[1, -1, 0])
    m = Sequential([Input(shape=(3,)), layer])
    m.build()
    assert layer.split() == (7, 7, 2)
    # Arbitrary signs, including the "wrong" ones a loaded file or set_weights may hold.
    layer.set_weights([rng.normal(size=(3, 16)) * 2, rng.normal(size=16)])
    x = rng.normal(size=(64, 3)).astype(np.float32)
    np.testing.assert_allclose(m.predict(x), _reference(layer, x), rtol=2e-5, atol=2e-5)
    grid = np.linspace(-3, 3, 41, dtype=np.float32)
    for col, sign in ((0, 1), (1, -1)):
        xs = np.repeat(x[:8], grid.size, axis=0)
        xs[:, col] = np.tile(grid, 8)
        steps = np.diff(m.predict(xs).reshape(8, grid.size, 16), axis=1) * sign
        assert steps.min() >= 0, f"{act}: input {col} moved the output against its indicator"
    free = np.repeat(x[:8], grid.size, axis=0)
    free[:, 2] = np.tile(grid, 8)
    steps = np.diff(m.predict(free).reshape(8, grid.size, 16), axis=1)
    if act != "linear":  # the unconstrained input is free to go both ways
        assert steps.min() < 0 < steps.max()


def test_convex_concave_and_split_shapes(rng):
    x = np.linspace(-2, 2, 101, dtype=np.float32).reshape(-1, 1)
    for kwargs, second in ((dict(is_convex=True), 1), (dict(is_concave=True), -1)):
        layer = MonotonicDense(3, activation="relu", **kwargs)
        m = Sequential([Input(shape=(1,)), layer])
        m.build()
        layer.set_weights([np.ones((1, 3)), np.zeros(3)])
        y = m.predict(x)
        assert np.all(second * np.diff(y, 2, axis=0) >= -1e-6)  # convex (+) or concave (-)
    layer = MonotonicDense(10, activation="relu", activation_weights=(1, 1, 3))
    assert layer.split() == (2, 2, 6)
    m = Sequential([Input(shape=(1,)), layer])
    m.build()
    layer.set_weights([np.ones((1, 10)), np.zeros(10)])
    y = m.predict(x)
    np.testing.assert_allclose(y[:, 9], np.clip(x[:, 0], -1, 1), atol=1e-6)  # saturated relu = clip


def test_backends_agree(rng):
    x = rng.normal(size=(512, 64)).astype(np.float32)  # 512 * 64 * 128 multiply-adds: above the oneDNN threshold
    y = rng.normal(size=(512, 1)).astype(np.float32)
    ind = list(rng.choice([-1, 0, 1], size=64))
    m = Sequential([Input(shape=(64,)), MonotonicDense(128, "tanh", monotonicity_indicator=ind), MonotonicDense(1)])
    m.compile("sgd", "mse")
    m.build()
    out, grads = {}, {}
    try:
        for backend in (_core.Backend.reference, _core.Backend.onednn):
            _core.set_backend(backend)
            out[backend] = m.predict(x)
            m._get_trainer(y.shape).compute_gradients([x], y, None, False, 0)
            grads[backend] = m._graph.grads.copy()
    finally:
        _core.set_backend(_core.Backend.automatic)
    np.testing.assert_allclose(out[_core.Backend.reference], out[_core.Backend.onednn], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(grads[_core.Backend.reference], grads[_core.Backend.onednn], rtol=1e-3, atol=1e-5)


# -- refusals -------------------------------------------------------------------------------------
@pytest.mark.parametrize("act", ["gelu", "swish", "softmax"])
def test_non_monotone_activations_are_refused_by_name(act):
    with pytest.raises(ValueError, match=f"activation '{act}' is not monotone"):
        MonotonicDense(4, activation=act)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="must be -1, 0 or 1, got 2"):
        MonotonicDense(2, monotonicity_indicator=[1, 2])
    with pytest.raises(ValueError, match="for feature 'Income' must be -1, 0 or 1"):
        MonotonicDense(2, monotonicity_indicator={"Income": "down"})
    with pytest.raises(ValueError, match="is_convex and is_concave cannot both be true"):
        MonotonicDense(2, is_convex=True, is_concave=True)
    with pytest.raises(ValueError, match="activation_weights must be three non-negative"):
        MonotonicDense(2, activation_weights=(1, -1, 1))
    with pytest.raises(ValueError, match="monotonicity_indicator has 2 values for an input of shape"):
        MonotonicDense(2, monotonicity_indicator=[1, -1])(Input(shape=(3,)))


def _named():
    inc, dbt, home = Input(shape=(1,), name="Income"), Input(shape=(1,), name="Debt"), Input(shape=(1,), name="Home")
    return inc, dbt, home


def test_unknown_feature_and_non_monotone_paths_are_refused():
    inc, dbt, _ = _named()
    x = mf.layers.Concatenate()([Normalization(mean=1.0, variance=4.0)(inc), dbt])
    with pytest.raises(ValueError, match=r"unknown feature\(s\) \['Incme'\]"):
        MonotonicDense(4, monotonicity_indicator={"Incme": -1})(x)
    # One-hot of a numeric feature breaks the path: the error names the feature and the layer.
    inc, dbt, _ = _named()
    onehot = CategoryEncoding(num_tokens=4, output_mode="one_hot", name="inc_onehot")(
        Discretization(bin_boundaries=[0.0, 1.0, 2.0], name="inc_bins")(inc)
    )
    x = mf.layers.Concatenate()([onehot, dbt])
    with pytest.raises(ValueError, match=r"'Income' is declared monotone .* CategoryEncoding 'inc_onehot'"):
        MonotonicDense(4, monotonicity_indicator={"Income": -1})(x)
    inc, dbt, _ = _named()
    x = mf.layers.Concatenate()([Discretization(bin_boundaries=[0.0], output_mode="one_hot", name="oh")(inc), dbt])
    with pytest.raises(ValueError, match="Discretization 'oh'"):
        MonotonicDense(4, monotonicity_indicator={"Income": -1})(x)
    # A plain Dense after the monotone layer is refused by the model, naming it.
    inc, dbt, _ = _named()
    h = MonotonicDense(4, "relu", monotonicity_indicator={"Income": -1, "Debt": 1})(mf.layers.Concatenate()([inc, dbt]))
    with pytest.raises(ValueError, match=r"feature 'Income' is declared monotone \(-1\).* Dense 'plain_head'"):
        Model([inc, dbt], Dense(1, name="plain_head")(h))
    # A side path that skips the monotone layer is refused too.
    inc, dbt, _ = _named()
    x = mf.layers.Concatenate()([inc, dbt])
    h = MonotonicDense(4, "relu", monotonicity_indicator={"Income": -1})(x)
    side = Dense(2, name="side")(x)
    with pytest.raises(ValueError, match="Dense 'side'"):
        Model([inc, dbt], MonotonicDense(1)(mf.layers.Concatenate()([h, side])))
    # A gelu Activation after the monotone layer.
    inc, dbt, _ = _named()
    h = MonotonicDense(4, monotonicity_indicator={"Income": -1})(mf.layers.Concatenate()([inc, dbt]))
    with pytest.raises(ValueError, match="Activation 'act_gelu'"):
        Model([inc, dbt], mf.layers.Activation("gelu", name="act_gelu")(h))
    # Indicator 0 on a hidden unit in the next layer lets the feature through unconstrained.
    inc, dbt, _ = _named()
    h = MonotonicDense(2, "relu", monotonicity_indicator={"Income": -1})(mf.layers.Concatenate()([inc, dbt]))
    with pytest.raises(ValueError, match="MonotonicDense 'open_head'"):
        Model([inc, dbt], MonotonicDense(1, monotonicity_indicator=[1, 0], name="open_head")(h))


def test_monotone_layers_after_the_declaration_are_accepted():
    inc, dbt, _ = _named()
    x = mf.layers.Concatenate()([Normalization(mean=3.0, variance=2.0)(inc), dbt])
    mono = MonotonicDense(4, "relu", monotonicity_indicator={"Income": -1, "Debt": 1})
    h = Dropout(0.2)(mf.layers.Activation("tanh")(mono(x)))
    out = MonotonicDense(1, "sigmoid", is_convex=True)(mf.layers.Concatenate()([h, h]))
    m = Model([inc, dbt], out)
    assert m.monotonic_features == {"Income": -1, "Debt": 1}
    assert mono.resolved_indicator == [-1, 1]


# -- trained models on the bundled credit data ----------------------------------------------------
def _credit():
    df = mf.datasets.load_credit()
    y = (df["Status"] == "bad").to_numpy(np.float32)
    return df.drop(columns="Status"), y


def _monotone_model(train, declared=MONOTONE, seed=0):
    mf.utils.set_random_seed(seed)
    fs = FeatureSpace.from_dataframe(train)
    fs.adapt(train)
    h = MonotonicDense(32, "relu", monotonicity_indicator=declared, name="monotone")(fs.get_encoded_features())
    out = MonotonicDense(1, "sigmoid", is_convex=True, name="score")(Dropout(0.2)(h))
    model = Model(fs.get_inputs(), out)
    model.compile("adam", "binary_crossentropy")
    return model, fs


def _unconstrained_model(train, seed=0):
    mf.utils.set_random_seed(seed)
    fs = FeatureSpace.from_dataframe(train)
    fs.adapt(train)
    h = Dense(32, activation="relu")(fs.get_encoded_features())
    model = Model(fs.get_inputs(), Dense(1, activation="sigmoid")(Dropout(0.2)(h)))
    model.compile("adam", "binary_crossentropy")
    return model


def _rows(x, n=10_000):
    return x.sample(n=n, replace=True, random_state=1).reset_index(drop=True)


def _assert_no_violations(model, x):
    reports = check_monotonicity(model, x, MONOTONE, grid=50)
    assert set(reports) == set(MONOTONE)
    for f, r in reports.items():
        assert r.checked == len(x) * 49
        assert r.count == 0 and r.max_violation == 0.0 and r.rows.size == 0, f"{f}: {r}"
    return reports


@pytest.fixture(scope="module")
def trained():
    x, y = _credit()
    model, fs = _monotone_model(x)
    model.fit(x, y, epochs=8, batch_size=64, verbose=0)
    return model, fs, x, y


def test_feature_space_exposes_encoded_columns(trained):
    _, fs, _, _ = trained
    cols = fs.feature_columns()
    assert list(cols)[:3] == list(fs.features)[:3]
    flat = sorted(c for v in cols.values() for c in v)
    assert flat == list(range(len(flat)))  # every encoded column belongs to exactly one feature
    assert fs.get_encoded_features().shape[1] == len(flat)


def test_zero_violations_after_training_and_after_loading(trained, tmp_path):
    model, _, x, _ = trained
    big = _rows(x)
    _assert_no_violations(model, big)
    path = tmp_path / "monotone.maas"
    model.save(path)
    loaded = mf.models.load_model(path)
    assert loaded.monotonic_features == MONOTONE
    np.testing.assert_array_equal(loaded.predict(x.iloc[:200]), model.predict(x.iloc[:200]))
    _assert_no_violations(loaded, big)
    # The check is not vacuous: an unconstrained network on the same data moves against the policy.
    free = _unconstrained_model(x)
    free.fit(x, _credit()[1], epochs=8, batch_size=64, verbose=0)
    reports = check_monotonicity(free, big.iloc[:2000], MONOTONE, grid=50)
    assert sum(r.count for r in reports.values()) > 0


def test_adversarial_training_cannot_break_the_guarantee():
    x, _ = _credit()
    # A target that rises with Income and falls with Debt: the opposite of the declaration.
    inc = x["Income"].fillna(x["Income"].median()).to_numpy()
    dbt = x["Debt"].fillna(0).to_numpy()
    score = (inc - inc.mean()) / inc.std() - (dbt - dbt.mean()) / dbt.std()
    y = (score > np.median(score)).astype(np.float32)
    model, _ = _monotone_model(x, seed=3)
    model.fit(x, y, epochs=6, batch_size=64, verbose=0)
    big = _rows(x)
    _assert_no_violations(model, big)
    # The layer still learned: the weights the optimizer pushed to the "wrong" sign are held
    # at the declared sign by the forward pass, never through a projection of the stored kernel.
    layer = model.get_layer("monotone")
    assert np.any(layer.get_weights()[0] != layer.effective_kernel())


def test_check_monotonicity_inputs_and_errors(trained):
    model, _, x, _ = trained
    records = x.iloc[:50].to_dict("records")
    r = check_monotonicity(model, records, {"Income": -1}, grid=5)
    assert r["Income"].checked == 50 * 4 and r["Income"].ok
    assert set(check_monotonicity(model, x.iloc[:20])) == set(MONOTONE)  # the model's declarations by default
    with pytest.raises(ValueError, match=r"unknown feature\(s\) \['Incom'\]"):
        check_monotonicity(model, x.iloc[:20], {"Incom": -1})
    with pytest.raises(ValueError, match="feature 'Home' is a string feature"):
        check_monotonicity(model, x.iloc[:20], {"Home": 1})
    with pytest.raises(ValueError, match="direction of feature 'Income' must be"):
        check_monotonicity(model, x.iloc[:20], {"Income": 2})
    with pytest.raises(ValueError, match="grid must be at least 2"):
        check_monotonicity(model, x.iloc[:20], {"Income": -1}, grid=1)
    # Arrays, for a model of one input: features by the model's names.
    m = Sequential([Input(shape=(2,)), MonotonicDense(4, "tanh", monotonicity_indicator=[1, -1]), MonotonicDense(1)])
    m.build()
    m.layers[0].set_weights([np.full((2, 4), -1.0), np.zeros(4)])
    a = np.random.default_rng(0).normal(size=(30, 2)).astype(np.float32)
    rep = check_monotonicity(m, a, {"feature_0": 1, "feature_1": -1}, grid=7)
    assert rep["feature_0"].ok and rep["feature_1"].ok
    wrong = check_monotonicity(m, a, {"feature_0": -1}, grid=7)["feature_0"]
    assert wrong.count == 30 * 6 and wrong.rows.tolist() == list(range(30)) and wrong.max_violation > 0


def test_reason_codes_never_cite_a_feature_against_its_direction(trained):
    model, _, x, _ = trained
    rows = x.iloc[:300]
    complete = x[list(MONOTONE)].notna().all(axis=1).to_numpy()
    base = x.iloc[[int(np.flatnonzero(complete)[7])]]
    cited = 0
    for i, row in enumerate(model.reasons(rows, top_k=13, baseline=base)):
        for r in row:
            f = r["feature"]
            if f in MONOTONE:
                cited += 1
                assert r["contribution"] > 0
                # Raising the risk through a decreasing feature needs a value below the baseline's,
                # and the other way round (a missing value counts as its imputed median).
                v = rows[f].iloc[i] if np.isfinite(rows[f].iloc[i]) else x[f].median()
                assert MONOTONE[f] * (v - base[f].iloc[0]) > 0, (f, v, base[f].iloc[0])
    assert cited > 0


def test_isotonic_calibration_keeps_the_declaration(trained):
    model, _, x, y = trained
    calibrated = mf.calibration.calibrate(model, x.iloc[:2000], y[:2000], method="isotonic")
    assert calibrated.monotonic_features == MONOTONE
    small = _rows(x, 1000)
    for r in check_monotonicity(calibrated, small, grid=20).values():
        assert r.ok


def test_platt_calibration_is_checked_with_its_weights(trained, tmp_path):
    model, _, x, y = trained
    calibrated = mf.calibration.calibrate(model, x.iloc[:2000], y[:2000], method="platt")
    assert calibrated.monotonic_features == MONOTONE
    path = tmp_path / "platt.maas"
    calibrated.save(path)
    assert mf.models.load_model(path).monotonic_features == MONOTONE
    # A decreasing map (negative slope) would turn every declared direction around: refused.
    layer = calibrated.layers[-1]
    layer.set_weights([np.array([-1.0]), np.array([0.0])])
    with pytest.raises(ValueError, match="through Calibration 'calibration'"):
        _ = calibrated.monotonic_features
    with pytest.raises(ValueError, match="through Calibration 'calibration'"):
        calibrated.save(tmp_path / "bad.maas") or mf.models.load_model(tmp_path / "bad.maas")


def test_onnx_export_uses_the_effective_kernel(trained, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    inc, dbt, _ = _named()
    mono = MonotonicDense(6, "elu", monotonicity_indicator={"Income": -1, "Debt": 1})
    m = Model([inc, dbt], MonotonicDense(1, "sigmoid", is_convex=True)(mono(mf.layers.Concatenate()([inc, dbt]))))
    m.build()
    rng = np.random.default_rng(2)
    mono.set_weights([rng.normal(size=(2, 6)), rng.normal(size=6)])
    path = tmp_path / "m.onnx"
    m.export(path, format="onnx")
    sess = ort.InferenceSession(str(path))
    feeds = {"Income": rng.normal(size=(40, 1)).astype(np.float32), "Debt": rng.normal(size=(40, 1)).astype(np.float32)}
    got = sess.run(None, feeds)[0]
    np.testing.assert_allclose(got, m.predict(feeds), rtol=1e-5, atol=1e-6)


def test_keras_export_refuses_it_by_name(tmp_path):
    m = Sequential([Input(shape=(3,)), MonotonicDense(2, name="mono")])
    m.build()
    with pytest.raises(ValueError, match="MonotonicDense"):
        m.save(tmp_path / "m.keras")


def test_cv_auc_close_to_unconstrained():
    """A cheap version of benchmarks/bench_monotonic_cv.py: one stratified split."""
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

    x, y = _credit()
    tr, te = train_test_split(np.arange(len(y)), test_size=0.3, stratify=y, random_state=0)
    aucs = []
    for make in (lambda d: _monotone_model(d)[0], _unconstrained_model):
        model = make(x.iloc[tr])
        model.fit(x.iloc[tr], y[tr], epochs=15, batch_size=64, verbose=0)
        aucs.append(roc_auc_score(y[te], model.predict(x.iloc[te]).ravel()))
    assert aucs[0] > 0.8 and aucs[0] >= aucs[1] - 0.015, aucs


def test_declarations_by_name_need_named_inputs(trained):
    m = Sequential([Input(shape=(3,)), MonotonicDense(2, monotonicity_indicator={"Income": -1})])
    with pytest.raises(ValueError, match="resolved when the layer is called on FeatureSpace encoded features"):
        m.build()
    model, _, x, _ = trained
    values = np.ones((2, len(mf.explain.explained_feature_names(model))))
    with pytest.raises(ValueError, match="need the explained inputs"):
        mf.explain.reasons_from_attributions(model, values)
    fs = FeatureSpace({"Income": "float_normalized"}, output_mode="dict")
    fs.adapt(x)
    with pytest.raises(ValueError, match="feature_columns needs output_mode='concat'"):
        fs.feature_columns()


def test_served_reasons_respect_the_declaration(trained, tmp_path):
    model, _, x, _ = trained
    put(str(tmp_path), "pd", 1, model)
    loaded = mf.models.load_model(str(tmp_path / "pd" / "1" / "model.maas"))
    rows = x.iloc[:40]
    records = [
        {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
        for r in rows.to_dict("records")
    ]
    with ServerThread(create_app(str(tmp_path), poll_seconds=0)) as s:
        r = requests.post(
            s.url + "/v1/explain", json={"model_name": "pd", "input_data": records, "top_k": 13}, timeout=60
        )
    assert r.status_code == 200, r.text
    assert r.json()["reasons"] == loaded.reasons(rows, top_k=13)


def test_woe_encoding_keeps_a_declared_direction():
    """WoEEncoding with a monotone trend is a monotone step in its raw value (monotonic_direction):
    a model declaring Income -1 and Debt +1 through WoE bins has 0 violations after training."""
    df = mf.datasets.load_credit()
    y = (df["Status"] == "bad").astype("float32").to_numpy()
    inc, debt = Input((1,), name="Income"), Input((1,), name="Debt")
    wi = WoEEncoding(monotonic_trend="descending")
    wi.adapt(df[["Income"]].to_numpy(np.float32), y)
    wd = WoEEncoding(monotonic_trend="ascending")
    wd.adapt(df[["Debt"]].to_numpy(np.float32), y)
    assert {wi.monotonic_direction(), wd.monotonic_direction()} <= {1, -1}
    h = Concatenate()([wi(inc), wd(debt)])
    h = MonotonicDense(8, activation="relu", monotonicity_indicator={"Income": -1, "Debt": 1})(h)
    model = Model([inc, debt], MonotonicDense(1, activation="sigmoid", monotonicity_indicator=1)(h))
    model.compile("adam", "binary_crossentropy")
    x = {"Income": df[["Income"]].to_numpy(np.float32), "Debt": df[["Debt"]].to_numpy(np.float32)}
    model.fit(x, y, epochs=2, verbose=0)
    assert model.monotonic_features == {"Income": -1, "Debt": 1}
    report = check_monotonicity(model, df[["Income", "Debt"]].fillna(0), {"Income": -1, "Debt": 1})
    assert report["Income"].count == 0 and report["Debt"].count == 0
    assert report["Income"].checked > 0
    # a string feature's WoE has no order: declaring it is refused by name
    home = Input((1,), name="Home", dtype="string")
    wh = WoEEncoding()
    wh.adapt(df[["Home"]].fillna("missing").to_numpy(object), y)
    with pytest.raises(ValueError, match="Home"):
        MonotonicDense(1, monotonicity_indicator={"Home": 1})(wh(home))


def test_featurespace_declares_monotone_features_by_name():
    df = mf.datasets.load_credit().head(800)
    y = (df.pop("Status") == "bad").astype("float32").to_numpy()
    fs = FeatureSpace.from_dataframe(df, monotonic={"Income": -1, "Debt": 1})
    fs.adapt(df)
    assert fs.monotonic == {"Income": -1, "Debt": 1}
    h = MonotonicDense(8, activation="relu", monotonic=fs.monotonic)(fs.get_encoded_features())
    model = Model(fs.get_inputs(), MonotonicDense(1, activation="sigmoid")(h))
    model.compile("adam", "binary_crossentropy")
    model.fit(df, y, epochs=1, verbose=0)
    assert model.monotonic_features == {"Income": -1, "Debt": 1}
    report = check_monotonicity(model, df.head(200), fs.monotonic, grid=10)
    assert all(r.count == 0 and r.checked > 0 for r in report.values())


@pytest.mark.parametrize(
    "features, monotonic, match",
    [
        ({"Income": "float_normalized"}, {"Salary": 1}, "'Salary', which is not a feature"),
        ({"Income": "float_normalized"}, {"Income": 2}, r"monotonic\['Income'\] must be \+1 or -1"),
        ({"Home": "string_categorical"}, {"Home": 1}, "'Home' is declared monotonic but is encoded as string_categ"),
        (
            {"Income": FeatureSpace.float_discretized(num_bins=5)},
            {"Income": -1},
            "'Income' is declared monotonic but is encoded as float_discretized with output_mode='one_hot'",
        ),
    ],
)
def test_featurespace_refuses_monotone_declarations_it_cannot_keep(features, monotonic, match):
    with pytest.raises(ValueError, match=match):
        FeatureSpace(features, monotonic=monotonic)


def test_monotonic_and_monotonicity_indicator_are_one_argument():
    with pytest.raises(ValueError, match="not both"):
        MonotonicDense(4, monotonicity_indicator=-1, monotonic={"Income": 1})
