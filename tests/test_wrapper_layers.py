"""TimeDistributed and Bidirectional: NumPy references (per-step Dense, the wrapped layer on
folded data, Keras's forward/backward recurrent runs with time reversal and merge modes),
finite-difference gradients, Keras weight order, regularizers reaching both directions, errors."""

import numpy as np
import pytest
from test_gradients import check_model, randomize_params
from test_recurrent_layers import gru_np, lstm_np, simple_rnn_np

import maasfin as mf
from maasfin import _core
from maasfin.layers import GRU, LSTM, Bidirectional, Conv1D, Dense, Flatten, Input, SimpleRNN, TimeDistributed

BACKENDS = [pytest.param(_core.Backend.reference, id="reference"), pytest.param(_core.Backend.onednn, id="onednn")]
REFS = {LSTM: lstm_np, GRU: gru_np, SimpleRNN: simple_rnn_np}
MERGE = {
    "concat": lambda f, b: np.concatenate([f, b], -1),
    "sum": lambda f, b: f + b,
    "mul": lambda f, b: f * b,
    "ave": lambda f, b: (f + b) / 2,
}


def randomized(model, rng, scale=0.6):
    model.build()
    for layer in model.layers:
        layer.set_weights([rng.uniform(-scale, scale, w.shape).astype(np.float32) for w in layer.get_weights()])
    return model


# -- TimeDistributed ---------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_time_distributed_dense_matches_numpy(rng, backend):
    _core.set_backend(backend)
    td = TimeDistributed(Dense(4, activation="tanh"))
    m = randomized(mf.Sequential([Input(shape=(5, 3)), td]), rng)
    kernel, bias = td.get_weights()
    assert kernel.shape == (3, 4) and bias.shape == (4,) and td.count_params() == 16
    x = rng.standard_normal((6, 5, 3)).astype(np.float32)
    np.testing.assert_allclose(
        m.predict(x, verbose=0), np.tanh(x.astype(np.float64) @ kernel + bias), rtol=1e-5, atol=1e-6
    )
    assert m.output_shape == (None, 5, 4) and td.layer.get_config()["units"] == 4


def test_time_distributed_conv1d_equals_the_layer_on_folded_steps(rng):
    """(N, T, L, C) through TimeDistributed(Conv1D) == Conv1D on (N*T, L, C) with the same weights."""
    td = TimeDistributed(Conv1D(3, 2, activation="relu"))
    m = randomized(mf.Sequential([Input(shape=(4, 6, 2)), td]), rng)
    plain = mf.Sequential([Input(shape=(6, 2)), Conv1D(3, 2, activation="relu")])
    plain.build()
    plain.set_weights(m.get_weights())
    x = rng.standard_normal((5, 4, 6, 2)).astype(np.float32)
    got = m.predict(x, verbose=0)
    assert got.shape == (5, 4, 5, 3)
    np.testing.assert_array_equal(got, plain.predict(x.reshape(20, 6, 2), verbose=0).reshape(5, 4, 5, 3))


def test_time_distributed_gradients(rng):
    x = Input(shape=(4, 3))
    h = TimeDistributed(Dense(3, activation="tanh"))(Dense(3, activation="tanh")(x))
    m = mf.Model(x, Dense(2)(Flatten()(TimeDistributed(Dense(2, activation="sigmoid"))(h))))
    m.build()
    m.compile(optimizer="sgd", loss="mse")
    randomize_params(m, rng)
    check_model(
        m,
        [rng.standard_normal((5, 4, 3)).astype(np.float32)],
        rng.standard_normal((5, 2)).astype(np.float32),
        what="TimeDistributed(Dense)",
    )


def test_time_distributed_regularizer_and_errors():
    td = TimeDistributed(Dense(2, kernel_regularizer=mf.regularizers.L2(0.5)))
    m = mf.Sequential([Input(shape=(3, 4)), td])
    m.build()
    penalties, _ = td._regularization()
    assert len(penalties) == 1 and penalties[0][1] - penalties[0][0] == 8 and penalties[0][3] == 0.5
    with pytest.raises(
        ValueError,
        match=r"TimeDistributed 'td' expects one input of shape \(timesteps, \.\.\.\) "
        r"per sample, got \(4,\)",
    ):
        TimeDistributed(Dense(2), name="td")(Input(shape=(4,)))
    with pytest.raises(ValueError, match="not an Input or another wrapper"):
        TimeDistributed(TimeDistributed(Dense(2)))
    used = Dense(2)
    used(Input(shape=(3,)))
    with pytest.raises(ValueError, match="already used in a model"):
        TimeDistributed(used)


# -- Bidirectional -----------------------------------------------------------------------------
def bidi_np(cls, layer, x, merge_mode, return_sequences):
    w = layer.get_weights()
    n = len(w) // 2
    f = REFS[cls](x, *w[:n], return_sequences=return_sequences)
    b = REFS[cls](x, *w[n:], go_backwards=True, return_sequences=return_sequences)
    if return_sequences:
        b = b[:, ::-1]  # Keras flips the backward sequence to align it with the forward one
    return MERGE[merge_mode](f, b)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("return_sequences", [False, True], ids=["last", "sequences"])
