"""Recurrent layers (LSTM, GRU, SimpleRNN): NumPy step-by-step references in Keras's gate order,
finite-difference gradients of inputs and weights, oneDNN vs reference, weight layout and
parameter counts by Keras's formulas, initializers, configs, errors, and a learning example."""

import threading

import numpy as np
import pytest
from test_gradients import check_model, randomize_params

import maasfin as mf
from maasfin import _core
from maasfin.layers import GRU, LSTM, Dense, Flatten, Input, SimpleRNN

BACKENDS = [pytest.param(_core.Backend.reference, id="reference"), pytest.param(_core.Backend.onednn, id="onednn")]
ACT = {
    "tanh": np.tanh,
    "sigmoid": lambda v: 1 / (1 + np.exp(-v)),
    "relu": lambda v: np.maximum(v, 0),
    "linear": lambda v: v,
}


# -- NumPy references (float64) ----------------------------------------------------------------
def run_np(step, x, state, go_backwards, return_sequences):
    T = x.shape[1]
    outs = []
    for s in range(T):
        state = step(x[:, T - 1 - s if go_backwards else s], state)
        outs.append(state[0])
    return np.stack(outs, 1) if return_sequences else outs[-1]


def lstm_np(x, kernel, recurrent, bias, act="tanh", rec_act="sigmoid", go_backwards=False, return_sequences=False):
    u = recurrent.shape[0]
    a, ra = ACT[act], ACT[rec_act]

    def step(xt, state):
        h, c = state
        z = xt @ kernel + h @ recurrent + bias
        i, f, g, o = ra(z[:, :u]), ra(z[:, u : 2 * u]), a(z[:, 2 * u : 3 * u]), ra(z[:, 3 * u :])
        c = f * c + i * g
        return o * a(c), c

    N = x.shape[0]
    return run_np(step, x.astype(np.float64), (np.zeros((N, u)), np.zeros((N, u))), go_backwards, return_sequences)


def gru_np(x, kernel, recurrent, bias, act="tanh", rec_act="sigmoid", go_backwards=False, return_sequences=False):
    u = recurrent.shape[0]
    a, ra = ACT[act], ACT[rec_act]

    def step(xt, state):
        (h,) = state
        p, q = xt @ kernel + bias[0], h @ recurrent + bias[1]
        z = ra(p[:, :u] + q[:, :u])
        r = ra(p[:, u : 2 * u] + q[:, u : 2 * u])
        hh = a(p[:, 2 * u :] + r * q[:, 2 * u :])
        return (z * h + (1 - z) * hh,)

    return run_np(step, x.astype(np.float64), (np.zeros((x.shape[0], u)),), go_backwards, return_sequences)


def simple_rnn_np(x, kernel, recurrent, bias, act="tanh", go_backwards=False, return_sequences=False):
    u = recurrent.shape[0]

    def step(xt, state):
        return (ACT[act](xt @ kernel + state[0] @ recurrent + bias),)

    return run_np(step, x.astype(np.float64), (np.zeros((x.shape[0], u)),), go_backwards, return_sequences)


def randomized(layer, shape, rng):
    """A one-layer model with random weights and biases (so the bias layout is tested too)."""
    m = mf.Sequential([Input(shape=shape), layer])
    m.build()
    layer.set_weights([rng.uniform(-0.6, 0.6, w.shape).astype(np.float32) for w in layer.get_weights()])
    return m


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("go_backwards", [False, True], ids=["forward", "backwards"])
@pytest.mark.parametrize("return_sequences", [False, True], ids=["last", "sequences"])
@pytest.mark.parametrize("kind", ["LSTM", "GRU", "SimpleRNN"])
def test_forward_matches_numpy(rng, backend, kind, go_backwards, return_sequences):
    _core.set_backend(backend)
    cls = {"LSTM": LSTM, "GRU": GRU, "SimpleRNN": SimpleRNN}[kind]
    layer = cls(5, go_backwards=go_backwards, return_sequences=return_sequences)
    m = randomized(layer, (7, 3), rng)
    x = rng.standard_normal((4, 7, 3)).astype(np.float32)
    ref = {"LSTM": lstm_np, "GRU": gru_np, "SimpleRNN": simple_rnn_np}[kind]
    want = ref(x, *layer.get_weights(), go_backwards=go_backwards, return_sequences=return_sequences)
    got = m.predict(x, verbose=0)
    assert got.shape == ((4, 7, 5) if return_sequences else (4, 5))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("act, rec_act", [("relu", "sigmoid"), ("linear", "tanh"), ("tanh", "relu")])
