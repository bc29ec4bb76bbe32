"""Keras 3 semantics: imports, model building, weights, History, metrics resolution, data types and callbacks."""

import csv
import math
import re

import numpy as np
import pandas as pd
import pytest

import maasfin as mf
from maasfin import callbacks, losses, metrics, optimizers, utils
from maasfin.layers import Activation, Concatenate, Dense, Dropout, Input
from maasfin.models import Model, Sequential


# -- helpers ---------------------------------------------------------------------------------------
def _binary_data(rng, n=200, d=4):
    x = rng.normal(size=(n, d)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.float32)
    return x, y


def _regression_data(rng, n=64, d=3):
    x = rng.normal(size=(n, d)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5], dtype=np.float32)[:d] + 0.3).astype(np.float32)
    return x, y


def _small_binary_model(d=4, units=8):
    model = Sequential([Dense(units, activation="relu", input_dim=d), Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return model


def _weights_equal(a, b):
    return len(a) == len(b) and all(np.array_equal(u, v) for u, v in zip(a, b))


# -- imports: Keras code runs after changing only its imports --------------------------------------
KERAS_SCRIPT = """
import numpy as np
from keras.models import Sequential, Model
from keras.layers import Dense, Input, Dropout, Activation
from keras import optimizers, losses, metrics, callbacks, utils

utils.set_random_seed(3)
rng = np.random.default_rng(1)
x = rng.normal(size=(120, 5)).astype("float32")
labels = (x[:, 0] > 0).astype("int64") + (x[:, 1] > 0).astype("int64")
y = utils.to_categorical(labels, num_classes=3)

model = Sequential()
model.add(Input(shape=(5,)))
model.add(Dense(16, kernel_initializer="he_uniform"))
model.add(Activation("relu"))
model.add(Dropout(0.1))
model.add(Dense(3, activation="softmax"))
model.compile(optimizer=optimizers.Adam(learning_rate=0.01),
              loss=losses.CategoricalCrossentropy(),
              metrics=["accuracy"])
history = model.fit(x, y, epochs=4, batch_size=16, verbose=0, validation_split=0.25,
                    callbacks=[callbacks.EarlyStopping(monitor="val_loss", patience=10)])
scores = model.evaluate(x, y, verbose=0)
probs = model.predict(x, verbose=0)

inp = Input(shape=(5,))
out = Dense(1, activation="sigmoid")(Dense(4, activation="tanh")(inp))
functional = Model(inputs=inp, outputs=out)
functional.compile(optimizer="sgd", loss="binary_crossentropy", metrics=[metrics.BinaryAccuracy()])
functional.fit(x, labels.clip(0, 1).astype("float32"), epochs=1, verbose=0)
"""


def test_keras_script_runs_after_changing_only_imports():
    lines = KERAS_SCRIPT.splitlines()
    changed = [l.replace("keras", "maasfin", 1) if l.startswith(("from keras", "import keras")) else l for l in lines]
    assert sum(a != b for a, b in zip(lines, changed)) == 3  # only the three import lines change
    ns = {}
    exec(compile("\n".join(changed), "<keras-script>", "exec"), ns)
    hist = ns["history"].history
    assert set(hist) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(v) == 4 for v in hist.values())
    assert len(ns["scores"]) == 2
    probs = ns["probs"]
    assert probs.shape == (120, 3) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert ns["functional"].get_weights()[0].shape == (5, 4)


def test_public_names_are_the_same_objects():
    assert mf.Sequential is Sequential and mf.Model is Model
    assert mf.Input is Input
    assert mf.models.Sequential is Sequential and mf.layers.Dense is Dense
    for mod in (optimizers, losses, metrics, callbacks, utils):
        assert mod is getattr(mf, mod.__name__.split(".")[-1])
    assert optimizers.get("Adam").__class__ is optimizers.Adam
    assert isinstance(losses.get("bce"), losses.BinaryCrossentropy)
    assert isinstance(losses.get("mse"), losses.MeanSquaredError)


# -- building Sequential models ---------------------------------------------------------------------
def _expected_shapes(d):
    return [(d, 5), (5,), (5, 2), (2,)]


@pytest.mark.parametrize(
    "how", ["list_input_dim", "list_input_shape", "add_input_dim", "leading_input", "add_leading_input"]
)
def test_sequential_construction_styles_build_before_data(how):
    d = 3
    if how == "list_input_dim":
        model = Sequential([Dense(5, activation="relu", input_dim=d), Dense(2)])
    elif how == "list_input_shape":
        model = Sequential([Dense(5, activation="relu", input_shape=(d,)), Dense(2)])
    elif how == "add_input_dim":
        model = Sequential()
        model.add(Dense(5, activation="relu", input_dim=d))
        model.add(Dense(2))
    elif how == "leading_input":
        model = Sequential([mf.Input(shape=(d,)), Dense(5, activation="relu"), Dense(2)])
    else:
        model = Sequential()
        model.add(Input(shape=(d,)))
        model.add(Dense(5, activation="relu"))
        model.add(Dense(2))
    # The input shape is known, so the weights exist before any data is seen (as in Keras).
    assert [w.shape for w in model.get_weights()] == _expected_shapes(d)
    assert model.count_params() == d * 5 + 5 + 5 * 2 + 2
    assert len(model.layers) == 2  # the Input is not a layer of a Sequential model
    assert model.input_shape == (None, d)
    assert model.output_shape == (None, 2)
    x = np.arange(12, dtype=np.float32).reshape(4, d)
    out = model.predict(x, verbose=0)
    assert out.shape == (4, 2) and out.dtype == np.float32


def test_sequential_deferred_build_from_data_at_fit(rng):
    model = Sequential([Dense(4, activation="relu"), Dense(1)])
    assert not model.built
    with pytest.raises(ValueError, match="not built"):
        model.get_weights()
    with pytest.raises(ValueError, match="not built"):
        model.count_params()
    model.compile(optimizer="sgd", loss="mse")
    x = rng.normal(size=(20, 7)).astype(np.float32)
    model.fit(x, x[:, 0], epochs=1, verbose=0)
    assert model.built
    assert [w.shape for w in model.get_weights()] == [(7, 4), (4,), (4, 1), (1,)]
    assert model.count_params() == 7 * 4 + 4 + 4 + 1
    assert model.input_shape == (None, 7)


def test_sequential_deferred_build_from_data_at_predict(rng):
    model = Sequential([Dense(3)])
    x = rng.normal(size=(5, 6)).astype(np.float32)
    out = model.predict(x, verbose=0)
    assert out.shape == (5, 3)
    w, b = model.get_weights()
    assert w.shape == (6, 3) and b.shape == (3,)
    np.testing.assert_allclose(out, x @ w + b, rtol=1e-5, atol=1e-6)


def test_sequential_add_after_build_and_pop():
    model = Sequential([Dense(2, input_dim=3), Dense(4)])
    popped = model.pop()
    assert popped.units == 4 and len(model.layers) == 1
    model.add(Dense(1))
    assert [w.shape for w in model.get_weights()] == [(3, 2), (2,), (2, 1), (1,)]
    with pytest.raises(ValueError, match="after the model is built"):
        model.add(Dense(1))


# -- functional models ---------------------------------------------------------------------------
def test_functional_single_input_matches_sequential_math(rng):
    inp = Input(shape=(4,))
    h = Dense(3, activation="relu")(inp)
    out = Dense(1, activation="sigmoid")(h)
    model = Model(inputs=inp, outputs=out)
    assert [w.shape for w in model.get_weights()] == [(4, 3), (3,), (3, 1), (1,)]
    w1, b1, w2, b2 = model.get_weights()
    x = rng.normal(size=(10, 4)).astype(np.float32)
    hidden = np.maximum(x @ w1 + b1, 0)
    expected = 1 / (1 + np.exp(-(hidden @ w2 + b2)))
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6)


