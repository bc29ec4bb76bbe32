"""Kernel-level tests: the oneDNN backend against the reference (Eigen) backend, the reference
backend against a float64 NumPy statement of the Keras math, activation derivatives against
central finite differences, and the bound on the oneDNN primitive cache.
"""

import math

import numpy as np
import pytest

from maasfin import _core, _testing

ACTIVATIONS = _core.activation_names().split(", ")

# Keras 3 constants.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
LEAKY_SLOPE = 0.2  # keras.activations.leaky_relu default negative_slope

_erf = np.vectorize(math.erf, otypes=[np.float64])


def _sigmoid(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def np_activation(name, x):
    """Keras 3 activation `name` on a float64 array; softmax over the last axis."""
    x = np.asarray(x, dtype=np.float64)
    if name == "linear":
        return x.copy()
    if name == "relu":
        return np.maximum(x, 0.0)
    if name == "sigmoid":
        return _sigmoid(x)
    if name == "tanh":
        return np.tanh(x)
    if name == "softmax":
        z = np.exp(x - x.max(axis=-1, keepdims=True))
        return z / z.sum(axis=-1, keepdims=True)
    if name == "elu":  # alpha = 1
        return np.where(x > 0, x, np.expm1(np.minimum(x, 0.0)))
    if name == "selu":
        return SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(np.minimum(x, 0.0)))
    if name == "gelu":  # Keras 3 default approximate=False: the exact erf form
        return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))
    if name == "leaky_relu":
        return np.where(x > 0, x, LEAKY_SLOPE * x)
    if name in ("swish", "silu"):
        return x * _sigmoid(x)
    raise AssertionError(f"test has no NumPy formula for activation {name!r}")


def test_every_activation_name_has_a_numpy_formula():
    # Guards the parametrisations below: a new activation must get a formula here.
    assert {
        "linear",
        "relu",
        "sigmoid",
        "tanh",
        "softmax",
        "elu",
        "selu",
        "gelu",
        "leaky_relu",
        "swish",
        "silu",
    } <= set(ACTIVATIONS)
    x = np.linspace(-2, 2, 9).reshape(1, -1)
    for name in ACTIVATIONS:
        assert np_activation(name, x).shape == x.shape


def _assert_close(actual, expected, rtol, atol, what):
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert np.all(np.isfinite(actual)), f"{what}: non-finite values"
    err = np.abs(actual - expected)
    bound = atol + rtol * np.abs(expected)
    worst = np.unravel_index(np.argmax(err - bound), err.shape)
    assert np.all(err <= bound), (
        f"{what}: max excess at {worst}: got {actual[worst]!r}, expected "
        f"{expected[worst]!r} (|diff|={err[worst]:.3g}, allowed {bound[worst]:.3g})"
    )


def _dense_inputs(rng, n, k, d, bias):
    src = rng.standard_normal((n, k)).astype(np.float32)
    w = (rng.standard_normal((k, d)) / math.sqrt(k)).astype(np.float32)
    b = (0.3 * rng.standard_normal(d)).astype(np.float32) if bias else None
    return src, w, b


def _dense_with(backend, src, w, b, act):
    _core.set_backend(backend)
    try:
        return _testing.dense_fwd(src, w, b, act)
    finally:
        _core.set_backend(_core.Backend.automatic)


