"""Calibration as part of the model (maasfin.calibration, maasfin.layers.Calibration): the fits against
scikit-learn, the layer's forward and backward against NumPy references and finite differences,
calibrate/adjust_prior on the bundled credit data, and the calibrated model saved, served, explained,
exported to ONNX and refused by the Keras writer."""

import os

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
import requests
from serving_support import ServerThread
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

import maasfin as mf
from maasfin import _core
from maasfin.calibration import adjust_prior, calibrate
from maasfin.demo import prepare_credit
from maasfin.layers import Calibration, Dense, Input
from maasfin.metrics import expected_calibration_error, roc_auc_score
from maasfin.models import Model, Sequential
from maasfin.serving import create_app

EPS = 1e-7  # the layer's clip of p before the logarithms


def _miscalibrated(n=3000, seed=0, power=1.6, ties=False):
    rng = np.random.default_rng(seed)
    p = rng.random(n).astype(np.float32)
    if ties:
        p = np.round(p, 2).astype(np.float32)
    y = (rng.random(n) < p.astype(np.float64) ** power).astype(np.float64)
    return p.astype(np.float64), y  # float32 values, as a model predicts them


def _logs(p):
    q = np.clip(p, EPS, 1 - EPS)
    return np.log(q), np.log(1 - q)


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _reference(layer, p):
    """The layer's map in float64, from its weights (the NumPy reference of the C++ forward)."""
    w = layer.parameters
    if layer.method == "isotonic":
        return np.interp(np.clip(p, w["x_thresholds"][0], w["x_thresholds"][-1]), w["x_thresholds"], w["y_thresholds"])
    lp, lq = _logs(p)
    if layer.method == "platt":
        return _sigmoid(w["slope"][0] * (lp - lq) + w["intercept"][0])
    return _sigmoid(w["a"][0] * lp - w["b"][0] * lq + w["c"][0])


def _eval_points():
    return np.r_[0.0, 1e-9, 1e-7, 0.0005, np.linspace(0.001, 0.999, 997), 0.9999, 1 - 1e-7, 1.0]


# -- fits against scikit-learn ------------------------------------------------------------------------
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_isotonic_matches_sklearn(ties, weighted):
    p, y = _miscalibrated(ties=ties)
    w = np.random.default_rng(3).uniform(0.2, 2.0, p.size) if weighted else None
    layer = Calibration("isotonic").fit(p, y, sample_weight=w)
    sk = IsotonicRegression(out_of_bounds="clip").fit(p, y, sample_weight=w)
    np.testing.assert_array_equal(layer.parameters["x_thresholds"], sk.X_thresholds_)
    np.testing.assert_allclose(layer.parameters["y_thresholds"], sk.y_thresholds_, rtol=0, atol=1e-7)
    assert layer.num_knots == sk.X_thresholds_.size > 10
    grid = np.r_[_eval_points(), p[:500]]
    got = layer(grid.astype(np.float32).reshape(-1, 1)).reshape(-1)
    np.testing.assert_allclose(got, sk.predict(grid.astype(np.float32).astype(np.float64)), rtol=0, atol=1e-6)


def test_platt_matches_sklearn_logistic_regression():
    p, y = _miscalibrated(power=2.2)
    lp, lq = _logs(p)
    w = np.random.default_rng(4).uniform(0.2, 2.0, p.size)
    for weights in (None, w):
        layer = Calibration("platt").fit(p, y, sample_weight=weights)
        sk = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10000).fit((lp - lq)[:, None], y, sample_weight=weights)
        got = layer.parameters
        assert got["slope"][0] == pytest.approx(sk.coef_[0, 0], rel=1e-5)
        assert got["intercept"][0] == pytest.approx(sk.intercept_[0], rel=1e-5, abs=1e-6)
        grid = _eval_points()
        out = layer(grid.astype(np.float32).reshape(-1, 1)).reshape(-1)
        np.testing.assert_allclose(out, sk.predict_proba((_logs(grid)[0] - _logs(grid)[1])[:, None])[:, 1], atol=1e-6)
    assert got["slope"][0] > 1.2  # the data were made miscalibrated: the fit moved away from the identity


