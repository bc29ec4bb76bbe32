"""Whole-model gradient checks: the analytic gradient that the C++ backward pass writes into the
gradient arena is compared, parameter by parameter, with central finite differences of the batch
loss returned by Trainer.compute_gradients.

Tolerance (documented once, used everywhere): the model runs in float32, so the loss carries
~1e-7 relative rounding noise. With a step eps = 3e-3 that noise contributes < 1e-4 to a numeric
derivative, and the O(eps^2) truncation error of the central difference stays below ~1e-4 for
these O(1) models. A gradient entry passes when
    |analytic - numeric| <= GRAD_RTOL * max(|analytic|, |numeric|) + GRAD_ATOL
with GRAD_RTOL = 2e-2 and GRAD_ATOL = 5e-4 (about 1% of a typical gradient entry here).
"""

import math

import numpy as np
import pytest

import maasfin as mf
from maasfin import _core, losses
from maasfin.layers import Activation, Add, Calibration, Concatenate, Dense, Dropout, MonotonicDense

ACTIVATIONS = _core.activation_names().split(", ")

EPS = 3e-3
GRAD_RTOL = 2e-2
GRAD_ATOL = 5e-4


# -- the checker ---------------------------------------------------------------------------------
def param_indices(model):
    """Arena indices of every real parameter (the arena also holds alignment padding)."""
    idx = []
    for layer in model.layers:
        for _, shape, off in layer._param_specs():
            idx.extend(range(off, off + int(np.prod(shape))))
    return np.array(idx, dtype=np.int64)


def randomize_params(model, rng, scale=0.6):
    """Random weights AND biases, so that no gradient is structurally zero."""
    params = model._graph.params
    idx = param_indices(model)
    params[idx] = (scale * rng.standard_normal(idx.size)).astype(np.float32)


def analytic_gradients(model, xs, y, w=None, training=False, seed=0):
    t = model._get_trainer(y.shape)
    loss = t.compute_gradients(xs, y, w, training, seed)
    return loss, model._graph.grads[param_indices(model)].astype(np.float64)


def numeric_gradients(model, xs, y, w=None, training=False, seed=0, eps=EPS):
    t = model._get_trainer(y.shape)
    params = model._graph.params
    out = []
    for i in param_indices(model):
        old = params[i]
        up, down = np.float32(old + eps), np.float32(old - eps)
        params[i] = up
        lp = t.compute_gradients(xs, y, w, training, seed)
        params[i] = down
        lm = t.compute_gradients(xs, y, w, training, seed)
        params[i] = old
        # Divide by the step actually taken after rounding to float32.
        out.append((lp - lm) / (float(up) - float(down)))
    return np.array(out)


def assert_gradients_close(analytic, numeric, what=""):
    analytic, numeric = np.asarray(analytic, np.float64), np.asarray(numeric, np.float64)
    assert analytic.shape == numeric.shape
    # A check between two (near-)zero vectors proves nothing.
    assert np.max(np.abs(numeric)) > 1e-2, f"{what}: numeric gradient is ~0, the check would be vacuous"
    err = np.abs(analytic - numeric)
    bound = GRAD_RTOL * np.maximum(np.abs(analytic), np.abs(numeric)) + GRAD_ATOL
    bad = np.flatnonzero(err > bound)
    assert bad.size == 0, (
        f"{what}: {bad.size} gradient entries disagree; first at param {bad[0]}: "
        f"analytic {analytic[bad[0]]:.6g}, numeric {numeric[bad[0]]:.6g}"
    )


def check_model(model, xs, y, w=None, training=False, seed=0, what=""):
    loss, analytic = analytic_gradients(model, xs, y, w, training, seed)
    assert math.isfinite(loss)
    numeric = numeric_gradients(model, xs, y, w, training, seed)
    assert_gradients_close(analytic, numeric, what)
    # compute_gradients overwrites the arena (no accumulation) and is repeatable.
    loss2, analytic2 = analytic_gradients(model, xs, y, w, training, seed)
    assert loss2 == loss
    np.testing.assert_array_equal(analytic2, analytic)
    return loss, analytic


def compiled(model, loss):
    model.build()
    model.compile(optimizer="sgd", loss=loss)
    return model


def data(rng, n=8, d=3):
    return rng.standard_normal((n, d)).astype(np.float32)


