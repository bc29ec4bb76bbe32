"""GRU(reset_after=False), Keras's original GRU (keras/src/layers/rnn/gru.py): bias (3u,),
hh = act(x W_h + b_h + (r * h) U_h). Float64 NumPy reference (with masks, initial states, dropout
masks from the core's RNG), finite-difference gradients on both backends, Keras's parameter count,
config and saving."""

import numpy as np
import pytest
from test_gradients import check_model, randomize_params
from test_recurrent_dropout import keep_masks

import maasfin as mf
from maasfin import _core
from maasfin.layers import GRU, Dense, Flatten, Input, Masking

BACKENDS = [pytest.param(_core.Backend.reference, id="reference"), pytest.param(_core.Backend.onednn, id="onednn")]


def sig(v):
    return 1 / (1 + np.exp(-v))


def gru_before_np(
    weights,
    x,
    h0=None,
    mask=None,
    go_backwards=False,
    return_sequences=False,
    rdp=None,
    dp=None,
    act=np.tanh,
    rec_act=sig,
):
    kernel, recurrent, bias = [np.asarray(w, np.float64) for w in weights]
    u = recurrent.shape[0]
    N, T = x.shape[:2]
    h = np.zeros((N, u)) if h0 is None else np.asarray(h0, np.float64)
    rdp = np.ones((3, N, u)) if rdp is None else rdp
    dp = np.ones((3, N, x.shape[2])) if dp is None else dp
    col = lambda W, g: W[..., g * u : (g + 1) * u]
    outs = []
    for s in range(T):
        t = T - 1 - s if go_backwards else s
        xt = x[:, t].astype(np.float64)
        p = [(xt * dp[g]) @ col(kernel, g) + col(bias, g) for g in range(3)]
        z = rec_act(p[0] + (h * rdp[0]) @ col(recurrent, 0))
        r = rec_act(p[1] + (h * rdp[1]) @ col(recurrent, 1))
        hh = act(p[2] + (r * h * rdp[2]) @ col(recurrent, 2))
        new = z * h + (1 - z) * hh
        keep = np.ones((N, 1), bool) if mask is None else mask[:, t : t + 1]
        h = np.where(keep, new, h)
        outs.append(h)
    return np.stack(outs, 1) if return_sequences else outs[-1]


def randomized(shape, rng, **kwargs):
    layer = GRU(4, reset_after=False, **kwargs)
    m = mf.Sequential([Input(shape=shape), layer])
    m.build()
    layer.set_weights([rng.uniform(-0.7, 0.7, w.shape).astype(np.float32) for w in layer.get_weights()])
    return m, layer


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("go_backwards", [False, True], ids=["forward", "backwards"])
@pytest.mark.parametrize("return_sequences", [False, True], ids=["last", "sequences"])
def test_forward_matches_numpy(rng, backend, return_sequences, go_backwards):
    _core.set_backend(backend)
    m, layer = randomized((6, 3), rng, return_sequences=return_sequences, go_backwards=go_backwards)
    kernel, recurrent, bias = layer.get_weights()
    assert kernel.shape == (3, 12) and recurrent.shape == (4, 12) and bias.shape == (12,)
    assert layer.count_params() == 3 * 4 * (3 + 4) + 3 * 4  # Keras: 3 * (u * (in + u) + u)
    x = rng.standard_normal((5, 6, 3)).astype(np.float32)
    want = gru_before_np(layer.get_weights(), x, go_backwards=go_backwards, return_sequences=return_sequences)
    np.testing.assert_allclose(m.predict(x, verbose=0), want, rtol=1e-5, atol=1e-5)
    # It is a different function from reset_after=True with the same kernels.
    after = mf.Sequential([Input(shape=(6, 3)), GRU(4, return_sequences=return_sequences, go_backwards=go_backwards)])
    after.build()
    after.set_weights([kernel, recurrent, np.stack([bias, np.zeros_like(bias)])])
    assert np.abs(after.predict(x, verbose=0) - want).max() > 1e-3