def test_beta_matches_sklearn_logistic_regression():
    p, y = _miscalibrated(power=1.8)
    lp, lq = _logs(p)
    layer = Calibration("beta").fit(p, y)
    sk = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10000).fit(np.column_stack([lp, -lq]), y)
    got = layer.parameters
    assert [got["a"][0], got["b"][0]] == pytest.approx(list(sk.coef_[0]), rel=1e-5)
    assert got["c"][0] == pytest.approx(sk.intercept_[0], rel=1e-5)
    grid = _eval_points()
    out = layer(grid.astype(np.float32).reshape(-1, 1)).reshape(-1)
    gl, gq = _logs(grid)
    np.testing.assert_allclose(out, sk.predict_proba(np.column_stack([gl, -gq]))[:, 1], atol=1e-6)


def test_beta_refits_without_a_negative_coefficient():
    """As the authors' betacal: a negative a is set to 0 and b, c refitted, so the map never decreases."""
    rng = np.random.default_rng(9)
    p = rng.uniform(0.01, 0.99, 4000)
    lp, lq = _logs(p)
    y = (rng.random(p.size) < _sigmoid(-0.6 * lp - 2.0 * lq - 1.0)).astype(float)
    full = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10000).fit(np.column_stack([lp, -lq]), y)
    assert full.coef_[0, 0] < 0  # the unconstrained fit would decrease near 0
    got = Calibration("beta").fit(p, y).parameters
    one = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10000).fit(-lq[:, None], y)
    assert got["a"][0] == 0.0
    assert got["b"][0] == pytest.approx(one.coef_[0, 0], rel=1e-5)
    assert got["c"][0] == pytest.approx(one.intercept_[0], rel=1e-5)


# -- the layer: forward, backward, config ---------------------------------------------------------------
def _fitted(method):
    p, y = _miscalibrated(power=1.7)
    return Calibration(method, name=f"cal_{method}").fit(p, y)


@pytest.mark.parametrize("method", ["isotonic", "platt", "beta"])
def test_forward_equals_the_numpy_reference(method):
    layer = _fitted(method)
    grid = _eval_points().astype(np.float32).astype(np.float64)
    got = layer(grid.astype(np.float32).reshape(-1, 1)).reshape(-1)
    want = _reference(layer, grid)
    np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-9)  # float64 math, rounded once to float32
    assert np.all(np.diff(got) >= 0)  # monotone
    x = Input(shape=(1,))
    model = Model(x, layer(x))
    model.build()
    # NaN stops at the data boundary; the core itself propagates it
    assert np.isnan(model._graph.predict([np.array([[np.nan]], np.float32)], 1)[0, 0])


@pytest.mark.parametrize("method", ["isotonic", "platt", "beta"])
def test_backward_equals_finite_differences(method):
    if method == "isotonic":  # a fitted isotonic map is flat but for ramps between adjacent scores: use wide ones
        layer = Calibration.with_parameters(
            "isotonic", x_thresholds=[0.05, 0.3, 0.5, 0.9], y_thresholds=[0.02, 0.2, 0.7, 0.8]
        )
    else:
        layer = _fitted(method)
    x = Input(shape=(1,), name="p")
    model = Model(x, layer(x))
    model.build()
    grid = np.linspace(0.02, 0.98, 400)
    if method == "isotonic":  # central differences across a kink are meaningless: stay 2h away from knots
        knots = layer.parameters["x_thresholds"]
        grid = grid[np.min(np.abs(grid[:, None] - knots[None, :]), axis=1) > 2e-3]
    grid32 = grid.astype(np.float32).reshape(-1, 1)
    dx = _core.input_gradients(model._graph, [grid32], np.ones_like(grid32))[0].reshape(-1)
    h = 1e-3
    up = _reference(layer, grid32.astype(np.float64).reshape(-1) + h)
    down = _reference(layer, grid32.astype(np.float64).reshape(-1) - h)
    numeric = (up - down) / (2 * h)
    assert np.max(np.abs(numeric)) > 0.5
    np.testing.assert_allclose(dx, numeric, rtol=2e-3, atol=1e-4)
    # and against the model's own float32 outputs
    fu = model.predict(grid32 + np.float32(h)).reshape(-1).astype(np.float64)
    fd = model.predict(grid32 - np.float32(h)).reshape(-1).astype(np.float64)
    step = (grid32 + np.float32(h)).astype(np.float64) - (grid32 - np.float32(h)).astype(np.float64)
    np.testing.assert_allclose(dx, (fu - fd) / step.reshape(-1), rtol=5e-3, atol=2e-4)
    # clipped regions have no slope
    flat = np.array([[0.0], [1.0]], np.float32) if method != "isotonic" else np.array([[-0.5], [1.5]], np.float32)
    np.testing.assert_array_equal(_core.input_gradients(model._graph, [flat], np.ones_like(flat))[0], 0.0)


