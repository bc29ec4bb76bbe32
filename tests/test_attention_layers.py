"""MultiHeadAttention: a NumPy (float64, Keras's einsum formulation) reference forward for
self-attention, cross-attention with a key, value_dim/output_shape/use_bias variants, causal and
explicit masks; causal semantics (no peeking at later steps); finite-difference gradients of every
weight and, through Dense layers in front, of query, key and value (also with dropout in training);
oneDNN vs reference; Keras weight layout; configs and errors; the batch_matmul kernel."""

import numpy as np
import pytest
from test_gradients import check_model, randomize_params

import maasfin as mf
from maasfin import _core, _testing
from maasfin.layers import Concatenate, Dense, Flatten, Input, MultiHeadAttention

BACKENDS = [pytest.param(_core.Backend.reference, id="reference"), pytest.param(_core.Backend.onednn, id="onednn")]


def mha_np(weights, query, value, key=None, use_bias=True, causal=False, mask=None, scores=False):
    """Keras 3's MultiHeadAttention.call in NumPy float64 (with scores: also the probabilities)."""
    key = value if key is None else key
    w = [np.asarray(a, np.float64) for a in weights]
    if use_bias:
        qk, qb, kk, kb, vk, vb, ok, ob = w
    else:
        (qk, kk, vk, ok), qb, kb, vb, ob = w, 0.0, 0.0, 0.0, 0.0
    q = np.einsum("ntd,dhk->nthk", query, qk) + qb
    k = np.einsum("nsd,dhk->nshk", key, kk) + kb
    v = np.einsum("nsd,dhk->nshk", value, vk) + vb
    q = q / np.sqrt(qk.shape[-1])
    z = np.einsum("nthk,nshk->nhts", q, k)
    T, S = z.shape[-2:]
    keep = np.ones((query.shape[0], T, S), bool)
    if causal:
        keep &= np.tril(np.ones((T, S), bool))
    if mask is not None:
        keep &= mask.astype(bool)
    # Keras adds -1e9 in float32, which swamps the scores: a fully masked row attends uniformly.
    z = np.where(keep[:, None], z, (np.float32(-1e9) + z.astype(np.float32)).astype(np.float64))
    a = np.exp(z - z.max(-1, keepdims=True))
    a /= a.sum(-1, keepdims=True)
    o = np.einsum("nhts,nshv->nthv", a, v)
    out = np.einsum("nthv,hvo->nto", o, ok) + ob
    return (out, a) if scores else out


def randomized(model, rng, scale=0.5):
    model.build()
    for layer in model.layers:
        layer.set_weights([rng.uniform(-scale, scale, w.shape).astype(np.float32) for w in layer.get_weights()])
    return model


def seq(rng, n, t, d):
    return rng.standard_normal((n, t, d)).astype(np.float32)


CASES = {
    "self": dict(kw=dict(num_heads=2, key_dim=3), shapes=[(5, 4)], self_attention=True),
    "self_causal": dict(kw=dict(num_heads=3, key_dim=2), shapes=[(6, 4)], self_attention=True, causal=True),
    "cross": dict(kw=dict(num_heads=2, key_dim=3), shapes=[(4, 5), (6, 3)]),
    "cross_key_value_dim": dict(
        kw=dict(num_heads=2, key_dim=3, value_dim=4, output_shape=7), shapes=[(4, 5), (6, 3), (6, 2)]
    ),
    "no_bias_causal_cross": dict(kw=dict(num_heads=1, key_dim=4, use_bias=False), shapes=[(5, 3), (7, 3)], causal=True),
}


def build_case(case):
    c = CASES[case]
    ins = [Input(shape=s) for s in c["shapes"]]
    layer = MultiHeadAttention(**c["kw"])
    if c.get("self_attention"):
        out = layer(ins[0], ins[0], use_causal_mask=c.get("causal", False))
    else:
        out = layer(ins[0], ins[1], key=ins[2] if len(ins) > 2 else None, use_causal_mask=c.get("causal", False))
    return mf.Model(ins, out), layer, c


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", list(CASES))
def test_forward_matches_numpy(rng, backend, case):
    _core.set_backend(backend)
    m, layer, c = build_case(case)
    randomized(m, rng)
    xs = [seq(rng, 3, *s) for s in c["shapes"]]
    q, v = xs[0], xs[0] if c.get("self_attention") else xs[1]
    want = mha_np(
        layer.get_weights(),
        q,
        v,
        xs[2] if len(xs) > 2 else None,
        use_bias=c["kw"].get("use_bias", True),
        causal=c.get("causal", False),
    )
    got = m.predict(xs[0] if len(xs) == 1 else xs, verbose=0)
    assert got.shape == want.shape == (3, c["shapes"][0][0], c["kw"].get("output_shape", c["shapes"][0][1]))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_attention_mask_matches_numpy(rng):
    q, v = Input(shape=(4, 3)), Input(shape=(5, 3))
    mask = Input(shape=(4, 5), dtype="bool")
    layer = MultiHeadAttention(num_heads=2, key_dim=2)
    m = randomized(mf.Model([q, v, mask], layer(q, v, attention_mask=mask, use_causal_mask=True)), rng)
    xq, xv = seq(rng, 6, 4, 3), seq(rng, 6, 5, 3)
    xm = rng.random((6, 4, 5)) < 0.6
    xm[0, 2] = False  # a fully masked row (uniform attention, as Keras in float32)
    got = m.predict([xq, xv, xm.astype(np.float32)], verbose=0)
    np.testing.assert_allclose(got, mha_np(layer.get_weights(), xq, xv, causal=True, mask=xm), rtol=1e-5, atol=1e-5)
    # The mask matters: without it the outputs differ.
    assert np.abs(got - mha_np(layer.get_weights(), xq, xv)).max() > 1e-2


