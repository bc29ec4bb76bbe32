"""Spatial layers (Conv1D/2D, pooling, global pooling, Flatten, Reshape, Permute, RepeatVector,
ZeroPadding1D/2D): NumPy reference forward passes with Keras's padding rules, finite-difference
gradients of inputs and weights, oneDNN vs reference kernels, shapes and parameter counts by
Keras's formulas, configs, errors, and the classic digits CNN."""

import math
import threading

import numpy as np
import pytest
from test_gradients import check_model, randomize_params

import maasfin as mf
from maasfin import _core
from maasfin.layers import (
    AveragePooling1D,
    AveragePooling2D,
    Conv1D,
    Conv2D,
    Dense,
    Flatten,
    GlobalAveragePooling1D,
    GlobalAveragePooling2D,
    GlobalMaxPooling1D,
    GlobalMaxPooling2D,
    Input,
    MaxPooling1D,
    MaxPooling2D,
    Permute,
    RepeatVector,
    Reshape,
    ZeroPadding1D,
    ZeroPadding2D,
)

BACKENDS = [pytest.param(_core.Backend.reference, id="reference"), pytest.param(_core.Backend.onednn, id="onednn")]


# -- NumPy references (float64), written from Keras's documented semantics ---------------------
def keras_axis(n, k, s, d, padding):
    """(output size, padding before, padding after) of one axis, Keras rules."""
    span = (k - 1) * d + 1
    if padding == "valid":
        return (n - span) // s + 1, 0, 0
    if padding == "causal":
        return (n - 1) // s + 1, span - 1, 0
    out = math.ceil(n / s)
    total = max((out - 1) * s + span - n, 0)
    return out, total // 2, total - total // 2


def conv2d_np(x, kernel, bias, strides, padding, dilation):
    N, H, W, C = x.shape
    KH, KW, _, F = kernel.shape
    (sh, sw), (dh, dw) = strides, dilation
    OH, pt, pb = keras_axis(H, KH, sh, dh, padding)
    OW, pl, pr = keras_axis(W, KW, sw, dw, padding)
    xp = np.pad(x.astype(np.float64), ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    out = np.zeros((N, OH, OW, F))
    for i in range(OH):
        for j in range(OW):
            for a in range(KH):
                for b in range(KW):
                    out[:, i, j, :] += xp[:, i * sh + a * dh, j * sw + b * dw, :] @ kernel[a, b]
    return out + (0 if bias is None else bias)


def pool2d_np(x, pool, strides, padding, kind):
    N, H, W, C = x.shape
    OH, pt, pb = keras_axis(H, pool[0], strides[0], 1, padding)
    OW, pl, pr = keras_axis(W, pool[1], strides[1], 1, padding)
    out = np.zeros((N, OH, OW, C))
    for i in range(OH):
        for j in range(OW):
            h0, w0 = i * strides[0] - pt, j * strides[1] - pl
            win = x[:, max(h0, 0) : h0 + pool[0], max(w0, 0) : w0 + pool[1], :].astype(np.float64)
            # padded cells are skipped: never the max, not counted in the mean
            out[:, i, j, :] = win.max(axis=(1, 2)) if kind == "max" else win.mean(axis=(1, 2))
    return out


def single(layer, shape):
    m = mf.Sequential([Input(shape=shape), layer])
    m.build()
    return m


@pytest.fixture(params=BACKENDS)
def backend(request):
    _core.set_backend(request.param)
    return request.param


# -- forward passes vs NumPy -------------------------------------------------------------------
CONV2D_CASES = [  # (input shape, filters, kernel, strides, padding, dilation)
    ((7, 6, 3), 4, (3, 3), (1, 1), "valid", (1, 1)),
    ((7, 6, 3), 4, (3, 2), (2, 2), "same", (1, 1)),  # even kernel: asymmetric padding
    ((8, 8, 2), 5, (4, 4), (3, 2), "same", (1, 1)),  # stride that does not divide the input
    ((9, 7, 2), 3, (3, 3), (1, 1), "same", (2, 2)),  # dilation
    ((9, 7, 2), 3, (2, 3), (2, 1), "valid", (1, 2)),
]


@pytest.mark.parametrize("shape, filters, kernel, strides, padding, dilation", CONV2D_CASES)
def test_conv2d_matches_numpy(backend, rng, shape, filters, kernel, strides, padding, dilation):
    layer = Conv2D(filters, kernel, strides=strides, padding=padding, dilation_rate=dilation)
    m = single(layer, shape)
    k, b = layer.get_weights()
    assert k.shape == kernel + (shape[-1], filters) and b.shape == (filters,)
    b = rng.standard_normal(filters).astype(np.float32)
    layer.set_weights([k, b])
    x = rng.standard_normal((3,) + shape).astype(np.float32)
    want = conv2d_np(x, k, b, strides, padding, dilation)
    got = m.predict(x, verbose=0)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "padding, strides, dilation", [("valid", 1, 1), ("same", 2, 1), ("causal", 1, 2), ("same", 1, 3)]
)
def test_conv1d_matches_numpy(backend, rng, padding, strides, dilation):
    layer = Conv1D(4, 3, strides=strides, padding=padding, dilation_rate=dilation, activation="tanh")
    m = single(layer, (10, 3))
    k, b = layer.get_weights()
    assert k.shape == (3, 3, 4)
    layer.set_weights([k, rng.standard_normal(4).astype(np.float32)])
    x = rng.standard_normal((2, 10, 3)).astype(np.float32)
    want = np.tanh(conv2d_np(x[:, None], k[None], layer.get_weights()[1], (1, strides), padding, (1, dilation))[:, 0])
    np.testing.assert_allclose(m.predict(x, verbose=0), want, rtol=1e-5, atol=1e-5)