def test_layer_config_weights_and_identity():
    layer = Calibration("beta")
    assert layer.get_config()["method"] == "beta" and "num_knots" not in layer.get_config()
    for method in ("isotonic", "platt", "beta"):  # unfitted: the identity
        x = Input(shape=(1,))
        model = Model(x, Calibration(method)(x))
        p = np.linspace(0.001, 0.999, 50, dtype=np.float32).reshape(-1, 1)
        np.testing.assert_allclose(model.predict(p), p, atol=1e-6)
    iso = _fitted("isotonic")
    x = Input(shape=(1,))
    model = Model(x, iso(x))
    model.build()
    assert [w.shape for w in iso.get_weights()] == [(iso.num_knots,), (iso.num_knots,)]
    with pytest.raises(ValueError, match="x_thresholds' must increase strictly"):
        iso.set_weights([iso.get_weights()[0][::-1], iso.get_weights()[1]])
    with pytest.raises(ValueError, match="y_thresholds' must be non-decreasing"):
        iso.set_weights([iso.get_weights()[0], iso.get_weights()[1][::-1]])
    assert model.count_params() == 2 * iso.num_knots
    assert sum(l.count_trainable_params() for l in model.layers) == 0
    with pytest.raises(ValueError, match="expects one probability per sample"):
        Model(Input(shape=(2,)), Calibration("platt")(Input(shape=(2,))))
    with pytest.raises(ValueError, match="unknown method 'sigmoid'; valid methods: 'isotonic', 'platt', 'beta'"):
        Calibration("sigmoid")


