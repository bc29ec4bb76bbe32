"""Merge layers Subtract, Multiply, Average, Maximum, Minimum and Dot: NumPy references,
finite-difference gradients through each input, the routing of Maximum/Minimum gradients on ties,
the functional forms, and errors that name the layer and both shapes."""

import numpy as np
import pytest
from test_gradients import check_model, randomize_params

import maasfin as mf
from maasfin import layers as L
from maasfin.layers import Dense, Input

REFS = {
    "Subtract": lambda xs: xs[0] - xs[1],
    "Multiply": lambda xs: np.prod(xs, axis=0),
    "Average": lambda xs: np.mean(xs, axis=0),
    "Maximum": lambda xs: np.max(xs, axis=0),
    "Minimum": lambda xs: np.min(xs, axis=0),
}


def _data(rng, k, shape=(4,), n=6):
    return [rng.standard_normal((n,) + shape).astype(np.float32) for _ in range(k)]


@pytest.mark.parametrize(
    "name, k",
    [("Subtract", 2), ("Multiply", 2), ("Multiply", 3), ("Average", 3), ("Maximum", 2), ("Maximum", 3), ("Minimum", 3)],
)
def test_forward_matches_numpy(rng, name, k):
    ins = [Input(shape=(3, 4)) for _ in range(k)]
    m = mf.Model(ins, getattr(L, name)()(ins))
    xs = _data(rng, k, (3, 4))
    got = m.predict(xs, verbose=0)
    assert got.shape == (6, 3, 4)
    np.testing.assert_allclose(got, REFS[name](np.stack(xs).astype(np.float64)), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    "name, fn",
    [
        ("Subtract", L.subtract),
        ("Multiply", L.multiply),
        ("Average", L.average),
        ("Maximum", L.maximum),
        ("Minimum", L.minimum),
    ],
)
def test_functional_forms(rng, name, fn):
    a, b = Input(shape=(4,)), Input(shape=(4,))
    out = fn([a, b], name=f"my_{name.lower()}")
    assert type(out.layer) is getattr(L, name) and out.layer.name == f"my_{name.lower()}"
    xs = _data(rng, 2)
    np.testing.assert_allclose(mf.Model([a, b], out).predict(xs, verbose=0), REFS[name](np.stack(xs)), rtol=1e-6)
    assert getattr(L, name)().name.startswith(name.lower())  # Keras default names


def _merge_model(merge, k, rng, d=3):
    """A Dense (tanh) before every input, so each input's gradient reaches a checked weight."""
    ins = [Input(shape=(d,)) for _ in range(k)]
    hs = [Dense(4, activation="tanh")(x) for x in ins]
    m = mf.Model(ins, Dense(2)(merge(hs)))
    m.build()
    m.compile(optimizer="sgd", loss="mse")
    randomize_params(m, rng)
    return m, _data(rng, k, (d,)), rng.standard_normal((6, 2)).astype(np.float32)


@pytest.mark.parametrize("name, k", [("Subtract", 2), ("Multiply", 3), ("Average", 3), ("Maximum", 3), ("Minimum", 2)])
def test_gradients(rng, name, k):
    m, xs, y = _merge_model(getattr(L, name)(), k, rng)
    check_model(m, xs, y, what=name)


@pytest.mark.parametrize("name", ["Maximum", "Minimum"])
def test_tied_inputs_get_the_gradient_once(rng, name):
    """max(h, h) = h: the gradient must reach h once (the first input), not twice or never."""
    x = Input(shape=(3,))
    h = Dense(4, activation="tanh")(x)
    m = mf.Model(x, Dense(2)(getattr(L, name)()([h, h])))
    m.build()
    m.compile(optimizer="sgd", loss="mse")
    randomize_params(m, rng)
    xs, y = _data(rng, 1, (3,)), rng.standard_normal((6, 2)).astype(np.float32)
    check_model(m, xs, y, what=f"{name} of a tensor with itself")


@pytest.mark.parametrize("normalize", [False, True])
def test_dot_matches_numpy_and_gradients(rng, normalize):
    a, b = Input(shape=(5,)), Input(shape=(5,))
    m = mf.Model([a, b], L.Dot(axes=1, normalize=normalize)([a, b]))
    xs = _data(rng, 2, (5,))
    want = (xs[0].astype(np.float64) * xs[1]).sum(1, keepdims=True)
    if normalize:
        want /= np.linalg.norm(xs[0], axis=1, keepdims=True) * np.linalg.norm(xs[1], axis=1, keepdims=True)
    got = m.predict(xs, verbose=0)
    assert got.shape == (6, 1)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    model, xs, y = _merge_model(lambda hs: L.dot(hs, axes=-1, normalize=normalize), 2, rng)
    check_model(model, xs, y, what=f"Dot normalize={normalize}")


def test_dot_normalize_of_a_zero_vector_is_zero(rng):
    a, b = Input(shape=(3,)), Input(shape=(3,))
    m = mf.Model([a, b], L.Dot(axes=(1, 1), normalize=True)([a, b]))
    xs = [np.zeros((2, 3), np.float32), np.ones((2, 3), np.float32)]
    np.testing.assert_array_equal(m.predict(xs, verbose=0), np.zeros((2, 1), np.float32))


def test_configs():
    assert L.Dot(axes=1).get_config()["axes"] == 1 and L.Dot(axes=[-1, -1]).get_config()["axes"] == [-1, -1]
    assert L.Dot(axes=1, normalize=True).get_config()["normalize"] is True
    for name in REFS:
        layer = getattr(L, name)(name=f"m_{name}")
        assert type(getattr(L, name).from_config(layer.get_config())) is getattr(L, name)


def test_errors_name_the_layer_and_both_shapes():
    a, b, c = Input(shape=(4,)), Input(shape=(5,)), Input(shape=(4,))
    with pytest.raises(ValueError, match=r"Multiply 'mul' needs equal input shapes, got \(4,\) and \(5,\)"):
        L.Multiply(name="mul")([a, b])
    with pytest.raises(ValueError, match=r"Subtract 'sub' needs exactly 2 inputs, got 3"):
        L.Subtract(name="sub")([a, c, Input(shape=(4,))])
    with pytest.raises(ValueError, match=r"Maximum 'mx' needs at least 2 inputs"):
        L.Maximum(name="mx")([a])
    with pytest.raises(
        ValueError,
        match=r"Dot 'd' needs two inputs of shape \(batch, d\) with the same d, "
        r"got \(4,\) and \(5,\)",
    ):
        L.Dot(axes=1, name="d")([a, b])
    with pytest.raises(ValueError, match=r"Dot 'd2': only axes=1"):
        L.Dot(axes=2, name="d2")
    with pytest.raises(ValueError, match=r"Dot 'd3' needs two inputs of shape \(batch, d\)"):
        L.Dot(axes=1, name="d3")([Input(shape=(2, 4)), Input(shape=(2, 4))])
