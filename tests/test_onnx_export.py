"""ONNX export (docs/export.md): for every layer with a converter, onnxruntime on the exported file
reproduces model.predict within 1e-5 on random data, and the file passes onnx.checker; layers
without a converter are a ValueError naming them."""

import json
import os

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import maasfin as mf
from maasfin.layers import (
    LSTM,
    Activation,
    Add,
    AlphaDropout,
    AveragePooling1D,
    AveragePooling2D,
    BatchNormalization,
    CategoryEncoding,
    Concatenate,
    Conv1D,
    Conv2D,
    Dense,
    Discretization,
    Dropout,
    Embedding,
    Flatten,
    GaussianDropout,
    GaussianNoise,
    GlobalAveragePooling1D,
    GlobalAveragePooling2D,
    GlobalMaxPooling1D,
    GlobalMaxPooling2D,
    Hashing,
    Imputation,
    Input,
    IntegerLookup,
    LayerNormalization,
    MaxPooling1D,
    MaxPooling2D,
    Normalization,
    Permute,
    RepeatVector,
    Reshape,
    StringLookup,
    ZeroPadding1D,
    ZeroPadding2D,
)
from maasfin.models import Model, Sequential
from maasfin.saving import onnx as onnx_export

TOL = 1e-5
ACTIVATIONS = ["relu", "sigmoid", "tanh", "softmax", "linear", "elu", "selu", "gelu", "leaky_relu", "swish", "silu"]


def _session(path):
    return ort.InferenceSession(os.fspath(path), providers=["CPUExecutionProvider"])


def check_export(model, xs, tmp_path, tol=TOL, rtol=0.0, **export_kwargs):
    """Exports, checks the file, and compares onnxruntime with model.predict (|onnx - predict| <=
    tol + rtol * |predict| everywhere); returns the ONNX output."""
    xs = xs if isinstance(xs, list) else [xs]
    xs = [np.ascontiguousarray(x, dtype=np.float32) for x in xs]
    path = tmp_path / "model.onnx"
    model.export(path, format="onnx", **export_kwargs)
    proto = onnx.load(os.fspath(path))
    onnx.checker.check_model(proto, full_check=True)
    assert proto.opset_import[0].version == export_kwargs.get("opset_version", 17)
    sess = _session(path)
    names = [i.name for i in sess.get_inputs()]
    expected_names = (
        [model._input_layer.name if model._input_layer is not None else "input_layer"]
        if isinstance(model, Sequential)
        else [t.name for t in model.inputs]
    )
    assert names == expected_names
    for i, x in zip(sess.get_inputs(), xs):
        assert i.type == "tensor(float)" and i.shape == ["batch", *x.shape[1:]]
    expected = model.predict(xs[0] if len(xs) == 1 else xs)
    got = sess.run(None, dict(zip(names, xs)))[0]
    assert got.dtype == np.float32 and got.shape == expected.shape
    excess = np.abs(got - expected) - (tol + rtol * np.abs(expected))
    assert not (excess > 0).any(), f"max |onnx - predict| = {np.abs(got - expected).max():g}"
    assert np.isfinite(got).all()
    return got


def _seq(*layers, shape):
    m = Sequential([Input(shape=shape, name="features"), *layers])
    m.build()
    return m


def _randomize(layer, rng, positive=()):
    """Random weights (uniform(0.5, 2) for the names in `positive`) so that no weight is a no-op."""
    specs = layer._param_specs()
    layer.set_weights(
        [rng.uniform(0.5, 2.0, shape) if name in positive else rng.normal(0, 1, shape) for name, shape, _ in specs]
    )


# -- Dense and activations ------------------------------------------------------------------------
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_dense_each_activation(activation, tmp_path, rng):
    m = _seq(Dense(16, activation=activation), Dense(4, activation=activation), shape=(7,))
    x = rng.normal(0, 2, (64, 7))
    y = check_export(m, x, tmp_path)
    if activation == "softmax":
        np.testing.assert_allclose(y.sum(axis=1), 1.0, atol=1e-6)