# -- calibrate on the bundled credit data -------------------------------------------------------------
@pytest.fixture(scope="module")
def credit():
    """A credit model trained with class weights (bads x3), so its probabilities run high; split
    50% train / 30% calibration / 20% held out."""
    x_tr, x_te, y_tr, y_te, _ = prepare_credit(seed=42)
    x, y = pd.concat([x_tr, x_te]), np.r_[y_tr, y_te]
    idx = np.random.default_rng(0).permutation(len(y))
    a, b = int(0.5 * len(y)), int(0.8 * len(y))
    split = {"train": idx[:a], "cal": idx[a:b], "test": idx[b:]}
    mf.utils.set_random_seed(0)
    model = Sequential([Dense(32, activation="relu", input_dim=x.shape[1]), Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["auc", mf.metrics.BrierScore()])
    tr = split["train"]
    model.fit(x.iloc[tr], y[tr], epochs=10, batch_size=32, verbose=0, class_weight={0: 1.0, 1: 3.0})
    calibrated = {
        m: calibrate(model, x.iloc[split["cal"]], y[split["cal"]], method=m) for m in ("isotonic", "platt", "beta")
    }
    return model, calibrated, x, y, split


def test_calibration_lowers_ece_on_held_out_data(credit):
    model, calibrated, x, y, split = credit
    xt, yt = x.iloc[split["test"]], y[split["test"]]
    p = model.predict(xt).ravel()
    base_auc, base_ece = roc_auc_score(yt, p), expected_calibration_error(yt, p)
    assert base_ece > 0.1
    for method, cal in calibrated.items():
        q = cal.predict(xt).ravel()
        assert expected_calibration_error(yt, q) < base_ece / 2, method
        if method == "isotonic":
            # PAV's flat runs tie scores, which costs ROC AUC: on this seed -0.0007; over seeds 0-13
            # the change ranged from -0.0066 to +0.0009 (mean -0.002). It is the method's, not the
            # implementation's: scikit-learn's isotonic predictions rank identically.
            assert abs(roc_auc_score(yt, q) - base_auc) <= 0.002
            sk = IsotonicRegression(out_of_bounds="clip").fit(
                model.predict(x.iloc[split["cal"]]).ravel(), y[split["cal"]]
            )
            assert roc_auc_score(yt, q) == pytest.approx(roc_auc_score(yt, sk.predict(p)), abs=1e-6)
        else:  # monotone: the ranking, so ROC AUC, is unchanged
            assert roc_auc_score(yt, q) == pytest.approx(base_auc, abs=1e-4), method
    # the original model is untouched
    np.testing.assert_array_equal(model.predict(xt).ravel(), p)


def test_calibrated_model_keeps_compile_schema_and_appends_one_layer(credit):
    model, calibrated, x, y, split = credit
    cal = calibrated["platt"]
    assert [type(l).__name__ for l in cal.layers] == ["Dense", "Dense", "Calibration"]
    assert cal.layers[-1].name == "calibration"
    assert cal.feature_names == model.feature_names == list(x.columns)
    for a, b in zip(model.get_weights(), cal.get_weights()):
        np.testing.assert_array_equal(a, b)
    logs = cal.evaluate(x.iloc[split["test"]], y[split["test"]], verbose=0, return_dict=True)
    assert set(logs) == {"loss", "auc", "brier_score"}
    again = calibrate(cal, x.iloc[split["cal"]], y[split["cal"]], method="beta")  # a second calibrator stacks
    assert [l.name for l in again.layers][-2:] == ["calibration", "calibration_1"]


@pytest.mark.parametrize("method", ["isotonic", "platt", "beta"])
def test_calibrated_model_round_trips_maas_bit_for_bit(credit, tmp_path, method):
    _, calibrated, x, _, split = credit
    cal = calibrated[method]
    xt = x.iloc[split["test"]]
    path = tmp_path / "cal.maas"
    cal.save(path)
    back = mf.load_model(path)
    assert [type(l).__name__ for l in back.layers][-1] == "Calibration"
    for a, b in zip(cal.get_weights(), back.get_weights()):
        assert a.tobytes() == b.tobytes()
    assert cal.predict(xt).tobytes() == back.predict(xt).tobytes()
    assert mf.from_bytes(cal.to_bytes()).predict(xt).tobytes() == cal.predict(xt).tobytes()
    # the serving contract: prepare_inputs + predict_arrays
    assert back.predict_arrays(back.prepare_inputs(xt.head(40))).tobytes() == cal.predict(xt.head(40)).tobytes()


def test_calibrated_model_is_served_bit_for_bit(credit, tmp_path):
    _, calibrated, x, _, split = credit
    cal = calibrated["isotonic"]
    os.makedirs(tmp_path / "repo" / "pd" / "1")
    cal.save(tmp_path / "repo" / "pd" / "1" / "model.maas")
    xt = x.iloc[split["test"]].head(64)
    expected = cal.predict(xt)
    with ServerThread(create_app(tmp_path / "repo", poll_seconds=0)) as server:
        r = requests.post(
            server.url + "/v1/predict",
            json={"model_name": "pd", "input_data": xt.to_dict(orient="records")},
            timeout=30,
        )
    assert r.status_code == 200, r.text
    got = np.asarray(r.json()["predictions"], dtype=np.float64).astype(np.float32)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("method", ["isotonic", "platt", "beta"])
def test_onnx_export_equals_predict(credit, tmp_path, method):
    _, calibrated, x, _, split = credit
    # the layer alone: onnxruntime computes the same float64 arithmetic, rounded once
    layer = _fitted(method)
    inp = Input(shape=(1,), name="p")
    alone = Model(inp, layer(inp))
    alone.export(tmp_path / "alone.onnx", format="onnx")
    sess = ort.InferenceSession(os.fspath(tmp_path / "alone.onnx"), providers=["CPUExecutionProvider"])
    grid = np.r_[-0.5, _eval_points(), 1.5].astype(np.float32).reshape(-1, 1)
    got, want = sess.run(None, {"p": grid})[0], alone.predict(grid)
    ulps = np.abs(got.view(np.int32).astype(np.int64) - want.view(np.int32).astype(np.int64))
    assert ulps.max() <= 1
    # the whole credit model
    cal = calibrated[method]
    cal.export(tmp_path / "cal.onnx", format="onnx")
    sess = ort.InferenceSession(os.fspath(tmp_path / "cal.onnx"), providers=["CPUExecutionProvider"])
    xt = x.iloc[split["test"]].to_numpy(np.float32)
    got = sess.run(None, {sess.get_inputs()[0].name: xt})[0]
    np.testing.assert_allclose(got, cal.predict(xt), rtol=0, atol=1e-5)


def test_explanations_pass_through_the_calibrator(credit):
    model, calibrated, x, _, split = credit
    cal = calibrated["platt"]
    rows = x.iloc[split["test"]].head(8)
    attr = np.asarray(cal.explain(rows, steps=256))
    base = np.asarray(cal._explain_baseline, np.float32).reshape(1, -1)
    gap = cal.predict(rows).ravel() - cal.predict(base).ravel()
    np.testing.assert_allclose(attr.sum(axis=1), gap, atol=2e-3)  # completeness
    assert np.abs(gap).max() > 0.05
    # the calibrator changes the attributions (they sum to a different gap than the raw model's)
    raw = np.asarray(model.explain(rows, steps=256)).sum(axis=1)
    assert not np.allclose(raw, attr.sum(axis=1), atol=1e-3)


def test_keras_writer_refuses_the_calibrator_by_name(credit, tmp_path):
    _, calibrated, _, _, _ = credit
    with pytest.raises(ValueError, match=r"layer 'calibration' \(Calibration\).*Calibration has no Keras equivalent"):
        calibrated["platt"].save(tmp_path / "cal.keras")
    assert not os.path.exists(tmp_path / "cal.keras")


def test_calibrate_a_featurespace_model_on_raw_records():
    """Strings and missing values in, the FeatureSpace inside the model: the calibrated model keeps
    the inputs, reason codes and attribution baseline, and its score's drift reference is the
    calibrated scores' on the calibration data."""
    df = mf.datasets.load_credit()
    x, y = df.drop(columns="Status"), (df["Status"] == "bad").to_numpy(np.float64)
    fs = mf.utils.FeatureSpace.from_dataframe(x.iloc[:2000])
    fs.adapt(x.iloc[:2000])
    model = Model(
        fs.get_inputs(), Dense(1, activation="sigmoid")(Dense(8, activation="relu")(fs.get_encoded_features()))
    )
    model.compile("adam", "binary_crossentropy")
    model.fit(x.iloc[:2000], y[:2000], epochs=2, verbose=0)
    model.set_reason_codes({"Income": ("R01", "income too low")})
    cal = calibrate(model, x.iloc[2000:3500], y[2000:3500], method="beta")
    assert cal.signature.inputs == model.signature.inputs and cal.signature.strings
    assert cal._reason_codes == model._reason_codes and cal._explain_baseline == model._explain_baseline
    scores = cal.predict(x.iloc[2000:3500]).ravel()
    assert cal._drift_reference["score"] == mf.explain.monitoring.reference_bins(scores)
    assert cal._drift_reference["features"] == model._drift_reference["features"]
    records = x.iloc[3500:3600].to_dict(orient="records")
    back = mf.from_bytes(cal.to_bytes())
    assert back.predict(records).tobytes() == cal.predict(records).tobytes()
    q = model.predict(records).astype(np.float64).ravel()
    w = cal.layers[-1].parameters
    lp, lq = _logs(q)
    np.testing.assert_allclose(
        cal.predict(records).ravel(), _sigmoid(w["a"][0] * lp - w["b"][0] * lq + w["c"][0]), atol=1e-6
    )


# -- adjust_prior ----------------------------------------------------------------------------------------
def _logistic_model(seed=5):
    mf.utils.set_random_seed(seed)
    model = Sequential([Dense(1, activation="sigmoid", input_dim=4)])
    model.build((None, 4))
    x = np.random.default_rng(seed).normal(size=(300, 4)).astype(np.float32)
    return model, x


def test_adjust_prior_shifts_the_intercept_by_the_closed_form():
    model, x = _logistic_model()
    sample, population = 0.5, 0.04
    delta = np.log(population / (1 - population)) - np.log(sample / (1 - sample))
    adjusted = adjust_prior(model, sample, population)
    kernel, bias = (w.astype(np.float64) for w in model.get_weights())
    z = x.astype(np.float64) @ kernel + bias
    np.testing.assert_allclose(adjusted.predict(x), _sigmoid(z + delta), rtol=1e-6, atol=1e-9)
    assert adjusted.get_weights()[1][0] == np.float32(bias[0] + delta)
    assert [type(l).__name__ for l in adjusted.layers] == ["Dense"]
    # back again, and the mean prediction follows the prior
    back = adjust_prior(adjusted, population, sample)
    np.testing.assert_allclose(back.predict(x), model.predict(x), atol=1e-6)
    assert adjusted.predict(x).mean() < model.predict(x).mean() / 5


def test_adjust_prior_on_calibrators_and_other_outputs():
    model, x = _logistic_model(6)
    p = model.predict(x).ravel().astype(np.float64)
    y = (np.random.default_rng(1).random(p.size) < p).astype(float)
    delta = np.log(0.1 / 0.9) - np.log(0.3 / 0.7)
    platt = calibrate(model, x, y, method="platt")
    adj = adjust_prior(platt, 0.3, 0.1)
    assert len(adj.layers) == len(platt.layers)
    assert adj.layers[-1].parameters["intercept"][0] == pytest.approx(
        platt.layers[-1].parameters["intercept"][0] + delta, abs=1e-6
    )
    q = platt.predict(x).astype(np.float64).ravel()
    np.testing.assert_allclose(adj.predict(x).ravel(), _sigmoid(np.log(q / (1 - q)) + delta), rtol=2e-6)
    iso = calibrate(model, x, y, method="isotonic")
    adj = adjust_prior(iso, 0.3, 0.1)  # no intercept to move: a Platt layer (slope 1) is appended
    assert [l.name for l in adj.layers][-2:] == ["calibration", "prior_adjustment"]
    q = np.clip(iso.predict(x).astype(np.float64).ravel(), EPS, 1 - EPS)
    np.testing.assert_allclose(adj.predict(x).ravel(), _sigmoid(np.log(q) - np.log(1 - q) + delta), rtol=2e-6)
    with pytest.raises(ValueError, match="population_rate must be a number strictly between 0 and 1, got 1.5"):
        adjust_prior(model, 0.5, 1.5)
    with pytest.raises(ValueError, match="sample_rate must be a number strictly between 0 and 1, got 0"):
        adjust_prior(model, 0, 0.1)


# -- bad input ---------------------------------------------------------------------------------------------
def test_calibrate_refuses_bad_input_by_name():
    model, x = _logistic_model(7)
    y = (np.arange(300) % 3 == 0).astype(float)
    with pytest.raises(
        ValueError, match="calibrate: unknown method 'sigmoid'; valid methods: 'isotonic', 'platt', 'beta'"
    ):
        calibrate(model, x, y, method="sigmoid")
    with pytest.raises(ValueError, match=r"calibrate: y has one class only \(all 0, shape \(300,\)\)"):
        calibrate(model, x, np.zeros(300))
    with pytest.raises(
        ValueError, match=r"calibrate: y has shape \(299,\) \(299 values\) but model.predict\(x\) has shape \(300,\)"
    ):
        calibrate(model, x, y[:299])
    with pytest.raises(ValueError, match="calibrate: y must contain only 0 and 1"):
        calibrate(model, x, np.where(y == 1, 2.0, 0.0))
    with pytest.raises(ValueError, match="calibrate: y must contain only 0 and 1"):
        calibrate(model, x, np.r_[y[:-1], np.nan])
    two = Sequential([Dense(2, activation="softmax", input_dim=4)])
    with pytest.raises(
        ValueError, match=r"calibrate: model '.*' outputs shape \(None, 2\); calibration needs one probability column"
    ):
        calibrate(two, x, y)
    linear = Sequential([Dense(1, input_dim=4)])
    with pytest.raises(
        ValueError,
        match=r"calibrate: model '.*' predicts -?[0-9.e-]+ for row [0-9]+ of x \(shape \(300, 4\)\); "
        r"calibration needs probabilities in \[0, 1\]",
    ):
        calibrate(linear, x * 100, y)
    with pytest.raises(ValueError, match="expected 4|has shape|4 features|columns"):
        calibrate(model, x[:, :3], y)  # predictions from another model's inputs