def test_causal_mask_never_looks_ahead(rng):
    x = Input(shape=(8, 4))
    m = randomized(mf.Model(x, MultiHeadAttention(num_heads=2, key_dim=4)(x, x, use_causal_mask=True)), rng)
    base = seq(rng, 2, 8, 4)
    y0 = m.predict(base, verbose=0)
    for t in range(7):
        changed = base.copy()
        changed[:, t + 1 :] = rng.standard_normal(changed[:, t + 1 :].shape)
        y1 = m.predict(changed, verbose=0)
        np.testing.assert_array_equal(y1[:, : t + 1], y0[:, : t + 1])
        assert np.abs(y1[:, t + 1 :] - y0[:, t + 1 :]).max() > 1e-3
    # Without the mask the first step does see the future.
    x2 = Input(shape=(8, 4))
    m2 = mf.Model(x2, MultiHeadAttention(num_heads=2, key_dim=4)(x2, x2))
    m2.build()
    m2.set_weights(m.get_weights())
    changed = base.copy()
    changed[:, 5:] += 1.0
    assert np.abs(m2.predict(changed, verbose=0)[:, 0] - m2.predict(base, verbose=0)[:, 0]).max() > 1e-4


def grad_model(case):
    """Dense (tanh) in front of every input, so each input's gradient reaches a checked weight."""
    c = CASES[case]
    ins = [Input(shape=s) for s in c["shapes"]]
    hs = [Dense(s[1], activation="tanh")(x) for x, s in zip(ins, c["shapes"])]
    layer = MultiHeadAttention(**c["kw"])
    if c.get("self_attention"):
        out = layer(hs[0], hs[0], use_causal_mask=c.get("causal", False))
    else:
        out = layer(hs[0], hs[1], key=hs[2] if len(hs) > 2 else None, use_causal_mask=c.get("causal", False))
    m = mf.Model(ins, Dense(2)(Flatten()(out)))
    m.build()
    m.compile(optimizer="sgd", loss="mse")
    return m, c


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", list(CASES))
def test_gradients(rng, backend, case):
    _core.set_backend(backend)
    m, c = grad_model(case)
    randomize_params(m, rng, scale=0.5)
    xs = [seq(rng, 3, *s) for s in c["shapes"]]
    check_model(m, xs, rng.standard_normal((3, 2)).astype(np.float32), what=case)


def test_gradients_with_dropout_in_training(rng):
    """Dropout on the attention probabilities: the mask is a function of the step seed, so the
    finite differences see the same mask as the analytic gradient."""
    x = Input(shape=(5, 3))
    h = Dense(3, activation="tanh")(x)
    layer = MultiHeadAttention(num_heads=2, key_dim=3, dropout=0.4, seed=11)
    m = mf.Model(x, Dense(2)(Flatten()(layer(h, h))))
    m.build()
    m.compile(optimizer="sgd", loss="mse")
    randomize_params(m, rng, scale=0.6)
    xs, y = [seq(rng, 4, 5, 3)], rng.standard_normal((4, 2)).astype(np.float32)
    check_model(m, xs, y, training=True, seed=5, what="dropout")
    t = m._get_trainer(y.shape)
    plain = t.compute_gradients(xs, y, None, False, 5)
    dropped = [t.compute_gradients(xs, y, None, True, s) for s in (5, 6)]
    assert dropped[0] != plain and dropped[0] != dropped[1]  # dropout acts in training, per step
    p = m.predict(xs[0], verbose=0)
    np.testing.assert_array_equal(p, m.predict(xs[0], verbose=0))  # and not at inference


