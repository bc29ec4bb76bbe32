"""The fused LSTM kernel (oneDNN's vanilla_lstm over the whole sequence) against a float64 NumPy
forward and backpropagation through time, the dispatch rule that picks it, and, at model level,
against the LSTM layer's per-step loop (the reference backend) for every output mode."""

import numpy as np
import pytest

import maasfin as mf
from maasfin import _core, _testing
from maasfin.layers import LSTM, Dense, Flatten, Input


def sigmoid(v):
    return 1 / (1 + np.exp(-v))


def lstm_np_grads(x, kernel, recurrent, bias, dy, go_backwards, return_sequences):
    """Keras LSTM (tanh, sigmoid, zero initial state) and its gradients for the output gradient dy."""
    x, kernel, recurrent, bias, dy = (a.astype(np.float64) for a in (x, kernel, recurrent, bias, dy))
    N, T, _ = x.shape
    u = recurrent.shape[0]
    xs = x[:, ::-1] if go_backwards else x  # processing order
    h, c = np.zeros((N, u)), np.zeros((N, u))
    cache, outs = [], []
    for s in range(T):
        z = xs[:, s] @ kernel + h @ recurrent + bias
        i, f, g, o = sigmoid(z[:, :u]), sigmoid(z[:, u : 2 * u]), np.tanh(z[:, 2 * u : 3 * u]), sigmoid(z[:, 3 * u :])
        c_new = f * c + i * g
        cache.append((h, c, i, f, g, o, np.tanh(c_new)))
        c = c_new
        h = o * np.tanh(c)
        outs.append(h)
    y = np.stack(outs, 1) if return_sequences else outs[-1]
    dk, dr, db = np.zeros_like(kernel), np.zeros_like(recurrent), np.zeros_like(bias)
    dxs = np.zeros_like(xs)
    dh, dc = np.zeros((N, u)), np.zeros((N, u))
    for s in reversed(range(T)):
        if return_sequences:
            dh = dh + dy[:, s]
        elif s == T - 1:
            dh = dh + dy
        h_prev, c_prev, i, f, g, o, a = cache[s]
        dcs = dc + dh * o * (1 - a * a)
        dz = np.concatenate(
            [dcs * g * i * (1 - i), dcs * c_prev * f * (1 - f), dcs * i * (1 - g * g), dh * a * o * (1 - o)], 1
        )
        dk += xs[:, s].T @ dz
        dr += h_prev.T @ dz
        db += dz.sum(0)
        dxs[:, s] = dz @ kernel.T
        dh = dz @ recurrent.T
        dc = dcs * f
    dx = dxs[:, ::-1] if go_backwards else dxs
    return y, dx, dk, dr, db


def random_problem(rng, N, T, D, u, return_sequences):
    x = rng.standard_normal((N, T, D)).astype(np.float32)
    kernel = rng.uniform(-0.5, 0.5, (D, 4 * u)).astype(np.float32)
    recurrent = (rng.uniform(-0.5, 0.5, (u, 4 * u)) / np.sqrt(u / 4)).astype(np.float32)
    bias = rng.uniform(-0.5, 0.5, 4 * u).astype(np.float32)
    dy = rng.standard_normal((N, T, u) if return_sequences else (N, u)).astype(np.float32)
    return x, kernel, recurrent, bias, dy


@pytest.fixture
def forced_onednn():
    _core.set_backend(_core.Backend.onednn)
    yield
    _core.set_backend(_core.Backend.automatic)


@pytest.mark.parametrize("shape", [(3, 5, 2, 4), (17, 9, 6, 32), (64, 30, 8, 128)], ids=str)
@pytest.mark.parametrize("go_backwards", [False, True], ids=["forward", "backwards"])
@pytest.mark.parametrize("return_sequences", [False, True], ids=["last", "sequences"])
def test_fused_kernel_matches_numpy_bptt(rng, forced_onednn, shape, go_backwards, return_sequences):
    x, kernel, recurrent, bias, dy = random_problem(rng, *shape, return_sequences)
    got = _testing.lstm_sequence(x, kernel, recurrent, bias, dy, go_backwards, return_sequences)
    assert got is not None, "forced oneDNN backend must take the fused kernel"
    want = lstm_np_grads(x, kernel, recurrent, bias, dy, go_backwards, return_sequences)
    assert np.abs(want[0]).max() > 0.1 and np.abs(want[3]).max() > 0.1
    for name, g, w in zip(("y", "dx", "d_kernel", "d_recurrent", "d_bias"), got, want):
        assert g.shape == w.shape, name
        scale = max(1.0, float(np.abs(w).max()))
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=2e-5 * scale, err_msg=name)