def test_functional_two_inputs_concatenate_fit_on_list(rng):
    a_in, b_in = Input(shape=(2,), name="a"), Input(shape=(3,), name="b")
    merged = Concatenate()([a_in, b_in])
    out = Dense(1)(merged)
    model = Model(inputs=[a_in, b_in], outputs=out)
    assert [w.shape for w in model.get_weights()] == [(5, 1), (1,)]

    # Concatenation order is [a, b]: check against NumPy with a known kernel.
    kernel = np.array([[1.0], [2.0], [3.0], [4.0], [5.0]], dtype=np.float32)
    bias = np.array([0.5], dtype=np.float32)
    model.set_weights([kernel, bias])
    xa = rng.normal(size=(6, 2)).astype(np.float32)
    xb = rng.normal(size=(6, 3)).astype(np.float32)
    expected = np.concatenate([xa, xb], axis=1) @ kernel + bias
    np.testing.assert_allclose(model.predict([xa, xb], verbose=0), expected, rtol=1e-6, atol=1e-6)
    # A dict keyed by input name is equivalent.
    np.testing.assert_allclose(model.predict({"b": xb, "a": xa}, verbose=0), expected, rtol=1e-6, atol=1e-6)

    # Fit on a list of arrays: learn y = sum(a) - sum(b).
    xa = rng.normal(size=(256, 2)).astype(np.float32)
    xb = rng.normal(size=(256, 3)).astype(np.float32)
    y = xa.sum(axis=1) - xb.sum(axis=1)
    model.compile(optimizer=optimizers.Adam(learning_rate=0.05), loss="mse")
    hist = model.fit([xa, xb], y, epochs=40, batch_size=32, verbose=0)
    assert hist.history["loss"][-1] < 1e-2 < hist.history["loss"][0]
    k, _ = model.get_weights()
    np.testing.assert_allclose(k.ravel(), [1, 1, -1, -1, -1], atol=0.1)
    with pytest.raises(ValueError, match="2 inputs"):
        model.predict([xa], verbose=0)


