"""BatchNormalization, LayerNormalization, GaussianNoise, GaussianDropout, AlphaDropout,
regularizers and constraints, with Keras 3 semantics (keras/src/layers/normalization/*.py,
layers/regularization/*.py, regularizers/, constraints/):

* BatchNormalization in training normalises with the batch mean and the biased batch variance and
  updates moving = momentum * moving + (1 - momentum) * batch; inference (predict, evaluate, and
  fit of a layer with trainable=False) uses the moving statistics; the moving statistics are
  non-trainable weights the optimizer never touches.
* Regularization losses are added to the reported loss (evaluate included); an activity
  regularizer adds l1 * sum|y| + l2 * sum y^2 over the batch's outputs of the layer.
* Constraints are applied to the variable after each optimizer step.

Training-mode outputs are observed through the batch loss of `Trainer.compute_gradients(...,
training=True, seed)` (an MSE against chosen targets gives the first two moments of the output).
"""

import math

import numpy as np
import pytest

import maasfin as mf
from maasfin import constraints, regularizers
from maasfin.layers import (
    Activation,
    AlphaDropout,
    BatchNormalization,
    Concatenate,
    Dense,
    Dropout,
    GaussianDropout,
    GaussianNoise,
    LayerNormalization,
)

BN_EPS = 1e-3


# -- helpers ------------------------------------------------------------------------------------------
def param_indices(model, trainable_only=False):
    idx = []
    for layer in model.layers:
        mask = layer._trainable_mask()
        for (_, shape, off), t in zip(layer._param_specs(), mask):
            if t or not trainable_only:
                idx.extend(range(off, off + int(np.prod(shape))))
    return np.array(idx, dtype=np.int64)


def loss_and_grads(model, x, y, training, seed=0, w=None):
    t = model._get_trainer(y.shape)
    loss = t.compute_gradients([x], y, w, training, seed)
    return loss, model._graph.grads.copy()


def check_gradients(model, x, y, training, seed=0, eps=3e-3, rtol=2e-2, atol=5e-4):
    """Analytic gradients of the trainable parameters vs central differences of the batch loss."""
    idx = param_indices(model, trainable_only=True)
    loss, grads = loss_and_grads(model, x, y, training, seed)
    assert math.isfinite(loss)
    analytic = grads[idx].astype(np.float64)
    params = model._graph.params
    t = model._get_trainer(y.shape)
    numeric = []
    for i in idx:
        old = params[i]
        up, down = np.float32(old + eps), np.float32(old - eps)
        params[i] = up
        lp = t.compute_gradients([x], y, None, training, seed)
        params[i] = down
        lm = t.compute_gradients([x], y, None, training, seed)
        params[i] = old
        numeric.append((lp - lm) / (float(up) - float(down)))
    numeric = np.array(numeric)
    assert np.max(np.abs(numeric)) > 1e-2, "vacuous gradient check"
    bad = np.abs(analytic - numeric) > rtol * np.maximum(np.abs(analytic), np.abs(numeric)) + atol
    assert not bad.any(), f"{bad.sum()} entries differ: analytic {analytic[bad][:4]}, numeric {numeric[bad][:4]}"
    return loss


def randomize(model, rng, scale=0.6, away_from_zero=0.0):
    params = model._graph.params
    idx = param_indices(model, trainable_only=True)
    v = scale * rng.standard_normal(idx.size)
    if away_from_zero:
        v = np.where(np.abs(v) < away_from_zero, np.sign(v + 1e-12) * away_from_zero + v, v)
    params[idx] = v.astype(np.float32)


def _bn_data(rng, n=64):
    x = (rng.standard_normal((n, 3)) * [1.0, 2.0, 0.5] + [1.0, -2.0, 5.0]).astype(np.float32)
    y = rng.standard_normal((n, 3)).astype(np.float32)
    return x, y