def test_other_activations_match_numpy(rng, act, rec_act):
    x = rng.standard_normal((3, 5, 2)).astype(np.float32) * 0.5
    lstm = LSTM(4, activation=act, recurrent_activation=rec_act, return_sequences=True)
    m = randomized(lstm, (5, 2), rng)
    np.testing.assert_allclose(
        m.predict(x, verbose=0), lstm_np(x, *lstm.get_weights(), act, rec_act, False, True), rtol=1e-5, atol=1e-5
    )
    gru = GRU(4, activation=act, recurrent_activation=rec_act)
    m = randomized(gru, (5, 2), rng)
    np.testing.assert_allclose(
        m.predict(x, verbose=0), gru_np(x, *gru.get_weights(), act, rec_act), rtol=1e-5, atol=1e-5
    )
    rnn = SimpleRNN(4, activation=act)
    m = randomized(rnn, (5, 2), rng)
    np.testing.assert_allclose(m.predict(x, verbose=0), simple_rnn_np(x, *rnn.get_weights(), act), rtol=1e-5, atol=1e-5)


def test_go_backwards_equals_reversed_input(rng):
    layer_b = LSTM(3, go_backwards=True, return_sequences=True)
    mb = randomized(layer_b, (6, 2), rng)
    mf_ = mf.Sequential([Input(shape=(6, 2)), LSTM(3, return_sequences=True)])
    mf_.set_weights(mb.get_weights())
    x = rng.standard_normal((2, 6, 2)).astype(np.float32)
    np.testing.assert_allclose(mb.predict(x, verbose=0), mf_.predict(x[:, ::-1], verbose=0), rtol=1e-6, atol=1e-6)


# -- weight layout, parameter counts, initializers ---------------------------------------------
@pytest.mark.parametrize(
    "cls, gates, bias_shape",
    [(LSTM, 4, lambda u: (4 * u,)), (GRU, 3, lambda u: (2, 3 * u)), (SimpleRNN, 1, lambda u: (u,))],
)
def test_weight_layout_and_param_counts(cls, gates, bias_shape):
    for u, d in ((8, 3), (1, 5)):
        layer = cls(u)
        m = mf.Sequential([Input(shape=(4, d)), layer])
        m.build()
        assert [w.shape for w in layer.get_weights()] == [(d, gates * u), (u, gates * u), bias_shape(u)]
        assert [name for name, _, _ in layer._param_specs()] == ["kernel", "recurrent_kernel", "bias"]
        # Keras: LSTM 4(u(d+u)+u), GRU (reset_after) 3(u(d+u)+2u), SimpleRNN u(d+u)+u
        assert m.count_params() == gates * (u * (d + u) + (2 * u if cls is GRU else u))
        no_bias = cls(u, use_bias=False)
        mb = mf.Sequential([Input(shape=(4, d)), no_bias])
        assert mb.count_params() == gates * u * (d + u)


def test_initializers_follow_keras():
    lstm = LSTM(6)
    mf.Sequential([Input(shape=(3, 4)), lstm]).build()
    kernel, recurrent, bias = lstm.get_weights()
    expected = np.zeros(24, np.float32)
    expected[6:12] = 1.0  # unit_forget_bias
    assert np.array_equal(bias, expected)
    np.testing.assert_allclose(recurrent @ recurrent.T, np.eye(6), atol=1e-5)  # orthogonal rows
    limit = np.sqrt(6 / (4 + 24))  # glorot_uniform on (4, 24)
    assert np.all(np.abs(kernel) <= limit) and np.abs(kernel).max() > 0.8 * limit
    plain = LSTM(6, unit_forget_bias=False)
    mf.Sequential([Input(shape=(3, 4)), plain]).build()
    assert not plain.get_weights()[2].any()
    rnn = SimpleRNN(5)
    mf.Sequential([Input(shape=(3, 4)), rnn]).build()
    np.testing.assert_allclose(rnn.get_weights()[1] @ rnn.get_weights()[1].T, np.eye(5), atol=1e-5)
    tall = Dense(3, kernel_initializer="orthogonal")
    mf.Sequential([Input(shape=(7,)), tall]).build()
    np.testing.assert_allclose(tall.get_weights()[0].T @ tall.get_weights()[0], np.eye(3), atol=1e-5)