# -- weights --------------------------------------------------------------------------------------
def test_get_weights_order_and_shapes_like_keras():
    model = Sequential(
        [Dense(5, input_dim=3, activation="relu"), Dropout(0.5), Activation("tanh"), Dense(2, use_bias=False), Dense(4)]
    )
    shapes = [w.shape for w in model.get_weights()]
    assert shapes == [(3, 5), (5,), (5, 2), (2, 4), (4,)]
    assert all(w.dtype == np.float32 for w in model.get_weights())
    assert model.count_params() == 15 + 5 + 10 + 8 + 4
    # Default initializers: glorot_uniform kernel within its limit, zero bias.
    k0, b0 = model.get_weights()[:2]
    assert np.all(np.abs(k0) <= math.sqrt(6 / (3 + 5)) + 1e-7) and np.any(k0 != 0)
    assert np.array_equal(b0, np.zeros(5, dtype=np.float32))
    dense = model.layers[0]
    assert np.array_equal(dense.kernel, k0) and np.array_equal(dense.bias, b0)
    assert model.layers[1].get_weights() == [] and model.layers[2].count_params() == 0


def test_set_weights_known_linear_model_predicts_exactly(rng):
    model = Sequential([Dense(2, input_dim=3)])
    kernel = np.array([[1.0, -1.0], [0.5, 2.0], [-3.0, 0.25]], dtype=np.float32)
    bias = np.array([0.1, -0.2], dtype=np.float32)
    model.set_weights([kernel, bias])
    got = model.get_weights()
    assert np.array_equal(got[0], kernel) and np.array_equal(got[1], bias)
    x = rng.normal(size=(50, 3)).astype(np.float32)
    np.testing.assert_allclose(model.predict(x, verbose=0), x @ kernel + bias, rtol=1e-6, atol=1e-6)


def test_set_weights_round_trip_restores_predictions(rng):
    x = rng.normal(size=(40, 4)).astype(np.float32)
    model = _small_binary_model()
    before = model.get_weights()
    p_before = model.predict(x, verbose=0)
    model.fit(x, (x[:, 0] > 0).astype(np.float32), epochs=3, verbose=0)
    assert not np.array_equal(model.predict(x, verbose=0), p_before)
    model.set_weights(before)
    assert _weights_equal(model.get_weights(), before)
    assert np.array_equal(model.predict(x, verbose=0), p_before)
    # Weights from one model transplant into another of the same architecture.
    other = _small_binary_model()
    other.set_weights(before)
    assert np.array_equal(other.predict(x, verbose=0), p_before)
    # get_weights returns copies: mutating them does not change the model.
    w = model.get_weights()
    w[0][:] = 0
    assert np.array_equal(model.get_weights()[0], before[0])


def test_set_weights_rejects_wrong_count_and_shape():
    model = Sequential([Dense(2, input_dim=3)])
    with pytest.raises(ValueError, match="2 weight arrays"):
        model.set_weights([np.zeros((3, 2))])
    with pytest.raises(ValueError, match=r"\(3, 2\)"):
        model.set_weights([np.zeros((2, 3)), np.zeros(2)])


def test_summary_prints_layers_and_total():
    model = Sequential(
        [Dense(16, activation="relu", input_dim=10, name="hidden"), Dense(1, activation="sigmoid", name="score")],
        name="credit",
    )
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "credit" in text
    assert "hidden" in text and "score" in text and "Dense" in text
    assert "176" in text and "17" in text  # 10*16+16 and 16+1
    total_line = [l for l in lines if "Total params" in l]
    assert len(total_line) == 1 and "193" in total_line[0]
    assert "(None, 16)" in text and "(None, 1)" in text


# -- History ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["accuracy", "acc"])
def test_history_keys_use_metric_names_as_given(rng, name):
    x, y = _binary_data(rng, n=50)
    model = Sequential([Dense(1, activation="sigmoid", input_dim=4)])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=[name])
    hist = model.fit(x, y, epochs=3, verbose=0)
    assert isinstance(hist, callbacks.History)
    assert model.history is hist
    assert list(hist.history) == ["loss", name]
    assert len(hist.history["loss"]) == 3 and len(hist.history[name]) == 3
    assert hist.epoch == [0, 1, 2]
    assert all(isinstance(v, float) for v in hist.history["loss"])