def test_causal_conv1d_does_not_look_ahead(rng):
    m = single(Conv1D(2, 3, padding="causal", dilation_rate=2), (9, 1))
    x = rng.standard_normal((1, 9, 1)).astype(np.float32)
    y0 = m.predict(x, verbose=0)
    x[0, 6] += 5.0
    y1 = m.predict(x, verbose=0)
    assert np.array_equal(y0[0, :6], y1[0, :6]) and not np.allclose(y0[0, 6], y1[0, 6])


POOL_CASES = [  # (input shape, pool, strides, padding)
    ((6, 6, 2), (2, 2), (2, 2), "valid"),
    ((7, 5, 3), (2, 2), (2, 2), "same"),
    ((7, 5, 3), (3, 3), (2, 1), "same"),
    ((5, 8, 2), (2, 3), (1, 2), "valid"),
]


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("shape, pool, strides, padding", POOL_CASES)
def test_pooling2d_matches_numpy(backend, rng, kind, shape, pool, strides, padding):
    cls = MaxPooling2D if kind == "max" else AveragePooling2D
    m = single(cls(pool, strides=strides, padding=padding), shape)
    x = rng.standard_normal((3,) + shape).astype(np.float32)
    np.testing.assert_allclose(
        m.predict(x, verbose=0), pool2d_np(x, pool, strides, padding, kind), rtol=1e-5, atol=1e-6
    )