def test_onednn_matches_reference(rng):
    """Sizes where every product goes to oneDNN under automatic dispatch."""
    x = Input(shape=(64, 32))
    h = MultiHeadAttention(num_heads=2, key_dim=16)(x, x, use_causal_mask=True)
    m = mf.Model(x, Dense(3)(Flatten()(h)))
    m.build()
    m.compile(optimizer="sgd", loss="mse")
    randomize_params(m, rng, scale=0.2)
    xs, y = [seq(rng, 16, 64, 32)], rng.standard_normal((16, 3)).astype(np.float32)
    results = []
    for b in (_core.Backend.reference, _core.Backend.onednn, _core.Backend.automatic):
        _core.set_backend(b)
        loss = m._get_trainer(y.shape).compute_gradients(xs, y, None, True, 0)
        results.append((m.predict(xs[0], verbose=0), loss, m._graph.grads.copy()))
    for p, loss, g in results[1:]:
        np.testing.assert_allclose(p, results[0][0], rtol=1e-4, atol=1e-5)
        assert abs(loss - results[0][1]) <= 1e-4 * abs(results[0][1])
        np.testing.assert_allclose(g, results[0][2], rtol=1e-3, atol=1e-5)


def test_weight_layout_and_params():
    q, v, k = Input(shape=(4, 6)), Input(shape=(7, 5)), Input(shape=(7, 3))
    layer = MultiHeadAttention(num_heads=2, key_dim=8, value_dim=4, output_shape=9)
    m = mf.Model([q, v, k], layer(q, v, k))
    m.build()
    shapes = [w.shape for w in layer.get_weights()]
    assert shapes == [(6, 2, 8), (2, 8), (3, 2, 8), (2, 8), (5, 2, 4), (2, 4), (2, 4, 9), (9,)]
    assert layer.count_params() == sum(int(np.prod(s)) for s in shapes)
    assert m.output_shape == (None, 4, 9)
    assert [n for n, _, _ in m._graph.layer_params(layer._node)] == [
        "query/kernel",
        "query/bias",
        "key/kernel",
        "key/bias",
        "value/kernel",
        "value/bias",
        "attention_output/kernel",
        "attention_output/bias",
    ]
    w = layer.get_weights()
    assert all(np.all(b == 0) for b in w[1::2]) and all(np.std(a) > 0 for a in w[0::2])  # zeros / glorot
    # Keras's glorot fans for the (d, heads, key_dim) kernel: fan_in = d*heads, fan_out = d*key_dim.
    limit = np.sqrt(6 / (6 * 2 + 6 * 8))
    assert np.abs(w[0]).max() <= limit and np.abs(w[0]).max() > 0.8 * limit


def test_config():
    layer = MultiHeadAttention(num_heads=4, key_dim=8, dropout=0.1, output_shape=(5,), seed=3, name="att")
    cfg = layer.get_config()
    assert cfg["num_heads"] == 4 and cfg["key_dim"] == 8 and cfg["value_dim"] == 8 and cfg["output_shape"] == 5
    assert cfg["use_causal_mask"] is False and cfg["seed"] == 3 and cfg["kernel_initializer"] == "glorot_uniform"
    again = MultiHeadAttention.from_config(cfg)
    assert again.get_config() == cfg
    x = Input(shape=(3, 2))
    again(x, x, use_causal_mask=True)
    assert again.get_config()["use_causal_mask"] is True  # the call argument is kept for saving


def test_saved_self_attention_predicts_the_same(rng):
    x = Input(shape=(5, 4))
    m = mf.Model(x, MultiHeadAttention(num_heads=2, key_dim=2)(x, x, use_causal_mask=True))
    randomized(m, rng)
    loaded = mf.models.from_bytes(m.to_bytes())
    xs = seq(rng, 3, 5, 4)
    np.testing.assert_array_equal(loaded.predict(xs, verbose=0), m.predict(xs, verbose=0))
    assert loaded.layers[0].use_causal_mask is True


def test_errors():
    q, v, k = Input(shape=(4, 6)), Input(shape=(7, 5)), Input(shape=(6, 5))
    with pytest.raises(
        ValueError,
        match=r"MultiHeadAttention 'a': key and value need the same number of "
        r"timesteps, got key \(6, 5\) and value \(7, 5\)",
    ):
        MultiHeadAttention(2, 3, name="a")(q, v, key=k)
    with pytest.raises(
        ValueError,
        match=r"MultiHeadAttention 'b': attention_mask must have shape \(batch, 4, 7\) "
        r"for query \(4, 6\) and value \(7, 5\), got \(4, 6\)",
    ):
        MultiHeadAttention(2, 3, name="b")(q, v, attention_mask=Input(shape=(4, 6)))
    with pytest.raises(
        ValueError,
        match=r"MultiHeadAttention 'c' expects query, value and key of shape "
        r"\(batch, timesteps, features\), got \(6,\)",
    ):
        MultiHeadAttention(2, 3, name="c")(q, Input(shape=(6,)))
    with pytest.raises(ValueError, match="num_heads must be a positive integer"):
        MultiHeadAttention(0, 3)
    with pytest.raises(ValueError, match="dropout must be a number in"):
        MultiHeadAttention(2, 3, dropout=1.0)
    with pytest.raises(ValueError, match="attention_axes"):
        MultiHeadAttention(2, 3, attention_axes=(1, 2))
    with pytest.raises(ValueError, match="call it as mha"):
        MultiHeadAttention(2, 3)(q)
    with pytest.raises(TypeError, match="was called on ndarray"):
        MultiHeadAttention(2, 3)(q, np.zeros((1, 7, 5)))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("a_t, b_t", [(False, False), (False, True), (True, False), (True, True)])