def test_history_with_validation_keys(rng):
    x, y = _binary_data(rng, n=60)
    model = _small_binary_model()
    hist = model.fit(x, y, epochs=4, verbose=0, validation_split=0.25)
    assert set(hist.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(v) == 4 for v in hist.history.values())
    hist = model.fit(x[:40], y[:40], epochs=2, verbose=0, validation_data=(x[40:], y[40:]))
    assert set(hist.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(v) == 2 for v in hist.history.values())


def test_initial_epoch_runs_remaining_epochs(rng):
    x, y = _binary_data(rng, n=40)
    model = _small_binary_model()
    seen = []
    cb = callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: seen.append(epoch))
    hist = model.fit(x, y, epochs=5, initial_epoch=2, verbose=0, callbacks=[cb])
    assert seen == [2, 3, 4]
    assert hist.epoch == [2, 3, 4]
    assert len(hist.history["loss"]) == 3
    hist = model.fit(x, y, epochs=3, initial_epoch=3, verbose=0)
    assert hist.history == {}


def test_epochs_zero_leaves_weights_untouched(rng):
    x, y = _binary_data(rng, n=40)
    model = _small_binary_model()
    w = model.get_weights()
    hist = model.fit(x, y, epochs=0, verbose=0)
    assert hist.history == {}
    assert _weights_equal(model.get_weights(), w)


def test_validation_split_takes_last_rows_before_shuffling(rng):
    n = 100
    x = rng.normal(size=(n, 3)).astype(np.float32)
    y = np.zeros(n, dtype=np.float32)
    y[-20:] = 10.0  # the tail is distinct: a model that never sees it has a large val_loss
    model = Sequential([Dense(1, input_dim=3)])
    model.compile(optimizer=optimizers.SGD(learning_rate=0.05), loss="mse")
    hist = model.fit(x, y, epochs=3, batch_size=10, verbose=0, validation_split=0.2, shuffle=True)
    val = hist.history["val_loss"][-1]
    # Validation is computed after the epoch's updates, so evaluating now gives the same value.
    assert model.evaluate(x[-20:], y[-20:], verbose=0) == pytest.approx(val, rel=1e-5, abs=1e-6)
    assert model.evaluate(x[:20], y[:20], verbose=0) != pytest.approx(val, rel=1e-2)
    # The model trained on zeros only, so its training loss is tiny and its val_loss ~ 100.
    assert hist.history["loss"][-1] < 1.0
    assert val > 50.0


def test_validation_split_rounding_like_keras(rng):
    # Keras: split_at = ceil(n * (1 - split)) -> of 10 rows with 0.25, 8 train and 2 validate.
    x = rng.normal(size=(10, 2)).astype(np.float32)
    y = np.arange(10, dtype=np.float32)
    model = Sequential([Dense(1, input_dim=2)])
    model.compile(optimizer=optimizers.SGD(learning_rate=0.0), loss="mse")
    hist = model.fit(x, y, epochs=1, verbose=0, validation_split=0.25)
    p = model.predict(x, verbose=0).ravel()
    assert hist.history["val_loss"][0] == pytest.approx(np.mean((p[8:] - y[8:]) ** 2), rel=1e-5)
    assert hist.history["loss"][0] == pytest.approx(np.mean((p[:8] - y[:8]) ** 2), rel=1e-5)


# -- 'accuracy' resolves from the shapes ---------------------------------------------------------------
def test_accuracy_resolves_to_binary(rng):
    x, y = _binary_data(rng, n=150)
    model = _small_binary_model()
    model.fit(x, y, epochs=5, verbose=0)
    loss, acc = model.evaluate(x, y, verbose=0)
    p = model.predict(x, verbose=0).ravel()
    assert acc == pytest.approx(np.mean((p > 0.5) == (y == 1)), abs=1e-9)
    eps = 1e-7
    pc = np.clip(p.astype(np.float64), eps, 1 - eps)
    assert loss == pytest.approx(-np.mean(y * np.log(pc) + (1 - y) * np.log(1 - pc)), rel=1e-4)


def _three_class(rng, n=150):
    x = rng.normal(size=(n, 4)).astype(np.float32)
    labels = np.argmax(x[:, :3] + 0.3 * rng.normal(size=(n, 3)), axis=1)
    return x, labels