# -- BatchNormalization ------------------------------------------------------------------------------
def test_batchnorm_weights_order_shapes_and_counts(capsys):
    model = mf.Sequential([BatchNormalization(input_shape=(3,)), Dense(2)])
    model.build()
    bn = model.layers[0]
    ws = bn.get_weights()
    assert [n for n, _, _ in bn._param_specs()] == ["gamma", "beta", "moving_mean", "moving_variance"]
    assert [w.shape for w in ws] == [(3,), (3,), (3,), (3,)]
    np.testing.assert_array_equal(ws[0], 1.0)
    np.testing.assert_array_equal(ws[1], 0.0)
    np.testing.assert_array_equal(ws[2], 0.0)
    np.testing.assert_array_equal(ws[3], 1.0)
    assert bn.count_params() == 12
    assert bn.count_trainable_params() == 6
    model.summary()
    out = capsys.readouterr().out
    assert "Total params: 20" in out
    assert "Trainable params: 14" in out
    assert "Non-trainable params: 6" in out


@pytest.mark.parametrize(
    "kw,names",
    [
        (dict(center=False), ["gamma", "moving_mean", "moving_variance"]),
        (dict(scale=False), ["beta", "moving_mean", "moving_variance"]),
        (dict(center=False, scale=False), ["moving_mean", "moving_variance"]),
    ],
)
def test_batchnorm_center_scale_drop_weights(kw, names):
    model = mf.Sequential([BatchNormalization(input_shape=(4,), **kw)])
    model.build()
    assert [n for n, _, _ in model.layers[0]._param_specs()] == names
    assert model.layers[0].count_trainable_params() == 4 * (len(names) - 2)


