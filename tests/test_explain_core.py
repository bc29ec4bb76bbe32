"""Input gradients and integrated gradients from the core: against finite differences, the
completeness axiom, exactness on a linear model, determinism and concurrent use."""

import threading

import numpy as np
import pytest

import maasfin as mf
from maasfin import _core
from maasfin.layers import BatchNormalization, Concatenate, Dense, Dropout, Input


def _mlp(activation="tanh", seed=0):
    mf.utils.set_random_seed(seed)
    m = mf.Sequential(
        [
            Dense(16, activation=activation, input_dim=4),
            Dropout(0.3),
            BatchNormalization(),
            Dense(2, activation="softmax"),
        ]
    )
    m.build()
    return m


@pytest.fixture
def x():
    return np.random.default_rng(0).normal(size=(7, 4)).astype(np.float32)


@pytest.mark.parametrize("activation", ["tanh", "gelu", "sigmoid"])
def test_input_gradients_match_finite_differences(x, activation):
    m = _mlp(activation)
    w = np.random.default_rng(1).normal(size=(7, 2)).astype(np.float32)
    g = _core.input_gradients(m._graph, [x], w)[0]
    eps = 1e-2
    num = np.zeros_like(x, dtype=np.float64)
    for j in range(4):
        xp, xm = x.copy(), x.copy()
        xp[:, j] += eps
        xm[:, j] -= eps
        num[:, j] = ((m.predict(xp).astype(np.float64) - m.predict(xm)) * w).sum(1) / (2 * eps)
    np.testing.assert_allclose(g, num, rtol=2e-2, atol=2e-4)


def test_input_gradients_of_a_two_input_model():
    mf.utils.set_random_seed(3)
    a, b = Input(shape=(2,)), Input(shape=(3,))
    y = Dense(1)(Concatenate()([Dense(4, activation="tanh")(a), b]))
    m = mf.Model(inputs=[a, b], outputs=y)
    m.build()
    xa = np.random.default_rng(0).normal(size=(5, 2)).astype(np.float32)
    xb = np.random.default_rng(1).normal(size=(5, 3)).astype(np.float32)
    ga, gb = _core.input_gradients(m._graph, [xa, xb], np.ones((5, 1), np.float32))
    # The second input reaches the output linearly: its gradient is the last Dense's kernel slice.
    kernel = m.layers[-1].get_weights()[0]
    np.testing.assert_allclose(gb, np.broadcast_to(kernel[4:, 0], (5, 3)), rtol=1e-6)
    assert ga.shape == (5, 2) and np.all(np.isfinite(ga)) and np.any(ga != 0)


@pytest.mark.parametrize("baseline_rows", [1, 7])
def test_integrated_gradients_complete(x, baseline_rows):
    m = _mlp("tanh")
    base = np.random.default_rng(2).normal(size=(baseline_rows, 4)).astype(np.float32)
    for out in (0, 1):
        a = _core.integrated_gradients(m._graph, x, base, out, 64)
        delta = m.predict(x)[:, out] - m.predict(np.broadcast_to(base, x.shape).copy())[:, out]
        np.testing.assert_allclose(a.sum(1), delta, atol=1e-5)


def test_integrated_gradients_of_a_linear_model_are_coefficient_times_difference(x):
    m = mf.Sequential([Dense(1, input_dim=4)])
    m.build()
    kernel, _ = m.get_weights()
    base = np.full((1, 4), 0.5, np.float32)
    a = _core.integrated_gradients(m._graph, x, base, 0, 4)
    np.testing.assert_allclose(a, kernel[:, 0] * (x - base), rtol=1e-6, atol=1e-7)


def test_gauss_legendre_integrates_polynomials_exactly():
    t, w = _core.gauss_legendre(6)
    assert sum(w) == pytest.approx(1.0, abs=1e-14)
    for p in range(12):  # 6 nodes integrate degree <= 11 exactly
        assert np.dot(w, np.asarray(t) ** p) == pytest.approx(1.0 / (p + 1), abs=1e-13)


def test_integrated_gradients_deterministic_and_thread_safe(x):
    m = _mlp("tanh")
    base = np.zeros((1, 4), np.float32)
    ref = _core.integrated_gradients(m._graph, x, base, 1, 32)
    results = []

    def work():
        for _ in range(20):
            results.append(_core.integrated_gradients(m._graph, x, base, 1, 32))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 80 and all(np.array_equal(r, ref) for r in results)


@pytest.mark.parametrize(
    "call",
    [
        lambda g, x: _core.integrated_gradients(g, x, np.zeros((3, 4), np.float32), 0, 8),
        lambda g, x: _core.integrated_gradients(g, x, np.zeros((1, 4), np.float32), 5, 8),
        lambda g, x: _core.integrated_gradients(g, x, np.zeros((1, 4), np.float32), 0, 0),
        lambda g, x: _core.integrated_gradients(g, x, np.zeros((1, 4), np.float32), 0, 8, -1.0),
        lambda g, x: _core.integrated_gradients(g, x[:, :3].copy(), np.zeros((1, 3), np.float32), 0, 8),
        lambda g, x: _core.input_gradients(g, [x], np.ones((7, 3), np.float32)),
    ],
    ids=["baseline_rows", "output_index", "steps", "tolerance", "features", "d_out_shape"],
)
def test_bad_arguments_raise_value_error(x, call):
    m = _mlp()
    with pytest.raises(ValueError):
        call(m._graph, x)