# -- the checker itself catches wrong gradients ------------------------------------------------
def _reference_case(rng):
    m = compiled(mf.Sequential([Dense(4, activation="tanh", input_dim=3), Dense(2)]), "mse")
    randomize_params(m, rng)
    x, y = data(rng), rng.standard_normal((8, 2)).astype(np.float32)
    _, analytic = analytic_gradients(m, [x], y)
    return analytic, numeric_gradients(m, [x], y)


@pytest.mark.parametrize(
    "corruption", ["one_entry_10pct", "one_entry_sign", "all_scaled_0.9", "swap_two", "zero_bias_grads"]
)
def test_checker_flags_a_wrong_gradient(rng, corruption):
    analytic, numeric = _reference_case(rng)
    assert_gradients_close(analytic, numeric, "unmodified")  # the correct gradient passes
    bad = analytic.copy()
    k = int(np.argmax(np.abs(bad)))
    if corruption == "one_entry_10pct":
        bad[k] *= 1.1
    elif corruption == "one_entry_sign":
        bad[k] = -bad[k]
    elif corruption == "all_scaled_0.9":
        bad *= 0.9
    elif corruption == "swap_two":
        j = int(np.argsort(np.abs(bad))[-2])
        bad[[k, j]] = bad[[j, k]]
    else:  # the last 2 entries are the output bias
        bad[-2:] = 0.0
    with pytest.raises(AssertionError):
        assert_gradients_close(bad, numeric, corruption)


def test_checker_refuses_vacuous_comparison():
    z = np.zeros(5)
    with pytest.raises(AssertionError, match="vacuous"):
        assert_gradients_close(z, z)


# -- activations -------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", [_core.Backend.reference, _core.Backend.onednn], ids=["reference", "onednn"])
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_hidden_activation_gradients(rng, act, backend):
    _core.set_backend(backend)
    m = compiled(mf.Sequential([Dense(4, activation=act, input_dim=3), Dense(2)]), "mse")
    randomize_params(m, rng)
    x, y = data(rng), rng.standard_normal((8, 2)).astype(np.float32)
    check_model(m, [x], y, what=f"hidden {act}")


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_output_activation_gradients(rng, act):
    m = compiled(mf.Sequential([Dense(4, activation="tanh", input_dim=3), Dense(3, activation=act)]), "mse")
    randomize_params(m, rng)
    x, y = data(rng), rng.standard_normal((8, 3)).astype(np.float32)
    check_model(m, [x], y, what=f"output {act}")


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_activation_layer_gradients(rng, act):
    m = compiled(mf.Sequential([Dense(4, input_dim=3), Activation(act), Dense(3), Activation("tanh")]), "mse")
    randomize_params(m, rng)
    x, y = data(rng), rng.standard_normal((8, 3)).astype(np.float32)
    check_model(m, [x], y, what=f"Activation({act})")


def test_dense_without_bias_gradients(rng):
    m = compiled(
        mf.Sequential([Dense(4, activation="elu", use_bias=False, input_dim=3), Dense(2, use_bias=False)]), "mse"
    )
    randomize_params(m, rng)
    assert param_indices(m).size == 3 * 4 + 4 * 2
    x, y = data(rng), rng.standard_normal((8, 2)).astype(np.float32)
    check_model(m, [x], y, what="no bias")


@pytest.mark.parametrize("method", ["platt", "beta", "isotonic"])
def test_calibration_layer_gradients(rng, method):
    """Gradients reach the layers before a Calibration through its backward (its own weights are
    non-trainable state with zero gradient, so only the Dense weights are perturbed)."""
    maps = {
        "platt": {"slope": 1.7, "intercept": -0.4},
        "beta": {"a": 0.8, "b": 1.6, "c": 0.3},
        # knots away from this data's probabilities (0.41-0.60): a kink inside a finite difference breaks it
        "isotonic": {"x_thresholds": [0.0, 0.3, 0.55, 1.0], "y_thresholds": [0.05, 0.2, 0.75, 0.9]},
    }
    cal = Calibration.with_parameters(method, **maps[method])
    m = compiled(mf.Sequential([Dense(4, activation="tanh", input_dim=3), Dense(1, activation="sigmoid"), cal]), "mse")
    dense = np.array(
        [
            i
            for layer in m.layers[:2]
            for _, shape, off in layer._param_specs()
            for i in range(off, off + int(np.prod(shape)))
        ]
    )
    params = m._graph.params
    params[dense] = (0.6 * rng.standard_normal(dense.size)).astype(np.float32)
    x, y = data(rng), rng.random((8, 1)).astype(np.float32)
    t = m._get_trainer(y.shape)
    t.compute_gradients([x], y, None, False, 0)
    analytic = m._graph.grads[dense].astype(np.float64)
    assert np.all(m._graph.grads[param_indices(m)[dense.size :]] == 0)  # the calibrator's state
    numeric = []
    for i in dense:
        old = params[i]
        up, down = np.float32(old + EPS), np.float32(old - EPS)
        params[i] = up
        lp = t.compute_gradients([x], y, None, False, 0)
        params[i] = down
        lm = t.compute_gradients([x], y, None, False, 0)
        params[i] = old
        numeric.append((lp - lm) / (float(up) - float(down)))
    assert_gradients_close(analytic, np.array(numeric), f"Calibration({method})")