def test_dense_without_bias_on_3d_input(tmp_path, rng):
    m = _seq(Dense(5, use_bias=False, activation="tanh"), Flatten(), Dense(2), shape=(3, 4))
    check_export(m, rng.normal(size=(33, 3, 4)), tmp_path)


def test_dense_wide_product_on_the_onednn_path(tmp_path, rng):
    # 256 x 128 x 64 multiply-adds per row: the core dispatches to oneDNN.
    m = _seq(Dense(128, activation="relu"), Dense(64, activation="gelu"), Dense(1, activation="sigmoid"), shape=(256,))
    check_export(m, rng.normal(size=(300, 256)), tmp_path)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("shape", [(6,), (3, 5)])
def test_activation_layer(activation, shape, tmp_path, rng):
    m = _seq(Activation(activation), shape=shape)
    x = rng.normal(0, 3, (40, *shape))
    y = check_export(m, x, tmp_path)
    if activation == "linear":
        np.testing.assert_array_equal(y, x.astype(np.float32))


# -- inference-time identities --------------------------------------------------------------------
@pytest.mark.parametrize(
    "noise", [lambda: Dropout(0.5), lambda: GaussianNoise(1.0), lambda: GaussianDropout(0.4), lambda: AlphaDropout(0.3)]
)
def test_training_only_layers_are_identities(noise, tmp_path, rng):
    m = _seq(Dense(8, activation="selu"), noise(), Dense(1, activation="sigmoid"), shape=(5,))
    m.compile(optimizer="adam", loss="binary_crossentropy")
    x = rng.normal(size=(128, 5))
    m.fit(x, (x[:, 0] > 0).astype(np.float32), epochs=2, verbose=0)
    check_export(m, x, tmp_path)


def test_spatial_dropout_is_an_identity(tmp_path, rng):
    from maasfin.layers import SpatialDropout1D

    m = _seq(Conv1D(4, 2, activation="relu"), SpatialDropout1D(0.5), Flatten(), Dense(1), shape=(6, 3))
    m.compile(optimizer="adam", loss="mse")
    x = rng.normal(size=(64, 6, 3))
    m.fit(x, x[:, :, 0].sum(1), epochs=2, verbose=0)
    check_export(m, x, tmp_path)


# -- normalization ----------------------------------------------------------------------------------
@pytest.mark.parametrize("center,scale", [(True, True), (False, True), (True, False), (False, False)])
@pytest.mark.parametrize("shape", [(6,), (4, 6)])
def test_batch_normalization_uses_moving_statistics(center, scale, shape, tmp_path, rng):
    bn = BatchNormalization(center=center, scale=scale, epsilon=0.05)
    m = _seq(bn, Dense(3), shape=shape)
    _randomize(bn, rng, positive=("moving_variance", "gamma"))
    x = rng.normal(2, 3, (50, *shape))
    check_export(m, x, tmp_path)


def test_batch_normalization_after_training(tmp_path, rng):
    m = _seq(
        Dense(16), BatchNormalization(momentum=0.5), Activation("relu"), Dense(1, activation="sigmoid"), shape=(8,)
    )
    m.compile(optimizer="adam", loss="binary_crossentropy")
    x = rng.normal(3, 2, (256, 8))
    m.fit(x, (x[:, 1] > 3).astype(np.float32), epochs=3, verbose=0)
    bn = m.layers[1]
    assert not np.allclose(bn.get_weights()[2], 0)  # moving_mean moved away from its initial value
    check_export(m, x, tmp_path)


@pytest.mark.parametrize("center,scale", [(True, True), (False, True), (True, False), (False, False)])
def test_layer_normalization(center, scale, tmp_path, rng):
    ln = LayerNormalization(center=center, scale=scale, epsilon=1e-3)
    m = _seq(Dense(12), ln, Dense(2), shape=(5,))
    _randomize(ln, rng)
    check_export(m, rng.normal(size=(40, 5)), tmp_path)


def test_layer_normalization_of_features_far_from_zero(tmp_path, rng):
    # Money amounts around 1e4 with a spread of ~1: E[x^2] - E[x]^2 in float32 would lose it all.
    m = _seq(LayerNormalization(), shape=(2, 8))
    x = 1e4 + rng.normal(size=(30, 2, 8))
    y = check_export(m, x, tmp_path)
    assert np.abs(y).max() > 1.0 and np.abs(y.mean(axis=-1)).max() < 1e-2