# (N, D_in, D_out): tiny, a typical batch, one large enough for oneDNN's blocked paths, odd sizes.
SHAPES = [(1, 3, 32), (32, 3, 32), (256, 30, 256), (7, 5, 3)]
# Float32 accumulation-order differences grow with the reduction length; the outputs are O(1).
FWD_RTOL, FWD_ATOL = 1e-5, 1e-5


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("act", ACTIVATIONS)
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_dense_fwd_onednn_matches_reference(rng, shape, act, bias):
    src, w, b = _dense_inputs(rng, *shape, bias)
    ref = _dense_with(_core.Backend.reference, src, w, b, act)
    dnn = _dense_with(_core.Backend.onednn, src, w, b, act)
    assert ref.shape == dnn.shape == (shape[0], shape[2])
    # oneDNN's fused eltwise (tanh, gelu_erf, logistic, swish) may differ by a few ulps; 1e-5 covers it.
    _assert_close(dnn, ref, FWD_RTOL, FWD_ATOL, f"onednn vs reference dense_fwd {act} {shape}")


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("act", ACTIVATIONS)
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_dense_fwd_reference_matches_numpy(rng, shape, act, bias):
    src, w, b = _dense_inputs(rng, *shape, bias)
    pre = src.astype(np.float64) @ w.astype(np.float64)
    if b is not None:
        pre = pre + b.astype(np.float64)
    expected = np_activation(act, pre)
    got = _dense_with(_core.Backend.reference, src, w, b, act)
    _assert_close(got, expected, 1e-5, 1e-5, f"reference dense_fwd {act} {shape}")
    if act == "softmax":
        np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=0, atol=1e-5)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_dense_bwd_onednn_matches_reference_and_numpy(rng, shape):
    n, k, d = shape
    src, w, _ = _dense_inputs(rng, n, k, d, False)
    dy = rng.standard_normal((n, d)).astype(np.float32)
    _core.set_backend(_core.Backend.reference)
    ref = _testing.dense_bwd(src, w, dy)
    _core.set_backend(_core.Backend.onednn)
    dnn = _testing.dense_bwd(src, w, dy)
    _core.set_backend(_core.Backend.automatic)

    s64, w64, dy64 = src.astype(np.float64), w.astype(np.float64), dy.astype(np.float64)
    expected = (dy64 @ w64.T, s64.T @ dy64, dy64.sum(axis=0))
    # Each output is a sum of `red` products of O(1) numbers: allow ~sqrt(red) float32 ulps of growth.
    for name, r, o, e, red in zip(("dx", "dw", "db"), ref, dnn, expected, (d, n, n)):
        atol = 1e-6 * max(1.0, math.sqrt(red)) * 4
        assert r.shape == o.shape == e.shape, name
        _assert_close(o, r, 1e-5, atol, f"onednn vs reference dense_bwd {name} {shape}")
        _assert_close(r, e, 1e-5, atol, f"reference dense_bwd {name} vs numpy {shape}")


def test_dense_fwd_rejects_unknown_activation(rng):
    src, w, b = _dense_inputs(rng, 2, 3, 4, True)
    with pytest.raises(ValueError, match="valid names"):
        _testing.dense_fwd(src, w, b, "not_an_activation")


# Inputs for eltwise tests: normal values kept away from the kinks at 0 (relu, leaky_relu, selu)
# so that finite differences are meaningful, plus a row of large-magnitude values.
def _eltwise_inputs(rng, n=6, d=7):
    x = rng.standard_normal((n, d)) * 2.0
    x = np.sign(x) * (np.abs(x) + 0.05)
    return x.astype(np.float32)


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_eltwise_fwd_matches_numpy(rng, act):
    x = _eltwise_inputs(rng)
    got = _testing.eltwise_fwd(x, act)
    _assert_close(got, np_activation(act, x.astype(np.float64)), 1e-6, 1e-6, f"eltwise_fwd {act}")


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_eltwise_fwd_is_stable_for_large_inputs(act):
    x = np.array(
        [[-80.0, -30.0, -1.0, 0.0, 1.0, 30.0, 80.0], [500.0, 499.0, -500.0, 0.5, -0.5, 100.0, 3.0]], dtype=np.float32
    )
    got = _testing.eltwise_fwd(x, act)
    assert np.all(np.isfinite(got)), f"{act} overflowed: {got}"
    _assert_close(got, np_activation(act, x.astype(np.float64)), 1e-6, 1e-6, f"eltwise_fwd {act} large")


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_eltwise_bwd_matches_finite_differences(rng, act):
    x = _eltwise_inputs(rng)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    y = np_activation(act, x.astype(np.float64)).astype(np.float32)
    got = _testing.eltwise_bwd(x, y, dy, act)

    # d/dx of sum(dy * f(x)) by central differences in float64 (covers softmax's full Jacobian).
    x64, dy64, h = x.astype(np.float64), dy.astype(np.float64), 1e-6
    expected = np.empty_like(x64)
    for idx in np.ndindex(x64.shape):
        xp, xm = x64.copy(), x64.copy()
        xp[idx] += h
        xm[idx] -= h
        expected[idx] = (np.sum(dy64 * np_activation(act, xp)) - np.sum(dy64 * np_activation(act, xm))) / (2 * h)
    _assert_close(got, expected, 1e-4, 1e-5, f"eltwise_bwd {act}")
    if act != "linear":  # the derivative must not degenerate to the identity
        assert not np.allclose(got, dy, atol=1e-3)


@pytest.mark.parametrize("act", ["relu", "leaky_relu", "elu", "selu"])
def test_eltwise_bwd_negative_side_slopes(act):
    # One point on each side of the kink, checked against the closed-form derivative.
    x = np.array([[-1.5, 2.0]], dtype=np.float32)
    y = np_activation(act, x.astype(np.float64)).astype(np.float32)
    dy = np.ones_like(x)
    got = _testing.eltwise_bwd(x, y, dy, act)[0]
    neg = {
        "relu": 0.0,
        "leaky_relu": LEAKY_SLOPE,
        "elu": math.exp(-1.5),
        "selu": SELU_SCALE * SELU_ALPHA * math.exp(-1.5),
    }[act]
    pos = SELU_SCALE if act == "selu" else 1.0
    np.testing.assert_allclose(got, [neg, pos], rtol=1e-6, atol=1e-7)