# -- losses ------------------------------------------------------------------------------------
def _binary(rng, n, d=1):
    return (rng.random((n, d)) < 0.5).astype(np.float32)


def _onehot(rng, n, d):
    return np.eye(d, dtype=np.float32)[rng.integers(0, d, n)]


LOSS_CASES = {
    # name: (output width, output activation, loss identifier, target maker)
    "bce": (1, "sigmoid", "binary_crossentropy", lambda r, n: _binary(r, n)),
    "bce_multilabel": (3, "sigmoid", "binary_crossentropy", lambda r, n: _binary(r, n, 3)),
    "bce_from_logits": (1, "linear", losses.BinaryCrossentropy(from_logits=True), lambda r, n: _binary(r, n)),
    "bce_soft_targets": (2, "sigmoid", "bce", lambda r, n: r.random((n, 2)).astype(np.float32)),
    "cce_softmax": (3, "softmax", "categorical_crossentropy", lambda r, n: _onehot(r, n, 3)),
    "cce_soft_targets": (
        3,
        "softmax",
        "categorical_crossentropy",
        lambda r, n: r.dirichlet(np.ones(3), n).astype(np.float32),
    ),
    "cce_sigmoid_unnormalised": (3, "sigmoid", "categorical_crossentropy", lambda r, n: _onehot(r, n, 3)),
    "cce_from_logits": (3, "linear", losses.CategoricalCrossentropy(from_logits=True), lambda r, n: _onehot(r, n, 3)),
    "sparse_cce": (
        4,
        "softmax",
        "sparse_categorical_crossentropy",
        lambda r, n: r.integers(0, 4, (n, 1)).astype(np.float32),
    ),
    "sparse_cce_from_logits": (
        4,
        "linear",
        losses.SparseCategoricalCrossentropy(from_logits=True),
        lambda r, n: r.integers(0, 4, (n, 1)).astype(np.float32),
    ),
    "mse": (2, "linear", "mse", lambda r, n: r.standard_normal((n, 2)).astype(np.float32)),
    "mae": (2, "linear", "mae", lambda r, n: r.standard_normal((n, 2)).astype(np.float32)),
    "hinge_01": (2, "linear", "hinge", lambda r, n: _binary(r, n, 2)),
    "hinge_pm1": (2, "linear", "hinge", lambda r, n: 2 * _binary(r, n, 2) - 1),
}


def _loss_model(rng, case):
    width, out_act, loss, make_y = LOSS_CASES[case]
    m = compiled(mf.Sequential([Dense(5, activation="tanh", input_dim=3), Dense(width, activation=out_act)]), loss)
    randomize_params(m, rng)
    x = data(rng, n=10)
    y = make_y(rng, 10)
    return m, x, y


@pytest.mark.parametrize("case", sorted(LOSS_CASES))
def test_loss_gradients(rng, case):
    m, x, y = _loss_model(rng, case)
    loss, _ = check_model(m, [x], y, what=case)
    # The loss the trainer differentiates is the loss the Python class computes on the predictions.
    expected = m.loss(y, m.predict(x))
    assert loss == pytest.approx(expected, rel=1e-5, abs=1e-7)


@pytest.mark.parametrize("case", ["bce", "cce_softmax", "sparse_cce", "mse", "mae", "hinge_01"])
def test_sample_weighted_gradients(rng, case):
    m, x, y = _loss_model(rng, case)
    w = rng.uniform(0.0, 3.0, size=10).astype(np.float32)
    w[3] = 0.0
    loss_w, grads_w = check_model(m, [x], y, w, what=f"{case} weighted")
    loss_1, grads_1 = analytic_gradients(m, [x], y, None)
    # Weights enter as sum_i w_i l_i / N ...
    per_sample = np.array([m.loss(y[i : i + 1], m.predict(x[i : i + 1])) for i in range(10)])
    assert loss_w == pytest.approx(np.sum(w * per_sample) / 10, rel=1e-5)
    assert loss_1 == pytest.approx(np.mean(per_sample), rel=1e-5)
    # ... so unit weights reproduce the unweighted gradient, and real weights change it.
    _, grads_ones = analytic_gradients(m, [x], y, np.ones(10, np.float32))
    np.testing.assert_allclose(grads_ones, grads_1, rtol=1e-6, atol=1e-8)
    assert not np.allclose(grads_w, grads_1, rtol=1e-2, atol=1e-4)