# -- merging and reshaping ------------------------------------------------------------------------
def test_add_and_concatenate_with_several_inputs(tmp_path, rng):
    a, b, c = Input(shape=(4,), name="income"), Input(shape=(4,), name="debts"), Input(shape=(3,), name="history")
    s = Add()([Dense(6, name="da")(a), Dense(6, name="db")(b), Dense(6, name="dc")(c)])
    y = Dense(1, activation="sigmoid")(Concatenate()([s, a, c]))
    m = Model([a, b, c], y)
    xs = [rng.normal(size=(25, 4)), rng.normal(size=(25, 4)), rng.normal(size=(25, 3))]
    check_export(m, xs, tmp_path)


def test_fan_out_graph(tmp_path, rng):
    x = Input(shape=(6,))
    h = Dense(8, activation="relu")(x)
    y = Dense(1)(Concatenate()([Dense(3)(h), Dense(2, activation="tanh")(h), x]))
    check_export(Model(x, y), rng.normal(size=(20, 6)), tmp_path)


def test_flatten_reshape_permute_repeat_vector(tmp_path, rng):
    m = _seq(
        Reshape((4, -1)), Permute((2, 1)), Flatten(), Dense(5), RepeatVector(3), Reshape((5, 3)), Flatten(), shape=(12,)
    )
    x = rng.normal(size=(17, 12))
    y = check_export(m, x, tmp_path)
    assert y.shape == (17, 15)


@pytest.mark.parametrize("padding", [1, (2, 0)])
def test_zero_padding_1d(padding, tmp_path, rng):
    check_export(_seq(ZeroPadding1D(padding), Flatten(), shape=(5, 3)), rng.normal(size=(9, 5, 3)), tmp_path)


@pytest.mark.parametrize("padding", [1, (2, 1), ((1, 0), (0, 2))])
def test_zero_padding_2d(padding, tmp_path, rng):
    check_export(_seq(ZeroPadding2D(padding), shape=(4, 3, 2)), rng.normal(size=(9, 4, 3, 2)), tmp_path)


@pytest.mark.parametrize(
    "cls,shape",
    [
        (GlobalMaxPooling1D, (7, 3)),
        (GlobalAveragePooling1D, (7, 3)),
        (GlobalMaxPooling2D, (5, 4, 3)),
        (GlobalAveragePooling2D, (5, 4, 3)),
    ],
)
@pytest.mark.parametrize("keepdims", [False, True])
def test_global_pooling(cls, shape, keepdims, tmp_path, rng):
    check_export(_seq(cls(keepdims=keepdims), shape=shape), rng.normal(size=(11, *shape)), tmp_path)


# -- convolutions and pooling ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "padding,strides,dilation",
    [("valid", 1, 1), ("same", 1, 1), ("same", 2, 1), ("causal", 1, 2), ("valid", 2, 1), ("same", 1, 2)],
)
def test_conv1d(padding, strides, dilation, tmp_path, rng):
    m = _seq(
        Conv1D(4, 3, strides=strides, padding=padding, dilation_rate=dilation, activation="relu"),
        GlobalAveragePooling1D(),
        Dense(1),
        shape=(10, 3),
    )
    check_export(m, rng.normal(size=(13, 10, 3)), tmp_path)


@pytest.mark.parametrize(
    "padding,strides,dilation", [("valid", 1, 1), ("same", 1, 1), ("same", 2, 1), ("valid", (2, 1), 1), ("same", 1, 2)]
)
def test_conv2d(padding, strides, dilation, tmp_path, rng):
    m = _seq(
        Conv2D(
            5,
            (3, 2),
            strides=strides,
            padding=padding,
            dilation_rate=dilation,
            activation="swish",
            use_bias=padding == "same",
        ),
        Flatten(),
        Dense(2),
        shape=(7, 6, 2),
    )
    check_export(m, rng.normal(size=(9, 7, 6, 2)), tmp_path)