# -- gradients ---------------------------------------------------------------------------------
GRAD_CASES = {
    "lstm_last": lambda: LSTM(3),
    "lstm_sequences_backwards": lambda: LSTM(3, return_sequences=True, go_backwards=True),
    "lstm_relu_no_bias": lambda: LSTM(2, activation="relu", use_bias=False, return_sequences=True),
    "gru_last": lambda: GRU(3),
    "gru_sequences_backwards": lambda: GRU(3, return_sequences=True, go_backwards=True),
    "gru_tanh_gates": lambda: GRU(2, recurrent_activation="tanh", return_sequences=True),
    "simple_rnn_last": lambda: SimpleRNN(3),
    "simple_rnn_sequences_backwards": lambda: SimpleRNN(3, return_sequences=True, go_backwards=True),
}


@pytest.mark.parametrize("case", sorted(GRAD_CASES))
@pytest.mark.parametrize("backend", BACKENDS)
def test_layer_gradients(rng, case, backend):
    """A Dense layer before the recurrent one puts the recurrent layer's dx into the check."""
    _core.set_backend(backend)
    inp = Input(shape=(4, 2))
    h = GRAD_CASES[case]()(Dense(2, activation="tanh")(inp))
    if len(h.shape) > 2:
        h = Flatten()(h)
    m = mf.Model(inp, Dense(2)(h))
    m.build()
    m.compile(optimizer="sgd", loss="mse")
    randomize_params(m, rng, scale=0.5)
    x = rng.standard_normal((3, 4, 2)).astype(np.float32)
    check_model(m, [x], rng.standard_normal((3, 2)).astype(np.float32), what=case)


def test_stacked_recurrent_gradients(rng):
    m = mf.Sequential(
        [Input(shape=(4, 2)), LSTM(3, return_sequences=True), GRU(2, return_sequences=True), SimpleRNN(2), Dense(1)]
    )
    m.build()
    m.compile(optimizer="sgd", loss="mse")
    randomize_params(m, rng, scale=0.5)
    check_model(
        m,
        [rng.standard_normal((3, 4, 2)).astype(np.float32)],
        rng.standard_normal((3, 1)).astype(np.float32),
        what="stacked",
    )


@pytest.mark.parametrize("cls", [LSTM, GRU, SimpleRNN])
def test_onednn_matches_reference(rng, cls):
    """Large enough for the per-step matmuls to go to oneDNN under automatic dispatch too."""
    m = mf.Sequential(
        [Input(shape=(6, 8)), Dense(8, activation="tanh"), cls(32, return_sequences=True), cls(16), Dense(3)]
    )
    m.build()
    m.compile(optimizer="sgd", loss="mse")
    randomize_params(m, rng, scale=0.3)
    x = rng.standard_normal((64, 6, 8)).astype(np.float32)
    y = rng.standard_normal((64, 3)).astype(np.float32)
    results = []
    for b in (_core.Backend.reference, _core.Backend.onednn, _core.Backend.automatic):
        _core.set_backend(b)
        loss = m._get_trainer(y.shape).compute_gradients([x], y, None, True, 0)
        results.append((m.predict(x, verbose=0), loss, m._graph.grads.copy()))
    (p0, l0, g0) = results[0]
    assert np.max(np.abs(g0)) > 1e-2
    for p, l, g in results[1:]:
        np.testing.assert_allclose(p, p0, rtol=1e-5, atol=1e-5)
        assert l == pytest.approx(l0, rel=1e-5)
        np.testing.assert_allclose(g, g0, rtol=1e-4, atol=1e-5)


def test_concurrent_predict_is_exact(rng):
    _core.set_backend(_core.Backend.onednn)
    m = mf.Sequential([Input(shape=(10, 4)), LSTM(32, return_sequences=True), GRU(16), Dense(2)])
    xs = [rng.standard_normal((n, 10, 4)).astype(np.float32) for n in (40, 7, 40, 23)]
    want = [m.predict(x, verbose=0) for x in xs]
    bad = []

    def work(k):
        for _ in range(10):
            if not np.array_equal(m._graph.predict([xs[k]], 64), want[k]):
                bad.append(k)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not bad


