"""Recurrent dropout / recurrent_dropout (Keras 3 semantics, keras/src/layers/rnn/{lstm,gru,simple_rnn}.py
and dropout_rnn_cell.py): masks drawn once per batch and reused at every step; x is dropped
before the kernel and h before the recurrent kernel; with recurrent_dropout LSTM/GRU draw one mask
per gate (Keras's implementation 1), otherwise one shared input mask; GRU's update mixes the
undropped h. The training loss is checked exactly against a float64 NumPy forward that draws the
same masks from a re-implementation of the core's counter-based RNG; gradients by finite
differences in training mode (the masks are a pure function of the step seed)."""

import numpy as np
import pytest
from test_gradients import check_model, randomize_params

import maasfin as mf
from maasfin import _core
from maasfin.layers import GRU, LSTM, Bidirectional, Dense, Input, SimpleRNN

BACKENDS = [pytest.param(_core.Backend.reference, id="reference"), pytest.param(_core.Backend.onednn, id="onednn")]
CLS = {"LSTM": LSTM, "GRU": GRU, "SimpleRNN": SimpleRNN}
GATES = {"LSTM": 4, "GRU": 3, "SimpleRNN": 1}
M64 = (1 << 64) - 1


# -- the core's RNG (cpp/include/maasfin/rng.hpp) in Python --------------------------------------
def _mix(z):
    z = (z + 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def _hash(seed, stream, index):
    return _mix((_mix(seed ^ _mix(stream)) + index) & M64)


def _uniform(seed, stream, index):
    return (_hash(seed, stream, index) >> 40) * (1.0 / 16777216.0)


def keep_masks(step_seed, node, layer_seed, recurrent, count, N, width, rate):
    """The core's dropout scales: count x N x width of 0 or 1/(1-rate)."""
    seed = _hash(step_seed, node, 0)
    out = np.zeros((count, N, width))
    for g in range(count):
        stream = _hash(layer_seed, 2 if recurrent else 1, g)
        for n in range(N):
            for d in range(width):
                out[g, n, d] = 1 / (1 - rate) if _uniform(seed, stream, n * width + d) >= rate else 0.0
    return out


def sig(v):
    return 1 / (1 + np.exp(-v))


def forward_np(kind, weights, x, dp, rdp):
    """Keras's cell loop with given masks: dp (M, N, D) on x and rdp (M, N, u) on h; M = gates or 1."""
    kernel, recurrent, bias = [np.asarray(w, np.float64) for w in weights]
    u = recurrent.shape[0]
    N, T = x.shape[:2]
    h, c = np.zeros((N, u)), np.zeros((N, u))
    col = lambda W, g: W[..., g * u : (g + 1) * u]
    pick = lambda masks, g: masks[g if masks.shape[0] > 1 else 0]
    for t in range(T):
        xt = x[:, t].astype(np.float64)
        if kind == "LSTM":
            z = [
                (xt * pick(dp, g)) @ col(kernel, g) + (h * pick(rdp, g)) @ col(recurrent, g) + col(bias, g)
                for g in range(4)
            ]
            i, f, gg, o = sig(z[0]), sig(z[1]), np.tanh(z[2]), sig(z[3])
            c = f * c + i * gg
            h = o * np.tanh(c)
        elif kind == "GRU":
            p = [(xt * pick(dp, g)) @ col(kernel, g) + col(bias[0], g) for g in range(3)]
            q = [(h * pick(rdp, g)) @ col(recurrent, g) + col(bias[1], g) for g in range(3)]
            zz, r = sig(p[0] + q[0]), sig(p[1] + q[1])
            hh = np.tanh(p[2] + r * q[2])
            h = zz * h + (1 - zz) * hh
        else:
            h = np.tanh((xt * dp[0]) @ kernel + (h * rdp[0]) @ recurrent + bias)
    return h


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("rates", [(0.3, 0.0), (0.0, 0.4), (0.25, 0.5)], ids=["dropout", "recurrent", "both"])
@pytest.mark.parametrize("kind", sorted(CLS))
def test_training_forward_matches_numpy_with_the_same_masks(rng, kind, rates, backend):
    _core.set_backend(backend)
    dropout, rec = rates
    layer = CLS[kind](5, dropout=dropout, recurrent_dropout=rec, seed=77)
    m = mf.Sequential([Input(shape=(6, 4)), layer])
    m.build()
    m.compile(optimizer="sgd", loss="mse")
    randomize_params(m, rng, scale=0.5)
    x = rng.standard_normal((3, 6, 4)).astype(np.float32)
    y = np.zeros((3, 5), np.float32)
    count = GATES[kind] if rec > 0 else 1
    step_seed = 12345
    dp = keep_masks(step_seed, 1, 77, False, count, 3, 4, dropout) if dropout else np.ones((1, 3, 4))
    rdp = keep_masks(step_seed, 1, 77, True, count, 3, 5, rec) if rec else np.ones((1, 3, 5))
    assert (dp == 0).any() or (rdp == 0).any()
    want = np.mean(forward_np(kind, layer.get_weights(), x, dp, rdp) ** 2)
    t = m._get_trainer(y.shape)
    got = t.compute_gradients([x], y, None, True, step_seed)
    assert got == pytest.approx(want, rel=2e-5)
    # Inference ignores dropout, and a training pass with other masks differs.
    assert np.mean(m.predict(x, verbose=0).astype(np.float64) ** 2) == pytest.approx(
        np.mean(forward_np(kind, layer.get_weights(), x, np.ones((1, 3, 4)), np.ones((1, 3, 5))) ** 2), rel=2e-5
    )
    assert t.compute_gradients([x], y, None, True, step_seed + 1) != got
    assert t.compute_gradients([x], y, None, False, step_seed) != got


def test_masks_are_reused_across_timesteps_and_per_gate(rng):
    """A wrong implementation that redraws masks per step, or shares one mask between gates when
    recurrent_dropout is set, fails the exact comparison."""
    layer = LSTM(4, dropout=0.5, recurrent_dropout=0.5, seed=5)
    m = mf.Sequential([Input(shape=(5, 3)), layer])
    m.build()
    m.compile(optimizer="sgd", loss="mse")
    randomize_params(m, rng, scale=0.6)
    x = rng.standard_normal((2, 5, 3)).astype(np.float32)
    y = np.zeros((2, 4), np.float32)
    got = m._get_trainer(y.shape).compute_gradients([x], y, None, True, 9)
    dp = keep_masks(9, 1, 5, False, 4, 2, 3, 0.5)
    rdp = keep_masks(9, 1, 5, True, 4, 2, 4, 0.5)
    right = np.mean(forward_np("LSTM", layer.get_weights(), x, dp, rdp) ** 2)
    shared = np.mean(forward_np("LSTM", layer.get_weights(), x, dp[:1], rdp[:1]) ** 2)
    assert got == pytest.approx(right, rel=2e-5)
    assert abs(shared - right) > 1e-3 * abs(right)


GRAD_CASES = {
    "lstm_dropout": lambda: LSTM(3, dropout=0.3, seed=1),
    "lstm_both_sequences": lambda: LSTM(3, dropout=0.2, recurrent_dropout=0.4, return_sequences=True, seed=2),
    "gru_recurrent_backwards": lambda: GRU(3, recurrent_dropout=0.4, go_backwards=True, seed=3),
    "gru_both": lambda: GRU(3, dropout=0.3, recurrent_dropout=0.3, seed=4),
    "simple_rnn_both": lambda: SimpleRNN(3, dropout=0.3, recurrent_dropout=0.3, return_sequences=True, seed=5),
    "bidirectional": lambda: Bidirectional(GRU(2, dropout=0.3, recurrent_dropout=0.3, seed=6)),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", sorted(GRAD_CASES))
def test_training_gradients_with_dropout(rng, case, backend):
    """Finite differences in training mode: the masks depend only on the step seed, so the loss is a
    smooth function of the weights for a fixed seed."""
    _core.set_backend(backend)
    from maasfin.layers import Flatten

    inp = Input(shape=(4, 2))
    h = GRAD_CASES[case]()(Dense(2, activation="tanh")(inp))
    if len(h.shape) > 2:
        h = Flatten()(h)
    m = mf.Model(inp, Dense(2)(h))
    m.build()
    m.compile(optimizer="sgd", loss="mse")
    randomize_params(m, rng, scale=0.5)
    x = rng.standard_normal((3, 4, 2)).astype(np.float32)
    check_model(m, [x], rng.standard_normal((3, 2)).astype(np.float32), training=True, seed=31, what=case)


def test_dropout_config_seed_and_save(rng):
    layer = GRU(3, dropout=0.2, recurrent_dropout=0.1, name="g")
    cfg = layer.get_config()
    assert cfg["dropout"] == 0.2 and cfg["recurrent_dropout"] == 0.1 and isinstance(cfg["seed"], int)
    assert GRU.from_config(cfg).get_config() == cfg
    assert LSTM(2, name="l").get_config()["seed"] is None  # no dropout, no seed drawn
    m = mf.Sequential([Input(shape=(5, 2)), LSTM(4, dropout=0.3, recurrent_dropout=0.3), Dense(1)])
    m.compile("adam", "mse")
    x = rng.standard_normal((32, 5, 2)).astype(np.float32)
    y = rng.standard_normal((32, 1)).astype(np.float32)
    m.fit(x, y, epochs=2, verbose=0)
    loaded = mf.models.from_bytes(m.to_bytes())
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), m.predict(x, verbose=0))
    t1 = loaded._get_trainer(y.shape).compute_gradients([x], y, None, True, 3)
    t2 = m._get_trainer(y.shape).compute_gradients([x], y, None, True, 3)
    assert t1 == t2  # the saved seed reproduces the training masks


def test_fit_with_dropout_is_reproducible(rng):
    def run():
        mf.utils.set_random_seed(7)
        m = mf.Sequential([Input(shape=(5, 2)), GRU(4, dropout=0.3, recurrent_dropout=0.3), Dense(1)])
        m.compile("adam", "mse")
        x = np.random.default_rng(1).standard_normal((64, 5, 2)).astype(np.float32)
        h = m.fit(x, x[:, :, :1].sum(1), epochs=3, batch_size=16, verbose=0)
        return h.history["loss"], m.get_weights()

    (l1, w1), (l2, w2) = run(), run()
    assert l1 == l2 and all(np.array_equal(a, b) for a, b in zip(w1, w2))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(dropout=1.0), r"LSTM 'r': dropout must be a number in \[0, 1\), got 1.0"),
        (dict(recurrent_dropout=-0.1), r"LSTM 'r': recurrent_dropout must be a number in \[0, 1\), got -0.1"),
        (dict(dropout=0.1, seed=-3), r"LSTM 'r': seed must be a non-negative integer or None, got -3"),
    ],
)
def test_dropout_arguments_are_validated(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LSTM(2, name="r", **kwargs)