@pytest.mark.parametrize("cls", [MaxPooling1D, AveragePooling1D])
@pytest.mark.parametrize("pool,strides,padding", [(2, None, "valid"), (3, 2, "same"), (2, 1, "same")])
def test_pooling_1d(cls, pool, strides, padding, tmp_path, rng):
    m = _seq(cls(pool, strides=strides, padding=padding), Flatten(), shape=(9, 2))
    check_export(m, rng.normal(size=(8, 9, 2)), tmp_path)


@pytest.mark.parametrize("cls", [MaxPooling2D, AveragePooling2D])
@pytest.mark.parametrize("pool,strides,padding", [(2, None, "valid"), ((3, 2), 2, "same"), (2, 1, "same")])
def test_pooling_2d(cls, pool, strides, padding, tmp_path, rng):
    m = _seq(cls(pool, strides=strides, padding=padding), shape=(7, 5, 3))
    check_export(m, rng.normal(size=(8, 7, 5, 3)), tmp_path)


# -- preprocessing layers -------------------------------------------------------------------------
@pytest.mark.parametrize("invert", [False, True])
def test_normalization_adapted(invert, tmp_path, rng):
    data = rng.normal(50, 10, (200, 4)) * [1, 100, 0.01, 1]
    norm = Normalization(invert=invert)
    norm.adapt(data)
    if invert:  # outputs of order 1e3..1e4: float32 rounding is relative
        check_export(_seq(norm, shape=(4,)), rng.normal(size=(50, 4)), tmp_path, rtol=1e-6)
    else:
        check_export(_seq(norm, Dense(2), shape=(4,)), data[:50], tmp_path)


def test_normalization_with_zero_variance_divides_by_epsilon(tmp_path):
    m = _seq(Normalization(mean=[1.0, 2.0], variance=[0.0, 4.0]), shape=(2,))
    y = check_export(m, np.array([[1.0, 4.0], [1.0 + 1e-6, 0.0]]), tmp_path)
    np.testing.assert_allclose(y[:, 1], [1.0, -1.0])
    assert y[0, 0] == 0.0 and y[1, 0] > 1.0  # 1e-6 / 1e-7


@pytest.mark.parametrize("strategy", ["median", "mean", "most_frequent", "constant"])
@pytest.mark.parametrize("add_indicator", [False, True])
def test_imputation_fills_nan(strategy, add_indicator, tmp_path, rng):
    data = rng.integers(0, 5, (100, 3)).astype(np.float64)
    data[rng.random(data.shape) < 0.2] = np.nan
    imp = Imputation(
        strategy=strategy, add_indicator=add_indicator, fill_value=-1.5 if strategy == "constant" else None
    )
    imp.adapt(data)
    m = _seq(imp, shape=(3,))
    y = check_export(m, data, tmp_path)
    assert np.isnan(data).any() and not np.isnan(y).any()
    if add_indicator:
        np.testing.assert_array_equal(y[:, 3:], np.isnan(data).astype(np.float32))


def test_imputation_normalization_dense_pipeline(tmp_path, rng):
    raw = rng.lognormal(8, 1, (300, 5))
    raw[rng.random(raw.shape) < 0.1] = np.nan
    x = Input(shape=(5,), name="applicant")
    imp = Imputation(add_indicator=True)
    imp.adapt(raw)
    filled = imp(x)
    norm = Normalization()
    norm.adapt(imp(raw))
    y = Dense(1, activation="sigmoid")(Dense(8, activation="relu")(norm(filled)))
    check_export(Model(x, y), raw, tmp_path)


@pytest.mark.parametrize("mode", ["int", "one_hot", "multi_hot", "count"])
@pytest.mark.parametrize("k", [1, 3])
def test_discretization(mode, k, tmp_path, rng):
    disc = Discretization(bin_boundaries=[-1.0, 0.0, 0.5, 2.0], output_mode=mode)
    m = _seq(disc, shape=(k,))
    x = rng.normal(size=(60, k))
    x[:5, 0] = [-1.0, 0.0, 0.5, 2.0, -7.0]  # values on a boundary go to the upper bucket
    y = check_export(m, x, tmp_path, tol=0.0)
    if mode == "int":
        np.testing.assert_array_equal(y[:4, 0], [1, 2, 3, 4])