def test_batchnorm_one_batch_updates_moving_stats_with_biased_variance(rng):
    x, y = _bn_data(rng)
    model = mf.Sequential([BatchNormalization(input_shape=(3,), momentum=0.9)])
    model.compile(optimizer=mf.optimizers.SGD(learning_rate=0.0), loss="mse")
    hist = model.fit(x, y, batch_size=len(x), epochs=1, shuffle=False, verbose=0)
    gamma, beta, mm, mv = model.get_weights()
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(mm, 0.1 * x64.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(mv, 0.9 * 1.0 + 0.1 * x64.var(0), rtol=1e-5)  # biased (ddof=0)
    assert np.max(np.abs(mv - (0.9 + 0.1 * x64.var(0, ddof=1)))) > 1e-3  # ... and not the unbiased one
    np.testing.assert_array_equal(gamma, 1.0)
    np.testing.assert_array_equal(beta, 0.0)
    # The loss of that (training-mode) batch used the batch statistics.
    z = (x64 - x64.mean(0)) / np.sqrt(x64.var(0) + BN_EPS)
    assert hist.history["loss"][0] == pytest.approx(np.mean((z - y) ** 2), rel=1e-5)
    # Inference uses the moving statistics.
    pred = model.predict(x)
    np.testing.assert_allclose(pred, (x64 - mm) / np.sqrt(mv.astype(np.float64) + BN_EPS), rtol=1e-5, atol=1e-5)
    ev = model.evaluate(x, y, verbose=0)
    assert ev == pytest.approx(np.mean((pred.astype(np.float64) - y) ** 2), rel=1e-5)


def test_batchnorm_predict_uses_given_moving_stats(rng):
    model = mf.Sequential([BatchNormalization(input_shape=(3,), epsilon=0.01)])
    model.build()
    gamma, beta = np.array([2.0, 0.5, -1.0], np.float32), np.array([0.1, -0.2, 0.3], np.float32)
    mm, mv = np.array([1.0, -2.0, 0.5], np.float32), np.array([4.0, 0.25, 1.5], np.float32)
    model.set_weights([gamma, beta, mm, mv])
    x = rng.standard_normal((10, 3)).astype(np.float32)
    want = gamma * (x.astype(np.float64) - mm) / np.sqrt(mv.astype(np.float64) + 0.01) + beta
    np.testing.assert_allclose(model.predict(x), want, rtol=1e-5, atol=1e-6)
    # Inference does not depend on the batch: one row at a time gives the same output.
    np.testing.assert_allclose(model.predict(x[:1]), want[:1], rtol=1e-5, atol=1e-6)


def test_batchnorm_moving_stats_follow_ema_and_ignore_optimizer(rng):
    """Two batches per epoch, two epochs, AdamW with strong decay: the moving statistics are
    exactly the EMA of the batch moments (BN is the first layer, so those depend on x only)."""
    x, _ = _bn_data(rng, n=40)
    y = rng.standard_normal((40, 1)).astype(np.float32)
    model = mf.Sequential([BatchNormalization(input_shape=(3,), momentum=0.8), Dense(1)])
    model.compile(optimizer=mf.optimizers.AdamW(learning_rate=0.1, weight_decay=0.5), loss="mse")
    model.fit(x, y, batch_size=20, epochs=2, shuffle=False, verbose=0)
    mm, mv = np.zeros(3), np.ones(3)
    for _ in range(2):
        for b in (x[:20], x[20:]):
            b = b.astype(np.float64)
            mm = 0.8 * mm + 0.2 * b.mean(0)
            mv = 0.8 * mv + 0.2 * b.var(0)
    gamma, beta, got_mm, got_mv = model.layers[0].get_weights()
    np.testing.assert_allclose(got_mm, mm, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got_mv, mv, rtol=1e-5)
    assert np.max(np.abs(gamma - 1.0)) > 1e-3 and np.max(np.abs(beta)) > 1e-3  # the trainable ones moved


def test_batchnorm_trainable_false_uses_moving_stats_in_fit(rng):
    x, y = _bn_data(rng)
    bn = BatchNormalization(input_shape=(3,), trainable=False)
    model = mf.Sequential([bn])
    model.build()
    weights = [
        np.array([2.0, 0.5, 1.5], np.float32),
        np.array([0.1, 0.2, -0.3], np.float32),
        np.array([0.5, -1.0, 4.0], np.float32),
        np.array([2.0, 3.0, 0.5], np.float32),
    ]
    model.set_weights(weights)
    model.compile(optimizer=mf.optimizers.SGD(learning_rate=0.5), loss="mse")
    assert bn.count_trainable_params() == 0
    hist = model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    for got, want in zip(model.get_weights(), weights):
        np.testing.assert_array_equal(got, want)
    g, b, mm, mv = [w.astype(np.float64) for w in weights]
    out = g * (x - mm) / np.sqrt(mv + BN_EPS) + b  # inference mode during fit (Keras 3)
    assert hist.history["loss"][0] == pytest.approx(np.mean((out - y) ** 2), rel=1e-5)
    assert hist.history["loss"][1] == pytest.approx(hist.history["loss"][0], rel=1e-6)


def test_batchnorm_frozen_after_training_keeps_weights(rng):
    """Freezing takes effect at the next compile, as in Keras."""
    x, y = _bn_data(rng)
    model = mf.Sequential([BatchNormalization(input_shape=(3,)), Dense(3)])
    model.compile(optimizer=mf.optimizers.SGD(0.1), loss="mse")
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    model.layers[0].trainable = False
    model.compile(optimizer=mf.optimizers.SGD(0.1), loss="mse")
    before = model.layers[0].get_weights()
    dense_before = model.layers[1].get_weights()
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    for a, b in zip(model.layers[0].get_weights(), before):
        np.testing.assert_array_equal(a, b)
    assert np.max(np.abs(model.layers[1].get_weights()[0] - dense_before[0])) > 1e-4


def test_batchnorm_training_gradients(rng):
    model = mf.Sequential([Dense(4, input_dim=3), BatchNormalization(momentum=0.9), Dense(2, activation="tanh")])
    model.build()
    model.compile(optimizer="sgd", loss="mse")
    randomize(model, rng)
    x = rng.standard_normal((12, 3)).astype(np.float32)
    y = rng.standard_normal((12, 2)).astype(np.float32)
    moving = model.layers[1].get_weights()[2:]
    loss_train = check_gradients(model, x, y, training=True)
    # compute_gradients does not touch the moving statistics
    for a, b in zip(model.layers[1].get_weights()[2:], moving):
        np.testing.assert_array_equal(a, b)
    # training and inference losses differ (batch vs moving statistics)
    loss_infer, _ = loss_and_grads(model, x, y, training=False)
    assert abs(loss_train - loss_infer) > 1e-3


def test_batchnorm_inference_gradients(rng):
    """In inference mode BN is the fixed affine map gamma * (x - mm) / sqrt(mv + eps) + beta."""
    model = mf.Sequential([Dense(4, input_dim=3), BatchNormalization(), Dense(2, activation="tanh")])
    model.build()
    model.compile(optimizer="sgd", loss="mse")
    randomize(model, rng)
    bn = model.layers[1]
    g, b, _, _ = bn.get_weights()
    bn.set_weights([g, b, rng.standard_normal(4).astype(np.float32), rng.uniform(0.5, 2, 4).astype(np.float32)])
    x = rng.standard_normal((12, 3)).astype(np.float32)
    y = rng.standard_normal((12, 2)).astype(np.float32)
    check_gradients(model, x, y, training=False)


# -- LayerNormalization ---------------------------------------------------------------------------------
@pytest.mark.parametrize("epsilon", [1e-3, 0.1])
def test_layernorm_output_matches_numpy(rng, epsilon):
    model = mf.Sequential([LayerNormalization(input_shape=(5,), epsilon=epsilon)])
    model.build()
    gamma = rng.uniform(0.5, 2.0, 5).astype(np.float32)
    beta = rng.standard_normal(5).astype(np.float32)
    model.set_weights([gamma, beta])
    x = (3 * rng.standard_normal((20, 5)) + 2).astype(np.float32)
    x64 = x.astype(np.float64)
    mean, var = x64.mean(1, keepdims=True), x64.var(1, keepdims=True)
    want = gamma * (x64 - mean) / np.sqrt(var + epsilon) + beta
    np.testing.assert_allclose(model.predict(x), want, rtol=1e-5, atol=1e-5)
    assert [n for n, _, _ in model.layers[0]._param_specs()] == ["gamma", "beta"]


def test_layernorm_gradients(rng):
    model = mf.Sequential([Dense(5, input_dim=3), LayerNormalization(), Dense(2)])
    model.build()
    model.compile(optimizer="sgd", loss="mse")
    randomize(model, rng)
    x = rng.standard_normal((8, 3)).astype(np.float32)
    y = rng.standard_normal((8, 2)).astype(np.float32)
    check_gradients(model, x, y, training=False)
    check_gradients(model, x, y, training=True)


# -- noise layers -------------------------------------------------------------------------------------
def _moments(layer, x, seed=11):
    """E[out], E[out^2] and E[(out - x)^2] of a training-mode pass of `layer` alone."""
    model = mf.Sequential([layer])
    model.build()
    model.compile(optimizer="sgd", loss="mse")
    t = model._get_trainer(x.shape)
    zeros = np.zeros_like(x)
    l0 = t.compute_gradients([x], zeros, None, True, seed)
    l1 = t.compute_gradients([x], zeros + 1, None, True, seed)
    lx = t.compute_gradients([x], x, None, True, seed)
    return (l0 - l1 + 1) / 2, l0, lx, model, t


@pytest.mark.parametrize(
    "make",
    [
        lambda: GaussianNoise(0.5, input_shape=(50,)),
        lambda: GaussianDropout(0.3, input_shape=(50,)),
        lambda: AlphaDropout(0.2, input_shape=(50,)),
    ],
    ids=["gaussian_noise", "gaussian_dropout", "alpha_dropout"],
)
def test_noise_layers_identity_at_inference_random_in_training(rng, make):
    x = rng.standard_normal((300, 50)).astype(np.float32)
    _, _, lx, model, t = _moments(make(), x)
    np.testing.assert_array_equal(model.predict(x), x)
    assert model.evaluate(x, x, verbose=0) == 0.0
    assert t.compute_gradients([x], x, None, False, 3) == 0.0
    assert lx > 0.01  # training perturbs
    assert t.compute_gradients([x], x, None, True, 11) == lx  # same seed, same noise
    assert t.compute_gradients([x], x, None, True, 12) != lx  # another seed, other noise


def test_gaussian_noise_statistics(rng):
    x = (10 * rng.standard_normal((2000, 50))).astype(np.float32)  # large inputs: additive noise
    mean_shift, _, lx, _, _ = _moments(GaussianNoise(0.5, input_shape=(50,)), x)
    assert lx == pytest.approx(0.25, rel=0.03)  # E[(out - x)^2] = stddev^2
    ones = np.ones((2000, 50), np.float32)
    mean, second, _, _, _ = _moments(GaussianNoise(0.5, input_shape=(50,)), ones)
    assert mean == pytest.approx(1.0, abs=0.01)
    assert second - mean**2 == pytest.approx(0.25, rel=0.03)


@pytest.mark.parametrize("rate", [0.2, 0.5])
def test_gaussian_dropout_statistics(rate):
    ones = np.ones((2000, 50), np.float32)
    mean, second, lx, _, _ = _moments(GaussianDropout(rate, input_shape=(50,)), ones)
    assert mean == pytest.approx(1.0, abs=0.01)  # multiplicative noise with mean 1
    assert lx == pytest.approx(rate / (1 - rate), rel=0.03)  # variance rate / (1 - rate)


@pytest.mark.parametrize("rate", [0.1, 0.3])
def test_alpha_dropout_statistics(rng, rate):
    alpha, scale = 1.6732632423543772, 1.0507009873554805
    alpha_p = -alpha * scale
    a = ((1 - rate) * (1 + rate * alpha_p**2)) ** -0.5
    b = -a * alpha_p * rate
    # Standard normal input keeps mean 0 and variance 1.
    x = rng.standard_normal((2000, 50)).astype(np.float32)
    mean, second, _, _, _ = _moments(AlphaDropout(rate, input_shape=(50,)), x)
    assert mean == pytest.approx(0.0, abs=0.015)
    assert second == pytest.approx(1.0, rel=0.03)
    # Zero input: outputs are b (kept, prob 1 - rate) or a * alpha_p + b (dropped, prob rate).
    zeros = np.zeros((2000, 50), np.float32)
    mean, second, _, _, _ = _moments(AlphaDropout(rate, input_shape=(50,)), zeros)
    assert mean == pytest.approx((1 - rate) * b + rate * (a * alpha_p + b), abs=0.01)
    assert second == pytest.approx((1 - rate) * b**2 + rate * (a * alpha_p + b) ** 2, rel=0.03)


@pytest.mark.parametrize(
    "make",
    [lambda: GaussianNoise(0.3), lambda: GaussianDropout(0.3), lambda: AlphaDropout(0.2)],
    ids=["gaussian_noise", "gaussian_dropout", "alpha_dropout"],
)
def test_noise_layer_training_gradients(rng, make):
    model = mf.Sequential([Dense(6, input_dim=3, activation="tanh"), make(), Dense(2)])
    model.build()
    model.compile(optimizer="sgd", loss="mse")
    randomize(model, rng)
    x = rng.standard_normal((10, 3)).astype(np.float32)
    y = rng.standard_normal((10, 2)).astype(np.float32)
    check_gradients(model, x, y, training=True, seed=5)


@pytest.mark.parametrize(
    "make",
    [lambda: Dropout(0.5), lambda: GaussianNoise(0.3), lambda: GaussianDropout(0.3), lambda: AlphaDropout(0.2)],
    ids=["dropout", "gaussian_noise", "gaussian_dropout", "alpha_dropout"],
)
def test_noise_layer_inference_gradients_are_those_of_identity(rng, make):
    """At inference the layer is the identity, so the gradients equal those of the same model
    with a linear Activation in its place (and pass finite differences)."""
    x = rng.standard_normal((8, 3)).astype(np.float32)
    y = rng.standard_normal((8, 2)).astype(np.float32)
    grads = []
    for middle in (make(), Activation("linear")):
        model = mf.Sequential([Dense(5, input_dim=3, activation="tanh"), middle, Dense(2)])
        model.build()
        model.compile(optimizer="sgd", loss="mse")
        randomize(model, np.random.default_rng(7))
        loss, g = loss_and_grads(model, x, y, training=False)
        grads.append((loss, g[param_indices(model)]))
    assert grads[0][0] == grads[1][0]
    np.testing.assert_allclose(grads[0][1], grads[1][1], rtol=1e-6, atol=1e-7)


# -- regularizers ------------------------------------------------------------------------------------------
def _reg_models(rng, kernel_reg, bias_reg, activity_reg, out_reg):
    def build(with_reg):
        m = mf.Sequential(
            [
                Dense(
                    4,
                    input_dim=3,
                    activation="sigmoid",
                    kernel_regularizer=kernel_reg if with_reg else None,
                    bias_regularizer=bias_reg if with_reg else None,
                    activity_regularizer=activity_reg if with_reg else None,
                ),
                Dense(2, kernel_regularizer=out_reg if with_reg else None),
            ]
        )
        m.compile(optimizer=mf.optimizers.SGD(0.0), loss="mse")
        m.build()
        return m

    plain, reg = build(False), build(True)
    weights = [(0.8 * rng.standard_normal(w.shape)).astype(np.float32) for w in plain.get_weights()]
    plain.set_weights(weights)
    reg.set_weights(weights)
    return plain, reg, weights


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


REG_CASES = {
    "l1_kernel": (regularizers.L1(0.01), None, None, None),
    "l2_kernel": (regularizers.L2(0.03), None, None, None),
    "l1l2_kernel_and_bias": (regularizers.L1L2(l1=0.01, l2=0.02), regularizers.L2(0.05), None, None),
    "activity_l1l2": (None, None, regularizers.L1L2(l1=0.003, l2=0.004), None),
    "everything": (regularizers.L1L2(0.01, 0.02), regularizers.L1(0.1), regularizers.L2(0.01), regularizers.L1(0.2)),
    "by_name": ("l2", "l1", "l1_l2", None),
}


def _penalty(reg, w):
    if reg is None:
        return 0.0
    if isinstance(reg, str):
        reg = regularizers.get(reg)
    w = np.asarray(w, np.float64)
    return reg.l1 * np.abs(w).sum() + reg.l2 * (w**2).sum()


@pytest.mark.parametrize("case", sorted(REG_CASES))
@pytest.mark.parametrize("batches", [1, 2])
def test_regularizers_add_exact_penalty_to_evaluate_loss(rng, case, batches):
    kernel_reg, bias_reg, act_reg, out_reg = REG_CASES[case]
    plain, reg, (k1, b1, k2, b2) = _reg_models(rng, kernel_reg, bias_reg, act_reg, out_reg)
    x = rng.standard_normal((20, 3)).astype(np.float32)
    y = rng.standard_normal((20, 2)).astype(np.float32)
    bs = 20 // batches
    base = plain.evaluate(x, y, batch_size=bs, verbose=0)
    with_reg = reg.evaluate(x, y, batch_size=bs, verbose=0)
    hidden = _sigmoid(x.astype(np.float64) @ k1 + b1)
    weight_pen = _penalty(kernel_reg, k1) + _penalty(bias_reg, b1) + _penalty(out_reg, k2)
    # activity penalty per batch (summed over the batch's outputs), averaged over batches by size
    act_pen = np.mean([_penalty(act_reg, hidden[i : i + bs]) for i in range(0, 20, bs)])
    expected = weight_pen + act_pen
    assert expected > 1e-3
    assert with_reg - base == pytest.approx(expected, rel=1e-4, abs=1e-6)
    # fit reports the same total (lr = 0 keeps the weights)
    h = reg.fit(x, y, batch_size=bs, epochs=1, shuffle=False, verbose=0)
    assert h.history["loss"][0] == pytest.approx(with_reg, rel=1e-5)


def test_regularizer_call_and_config():
    w = np.array([[1.0, -2.0], [0.5, 0.0]])
    assert regularizers.L1L2(l1=0.1, l2=0.2)(w) == pytest.approx(0.1 * 3.5 + 0.2 * 5.25)
    assert regularizers.L1(0.3)(w) == pytest.approx(1.05)
    assert regularizers.L2(0.3)(w) == pytest.approx(1.575)
    for r in (regularizers.L1(0.3), regularizers.L2(0.2), regularizers.L1L2(0.1, 0.2)):
        again = type(r).from_config(r.get_config())
        assert (again.l1, again.l2) == (r.l1, r.l2)
    assert regularizers.L1().l1 == 0.01 and regularizers.L2().l2 == 0.01  # Keras defaults


@pytest.mark.parametrize("case", ["l1l2_kernel_and_bias", "everything"])
def test_regularizer_gradients(rng, case):
    kernel_reg, bias_reg, act_reg, out_reg = REG_CASES[case]
    _, model, _ = _reg_models(rng, kernel_reg, bias_reg, act_reg, out_reg)
    randomize(model, rng, away_from_zero=0.05)  # keep L1 terms away from their kink
    x = rng.standard_normal((8, 3)).astype(np.float32)
    y = rng.standard_normal((8, 2)).astype(np.float32)
    check_gradients(model, x, y, training=False)


def test_regularized_training_shrinks_weights(rng):
    x = rng.standard_normal((64, 3)).astype(np.float32)
    y = (x @ np.array([[2.0], [-3.0], [1.0]])).astype(np.float32)
    norms = []
    for reg in (None, regularizers.L2(1.0)):
        mf.utils.set_random_seed(3)
        m = mf.Sequential([Dense(1, input_dim=3, kernel_regularizer=reg)])
        m.compile(optimizer=mf.optimizers.SGD(0.05), loss="mse")
        m.fit(x, y, epochs=30, batch_size=16, verbose=0)
        norms.append(np.linalg.norm(m.layers[0].kernel))
    assert norms[1] < 0.6 * norms[0]


# -- constraints ------------------------------------------------------------------------------------------
def np_constraint(c, w):
    w = w.astype(np.float64)
    if isinstance(c, constraints.NonNeg):
        return w * (w >= 0)
    norms = np.sqrt(np.sum(w * w, axis=c.axis, keepdims=True))
    if isinstance(c, constraints.MaxNorm):
        desired = np.clip(norms, 0, c.max_value)
    elif isinstance(c, constraints.UnitNorm):
        return w / (1e-7 + norms)
    else:
        desired = c.rate * np.clip(norms, c.min_value, c.max_value) + (1 - c.rate) * norms
    return w * desired / (1e-7 + norms)


CONSTRAINTS = {
    "non_neg": lambda: constraints.NonNeg(),
    "max_norm": lambda: constraints.MaxNorm(max_value=0.5, axis=0),
    "max_norm_rows": lambda: constraints.MaxNorm(max_value=0.4, axis=-1),
    "unit_norm": lambda: constraints.UnitNorm(),
    "min_max_norm": lambda: constraints.MinMaxNorm(min_value=0.8, max_value=1.2),
    "min_max_norm_rate": lambda: constraints.MinMaxNorm(min_value=0.8, max_value=1.2, rate=0.5),
}


def _constraint_problem(rng):
    x = rng.standard_normal((64, 5)).astype(np.float32)
    w_true = rng.standard_normal((5, 3)) * 2
    w_true[:, 0] = -np.abs(w_true[:, 0])  # negative targets for NonNeg to clip
    y = (x @ w_true).astype(np.float32)
    return x, y


@pytest.mark.parametrize("name", sorted(CONSTRAINTS))
def test_constraint_applied_after_each_step(rng, name):
    x, y = _constraint_problem(rng)
    c = CONSTRAINTS[name]()
    model = mf.Sequential([Dense(3, input_dim=5, kernel_constraint=c)])
    model.compile(optimizer=mf.optimizers.SGD(0.1), loss="mse")
    model.build()
    k0 = (1.5 * rng.standard_normal((5, 3))).astype(np.float32)
    b0 = np.zeros(3, np.float32)
    model.set_weights([k0, b0])
    t = model._get_trainer(y.shape)
    t.compute_gradients([x], y, None, False, 0)
    spec = model.layers[0]._param_specs()
    gk = model._graph.grads[spec[0][2] : spec[0][2] + 15].reshape(5, 3).astype(np.float64)
    gb = model._graph.grads[spec[1][2] : spec[1][2] + 3].astype(np.float64)
    model.fit(x, y, batch_size=64, epochs=1, shuffle=False, verbose=0)
    k1, b1 = model.get_weights()
    unconstrained = k0 - 0.1 * gk
    want = np_constraint(c, unconstrained)
    assert np.max(np.abs(want - unconstrained)) > 1e-3  # the constraint was active on this step
    np.testing.assert_allclose(k1, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(b1, b0 - 0.1 * gb, rtol=1e-5, atol=1e-6)  # the bias is unconstrained


@pytest.mark.parametrize("name", sorted(CONSTRAINTS))
def test_constraint_holds_after_fit(rng, name):
    x, y = _constraint_problem(rng)
    c = CONSTRAINTS[name]()
    model = mf.Sequential([Dense(3, input_dim=5, kernel_constraint=c, bias_constraint=constraints.NonNeg())])
    model.compile(optimizer=mf.optimizers.Adam(0.05), loss="mse")
    model.fit(x, y, batch_size=16, epochs=5, verbose=0)
    k, b = model.get_weights()
    assert np.all(b >= 0)
    if name == "non_neg":
        assert np.all(k >= 0) and np.any(k == 0)
        return
    norms = np.linalg.norm(k.astype(np.float64), axis=c.axis)
    if isinstance(c, constraints.MaxNorm):
        assert np.all(norms <= c.max_value + 1e-5)
        assert np.max(norms) == pytest.approx(c.max_value, abs=1e-4)  # active
    elif isinstance(c, constraints.UnitNorm):
        np.testing.assert_allclose(norms, 1.0, atol=1e-5)
    elif c.rate == 1.0:
        assert np.all(norms >= c.min_value - 1e-5) and np.all(norms <= c.max_value + 1e-5)


def test_constraint_config_round_trip():
    for make in CONSTRAINTS.values():
        c = make()
        again = type(c).from_config(c.get_config())
        assert again.get_config() == c.get_config()
    assert constraints.MaxNorm().max_value == 2.0 and constraints.MaxNorm().axis == 0
    assert type(constraints.get("non_neg")) is constraints.NonNeg
    assert type(constraints.get("unit_norm")) is constraints.UnitNorm


# -- get_config round trips ------------------------------------------------------------------------------
LAYERS = {
    "dense_regularized": lambda: Dense(
        7,
        activation="relu",
        use_bias=True,
        kernel_initializer="he_normal",
        kernel_regularizer=regularizers.L1L2(0.01, 0.02),
        bias_regularizer=regularizers.L2(0.1),
        activity_regularizer=regularizers.L1(0.001),
        kernel_constraint=constraints.MaxNorm(3.0, axis=0),
        bias_constraint=constraints.NonNeg(),
        name="d1",
    ),
    "dense_minmax": lambda: Dense(2, kernel_constraint=constraints.MinMaxNorm(0.1, 2.0, 0.7), input_shape=(4,)),
    "dense_unitnorm": lambda: Dense(3, kernel_constraint=constraints.UnitNorm(axis=-1), use_bias=False),
    "batchnorm": lambda: BatchNormalization(
        momentum=0.9,
        epsilon=0.01,
        center=False,
        gamma_initializer="ones",
        moving_variance_initializer="ones",
        trainable=False,
    ),
    "layernorm": lambda: LayerNormalization(epsilon=1e-5, scale=False, input_shape=(6,)),
    "gaussian_noise": lambda: GaussianNoise(0.3, seed=4),
    "gaussian_dropout": lambda: GaussianDropout(0.2, seed=5),
    "alpha_dropout": lambda: AlphaDropout(0.1, seed=6),
    "dropout": lambda: Dropout(0.25, seed=2),
    "activation": lambda: Activation("tanh"),
    "concatenate": lambda: Concatenate(),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_config_round_trip(name):
    layer = LAYERS[name]()
    cfg = layer.get_config()
    again = type(layer).from_config(cfg)
    assert type(again) is type(layer)
    assert again.get_config() == cfg


def test_dense_config_keeps_regularizers_and_constraints():
    layer = LAYERS["dense_regularized"]()
    again = Dense.from_config(layer.get_config())
    assert isinstance(again.kernel_regularizer, regularizers.L1L2)
    assert (again.kernel_regularizer.l1, again.kernel_regularizer.l2) == (0.01, 0.02)
    assert isinstance(again.activity_regularizer, regularizers.L1) and again.activity_regularizer.l1 == 0.001
    assert isinstance(again.kernel_constraint, constraints.MaxNorm) and again.kernel_constraint.max_value == 3.0
    assert isinstance(again.bias_constraint, constraints.NonNeg)


def test_rebuilt_layers_behave_identically(rng):
    """A model rebuilt from layer configs, given the same weights, predicts the same."""
    layers = [
        Dense(5, input_dim=3, kernel_regularizer=regularizers.L2(0.1)),
        BatchNormalization(momentum=0.5),
        LayerNormalization(),
        GaussianNoise(0.2),
        Dense(2),
    ]
    m1 = mf.Sequential(layers)
    m1.build()
    m2 = mf.Sequential([type(l).from_config({**l.get_config(), "name": l.name + "_copy"}) for l in layers])
    m2.build()
    ws = [(rng.standard_normal(w.shape)).astype(np.float32) for w in m1.get_weights()]
    ws[5] = np.abs(ws[5]) + 0.5  # moving variance must be positive
    m1.set_weights(ws)
    m2.set_weights(ws)
    x = rng.standard_normal((9, 3)).astype(np.float32)
    np.testing.assert_array_equal(m1.predict(x), m2.predict(x))