@pytest.mark.parametrize("label_shape", ["flat", "column"])
def test_accuracy_resolves_to_sparse_categorical(rng, label_shape):
    x, labels = _three_class(rng)
    y = labels.astype(np.int64) if label_shape == "flat" else labels.reshape(-1, 1).astype(np.int32)
    model = Sequential([Dense(8, activation="relu", input_dim=4), Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=4, verbose=0)
    loss, acc = model.evaluate(x, y, verbose=0)
    p = model.predict(x, verbose=0)
    assert p.shape == (150, 3)
    assert acc == pytest.approx(np.mean(np.argmax(p, axis=1) == labels), abs=1e-9)
    expected_loss = -np.mean(np.log(np.clip(p[np.arange(150), labels].astype(np.float64), 1e-7, 1)))
    assert loss == pytest.approx(expected_loss, rel=1e-4)


def test_accuracy_resolves_to_categorical(rng):
    x, labels = _three_class(rng)
    y = utils.to_categorical(labels, 3)
    assert y.shape == (150, 3) and np.array_equal(np.argmax(y, axis=1), labels)
    model = Sequential([Dense(8, activation="relu", input_dim=4), Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=4, verbose=0)
    loss, acc = model.evaluate(x, y, verbose=0)
    p = model.predict(x, verbose=0)
    assert acc == pytest.approx(np.mean(np.argmax(p, axis=1) == labels), abs=1e-9)
    expected_loss = -np.mean(np.sum(y * np.log(np.clip(p.astype(np.float64), 1e-7, 1)), axis=1))
    assert loss == pytest.approx(expected_loss, rel=1e-4)


def test_mse_mae_metrics_match_numpy(rng):
    x, y = _regression_data(rng)
    model = Sequential([Dense(1, input_dim=3)])
    model.compile(optimizer="sgd", loss="mse", metrics=["mae", "mean_squared_error"])
    model.fit(x, y, epochs=2, verbose=0)
    res = model.evaluate(x, y, verbose=0, return_dict=True)
    p = model.predict(x, verbose=0).ravel().astype(np.float64)
    assert list(res) == ["loss", "mae", "mean_squared_error"]
    assert res["loss"] == pytest.approx(np.mean((p - y) ** 2), rel=1e-5)
    assert res["mae"] == pytest.approx(np.mean(np.abs(p - y)), rel=1e-5)
    assert res["mean_squared_error"] == pytest.approx(res["loss"], rel=1e-6)


# -- evaluate / predict return types ----------------------------------------------------------------------
def test_evaluate_return_forms(rng):
    x, y = _regression_data(rng)
    plain = Sequential([Dense(1, input_dim=3)])
    plain.compile(optimizer="sgd", loss="mse")
    val = plain.evaluate(x, y, verbose=0)
    assert isinstance(val, float)
    p = plain.predict(x, verbose=0).ravel().astype(np.float64)
    assert val == pytest.approx(np.mean((p - y) ** 2), rel=1e-5)
    assert plain.evaluate(x, y, verbose=0, return_dict=True) == {"loss": pytest.approx(val)}

    xb, yb = _binary_data(rng, n=30)
    model = _small_binary_model()
    vals = model.evaluate(xb, yb, verbose=0)
    assert isinstance(vals, list) and len(vals) == 2
    d = model.evaluate(xb, yb, verbose=0, return_dict=True)
    assert list(d) == ["loss", "accuracy"]
    assert d["loss"] == pytest.approx(vals[0]) and d["accuracy"] == pytest.approx(vals[1])
    # batch_size does not change the (weighted) result
    assert model.evaluate(xb, yb, batch_size=7, verbose=0) == pytest.approx(vals, rel=1e-6)


def test_predict_dtype_shape_and_batch_independence(rng):
    model = Sequential([Dense(6, activation="relu", input_dim=5), Dense(3, activation="softmax")])
    x64 = rng.normal(size=(37, 5))  # float64 input is converted
    out = model.predict(x64, verbose=0)
    assert out.dtype == np.float32 and out.shape == (37, 3)
    np.testing.assert_allclose(
        out, model.predict(x64.astype(np.float32), batch_size=5, verbose=0), rtol=1e-6, atol=1e-7
    )
    single = model.predict(x64[:1], verbose=0)
    assert single.shape == (1, 3)
    np.testing.assert_allclose(single[0], out[0], rtol=1e-6, atol=1e-7)
    # __call__ is predict
    np.testing.assert_allclose(model(x64[:4]), out[:4], rtol=1e-6, atol=1e-7)
    # int and bool data are numbers too
    xi = rng.integers(-3, 3, size=(4, 5))
    np.testing.assert_allclose(model.predict(xi, verbose=0), model.predict(xi.astype(np.float32), verbose=0))


# -- pandas and lists -------------------------------------------------------------------------------
def _frame(rng, n=80):
    df = pd.DataFrame({"income": rng.normal(size=n), "debt": rng.normal(size=n), "age": rng.normal(size=n)})
    y = pd.Series((df["income"] - df["debt"] > 0).astype("float32"), name="bad")
    return df, y


def test_dataframe_columns_matched_by_name_at_predict(rng):
    df, y = _frame(rng)
    model = Sequential([Dense(4, activation="relu"), Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    model.fit(df, y, epochs=2, verbose=0)
    assert model.feature_names == ["income", "debt", "age"]
    base = model.predict(df.to_numpy(dtype=np.float32), verbose=0)
    reordered = df[["age", "income", "debt"]]
    np.testing.assert_array_equal(model.predict(reordered, verbose=0), base)
    # Extra columns are ignored when the schema columns are present.
    extra = df.assign(zzz=1e6)[["zzz", "debt", "age", "income"]]
    np.testing.assert_array_equal(model.predict(extra, verbose=0), base)
    # A raw array in the wrong order really gives different answers (the test above is meaningful).
    assert not np.allclose(model.predict(reordered.to_numpy(), verbose=0), base)
    with pytest.raises(ValueError, match="debt"):
        model.predict(df[["income", "age"]], verbose=0)


def test_series_and_list_inputs(rng):
    s = pd.Series(rng.normal(size=30), name="score")
    model = Sequential([Dense(1, input_dim=1)])
    model.set_weights([np.array([[2.0]], dtype=np.float32), np.array([1.0], dtype=np.float32)])
    np.testing.assert_allclose(model.predict(s, verbose=0).ravel(), 2 * s.to_numpy() + 1, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(model.predict(s.tolist(), verbose=0).ravel(), 2 * s.to_numpy() + 1, rtol=1e-6, atol=1e-6)
    model.compile(optimizer="sgd", loss="mse")
    model.fit(s, pd.Series(3 * s), epochs=1, verbose=0)

    model2 = Sequential([Dense(1, input_dim=2)])
    model2.set_weights([np.array([[1.0], [10.0]], dtype=np.float32), np.zeros(1, dtype=np.float32)])
    rows = [[1, 2], [3, 4], [0.5, -1]]
    np.testing.assert_allclose(model2.predict(rows, verbose=0).ravel(), [21, 43, -9.5], rtol=1e-6)
    model2.compile(optimizer="sgd", loss="mse")
    hist = model2.fit(rows, [1.0, 2.0, 3.0], epochs=1, verbose=0)
    assert len(hist.history["loss"]) == 1


# -- callbacks ----------------------------------------------------------------------------------------
class _Recorder(callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.events = []
        self.weights = {}
        self.logs = {}

    def on_train_begin(self, logs=None):
        self.events.append("train_begin")

    def on_epoch_begin(self, epoch, logs=None):
        self.events.append(("epoch_begin", epoch))

    def on_epoch_end(self, epoch, logs=None):
        self.events.append(("epoch_end", epoch))
        self.logs[epoch] = dict(logs)
        self.weights[epoch] = self.model.get_weights()

    def on_train_end(self, logs=None):
        self.events.append("train_end")


def test_custom_callback_sees_hooks_and_logs(rng):
    x, y = _binary_data(rng, n=50)
    model = _small_binary_model()
    rec = _Recorder()
    hist = model.fit(x, y, epochs=3, verbose=0, callbacks=[rec], validation_split=0.2)
    assert rec.model is model
    assert rec.events == [
        "train_begin",
        ("epoch_begin", 0),
        ("epoch_end", 0),
        ("epoch_begin", 1),
        ("epoch_end", 1),
        ("epoch_begin", 2),
        ("epoch_end", 2),
        "train_end",
    ]
    for e in range(3):
        assert set(rec.logs[e]) == {"loss", "accuracy", "val_loss", "val_accuracy"}
        assert rec.logs[e]["loss"] == hist.history["loss"][e]
    assert rec.params["epochs"] == 3
    assert _weights_equal(rec.weights[2], model.get_weights())


def test_batch_hooks_called_once_per_batch(rng):
    x, y = _binary_data(rng, n=50)

    class Counter(callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.batches = []
            self.begins = 0

        def on_train_batch_begin(self, batch, logs=None):
            self.begins += 1

        def on_train_batch_end(self, batch, logs=None):
            assert "loss" in logs
            self.batches.append(batch)

    model = _small_binary_model()
    counter = Counter()
    model.fit(x, y, epochs=3, batch_size=16, verbose=0, callbacks=[counter])
    steps = math.ceil(50 / 16)
    assert len(counter.batches) == steps * 3 == 12
    assert counter.begins == 12
    assert counter.batches == list(range(steps)) * 3


def test_batch_hooks_do_not_change_training(rng):
    x, y = _binary_data(rng, n=50)
    utils.set_random_seed(5)
    a = _small_binary_model()
    a.fit(x, y, epochs=2, batch_size=16, verbose=0)
    utils.set_random_seed(5)
    b = _small_binary_model()
    b.fit(
        x,
        y,
        epochs=2,
        batch_size=16,
        verbose=0,
        callbacks=[callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: None)],
    )
    assert _weights_equal(a.get_weights(), b.get_weights())


def test_stop_training_in_callback_stops_after_epoch(rng):
    x, y = _binary_data(rng, n=50)

    class StopAt1(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                self.model.stop_training = True

    model = _small_binary_model()
    hist = model.fit(x, y, epochs=10, verbose=0, callbacks=[StopAt1()])
    assert len(hist.history["loss"]) == 2 and hist.epoch == [0, 1]
    # The flag is reset by the next fit.
    hist = model.fit(x, y, epochs=1, verbose=0)
    assert len(hist.history["loss"]) == 1


def test_early_stopping_restores_best_weights(rng):
    x, y = _regression_data(rng)
    model = Sequential([Dense(4, activation="tanh", input_dim=3), Dense(1)])
    model.compile(optimizer=optimizers.Adam(learning_rate=0.01), loss="mse")

    class Sabotage(callbacks.Callback):
        """From epoch 3 on, wreck the weights so the loss gets much worse."""

        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 3:
                self.model.set_weights([np.full_like(w, 5.0) for w in self.model.get_weights()])

    rec = _Recorder()
    es = callbacks.EarlyStopping(monitor="loss", patience=2, restore_best_weights=True)
    hist = model.fit(x, y, epochs=30, verbose=0, callbacks=[Sabotage(), rec, es])
    losses_ = hist.history["loss"]
    assert losses_[0] > losses_[1] > losses_[2] and min(losses_[3:]) > losses_[2]
    assert len(losses_) == 5  # epochs 3 and 4 do not improve, patience 2 -> stop after epoch 4
    assert es.stopped_epoch == 4 and es.best_epoch == 2
    assert model.stop_training is True
    assert _weights_equal(model.get_weights(), rec.weights[2])
    assert not _weights_equal(model.get_weights(), rec.weights[4])
    # Predictions are those of the best epoch's weights.
    ref = Sequential([Dense(4, activation="tanh", input_dim=3), Dense(1)])
    ref.set_weights(rec.weights[2])
    assert np.array_equal(model.predict(x, verbose=0), ref.predict(x, verbose=0))


def test_early_stopping_without_restore_keeps_last_weights(rng):
    x, y = _regression_data(rng)
    model = Sequential([Dense(1, input_dim=3)])
    model.compile(optimizer=optimizers.SGD(learning_rate=0.0), loss="mse")  # the loss never improves
    rec = _Recorder()
    hist = model.fit(x, y, epochs=20, verbose=0, callbacks=[rec, callbacks.EarlyStopping(monitor="loss", patience=3)])
    assert len(hist.history["loss"]) == 4  # epoch 0 sets best; 1, 2, 3 do not improve
    assert _weights_equal(model.get_weights(), rec.weights[3])


def test_learning_rate_scheduler_changes_optimizer_rate(rng):
    x, y = _regression_data(rng)
    model = Sequential([Dense(1, input_dim=3)])
    model.compile(optimizer=optimizers.SGD(learning_rate=0.5), loss="mse")
    seen = []
    cb = callbacks.LambdaCallback(on_epoch_end=lambda e, logs: seen.append(model.optimizer.learning_rate))
    sched = callbacks.LearningRateScheduler(lambda epoch, lr: 0.1 / (epoch + 1))
    hist = model.fit(x, y, epochs=3, verbose=0, callbacks=[sched, cb])
    assert seen == pytest.approx([0.1, 0.05, 0.1 / 3])
    assert hist.history["learning_rate"] == pytest.approx([0.1, 0.05, 0.1 / 3])
    assert model.optimizer.learning_rate == pytest.approx(0.1 / 3)

    # A schedule of zero really freezes the weights (the rate reaches the core optimizer).
    w = model.get_weights()
    model.fit(x, y, epochs=2, verbose=0, callbacks=[callbacks.LearningRateScheduler(lambda epoch: 0.0)])
    assert _weights_equal(model.get_weights(), w)
    model.fit(x, y, epochs=1, verbose=0, callbacks=[callbacks.LearningRateScheduler(lambda epoch: 0.01)])
    assert not _weights_equal(model.get_weights(), w)


def test_csv_logger_writes_a_row_per_epoch(rng, tmp_path):
    x, y = _binary_data(rng, n=50)
    model = _small_binary_model()
    path = tmp_path / "log.csv"
    hist = model.fit(x, y, epochs=4, verbose=0, validation_split=0.2, callbacks=[callbacks.CSVLogger(path)])
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3]
    assert set(rows[0]) == {"epoch", "loss", "accuracy", "val_loss", "val_accuracy"}
    for r, loss, vl in zip(rows, hist.history["loss"], hist.history["val_loss"]):
        assert float(r["loss"]) == pytest.approx(loss, rel=1e-6)
        assert float(r["val_loss"]) == pytest.approx(vl, rel=1e-6)
    # append=True adds rows without a second header
    model.fit(x, y, epochs=2, verbose=0, callbacks=[callbacks.CSVLogger(path, append=True)])
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6 and [int(r["epoch"]) for r in rows] == [0, 1, 2, 3, 0, 1]


def _exploding_model():
    model = Sequential([Dense(8, activation="relu", input_dim=3), Dense(1)])
    model.compile(optimizer=optimizers.SGD(learning_rate=10.0), loss="mse")
    return model


def test_terminate_on_nan_stops_training(rng, capsys):
    x = rng.normal(size=(64, 3)).astype(np.float32) * 100
    y = x.sum(axis=1) * 100
    utils.set_random_seed(11)
    control = _exploding_model().fit(x, y, epochs=6, verbose=0)
    assert len(control.history["loss"]) == 6
    assert not np.all(np.isfinite(control.history["loss"]))  # the loss does blow up
    utils.set_random_seed(11)
    hist = _exploding_model().fit(x, y, epochs=6, verbose=0, callbacks=[callbacks.TerminateOnNaN()])
    losses_ = hist.history["loss"]
    first_bad = next(i for i, v in enumerate(control.history["loss"]) if not np.isfinite(v))
    assert len(losses_) == first_bad + 1
    assert not np.isfinite(losses_[-1]) and np.all(np.isfinite(losses_[:-1]))
    assert "terminating" in capsys.readouterr().out.lower()

    utils.set_random_seed(11)
    with pytest.raises(RuntimeError, match="NaN or infinite"):
        _exploding_model().fit(x, y, epochs=6, verbose=0, callbacks=[callbacks.TerminateOnNaN(raise_error=True)])


def test_lambda_callback_hooks(rng):
    x, y = _binary_data(rng, n=40)
    model = _small_binary_model()
    events = []
    cb = callbacks.LambdaCallback(
        on_train_begin=lambda logs: events.append("begin"),
        on_epoch_end=lambda epoch, logs: events.append((epoch, round(logs["loss"], 12))),
        on_train_end=lambda logs: events.append("end"),
    )
    hist = model.fit(x, y, epochs=3, verbose=0, callbacks=[cb])
    assert events == ["begin"] + [(e, round(l, 12)) for e, l in enumerate(hist.history["loss"])] + ["end"]


def test_reduce_lr_on_plateau(rng):
    x, _ = _regression_data(rng)
    model = Sequential([Dense(1, input_dim=3)])
    model.compile(optimizer=optimizers.SGD(learning_rate=0.8), loss="mse")
    # With targets equal to the predictions the gradient is zero, so the loss never improves.
    target = model.predict(x, verbose=0).ravel()
    lrs = []
    cb = callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1, min_lr=0.15)
    rec = callbacks.LambdaCallback(on_epoch_end=lambda e, logs: lrs.append(model.optimizer.learning_rate))
    hist = model.fit(x, target, epochs=5, verbose=0, callbacks=[cb, rec])
    assert max(hist.history["loss"]) < 1e-10
    assert lrs == pytest.approx([0.8, 0.4, 0.2, 0.15, 0.15])
    assert hist.history["learning_rate"] == pytest.approx([0.8, 0.8, 0.4, 0.2, 0.15])


def test_frozen_layer_is_not_trained(rng):
    x, y = _regression_data(rng)
    model = Sequential([Dense(4, activation="tanh", input_dim=3), Dense(1)])
    model.layers[0].trainable = False
    model.compile(optimizer=optimizers.Adam(learning_rate=0.05), loss="mse")
    before = model.get_weights()
    model.fit(x, y, epochs=3, verbose=0)
    after = model.get_weights()
    assert np.array_equal(after[0], before[0]) and np.array_equal(after[1], before[1])
    assert not np.array_equal(after[2], before[2])
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert re.search(r"Trainable params: 5\b", text) and re.search(r"Non-trainable params: 16\b", text)
    # Unfreezing takes effect at the next compile, as in Keras.
    model.layers[0].trainable = True
    model.compile(optimizer=optimizers.Adam(learning_rate=0.05), loss="mse")
    model.fit(x, y, epochs=1, verbose=0)
    assert not np.array_equal(model.get_weights()[0], before[0])


def test_dense_acts_on_the_last_axis(rng):
    model = Sequential([Dense(2, input_shape=(3, 4))])
    assert model.output_shape == (None, 3, 2)
    x = rng.normal(size=(5, 3, 4)).astype(np.float32)
    w, b = model.get_weights()
    assert w.shape == (4, 2)
    np.testing.assert_allclose(model.predict(x, verbose=0), np.einsum("nij,jk->nik", x, w) + b, rtol=1e-5, atol=1e-6)