# -- configs and errors ------------------------------------------------------------------------
def test_configs_are_keras_shaped_and_round_trip():
    lstm = LSTM(4, return_sequences=True, go_backwards=True, name="l")
    cfg = lstm.get_config()
    assert {
        k: cfg[k]
        for k in (
            "units",
            "activation",
            "recurrent_activation",
            "use_bias",
            "return_sequences",
            "return_state",
            "go_backwards",
            "unit_forget_bias",
            "recurrent_initializer",
            "dropout",
            "recurrent_dropout",
        )
    } == {
        "units": 4,
        "activation": "tanh",
        "recurrent_activation": "sigmoid",
        "use_bias": True,
        "return_sequences": True,
        "return_state": False,
        "go_backwards": True,
        "unit_forget_bias": True,
        "recurrent_initializer": "orthogonal",
        "dropout": 0.0,
        "recurrent_dropout": 0.0,
    }
    assert LSTM.from_config(cfg).get_config() == cfg
    gcfg = GRU(2, name="g").get_config()
    assert gcfg["reset_after"] is True and GRU.from_config(gcfg).get_config() == gcfg
    scfg = SimpleRNN(2, name="s").get_config()
    assert "recurrent_activation" not in scfg and SimpleRNN.from_config(scfg).get_config() == scfg


def test_saved_lstm_predicts_identically(rng):
    m = mf.Sequential([Input(shape=(5, 3)), LSTM(4, return_sequences=True), GRU(3), Dense(1)])
    m.compile("adam", "mse")
    x = rng.standard_normal((16, 5, 3)).astype(np.float32)
    m.fit(x, rng.standard_normal((16, 1)).astype(np.float32), epochs=2, verbose=0)
    loaded = mf.models.from_bytes(m.to_bytes())
    assert np.array_equal(loaded.predict(x, verbose=0), m.predict(x, verbose=0))


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: LSTM(0), "units must be a positive integer"),
        (lambda: SimpleRNN(4, stateful=True), "stateful=True is not supported"),
        (lambda: LSTM(4, activation="softmax"), "activation 'softmax' is not supported in recurrent layers"),
        (lambda: GRU(4, recurrent_activation="gelu"), "recurrent_activation 'gelu' is not supported"),
        (lambda: LSTM(4, bias_initializer="glorot_uniform"), "unit_forget_bias=True works with bias_initializer"),
    ],
)
def test_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("cls", [LSTM, GRU, SimpleRNN])
def test_bad_input_rank_names_layer_and_shape(cls):
    layer = cls(3, name="rnn")
    with pytest.raises(
        ValueError,
        match=rf"{cls.__name__} 'rnn' expects one input of shape \(timesteps, features\) "
        r"per sample, got \(4, 3, 2\)",
    ):
        mf.Sequential([Input(shape=(4, 3, 2)), layer]).build()


# -- learning ----------------------------------------------------------------------------------
def test_lstm_learns_a_sequence_task():
    """Target: the signed sum of the first half of the sequence minus the second half, which needs
    memory across steps. Predicting the mean scores var(y) = 10/9; the held-out loss must fall
    more than tenfold below that."""
    rng = np.random.default_rng(3)

    def task(n):
        x = rng.standard_normal((n, 10, 1)).astype(np.float32)
        return x, (x[:, :5, 0].sum(1) - x[:, 5:, 0].sum(1))[:, None].astype(np.float32) / 3

    (x, y), (xv, yv) = task(512), task(256)
    m = mf.Sequential([Input(shape=(10, 1)), LSTM(16), Dense(1)])
    m.compile(optimizer=mf.optimizers.Adam(0.01), loss="mse")
    first = m.evaluate(xv, yv, verbose=0)
    history = m.fit(x, y, epochs=40, batch_size=32, verbose=0)
    last = m.evaluate(xv, yv, verbose=0)
    assert first > 0.8 and last < 0.1 * first, (first, last)
    assert history.history["loss"][-1] < 0.1 * history.history["loss"][0]