def test_average_pooling_same_excludes_padding():
    # A 3x3 'same' window at the corner of a 2x2 input of ones: the mean over the 4 real cells is 1
    # (counting the 5 padded cells as zeros would give 4/9).
    m = single(AveragePooling2D(3, strides=1, padding="same"), (2, 2, 1))
    np.testing.assert_allclose(m.predict(np.ones((1, 2, 2, 1), np.float32), verbose=0), 1.0, rtol=1e-6)
    # and a max pooling window never picks a padded zero over negative values
    m = single(MaxPooling2D(3, strides=1, padding="same"), (2, 2, 1))
    assert np.all(m.predict(-np.ones((1, 2, 2, 1), np.float32), verbose=0) == -1.0)


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pooling1d_matches_numpy(backend, rng, kind):
    cls = MaxPooling1D if kind == "max" else AveragePooling1D
    m = single(cls(3, strides=2, padding="same"), (8, 2))
    assert m.output_shape == (None, 4, 2)
    x = rng.standard_normal((3, 8, 2)).astype(np.float32)
    want = pool2d_np(x[:, None], (1, 3), (1, 2), "same", kind)[:, 0]
    np.testing.assert_allclose(m.predict(x, verbose=0), want, rtol=1e-5, atol=1e-6)


def test_pooling_strides_default_to_pool_size():
    layer = MaxPooling2D((2, 3))
    assert layer.strides == (2, 3) and layer.get_config()["strides"] == (2, 3)
    assert single(layer, (6, 9, 1)).output_shape == (None, 3, 3, 1)


@pytest.mark.parametrize(
    "cls, shape, reduce",
    [
        (GlobalMaxPooling1D, (5, 3), lambda x: x.max(axis=1)),
        (GlobalAveragePooling1D, (5, 3), lambda x: x.mean(axis=1)),
        (GlobalMaxPooling2D, (3, 4, 2), lambda x: x.max(axis=(1, 2))),
        (GlobalAveragePooling2D, (3, 4, 2), lambda x: x.mean(axis=(1, 2))),
    ],
)
def test_global_pooling_matches_numpy(rng, cls, shape, reduce):
    x = rng.standard_normal((4,) + shape).astype(np.float32)
    np.testing.assert_allclose(single(cls(), shape).predict(x, verbose=0), reduce(x), rtol=1e-6, atol=1e-6)
    kept = single(cls(keepdims=True), shape)
    assert kept.output_shape == (None,) + (1,) * (len(shape) - 1) + (shape[-1],)
    np.testing.assert_allclose(kept.predict(x, verbose=0).reshape(4, -1), reduce(x), rtol=1e-6, atol=1e-6)


def test_reshaping_layers_match_numpy(rng):
    x = rng.standard_normal((3, 4, 6)).astype(np.float32)
    assert np.array_equal(single(Flatten(), (4, 6)).predict(x, verbose=0), x.reshape(3, -1))
    assert np.array_equal(single(Reshape((2, -1, 3)), (4, 6)).predict(x, verbose=0), x.reshape(3, 2, 4, 3))
    assert np.array_equal(single(Permute((2, 1)), (4, 6)).predict(x, verbose=0), x.transpose(0, 2, 1))
    x3 = rng.standard_normal((2, 2, 3, 4)).astype(np.float32)
    assert np.array_equal(single(Permute((3, 1, 2)), (2, 3, 4)).predict(x3, verbose=0), x3.transpose(0, 3, 1, 2))
    v = rng.standard_normal((3, 5)).astype(np.float32)
    assert np.array_equal(single(RepeatVector(4), (5,)).predict(v, verbose=0), np.repeat(v[:, None], 4, axis=1))
    assert np.array_equal(
        single(ZeroPadding1D((1, 2)), (4, 6)).predict(x, verbose=0), np.pad(x, ((0, 0), (1, 2), (0, 0)))
    )
    assert np.array_equal(
        single(ZeroPadding2D(((2, 0), (1, 3))), (2, 3, 4)).predict(x3, verbose=0),
        np.pad(x3, ((0, 0), (2, 0), (1, 3), (0, 0))),
    )
    assert single(ZeroPadding2D(1), (2, 3, 4)).output_shape == (None, 4, 5, 4)
    assert single(ZeroPadding2D((1, 2)), (2, 3, 4)).output_shape == (None, 4, 7, 4)