def test_zero_weight_rows_do_not_contribute(rng):
    m, x, y = _loss_model(rng, "mse")
    w = np.array([1, 1, 1, 1, 1, 0, 0, 0, 0, 0], np.float32)
    loss_w, grads_w = analytic_gradients(m, [x], y, w)
    loss_half, grads_half = analytic_gradients(m, [x[:5]], y[:5], None)
    # Same rows, but the weighted batch divides by N = 10 instead of 5.
    assert loss_w == pytest.approx(loss_half / 2, rel=1e-5)
    np.testing.assert_allclose(grads_w, grads_half / 2, rtol=1e-5, atol=1e-7)


def test_weights_summing_to_zero_give_zero_loss_and_gradients(rng):
    # Keras's divide_no_nan for "mean_with_sample_weight": no 0/0 in the gradient step either.
    m = compiled(
        mf.Sequential([Dense(4, activation="tanh", input_dim=3), Dense(1)]),
        losses.MeanSquaredError(reduction="mean_with_sample_weight"),
    )
    randomize_params(m, rng)
    x, y = data(rng), rng.standard_normal((8, 1)).astype(np.float32)
    loss, grads = analytic_gradients(m, [x], y, np.zeros(8, np.float32))
    assert loss == 0.0
    np.testing.assert_array_equal(grads, 0.0)


# -- dropout in training mode ------------------------------------------------------------------
def _dropout_model(rng, rate=0.5):
    m = compiled(mf.Sequential([Dense(8, activation="tanh", input_dim=3), Dropout(rate, seed=7), Dense(1)]), "mse")
    randomize_params(m, rng)
    return m, data(rng, n=12), rng.standard_normal((12, 1)).astype(np.float32)


def test_dropout_training_gradients(rng):
    m, x, y = _dropout_model(rng)
    loss_train, _ = check_model(m, [x], y, training=True, seed=42, what="dropout training")
    loss_infer, _ = analytic_gradients(m, [x], y, training=False)
    loss_other_seed, _ = analytic_gradients(m, [x], y, training=True, seed=43)
    # Dropout is really active in training and its mask depends on the step seed.
    assert loss_train != pytest.approx(loss_infer, rel=1e-4)
    assert loss_train != pytest.approx(loss_other_seed, rel=1e-4)


def test_dropout_mask_and_scale_by_hand(rng):
    # One row through Dense(8, tanh) -> Dropout(0.5) -> Dense(1) with mse, re-derived in NumPy:
    # dropped units get exactly zero gradient; kept ones carry the 1/(1-rate) = 2 scale.
    m, x, y = _dropout_model(rng, rate=0.5)
    x1, y1 = x[:1], y[:1]
    loss, g = analytic_gradients(m, [x1], y1, training=True, seed=5)
    w1, b1, w2, b2 = [a.astype(np.float64) for a in m.get_weights()]
    kernel_grad = g[: 3 * 8].reshape(3, 8)
    kept = np.any(kernel_grad != 0.0, axis=0)
    assert 0 < kept.sum() < 8, "with rate 0.5 some but not all of 8 units should drop for one row"
    h = np.tanh(x1.astype(np.float64) @ w1 + b1)
    out = (h * kept * 2.0) @ w2 + b2
    assert loss == pytest.approx(float(np.mean((out - y1) ** 2)), rel=1e-5)
    d_out = 2.0 * (out - y1)  # mse over one row and one column
    d_pre = (d_out @ w2.T) * kept * 2.0 * (1.0 - h**2)
    np.testing.assert_allclose(kernel_grad, x1.astype(np.float64).T @ d_pre, rtol=1e-4, atol=1e-6)
    # The output kernel sees the dropped-and-scaled activations.
    np.testing.assert_allclose(g[3 * 8 + 8 : 3 * 8 + 8 + 8], ((h * kept * 2.0).T @ d_out).ravel(), rtol=1e-4, atol=1e-6)