def test_discretization_adapted_then_dense(tmp_path, rng):
    disc = Discretization(num_bins=5, output_mode="one_hot")
    data = rng.normal(size=(500, 1))
    disc.adapt(data)
    check_export(_seq(disc, Dense(3, activation="softmax"), shape=(1,)), data[:80], tmp_path)


@pytest.mark.parametrize("mode,k", [("one_hot", 1), ("one_hot", 2), ("multi_hot", 3), ("count", 3)])
def test_category_encoding(mode, k, tmp_path, rng):
    m = _seq(CategoryEncoding(num_tokens=6, output_mode=mode), shape=(k,))
    x = rng.integers(0, 6, (50, k))
    y = check_export(m, x, tmp_path, tol=0.0)
    if mode == "count":
        np.testing.assert_array_equal(y.sum(axis=1), k)


@pytest.mark.parametrize("mode", ["int", "one_hot", "multi_hot", "count"])
@pytest.mark.parametrize("mask_token,num_oov", [(None, 1), (0, 1), (None, 3), (-5, 2)])
def test_integer_lookup(mode, mask_token, num_oov, tmp_path, rng):
    vocab = [12, 36, 1138, 42, -7, 2**40, 2**62 + 1, 2**63 - 1]  # 2**40 is exact in float32, the last two are not
    layer = IntegerLookup(vocabulary=vocab, mask_token=mask_token, num_oov_indices=num_oov, output_mode=mode)
    k = 1 if mode == "one_hot" else 3
    m = _seq(layer, shape=(k,))
    pool = np.array(vocab + [0, -5, 5, -3, 1000, 2.5, np.nan, 1e12, -1e20], dtype=np.float64)
    x = rng.choice(pool, (80, k))
    x[: len(pool), 0] = pool[: min(len(pool), 80)]
    check_export(m, x, tmp_path, tol=0.0)


def test_integer_lookup_adapted_feeds_dense(tmp_path, rng):
    data = rng.integers(0, 12, (300, 1)).astype(np.float64)
    data[::17] = np.nan
    lookup = IntegerLookup(output_mode="one_hot")
    lookup.adapt(data)
    check_export(_seq(lookup, Dense(4, activation="relu"), Dense(1), shape=(1,)), data[:90], tmp_path)


def test_embedding(tmp_path, rng):
    m = _seq(Embedding(20, 4), Flatten(), Dense(1, activation="sigmoid"), shape=(3,))
    check_export(m, rng.integers(0, 20, (40, 3)), tmp_path)


# -- the credit model --------------------------------------------------------------------------------
def test_credit_demo_model_trained_briefly(tmp_path):
    from maasfin.demo import build_credit_model, prepare_credit

    x_train, x_test, y_train, y_test, _ = prepare_credit()
    model = build_credit_model(x_train.shape[1])
    model.fit(x_train, y_train, epochs=3, batch_size=32, verbose=0)
    path = tmp_path / "credit.onnx"
    model.export(path, format="onnx")
    proto = onnx.load(os.fspath(path))
    onnx.checker.check_model(proto, full_check=True)
    props = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(props["maasfin.feature_names"]) == list(x_train.columns)
    assert proto.producer_name == "maasfin" and proto.graph.output[0].name == model.layers[-1].name
    sess = _session(path)
    x = x_test[model.feature_names].to_numpy(np.float32)
    got = sess.run(None, {"input_layer": x})[0]
    expected = model.predict(x_test)
    assert got.shape == (len(x_test), 1)
    assert np.abs(got - expected).max() <= TOL
    auc = mf.metrics.roc_auc_score(y_test, got.ravel())
    assert auc > 0.75  # a trained model, not a constant
    for n in (1, 7, 129):  # dynamic batch dimension
        np.testing.assert_allclose(sess.run(None, {"input_layer": x[:n]})[0], expected[:n], atol=TOL, rtol=0)