@pytest.mark.parametrize("merge_mode", list(MERGE))
@pytest.mark.parametrize("cls", [LSTM, GRU, SimpleRNN])
def test_bidirectional_matches_numpy(rng, backend, cls, merge_mode, return_sequences):
    _core.set_backend(backend)
    layer = Bidirectional(cls(4, return_sequences=return_sequences), merge_mode=merge_mode)
    m = randomized(mf.Sequential([Input(shape=(6, 3)), layer]), rng)
    x = rng.standard_normal((5, 6, 3)).astype(np.float32)
    want = bidi_np(cls, layer, x, merge_mode, return_sequences)
    got = m.predict(x, verbose=0)
    width = 8 if merge_mode == "concat" else 4
    assert got.shape == ((5, 6, width) if return_sequences else (5, width))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_bidirectional_weight_order():
    layer = Bidirectional(LSTM(3, name="enc"))
    m = mf.Sequential([Input(shape=(5, 2)), layer])
    m.build()
    assert [w.shape for w in layer.get_weights()] == [(2, 12), (3, 12), (12,)] * 2
    names = [n for n, _, _ in m._graph.layer_params(layer._node)]
    assert names == [
        "forward_enc/kernel",
        "forward_enc/recurrent_kernel",
        "forward_enc/bias",
        "backward_enc/kernel",
        "backward_enc/recurrent_kernel",
        "backward_enc/bias",
    ]
    assert layer.count_params() == 2 * 4 * (3 * (2 + 3) + 3)
    assert layer.backward_layer.go_backwards and not layer.forward_layer.go_backwards
    assert m.output_shape == (None, 6)


@pytest.mark.parametrize("merge_mode", list(MERGE))
@pytest.mark.parametrize("cls, seq", [(LSTM, True), (GRU, False), (SimpleRNN, True)])
def test_bidirectional_gradients(rng, cls, seq, merge_mode):
    x = Input(shape=(4, 2))
    h = Bidirectional(cls(3, return_sequences=seq), merge_mode=merge_mode)(Dense(2, activation="tanh")(x))
    if seq:
        h = Flatten()(h)
    m = mf.Model(x, Dense(2)(h))
    m.build()
    m.compile(optimizer="sgd", loss="mse")
    randomize_params(m, rng, scale=0.5)
    check_model(
        m,
        [rng.standard_normal((3, 4, 2)).astype(np.float32)],
        rng.standard_normal((3, 2)).astype(np.float32),
        what=f"Bidirectional({cls.__name__}) {merge_mode}",
    )


def test_bidirectional_of_a_backwards_layer_runs_it_both_ways(rng):
    layer = Bidirectional(SimpleRNN(3, go_backwards=True), merge_mode="concat")
    m = randomized(mf.Sequential([Input(shape=(5, 2)), layer]), rng)
    x = rng.standard_normal((4, 5, 2)).astype(np.float32)
    w = layer.get_weights()
    want = np.concatenate([simple_rnn_np(x, *w[:3], go_backwards=True), simple_rnn_np(x, *w[3:])], -1)
    np.testing.assert_allclose(m.predict(x, verbose=0), want, rtol=1e-5, atol=1e-5)


def test_bidirectional_regularizers_reach_both_directions_and_training_learns(rng):
    layer = Bidirectional(LSTM(4, kernel_regularizer="l2", recurrent_regularizer=mf.regularizers.L1(0.01)))
    m = mf.Sequential([Input(shape=(8, 1)), layer, Dense(1)])
    m.build()
    penalties, _ = layer._regularization()
    assert len(penalties) == 4  # kernel and recurrent kernel of each direction
    # The sum of a sequence needs both ends: a small fit must beat predicting the mean.
    x = rng.standard_normal((256, 8, 1)).astype(np.float32)
    y = x.sum(axis=1)
    m.compile(optimizer=mf.optimizers.Adam(0.02), loss="mse")
    m.fit(x, y, epochs=30, batch_size=32, verbose=0)
    assert m.evaluate(x, y, verbose=0) < 0.25 * float(np.var(y))


def test_bidirectional_errors():
    with pytest.raises(ValueError, match=r"Bidirectional 'bi': merge_mode must be one of"):
        Bidirectional(LSTM(2), merge_mode=None, name="bi")
    with pytest.raises(ValueError, match=r"layer must be one of LSTM, GRU, SimpleRNN, got Dense"):
        Bidirectional(Dense(2))
    with pytest.raises(ValueError, match="backward_layer is not supported"):
        Bidirectional(LSTM(2), backward_layer=LSTM(2, go_backwards=True))
    with pytest.raises(ValueError, match=r"LSTM 'l' expects one input of shape \(timesteps, features\)"):
        Bidirectional(LSTM(2, name="l"))(Input(shape=(4,)))