def test_primitive_cache_is_bounded(rng):
    _core.set_backend(_core.Backend.onednn)
    try:
        _core.set_primitive_cache_capacity(4)
        assert _core.primitive_cache_size() <= 4
        w = (rng.standard_normal((5, 6)) / 3).astype(np.float32)
        b = rng.standard_normal(6).astype(np.float32)
        for n in range(1, 11):  # ten distinct primitive shapes
            src = rng.standard_normal((n, 5)).astype(np.float32)
            out = _testing.dense_fwd(src, w, b, "relu")
            expected = np.maximum(src.astype(np.float64) @ w + b, 0.0)
            _assert_close(out, expected, 1e-5, 1e-5, f"dense_fwd n={n} under a small cache")
            assert _core.primitive_cache_size() <= 4
        # An LRU cache that saw ten distinct keys is full, not empty.
        assert _core.primitive_cache_size() == 4
        # Shrinking the capacity evicts at once.
        _core.set_primitive_cache_capacity(2)
        assert _core.primitive_cache_size() == 2
        # A primitive evicted earlier is rebuilt and still correct.
        src = rng.standard_normal((1, 5)).astype(np.float32)
        _assert_close(
            _testing.dense_fwd(src, w, b, "relu"),
            np.maximum(src.astype(np.float64) @ w + b, 0.0),
            1e-5,
            1e-5,
            "rebuilt primitive",
        )
        assert _core.primitive_cache_size() == 2
    finally:
        _core.set_primitive_cache_capacity(64)
        _core.set_backend(_core.Backend.automatic)


def test_backend_selection_reaches_onednn(rng):
    # The agreement tests above are only meaningful if the two backends are different code paths:
    # a reference call must not touch the oneDNN primitive cache, a oneDNN call must add to it.
    src, w, b = _dense_inputs(rng, 13, 7, 9, True)  # a shape no other test uses
    try:
        _core.set_primitive_cache_capacity(1)  # trim to at most one entry, then leave room
        _core.set_primitive_cache_capacity(64)
        _core.set_backend(_core.Backend.reference)
        assert _core.get_backend() == _core.Backend.reference
        before = _core.primitive_cache_size()
        assert before <= 1
        _testing.dense_fwd(src, w, b, "tanh")
        assert _core.primitive_cache_size() == before
        _core.set_backend(_core.Backend.onednn)
        assert _core.get_backend() == _core.Backend.onednn
        _testing.dense_fwd(src, w, b, "tanh")
        assert _core.primitive_cache_size() == before + 1
    finally:
        _core.set_backend(_core.Backend.automatic)


# The kernel entry points take raw buffers; the core's contract (common.hpp) is that bad user input
# raises InvalidArgument (ValueError) rather than reading past the end of an array.
_f = np.float32
MISMATCHED = {
    "dense_fwd_inner_dim": lambda: _testing.dense_fwd(np.ones((2, 3), _f), np.ones((4, 5), _f), None, "relu"),
    "dense_fwd_bias_len": lambda: _testing.dense_fwd(np.ones((2, 3), _f), np.ones((3, 5), _f), np.ones(2, _f), "relu"),
    "dense_bwd_dy_cols": lambda: _testing.dense_bwd(np.ones((2, 3), _f), np.ones((3, 5), _f), np.ones((2, 4), _f)),
    "dense_bwd_inner_dim": lambda: _testing.dense_bwd(np.ones((2, 3), _f), np.ones((4, 5), _f), np.ones((2, 5), _f)),
    "eltwise_bwd_dst_shape": lambda: _testing.eltwise_bwd(
        np.ones((2, 3), _f), np.ones((2, 2), _f), np.ones((2, 3), _f), "tanh"
    ),
}


@pytest.mark.parametrize("case", sorted(MISMATCHED))
def test_kernel_entry_points_reject_mismatched_shapes(case):
    with pytest.raises(ValueError):
        MISMATCHED[case]()


def test_kernel_entry_points_live_in_the_testing_module_only():
    for name in ("dense_fwd", "dense_bwd", "batch_matmul", "lstm_sequence", "eltwise_fwd", "eltwise_bwd"):
        assert hasattr(_testing, name) and not hasattr(_core, name), name