def test_to_onnx_in_memory_and_newer_opsets(tmp_path, rng):
    x = Input(shape=(4,), name="x")
    h = LayerNormalization()(Dense(6, activation="elu")(x))
    y = Dense(5)(
        Concatenate()([h, CategoryEncoding(3, output_mode="multi_hot")(Discretization(bin_boundaries=[0.0, 1.0])(x))])
    )
    m = Model(x, y, name="scorer")
    proto = onnx_export.to_onnx(m)
    assert proto.graph.name == "scorer" and proto.ir_version == 8
    data = rng.normal(size=(21, 4))
    for opset in (18, 21):  # reductions take their axes as an input from opset 18
        check_export(m, data, tmp_path, opset_version=opset)


# -- refusals and file handling ---------------------------------------------------------------------
def test_unsupported_layer_is_a_value_error_naming_it(tmp_path):
    m = _seq(LSTM(4, name="sequence_encoder"), Dense(1), shape=(5, 2))
    path = tmp_path / "m.onnx"
    with pytest.raises(ValueError, match=r"LSTM 'sequence_encoder'"):
        m.export(path, format="onnx")
    assert not path.exists() and os.listdir(tmp_path) == []


def test_numeric_hashing_is_refused(tmp_path):
    m = _seq(Hashing(num_bins=4, name="zip_hash"), shape=(1,))
    with pytest.raises(ValueError, match=r"Hashing 'zip_hash'"):
        m.export(tmp_path / "m.onnx", format="onnx")


def test_string_inputs_are_refused(tmp_path):
    s = Input(shape=(1,), name="home", dtype="string")
    lookup = StringLookup(vocabulary=["rent", "owner"], output_mode="one_hot", name="home_lookup")
    m = Model(s, Dense(1)(lookup(s)))
    with pytest.raises(ValueError, match=r"string input 'home'.*StringLookup 'home_lookup'"):
        m.export(tmp_path / "m.onnx", format="onnx")


def test_integer_lookup_without_oov_is_refused(tmp_path):
    m = _seq(IntegerLookup(vocabulary=[1, 2], num_oov_indices=0, name="strict"), shape=(1,))
    with pytest.raises(ValueError, match=r"IntegerLookup 'strict'.*num_oov_indices=0"):
        m.export(tmp_path / "m.onnx", format="onnx")


def test_bad_arguments(tmp_path):
    m = _seq(Dense(1), shape=(2,))
    with pytest.raises(ValueError, match="format='onnx'"):
        m.export(tmp_path / "m")  # Keras's default format, tf_saved_model
    with pytest.raises(ValueError, match="input_signature"):
        m.export(tmp_path / "m.onnx", format="onnx", input_signature=[(None, 2)])
    with pytest.raises(TypeError, match="unexpected"):
        m.export(tmp_path / "m.onnx", format="onnx", dynamic_axes=True)
    with pytest.raises(ValueError, match="opset_version"):
        m.export(tmp_path / "m.onnx", format="onnx", opset_version=13)
    unbuilt = Sequential([Dense(1)])
    with pytest.raises(ValueError, match="not built"):
        unbuilt.export(tmp_path / "m.onnx", format="onnx")
    assert os.listdir(tmp_path) == []


def test_export_replaces_atomically_and_a_failure_keeps_the_old_file(tmp_path, rng, capsys):
    path = tmp_path / "m.onnx"
    first = _seq(Dense(3), shape=(2,))
    first.export(path, format="onnx", verbose=True)
    assert "Saved ONNX model" in capsys.readouterr().out
    second = _seq(Dense(4), shape=(2,))
    second.export(str(path), format="onnx")
    assert _session(path).get_outputs()[0].shape == ["batch", 4]
    before = path.read_bytes()
    with pytest.raises(ValueError, match="LSTM"):
        _seq(LSTM(2), shape=(3, 2)).export(path, format="onnx")
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["m.onnx"]
    with pytest.raises(IsADirectoryError):
        second.export(tmp_path, format="onnx")


def test_supported_layers_lists_the_converters():
    names = onnx_export.supported_layers()
    for n in (
        "Dense",
        "Activation",
        "Dropout",
        "BatchNormalization",
        "LayerNormalization",
        "Add",
        "Concatenate",
        "Flatten",
        "Reshape",
        "Normalization",
        "Imputation",
        "Discretization",
        "CategoryEncoding",
    ):
        assert n in names
    assert "LSTM" not in names and "StringLookup" not in names and "Hashing" not in names