def test_batch_matmul_kernel(rng, backend, a_t, b_t):
    _core.set_backend(backend)
    B, M, K, N = 3, 4, 5, 6
    a = rng.standard_normal((B, K, M) if a_t else (B, M, K)).astype(np.float32)
    b = rng.standard_normal((B, N, K) if b_t else (B, K, N)).astype(np.float32)
    want = np.matmul(a.transpose(0, 2, 1) if a_t else a, b.transpose(0, 2, 1) if b_t else b)
    np.testing.assert_allclose(_testing.batch_matmul(a, a_t, b, b_t), want, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="do not chain"):
        _testing.batch_matmul(a, not a_t, b, b_t)


@pytest.mark.parametrize("backend", BACKENDS)
def test_return_attention_scores_matches_numpy(rng, backend):
    """Keras's second output: the softmax probabilities (batch, heads, T, S), before dropout."""
    _core.set_backend(backend)
    q, v = Input(shape=(4, 5)), Input(shape=(6, 3))
    mask = Input(shape=(4, 6))
    layer = MultiHeadAttention(num_heads=2, key_dim=3, dropout=0.3)
    out, scores = layer(q, v, attention_mask=mask, use_causal_mask=True, return_attention_scores=True)
    assert out.shape == (None, 4, 5) and scores.shape == (None, 2, 4, 6)
    m = mf.Model([q, v, mask], Concatenate()([Flatten()(out), Flatten()(scores)]))
    randomized(m, rng)
    xq, xv = seq(rng, 3, 4, 5), seq(rng, 3, 6, 3)
    xm = (rng.random((3, 4, 6)) > 0.3).astype(np.float32)
    want_out, want_scores = mha_np(
        layer.get_weights(), xq.astype(np.float64), xv.astype(np.float64), causal=True, mask=xm, scores=True
    )
    got = m.predict([xq, xv, xm], verbose=0)
    np.testing.assert_allclose(got[:, :20].reshape(3, 4, 5), want_out, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got[:, 20:].reshape(3, 2, 4, 6), want_scores, rtol=1e-5, atol=1e-6)
    q2, v2, k2 = Input(shape=(4, 5)), Input(shape=(6, 3)), Input(shape=(4, 6))
    plain = mf.Model(
        [q2, v2, k2], MultiHeadAttention(num_heads=2, key_dim=3)(q2, v2, attention_mask=k2, use_causal_mask=True)
    )
    plain.set_weights(m.get_weights())
    np.testing.assert_array_equal(plain.predict([xq, xv, xm], verbose=0).reshape(3, -1), got[:, :20])


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradients_through_attention_scores(rng, backend):
    """A loss on both outputs: the scores' gradient joins the softmax backward."""
    _core.set_backend(backend)
    x = Input(shape=(4, 3))
    h = Dense(3, activation="tanh")(x)
    out, scores = MultiHeadAttention(num_heads=2, key_dim=2)(h, h, use_causal_mask=True, return_attention_scores=True)
    m = mf.Model(x, Dense(2)(Concatenate()([Flatten()(out), Flatten()(scores)])))
    m.build()
    m.compile(optimizer="sgd", loss="mse")
    randomize_params(m, rng, scale=0.6)
    check_model(m, [seq(rng, 3, 4, 3)], rng.standard_normal((3, 2)).astype(np.float32), what="scores")


def test_attention_scores_survive_saving(rng, tmp_path):
    x = Input(shape=(5, 4))
    out, scores = MultiHeadAttention(num_heads=2, key_dim=2)(x, x, return_attention_scores=True)
    m = mf.Model(x, Dense(1)(Flatten()(scores)))
    randomized(m, rng)
    xs = seq(rng, 3, 5, 4)
    loaded = mf.models.from_bytes(m.to_bytes())
    np.testing.assert_array_equal(loaded.predict(xs, verbose=0), m.predict(xs, verbose=0))
    m.save(tmp_path / "s.keras")
    np.testing.assert_array_equal(
        mf.models.load_model(tmp_path / "s.keras").predict(xs, verbose=0), m.predict(xs, verbose=0)
    )