@pytest.mark.parametrize("threads", [1, 3])
def test_batch_slices_match_numpy_bptt(rng, forced_onednn, threads):
    """The batch runs as min(threads, N // 8, 4) concurrent slices whose weight gradients are
    summed: one slice, and three uneven ones (22 + 22 + 23 rows), give the same results."""
    before = mf.config.get_num_threads()
    x, kernel, recurrent, bias, dy = random_problem(rng, 67, 6, 5, 16, True)
    try:
        mf.config.set_num_threads(threads)
        got = _testing.lstm_sequence(x, kernel, recurrent, bias, dy, True, True)
    finally:
        mf.config.set_num_threads(before)
    want = lstm_np_grads(x, kernel, recurrent, bias, dy, True, True)
    for name, g, w in zip(("y", "dx", "d_kernel", "d_recurrent", "d_bias"), got, want):
        scale = max(1.0, float(np.abs(w).max()))
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=2e-5 * scale, err_msg=name)


def test_fused_kernel_is_chosen_by_dispatch(rng):
    small = random_problem(rng, 4, 3, 2, 5, False)  # one step: 4 x 5 x 20 multiply-adds
    large = random_problem(rng, 64, 3, 2, 64, False)  # 64 x 64 x 256 >= the oneDNN threshold
    try:
        _core.set_backend(_core.Backend.reference)
        assert _testing.lstm_sequence(*large, False, False) is None
        _core.set_backend(_core.Backend.automatic)
        assert _core.onednn_min_macs() <= 64 * 64 * 256 and _core.onednn_min_macs() > 4 * 5 * 20
        assert _testing.lstm_sequence(*small, False, False) is None
        assert _testing.lstm_sequence(*large, False, False) is not None
        _core.set_backend(_core.Backend.onednn)
        assert _testing.lstm_sequence(*small, False, False) is not None
    finally:
        _core.set_backend(_core.Backend.automatic)


def test_fused_kernel_rejects_mismatched_shapes(rng):
    x, kernel, recurrent, bias, dy = random_problem(rng, 2, 3, 4, 5, False)
    with pytest.raises(ValueError, match=r"kernel \(3, 20\)"):
        _testing.lstm_sequence(x, kernel[:3], recurrent, bias, dy, False, False)
    with pytest.raises(ValueError, match="dy"):
        _testing.lstm_sequence(x, kernel, recurrent, bias, dy[:1], False, False)


@pytest.mark.parametrize("go_backwards", [False, True], ids=["forward", "backwards"])
@pytest.mark.parametrize("return_sequences", [False, True], ids=["last", "sequences"])
@pytest.mark.parametrize("use_bias", [True, False], ids=["bias", "no_bias"])
def test_layer_fused_path_matches_per_step_loop(rng, go_backwards, return_sequences, use_bias):
    """Predictions, loss and every gradient (the Dense before the LSTM receives its dx) agree
    between the per-step loop (reference backend) and the fused kernel (oneDNN backend)."""
    inp = Input(shape=(7, 5))
    h = LSTM(24, go_backwards=go_backwards, return_sequences=return_sequences, use_bias=use_bias)(
        Dense(6, activation="tanh")(inp)
    )
    if return_sequences:
        h = Flatten()(h)
    m = mf.Model(inp, Dense(3)(h))
    m.build()
    m.compile(optimizer="sgd", loss="mse")
    m._graph.params[:] = rng.uniform(-0.4, 0.4, m._graph.params.shape).astype(np.float32)
    x = rng.standard_normal((20, 7, 5)).astype(np.float32)
    y = rng.standard_normal((20, 3)).astype(np.float32)
    results = []
    try:
        for b in (_core.Backend.reference, _core.Backend.onednn):
            _core.set_backend(b)
            loss = m._get_trainer(y.shape).compute_gradients([x], y, None, True, 0)
            results.append((m.predict(x, verbose=0), loss, m._graph.grads.copy()))
    finally:
        _core.set_backend(_core.Backend.automatic)
    (p0, l0, g0), (p1, l1, g1) = results
    assert np.abs(g0).max() > 1e-2
    np.testing.assert_allclose(p1, p0, rtol=1e-5, atol=1e-5)
    assert l1 == pytest.approx(l0, rel=1e-5)
    np.testing.assert_allclose(g1, g0, rtol=1e-4, atol=1e-5)