@pytest.mark.parametrize("given", ["mask", "initial_state"])
def test_activations_mask_and_initial_state_match_numpy(rng, given):
    x = rng.standard_normal((4, 5, 2)).astype(np.float32)
    mask = rng.random((4, 5)) > 0.4
    mask[0] = True
    x[~mask] = 0
    inp, h0 = Input(shape=(5, 2)), Input(shape=(4,))
    layer = GRU(4, reset_after=False, activation="relu", recurrent_activation="tanh", return_sequences=True)
    if given == "mask":
        m = mf.Model(inp, layer(Masking()(inp)))
    else:
        m = mf.Model([inp, h0], layer(inp, initial_state=[h0]))
    m.build()
    layer.set_weights([rng.uniform(-0.7, 0.7, w.shape).astype(np.float32) for w in layer.get_weights()])
    s0 = rng.standard_normal((4, 4)).astype(np.float32)
    want = gru_before_np(
        layer.get_weights(),
        x,
        h0=s0 if given == "initial_state" else None,
        mask=mask if given == "mask" else None,
        return_sequences=True,
        act=lambda v: np.maximum(v, 0),
        rec_act=np.tanh,
    )
    got = m.predict(x if given == "mask" else [x, s0], verbose=0)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_training_with_dropout_matches_numpy(rng):
    m, layer = randomized((5, 3), rng, dropout=0.3, recurrent_dropout=0.4, seed=11)
    m.compile(optimizer="sgd", loss="mse")
    x = rng.standard_normal((3, 5, 3)).astype(np.float32)
    y = np.zeros((3, 4), np.float32)
    dp = keep_masks(21, 1, 11, False, 3, 3, 3, 0.3)
    rdp = keep_masks(21, 1, 11, True, 3, 3, 4, 0.4)
    want = np.mean(gru_before_np(layer.get_weights(), x, dp=dp, rdp=rdp) ** 2)
    assert m._get_trainer(y.shape).compute_gradients([x], y, None, True, 21) == pytest.approx(want, rel=2e-5)


GRAD_CASES = {
    "last": dict(),
    "sequences_backwards": dict(return_sequences=True, go_backwards=True),
    "no_bias_relu": dict(use_bias=False, activation="relu", return_sequences=True),
    "recurrent_dropout": dict(dropout=0.2, recurrent_dropout=0.4, seed=3),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", sorted(GRAD_CASES))
def test_gradients(rng, case, backend):
    _core.set_backend(backend)
    inp = Input(shape=(4, 2))
    h = GRU(3, reset_after=False, **GRAD_CASES[case])(Dense(2, activation="tanh")(inp))
    if len(h.shape) > 2:
        h = Flatten()(h)
    m = mf.Model(inp, Dense(2)(h))
    m.build()
    m.compile(optimizer="sgd", loss="mse")
    randomize_params(m, rng, scale=0.5)
    x = rng.standard_normal((3, 4, 2)).astype(np.float32)
    check_model(m, [x], rng.standard_normal((3, 2)).astype(np.float32), training=True, seed=8, what=case)


def test_masked_state_gradients(rng):
    x = rng.standard_normal((4, 5, 2)).astype(np.float32)
    x[1, 3:] = 0
    x[2, :2] = 0
    inp, z = Input(shape=(5, 2)), Input(shape=(3,))
    from maasfin.layers import Concatenate

    out, h = GRU(3, reset_after=False, return_state=True)(Masking()(inp))
    out2 = GRU(2, reset_after=False, go_backwards=True)(inp, initial_state=[Dense(2)(z)])
    m = mf.Model([inp, z], Dense(1)(Concatenate()([out, h, out2])))
    m.build()
    m.compile(optimizer="sgd", loss="mse")
    randomize_params(m, rng, scale=0.5)
    check_model(
        m,
        [x, rng.standard_normal((4, 3)).astype(np.float32)],
        rng.standard_normal((4, 1)).astype(np.float32),
        what="masked reset_before",
    )


def test_config_and_saving(rng):
    layer = GRU(3, reset_after=False, name="g")
    cfg = layer.get_config()
    assert cfg["reset_after"] is False and GRU.from_config(cfg).get_config() == cfg
    m = mf.Sequential([Input(shape=(5, 2)), layer, Dense(1)])
    m.compile("adam", "mse")
    x = rng.standard_normal((16, 5, 2)).astype(np.float32)
    m.fit(x, rng.standard_normal((16, 1)).astype(np.float32), epochs=2, verbose=0)
    loaded = mf.models.from_bytes(m.to_bytes())
    assert loaded.layers[0].get_weights()[2].shape == (9,)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), m.predict(x, verbose=0))