def test_dropout_rate_zero_training_equals_inference(rng):
    m, x, y = _dropout_model(rng, rate=0.0)
    loss_t, g_t = analytic_gradients(m, [x], y, training=True, seed=9)
    loss_i, g_i = analytic_gradients(m, [x], y, training=False)
    assert loss_t == loss_i
    np.testing.assert_array_equal(g_t, g_i)


# -- functional graphs -------------------------------------------------------------------------
def _functional(kind):
    x = mf.Input(shape=(3,))
    if kind == "add_fanout_input":
        a, b = Dense(4)(x), Dense(4)(x)
        out = Dense(1)(Add()([a, b]))
    elif kind == "concat_fanout_input":
        a, b = Dense(4, activation="relu")(x), Dense(2, activation="sigmoid")(x)
        out = Dense(2)(Concatenate()([a, b]))
    elif kind == "fanout_hidden":  # one layer output feeds two layers: its gradient must accumulate
        h = Dense(5, activation="tanh")(x)
        a, b = Dense(4, activation="elu")(h), Dense(4, activation="swish")(h)
        out = Dense(1)(Add()([a, b]))
    elif kind == "fanout_hidden_concat_and_skip":
        h = Dense(4, activation="tanh")(x)
        a = Dense(3, activation="gelu")(h)
        out = Dense(2)(Concatenate()([h, a]))  # h reaches the output directly and through a
    elif kind == "add_same_tensor_twice":
        h = Dense(4, activation="sigmoid")(x)
        out = Dense(1)(Add()([h, h]))
    elif kind == "three_way_add":
        h = Dense(4, activation="tanh")(x)
        out = Dense(1)(Add()([Dense(4)(h), Dense(4, activation="relu")(h), h]))
    else:
        raise AssertionError(kind)
    return mf.Model(inputs=x, outputs=out)


@pytest.mark.parametrize(
    "kind",
    [
        "add_fanout_input",
        "concat_fanout_input",
        "fanout_hidden",
        "fanout_hidden_concat_and_skip",
        "add_same_tensor_twice",
        "three_way_add",
    ],
)
def test_functional_graph_gradients(rng, kind):
    m = compiled(_functional(kind), "mse")
    randomize_params(m, rng)
    x = data(rng, n=10)
    y = rng.standard_normal((10,) + tuple(m._graph.output_shape)).astype(np.float32)
    check_model(m, [x], y, what=kind)


def test_two_input_model_gradients(rng):
    x1, x2 = mf.Input(shape=(3,)), mf.Input(shape=(2,))
    h = Concatenate()([Dense(4, activation="tanh")(x1), x2])
    out = Dense(1, activation="sigmoid")(Dense(3, activation="selu")(h))
    m = compiled(mf.Model(inputs=[x1, x2], outputs=out), "binary_crossentropy")
    randomize_params(m, rng)
    a, b = data(rng, n=10, d=3), data(rng, n=10, d=2)
    y = _binary(rng, 10)
    check_model(m, [a, b], y, what="two inputs")


# -- MonotonicDense: gradients through s |W| and the convex / concave / saturated shapes --------------
@pytest.mark.parametrize("backend", [_core.Backend.reference, _core.Backend.onednn], ids=["reference", "onednn"])
@pytest.mark.parametrize(
    "act, kwargs",
    [
        ("relu", {}),
        ("tanh", {}),
        ("sigmoid", {"activation_weights": (1, 1, 1)}),
        ("elu", {"is_convex": True}),
        ("selu", {"is_concave": True}),
        ("leaky_relu", {}),
        ("linear", {}),
    ],
)
def test_monotonic_dense_gradients(rng, act, kwargs, backend):
    _core.set_backend(backend)
    layers = [
        mf.Input(shape=(3,)),
        MonotonicDense(6, activation=act, monotonicity_indicator=[1, -1, 0], **kwargs),
        MonotonicDense(2, activation="tanh"),
    ]
    m = compiled(mf.Sequential(layers), "mse")
    # Central differences need every kink (|w| at 0; relu/selu/leaky_relu at 0, the saturated
    # shape at -1 and 1) farther than a step from the point: draw until the point is clear.
    for _ in range(200):
        randomize_params(m, rng)
        x = data(rng)
        w = [layer.get_weights() for layer in m.layers]
        h = x @ layers[1].effective_kernel() + w[0][1]
        if min(np.abs(w[0][0]).min(), np.abs(w[1][0]).min()) > 0.05 and np.abs(h[..., None] - [-1, 0, 1]).min() > 0.05:
            break
    y = rng.standard_normal((8, 2)).astype(np.float32)
    check_model(m, [x], y, what=f"MonotonicDense({act}, {kwargs})")