# -- shapes and parameter counts (Keras's documented formulas) ---------------------------------
@pytest.mark.parametrize("shape, filters, kernel, strides, padding, dilation", CONV2D_CASES)
def test_conv2d_shape_and_param_count(shape, filters, kernel, strides, padding, dilation):
    H, W, C = shape
    for use_bias in (True, False):
        layer = Conv2D(filters, kernel, strides=strides, padding=padding, dilation_rate=dilation, use_bias=use_bias)
        m = single(layer, shape)
        if padding == "same":
            want = (math.ceil(H / strides[0]), math.ceil(W / strides[1]))
        else:
            want = tuple((n - d * (k - 1) - 1) // s + 1 for n, k, s, d in zip((H, W), kernel, strides, dilation))
        assert m.output_shape == (None,) + want + (filters,)
        assert m.count_params() == kernel[0] * kernel[1] * C * filters + (filters if use_bias else 0)


def test_classic_cnn_summary_counts():
    m = mf.Sequential(
        [
            Conv2D(32, (3, 3), activation="relu", input_shape=(28, 28, 1)),
            MaxPooling2D((2, 2)),
            Flatten(),
            Dense(10, activation="softmax"),
        ]
    )
    m.build()
    assert [l.output_shape for l in m.layers] == [(None, 26, 26, 32), (None, 13, 13, 32), (None, 5408), (None, 10)]
    assert [l.count_params() for l in m.layers] == [320, 0, 0, 54090]
    assert [l.name.split("_")[0] for l in m.layers] == ["conv2d", "max", "flatten", "dense"]
    assert m.layers[1].name.startswith("max_pooling2d")  # Keras's default names


# -- gradients (finite differences; see test_gradients.py for the tolerance) -------------------
# A Dense layer in front makes the checked layer's input gradient (dx) part of the check: the
# Dense weights' gradients flow through it.
GRAD_CASES = {
    "conv2d_valid": ((5, 4, 2), lambda: Conv2D(3, (2, 3), activation="tanh")),
    "conv2d_same_strided": ((5, 5, 2), lambda: Conv2D(3, (2, 2), strides=2, padding="same")),
    "conv2d_dilated": ((6, 5, 2), lambda: Conv2D(2, 2, dilation_rate=(2, 1), padding="same", activation="gelu")),
    "conv2d_no_bias": ((4, 4, 2), lambda: Conv2D(3, 3, padding="same", use_bias=False)),
    "conv1d_causal": ((6, 2), lambda: Conv1D(3, 3, padding="causal", dilation_rate=2, activation="tanh")),
    "conv1d_strided": ((7, 2), lambda: Conv1D(3, 2, strides=2, padding="same")),
    "maxpool2d_same": ((5, 5, 2), lambda: MaxPooling2D(2, padding="same")),
    "maxpool2d_overlap": ((5, 4, 2), lambda: MaxPooling2D(3, strides=1)),
    "avgpool2d_same": ((5, 5, 2), lambda: AveragePooling2D(3, strides=2, padding="same")),
    "maxpool1d": ((7, 2), lambda: MaxPooling1D(2, padding="same")),
    "avgpool1d": ((7, 2), lambda: AveragePooling1D(3, strides=2)),
    "global_max2d": ((3, 3, 2), lambda: GlobalMaxPooling2D()),
    "global_avg1d": ((4, 2), lambda: GlobalAveragePooling1D()),
    "global_max1d": ((4, 2), lambda: GlobalMaxPooling1D()),
    "global_avg2d": ((3, 2, 2), lambda: GlobalAveragePooling2D(keepdims=True)),
    "reshape": ((4, 3), lambda: Reshape((2, 6))),
    "permute": ((3, 4, 2), lambda: Permute((2, 3, 1))),
    "zero_padding1d": ((3, 2), lambda: ZeroPadding1D((2, 1))),
    "zero_padding2d": ((3, 2, 2), lambda: ZeroPadding2D(((1, 0), (0, 2)))),
}


@pytest.mark.parametrize("case", sorted(GRAD_CASES))
@pytest.mark.parametrize("backend", BACKENDS)
def test_layer_gradients(rng, case, backend):
    _core.set_backend(backend)
    shape, make = GRAD_CASES[case]
    inp = Input(shape=shape[:-1] + (2,))
    h = Dense(shape[-1], activation="tanh")(inp)
    h = make()(h)
    h = Flatten()(h)
    out = Dense(2)(h)
    m = mf.Model(inp, out)
    m.build()
    m.compile(optimizer="sgd", loss="mse")
    randomize_params(m, rng)
    x = rng.standard_normal((3,) + shape[:-1] + (2,)).astype(np.float32)
    y = rng.standard_normal((3, 2)).astype(np.float32)
    check_model(m, [x], y, what=case)


def test_repeat_vector_and_flatten_gradients(rng):
    m = mf.Sequential(
        [Input(shape=(3,)), Dense(2, activation="tanh"), RepeatVector(3), Conv1D(2, 2), Flatten(), Dense(2)]
    )
    m.build()
    m.compile(optimizer="sgd", loss="mse")
    randomize_params(m, rng)
    check_model(
        m,
        [rng.standard_normal((4, 3)).astype(np.float32)],
        rng.standard_normal((4, 2)).astype(np.float32),
        what="repeat_vector",
    )


# -- oneDNN vs reference kernels ---------------------------------------------------------------
def _outputs_and_grads(m, x, y, backend):
    _core.set_backend(backend)
    pred = m.predict(x, verbose=0)
    loss = m._get_trainer(y.shape).compute_gradients([x], y, None, True, 0)
    return pred, loss, m._graph.grads.copy()


@pytest.mark.parametrize(
    "case",
    [
        lambda: [
            Conv2D(8, 3, padding="same", activation="relu"),
            MaxPooling2D(2, padding="same"),
            Conv2D(6, (2, 3), strides=(1, 2), dilation_rate=1),
            AveragePooling2D(2, padding="same"),
        ],
        lambda: [
            Conv2D(4, 3, dilation_rate=2, activation="gelu"),
            AveragePooling2D(3, strides=1, padding="same"),
            MaxPooling2D(3, strides=2),
        ],
        lambda: [
            Reshape((9, 16)),
            Conv1D(8, 4, padding="causal", dilation_rate=2),
            MaxPooling1D(3, strides=2, padding="same"),
            Conv1D(5, 3, strides=2, padding="same", activation="swish"),
            AveragePooling1D(2),
        ],
    ],
    ids=["conv_pool_2d", "dilated_overlapping", "conv_pool_1d"],
)
def test_onednn_matches_reference(rng, case):
    inp = Input(shape=(9, 8, 2))
    h = Dense(2, activation="tanh")(inp)  # so that the first spatial layer's dx is compared too
    for layer in case():
        h = layer(h)
    m = mf.Model(inp, Dense(3)(Flatten()(h)))
    m.build()
    m.compile(optimizer="sgd", loss="mse")
    randomize_params(m, rng, scale=0.5)
    x = rng.standard_normal((16, 9, 8, 2)).astype(np.float32)
    y = rng.standard_normal((16, 3)).astype(np.float32)
    p_ref, l_ref, g_ref = _outputs_and_grads(m, x, y, _core.Backend.reference)
    p_dnn, l_dnn, g_dnn = _outputs_and_grads(m, x, y, _core.Backend.onednn)
    assert np.max(np.abs(g_ref)) > 1e-2
    np.testing.assert_allclose(p_dnn, p_ref, rtol=1e-5, atol=1e-5)
    assert l_dnn == pytest.approx(l_ref, rel=1e-5)
    np.testing.assert_allclose(g_dnn, g_ref, rtol=1e-4, atol=1e-5)


def test_size_based_dispatch_agrees_with_both_backends(rng):
    """Automatic dispatch sends small convolutions to the reference kernels and large ones to oneDNN;
    both sizes appear in one model (batch 1 vs 64), and all paths agree."""
    m = mf.Sequential([Input(shape=(12, 12, 3)), Conv2D(16, 3, activation="relu"), MaxPooling2D(), Flatten(), Dense(2)])
    x = rng.standard_normal((64, 12, 12, 3)).astype(np.float32)
    outs = []
    for b in (_core.Backend.automatic, _core.Backend.reference, _core.Backend.onednn):
        _core.set_backend(b)
        outs.append(np.concatenate([m.predict(x[:1], verbose=0), m.predict(x, verbose=0)]))
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(outs[2], outs[1], rtol=1e-5, atol=1e-5)


def test_concurrent_predict_on_onednn_is_exact(rng):
    """Convolution and pooling primitives run with per-thread scratchpads: threads predicting at
    once on one model get exactly the single-threaded results."""
    _core.set_backend(_core.Backend.onednn)
    m = mf.Sequential(
        [
            Input(shape=(10, 10, 3)),
            Conv2D(16, 3, activation="relu", padding="same"),
            MaxPooling2D(),
            Conv2D(8, 3),
            GlobalAveragePooling2D(),
            Dense(2),
        ]
    )
    xs = [rng.standard_normal((n, 10, 10, 3)).astype(np.float32) for n in (32, 17, 32, 5)]
    want = [m.predict(x, verbose=0) for x in xs]
    bad = []

    def work(k):
        for _ in range(15):
            if not np.array_equal(m._graph.predict([xs[k]], 64), want[k]):
                bad.append(k)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not bad


# -- configs and errors ------------------------------------------------------------------------
def test_conv_config_is_keras_shaped_and_round_trips():
    layer = Conv2D(8, 3, strides=(2, 1), padding="SAME", activation="relu", name="c")
    cfg = layer.get_config()
    assert {
        k: cfg[k] for k in ("filters", "kernel_size", "strides", "padding", "dilation_rate", "data_format", "groups")
    } == {
        "filters": 8,
        "kernel_size": (3, 3),
        "strides": (2, 1),
        "padding": "same",
        "dilation_rate": (1, 1),
        "data_format": "channels_last",
        "groups": 1,
    }
    assert Conv2D.from_config(cfg).get_config() == cfg
    cfg1 = Conv1D(4, 5, padding="causal", name="c1").get_config()
    assert cfg1["kernel_size"] == (5,) and Conv1D.from_config(cfg1).get_config() == cfg1
    p = MaxPooling1D(3, name="p").get_config()
    assert p["pool_size"] == (3,) and p["strides"] == (3,) and MaxPooling1D.from_config(p).get_config() == p


def test_saved_cnn_predicts_identically(rng):
    m = mf.Sequential([Input(shape=(8, 8, 1)), Conv2D(4, 3, activation="relu"), MaxPooling2D(), Flatten(), Dense(3)])
    m.compile("adam", "mse")
    x = rng.standard_normal((20, 8, 8, 1)).astype(np.float32)
    m.fit(x, rng.standard_normal((20, 3)).astype(np.float32), epochs=2, verbose=0)
    loaded = mf.models.from_bytes(m.to_bytes())
    assert np.array_equal(loaded.predict(x, verbose=0), m.predict(x, verbose=0))


@pytest.mark.parametrize(
    "make, shape, match",
    [
        (
            lambda: Conv2D(4, 3),
            (8, 8),
            r"Conv2D 'bad' expects one input of shape \(height, width, channels\) per "
            r"sample, got \(8, 8\)",
        ),
        (
            lambda: Conv2D(4, 5),
            (3, 8, 1),
            r"Conv2D 'bad' on input \(3, 8, 1\): the window spans 5 positions but the "
            r"input has only 3",
        ),
        (
            lambda: Conv1D(4, 3),
            (8, 8, 1),
            r"Conv1D 'bad' expects one input of shape \(steps, channels\) per sample, "
            r"got \(8, 8, 1\)",
        ),
        (lambda: MaxPooling2D(3), (2, 8, 1), r"MaxPooling2D 'bad' on input \(2, 8, 1\): the window spans 3"),
        (
            lambda: GlobalAveragePooling1D(),
            (4, 4, 2),
            r"GlobalAveragePooling1D 'bad' expects one input of shape "
            r"\(steps, channels\)",
        ),
        (
            lambda: Reshape((5, -1)),
            (4, 3),
            r"Reshape 'bad': cannot reshape input of shape \(4, 3\) \(12 values\) to "
            r"target_shape \(5, -1\)",
        ),
        (
            lambda: Permute((2, 1)),
            (2, 3, 4),
            r"Permute 'bad': dims \[2, 1\] need an input of rank 2 per sample, got "
            r"shape \(2, 3, 4\)",
        ),
        (
            lambda: RepeatVector(2),
            (3, 4),
            r"RepeatVector 'bad' expects an input of shape \(features,\) per sample, "
            r"got \(3, 4\)",
        ),
        (
            lambda: ZeroPadding2D(1),
            (3, 4),
            r"ZeroPadding2D 'bad' expects an input of shape \(height, width, channels\)",
        ),
    ],
)
def test_bad_input_shapes_name_the_layer_and_shape(make, shape, match):
    layer = make()
    layer.name = "bad"
    with pytest.raises(ValueError, match=match):
        mf.Sequential([Input(shape=shape), layer]).build()


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: Conv2D(0, 3), "filters must be a positive integer"),
        (lambda: Conv2D(4, (3, 3, 3)), "kernel_size must be an integer or a tuple of 2 integers"),
        (lambda: Conv2D(4, 3, padding="causal"), r"padding must be one of \['valid', 'same'\]"),
        (lambda: Conv2D(4, 3, data_format="channels_first"), "only data_format='channels_last' is supported"),
        (lambda: Conv2D(4, 3, groups=2), "only groups=1 is supported"),
        (lambda: Conv1D(4, 0), "kernel_size must be an integer or a tuple of 1 integers >= 1"),
        (lambda: Conv2D(4, 3, activation="nope"), "unknown activation 'nope'"),
        (lambda: MaxPooling2D(2, strides=0), "strides must be an integer or a tuple of 2 integers >= 1"),
        (lambda: Reshape((2, -1, -1)), "at most one -1"),
        (lambda: Permute((1, 3)), r"dims must be a permutation of 1..2"),
        (lambda: RepeatVector(0), "n must be a positive integer"),
        (lambda: ZeroPadding1D(-1), "padding must be an integer or a tuple of 2 integers >= 0"),
    ],
)
def test_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_wrong_data_shape_is_reported_in_the_users_terms(rng):
    m = mf.Sequential([Input(shape=(8, 8, 1)), Conv2D(2, 3), Flatten(), Dense(1)])
    with pytest.raises(ValueError, match=r"expects input shape \(None, 8, 8, 1\)"):
        m.predict(rng.standard_normal((2, 8, 8)).astype(np.float32), verbose=0)


# -- learning ----------------------------------------------------------------------------------
def test_classic_cnn_learns_digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[..., None]
    y = np.eye(10, dtype=np.float32)[d.target]
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.25, random_state=0, stratify=d.target)
    m = mf.Sequential(
        [
            Conv2D(32, (3, 3), activation="relu", input_shape=(8, 8, 1)),
            MaxPooling2D((2, 2)),
            Flatten(),
            Dense(10, activation="softmax"),
        ]
    )
    m.compile(optimizer=mf.optimizers.Adam(0.005), loss="categorical_crossentropy", metrics=["accuracy"])
    m.fit(xtr, ytr, epochs=15, batch_size=32, verbose=0)
    loss, acc = m.evaluate(xte, yte, verbose=0)
    assert acc >= 0.97, f"test accuracy {acc:.4f}"
