"""Bad input raises a clear ValueError/TypeError/RuntimeError naming what is wrong; it never crashes."""

import re
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

import maasfin as mf
from maasfin import optimizers
from maasfin.layers import Dense, Dropout, Input
from maasfin.models import Model, Sequential

CLEAR = (ValueError, TypeError, RuntimeError)


def _model(d=3, units=1, activation="sigmoid", loss="binary_crossentropy", metrics=("accuracy",)):
    model = Sequential([Dense(4, activation="relu", input_dim=d), Dense(units, activation=activation)])
    model.compile(optimizer="adam", loss=loss, metrics=list(metrics))
    return model


@pytest.fixture
def xy(rng):
    x = rng.normal(size=(10, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.float32)
    return x, y


# -- shapes and lengths ----------------------------------------------------------------------------
def test_wrong_feature_count_at_predict_names_both(xy):
    model = _model()
    with pytest.raises(ValueError, match=r"3 feature\(s\) per row expected, got 5") as e:
        model.predict(np.zeros((4, 5), dtype=np.float32))
    assert "(4, 5)" in str(e.value) and "(None, 3)" in str(e.value)
    with pytest.raises(ValueError, match=r"expected, got 2"):
        model.predict(np.zeros((4, 2)))  # float64 (slow path) too


def test_wrong_feature_count_at_fit_names_both(xy):
    x, y = xy
    model = _model()
    with pytest.raises(ValueError, match=r"3 feature\(s\) per row expected, got 4"):
        model.fit(np.zeros((10, 4)), y, verbose=0)
    with pytest.raises(ValueError, match=r"val_x.*expected, got 4"):
        model.fit(x, y, verbose=0, validation_data=(np.zeros((5, 4)), np.zeros(5)))
    with pytest.raises(ValueError, match=r"expected, got 4"):
        model.evaluate(np.zeros((10, 4)), y, verbose=0)


def test_a_failed_fit_leaves_the_model_unchanged(xy):
    x, y = xy
    model = _model()
    w = model.get_weights()
    with pytest.raises(ValueError):
        model.fit(x, np.r_[y[:-1], np.nan], epochs=3, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), w))
    assert model.fit(x, y, epochs=1, verbose=0).history["loss"][0] > 0


def test_length_mismatch(xy):
    x, y = xy
    model = _model()
    with pytest.raises(ValueError, match=r"x: 10, y: 9"):
        model.fit(x, y[:9], verbose=0)
    with pytest.raises(ValueError, match=r"sample_weight: 7"):
        model.fit(x, y, sample_weight=np.ones(7), verbose=0)
    with pytest.raises(ValueError, match=r"x: 10, y: 8"):
        model.evaluate(x, y[:8], verbose=0)


def test_wrong_target_shape_for_the_loss(xy):
    x, _ = xy
    model = _model()
    one_hot = np.eye(3, dtype=np.float32)[np.arange(10) % 3]
    with pytest.raises(ValueError, match=r"\(10, 3\).*\(None, 1\)"):
        model.fit(x, one_hot, verbose=0)


def test_sparse_labels_out_of_range_name_the_row(xy):
    x, _ = xy
    model = _model(units=3, activation="softmax", loss="sparse_categorical_crossentropy")
    labels = np.array([0, 1, 2, 0, 1, 2, 3, 0, 1, 2])
    with pytest.raises(ValueError, match=r"row 6.*\[0, 3\)"):
        model.fit(x, labels, verbose=0)
    with pytest.raises(ValueError, match=r"row 2"):
        model.fit(x, np.array([0, 1, -1, 0, 1, 2, 0, 0, 1, 2]), verbose=0)
    with pytest.raises(ValueError, match=r"row 0"):
        model.fit(x, np.full(10, 0.5), verbose=0)
    with pytest.raises(ValueError, match="sparse_categorical_crossentropy"):
        model.fit(x, np.zeros((10, 3)), verbose=0)


def test_categorical_crossentropy_with_integer_labels_hints_sparse(xy):
    x, _ = xy
    model = _model(units=3, activation="softmax", loss="categorical_crossentropy")
    with pytest.raises(ValueError, match="sparse_categorical_crossentropy"):
        model.fit(x, np.arange(10) % 3, verbose=0)


# -- non-finite and non-numeric values ---------------------------------------------------------------
@pytest.mark.parametrize("bad, kind", [(np.nan, "NaN"), (np.inf, "infinity"), (-np.inf, "infinity")])
def test_non_finite_x_names_row_and_column(xy, bad, kind):
    x, y = xy
    model = _model()
    xb = x.copy()
    xb[7, 2] = bad
    with pytest.raises(ValueError, match=rf"{kind} at row 7, column 2"):
        model.predict(xb)
    with pytest.raises(ValueError, match=rf"{kind} at row 7, column 2"):
        model.fit(xb, y, verbose=0)
    with pytest.raises(ValueError, match=r"row 7, column 2"):
        model.predict(xb.astype(np.float64))


def test_non_finite_in_dataframe_names_the_column(rng):
    df = pd.DataFrame({"income": rng.normal(size=6), "debt": rng.normal(size=6), "age": rng.normal(size=6)})
    y = np.array([0, 1, 0, 1, 0, 1], dtype=np.float32)
    model = Sequential([Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    bad = df.copy()
    bad.loc[4, "debt"] = np.nan
    with pytest.raises(ValueError, match=r"NaN at row 4, column 'debt'"):
        model.fit(bad, y, verbose=0)
    model.fit(df, y, verbose=0)
    # At predict the columns are reordered to the schema; the message still names the column.
    with pytest.raises(ValueError, match=r"row 4, column 'debt'"):
        model.predict(bad[["age", "debt", "income"]])
    nullable = df.astype({"age": "Float64"})
    nullable.loc[1, "age"] = pd.NA
    with pytest.raises(ValueError, match=r"row 1, column 'age'"):
        model.predict(nullable)


def test_non_finite_y_and_weights(xy):
    x, y = xy
    model = _model()
    yb = y.copy()
    yb[3] = np.nan
    with pytest.raises(ValueError, match=r"y contains NaN at row 3"):
        model.fit(x, yb, verbose=0)
    with pytest.raises(ValueError, match=r"y contains NaN at row 3"):
        model.evaluate(x, yb, verbose=0)
    w = np.ones(10)
    w[5] = np.inf
    with pytest.raises(ValueError, match=r"sample_weight contains infinity at row 5"):
        model.fit(x, y, sample_weight=w, verbose=0)


def test_float64_beyond_float32_range_is_a_clear_error(xy):
    """1e39 is finite in float64 but overflows float32: expect maasfin's ValueError naming the cell,
    with no stray NumPy overflow warning (the suite runs with warnings as errors)."""
    model = _model()
    x = np.zeros((3, 3))
    x[1, 2] = 1e39
    with pytest.raises(ValueError, match=r"row 1, column 2"):
        model.predict(x)


def test_scalar_input_is_rejected():
    """A bare number has no batch dimension; maasfin's boundary means to reject it ("got a scalar")."""
    model = Sequential([Dense(1, input_dim=1)])
    with pytest.raises(ValueError, match="scalar"):
        model.predict(3.0)
    with pytest.raises(ValueError, match="scalar"):
        model.predict(np.float64(3.0))


def test_non_numeric_dataframe_columns_are_listed(rng):
    model = _model()
    df = pd.DataFrame({"a": [1.0, 2.0], "home": ["rent", "own"], "job": pd.Categorical(["x", "y"])})
    with pytest.raises(TypeError, match=r"\['home', 'job'\]"):
        model.predict(df)
    with pytest.raises(TypeError, match=r"\['home', 'job'\]"):
        model.fit(df, np.zeros(2), verbose=0)


@pytest.mark.parametrize(
    "x",
    [
        np.array([["1", "2", "3"]]),
        np.array([[b"1", b"2", b"3"]]),
        np.zeros((2, 3), dtype=object),
        [["a", 1, 2]],
        [[None, 1.0, 2.0]],
    ],
)
def test_string_and_object_arrays_rejected(x):
    with pytest.raises(TypeError, match="non-numeric"):
        _model().predict(x)


def test_complex_and_string_targets_rejected(xy):
    x, y = xy
    model = _model()
    with pytest.raises(TypeError, match="complex"):
        model.predict(np.zeros((2, 3), dtype=complex))
    with pytest.raises(TypeError, match="y has non-numeric dtype"):
        model.fit(x, np.array(["bad"] * 10), verbose=0)
    with pytest.raises(TypeError, match="not numeric"):
        model.fit(x, pd.Series(["good", "bad"] * 5), verbose=0)


def test_ragged_and_none_inputs(xy):
    model = _model()
    with pytest.raises(ValueError, match="rectangular"):
        model.predict([[1.0, 2.0, 3.0], [1.0, 2.0]])
    with pytest.raises(ValueError, match="x is None"):
        model.predict(None)
    x, _ = xy
    with pytest.raises(ValueError, match="y"):
        model.fit(x, None, verbose=0)


def test_dataframe_missing_column_named_at_predict(rng):
    df = pd.DataFrame({"income": rng.normal(size=8), "debt": rng.normal(size=8), "age": rng.normal(size=8)})
    model = Sequential([Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(df, np.zeros(8), verbose=0)
    with pytest.raises(ValueError, match=r"missing column\(s\) \['age'\]"):
        model.predict(df.drop(columns="age"))
    with pytest.raises(ValueError, match=r"\['income', 'age'\]"):
        model.predict(df[["debt"]])


# -- names that do not exist -------------------------------------------------------------------------
def test_unknown_optimizer_lists_valid_names():
    model = Sequential([Dense(1, input_dim=2)])
    with pytest.raises(ValueError, match=r"unknown optimizer 'adamx'.*adam.*rmsprop.*sgd"):
        model.compile(optimizer="adamx", loss="mse")


def test_unknown_loss_lists_valid_names():
    model = Sequential([Dense(1, input_dim=2)])
    with pytest.raises(ValueError, match=r"unknown loss 'msee'.*binary_crossentropy.*mse"):
        model.compile(optimizer="adam", loss="msee")
    with pytest.raises(ValueError, match="loss is required"):
        model.compile(optimizer="adam")


def test_unknown_metric_lists_valid_names():
    model = Sequential([Dense(1, input_dim=2)])
    with pytest.raises(ValueError, match=r"unknown metric 'acuracy'.*accuracy.*mae"):
        model.compile(optimizer="adam", loss="mse", metrics=["acuracy"])


def test_unknown_activation_lists_valid_names():
    with pytest.raises(ValueError, match=r"unknown activation 'rleu'.*relu.*sigmoid.*softmax.*tanh"):
        Dense(2, activation="rleu")
    with pytest.raises(ValueError, match=r"unknown activation 'nope'.*relu"):
        mf.layers.Activation("nope")


def test_unknown_initializer_lists_valid_names():
    with pytest.raises(ValueError, match=r"kernel_initializer 'glorot'.*glorot_uniform.*he_normal"):
        Dense(2, kernel_initializer="glorot")
    with pytest.raises(ValueError, match=r"bias_initializer 'one'.*ones.*zeros"):
        Dense(2, bias_initializer="one")


# -- model state -----------------------------------------------------------------------------------
def test_unbuilt_model_has_no_weights_until_it_sees_data(rng):
    model = Sequential([Dense(3), Dense(1)])
    with pytest.raises(ValueError, match="not built"):
        model.get_weights()
    with pytest.raises(ValueError, match="not built"):
        model.count_params()
    with pytest.raises(ValueError, match="not built"):
        model.set_weights([])
    with pytest.raises(ValueError, match="no layers"):
        Sequential().predict(np.zeros((2, 3)))
    # predict with data builds it, as in Keras
    assert model.predict(rng.normal(size=(2, 5)), verbose=0).shape == (2, 1)
    assert model.count_params() == 5 * 3 + 3 + 3 + 1


def test_build_from_bad_data_leaves_model_buildable(rng):
    model = Sequential([Dense(2)])
    with pytest.raises(ValueError):
        model.predict(np.zeros((3, 0)))
    assert not model.built
    assert model.predict(np.ones((3, 4)), verbose=0).shape == (3, 2)
    assert model.get_weights()[0].shape == (4, 2)


def test_fit_and_evaluate_before_compile_raise_runtime_error(xy):
    x, y = xy
    model = Sequential([Dense(1, input_dim=3)])
    with pytest.raises(RuntimeError, match=r"compile\(\) before fit\(\)"):
        model.fit(x, y)
    with pytest.raises(RuntimeError, match=r"compile\(\) before evaluate\(\)"):
        model.evaluate(x, y)
    assert model.predict(x, verbose=0).shape == (10, 1)  # predict needs no compile


# -- argument values -------------------------------------------------------------------------------
@pytest.mark.parametrize("bs", [0, -1, 2.5, "32", True])
def test_batch_size_must_be_positive_integer(xy, bs):
    x, y = xy
    model = _model()
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        model.fit(x, y, batch_size=bs, verbose=0)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        model.predict(x, batch_size=bs)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        model.evaluate(x, y, batch_size=bs, verbose=0)


@pytest.mark.parametrize("epochs", [-1, 1.5, "3"])
def test_epochs_must_be_non_negative_integer(xy, epochs):
    x, y = xy
    with pytest.raises(ValueError, match="epochs must be a non-negative integer"):
        _model().fit(x, y, epochs=epochs, verbose=0)


@pytest.mark.parametrize("split", [1.0, 1.5, -0.1, "0.2"])
def test_validation_split_range(xy, split):
    x, y = xy
    with pytest.raises(ValueError, match=r"validation_split must be a float in \[0, 1\)"):
        _model().fit(x, y, validation_split=split, verbose=0)


def test_validation_split_leaving_no_rows(xy):
    x, y = xy
    with pytest.raises(ValueError, match="leaves no rows"):
        _model().fit(x[:5], y[:5], validation_split=0.01, verbose=0)


def test_other_fit_arguments(xy):
    x, y = xy
    model = _model()
    with pytest.raises(ValueError, match="verbose"):
        model.fit(x, y, verbose=3)
    with pytest.raises(ValueError, match="shuffle"):
        model.fit(x, y, verbose=0, shuffle="batch")
    with pytest.raises(ValueError, match="validation_data"):
        model.fit(x, y, verbose=0, validation_data=(x,))
    with pytest.raises(TypeError, match="Callback"):
        model.fit(x, y, verbose=0, callbacks=[print])
    with pytest.raises(ValueError, match="no rows"):
        model.fit(np.zeros((0, 3)), np.zeros(0), verbose=0)


@pytest.mark.parametrize("units", [0, -3, 2.5, "8", True, None])
def test_dense_units_must_be_positive_integer(units):
    with pytest.raises(ValueError, match="units must be a positive integer"):
        Dense(units)


@pytest.mark.parametrize("rate", [1.5, 1.0, -0.1, "0.5"])
def test_dropout_rate_range(rate):
    with pytest.raises(ValueError, match=r"rate must be a number in \[0, 1\)"):
        Dropout(rate)


def test_layer_and_input_arguments():
    with pytest.raises(TypeError, match="foo"):
        Dense(2, foo=1)
    with pytest.raises(ValueError, match="positive integers"):
        Input(shape=(0,))
    with pytest.raises(ValueError, match="only the batch dimension may be None"):
        Input(shape=(None,))
    with pytest.raises(ValueError, match="positive integers"):
        Dense(2, input_dim=0)
    with pytest.raises(TypeError, match="output of maasfin.Input"):
        Dense(1)(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="inputs and outputs are required"):
        Model(inputs=Input(shape=(3,)))
    with pytest.raises(ValueError, match="learning_rate"):
        optimizers.Adam(learning_rate=-1.0)


def test_class_weight_missing_class(xy):
    x, y = xy
    model = _model()
    with pytest.raises(ValueError, match=r"class_weight has no entry for class\(es\) \[1\]"):
        model.fit(x, y, class_weight={0: 1.0}, verbose=0)
    with pytest.raises(ValueError, match=r"class_weight\[0\]"):
        model.fit(x, y, class_weight={0: -1.0, 1: 1.0}, verbose=0)
    with pytest.raises(TypeError, match="dict"):
        model.fit(x, y, class_weight=[1.0, 2.0], verbose=0)


def test_negative_sample_weight_names_row(xy):
    x, y = xy
    w = np.ones(10)
    w[6] = -0.5
    with pytest.raises(ValueError, match=r"sample_weight row 6 is negative"):
        _model().fit(x, y, sample_weight=w, verbose=0)
    with pytest.raises(ValueError, match=r"1-D"):
        _model().fit(x, y, sample_weight=np.ones((10, 2)), verbose=0)


def test_set_weights_rejects_non_finite():
    model = Sequential([Dense(1, input_dim=2)])
    with pytest.raises(ValueError, match="NaN or infinity"):
        model.set_weights([np.array([[np.nan], [1.0]]), np.zeros(1)])


# -- fuzz ------------------------------------------------------------------------------------------
def _random_input(r, n_features=3):
    kind = int(r.integers(0, 16))
    n = int(r.choice([0, 1, 2, 5, 17]))
    d = int(r.choice([0, 1, 2, 3, 3, 4]))
    if kind == 0:
        return r.normal(size=(n, d)).astype(r.choice([np.float32, np.float64, np.float16]))
    if kind == 1:
        a = r.normal(size=(n, d))
        if a.size:
            a.flat[int(r.integers(0, a.size))] = r.choice([np.nan, np.inf, -np.inf])
        return a
    if kind == 2:
        return r.integers(-3, 3, size=(n, d)).astype(r.choice([np.int8, np.int32, np.int64, np.uint8, bool]))
    if kind == 3:
        return np.zeros((n, d), dtype=r.choice([object, "U2", "S2", complex, "datetime64[s]"]))
    if kind == 4:
        return r.normal(size=tuple(int(s) for s in r.integers(0, 4, size=int(r.integers(0, 5)))))
    if kind == 5:  # ragged or rectangular nested lists
        return [[1.0] * int(r.integers(0, 5)) for _ in range(int(r.integers(0, 4)))]
    if kind == 6:
        return None
    if kind == 7:
        return [[None, 1.0, 2.0], [1.0, 2.0, 3.0]]
    if kind == 8:
        return float(r.normal())
    if kind == 9:
        return pd.DataFrame(r.normal(size=(n, d)), columns=[f"c{i}" for i in range(d)])
    if kind == 10:
        return pd.DataFrame({"c0": ["a"] * n, "c1": r.normal(size=n), "c2": r.normal(size=n)})
    if kind == 11:
        return "text"
    if kind == 12:
        return {"a": [1.0, 2.0]}
    if kind == 13:
        return np.asfortranarray(r.normal(size=(n, d)))
    if kind == 14:
        return r.normal(size=(n, 2 * d))[:, ::2]  # non-contiguous view
    return [[[1.0, 2.0], [3.0]]]


def _check_prediction(p, x):
    assert isinstance(p, np.ndarray) and p.dtype == np.float32
    assert p.ndim >= 2 and p.shape[-1] == 2
    assert np.all(np.isfinite(p))
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, atol=1e-5)  # softmax rows


@pytest.mark.parametrize("seed", range(3))
def test_fuzz_malformed_inputs_raise_clear_errors(seed):
    r = np.random.default_rng(seed)
    outcomes = {"ok": 0, "error": 0}
    for _ in range(120):
        built = r.random() < 0.7
        first = Dense(4, activation="relu", input_dim=3) if built else Dense(4, activation="relu")
        model = Sequential([first, Dropout(0.2), Dense(2, activation="softmax")])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        x = _random_input(r)
        try:
            p = model.predict(x, verbose=0)
        except CLEAR as e:
            assert str(e)
            outcomes["error"] += 1
        else:
            _check_prediction(p, x)
            n = x.shape[0] if isinstance(x, pd.DataFrame) else (len(x) if np.ndim(x) else 1)
            assert p.shape[0] == n
            outcomes["ok"] += 1
        y = _random_input(r) if r.random() < 0.5 else r.integers(0, 2, size=int(r.choice([0, 1, 5, 17])))
        try:
            hist = model.fit(x, y, epochs=1, batch_size=4, verbose=0)
        except CLEAR as e:
            assert str(e)
            outcomes["error"] += 1
        else:
            assert np.isfinite(hist.history["loss"][0])
            outcomes["ok"] += 1
    assert outcomes["ok"] > 0 and outcomes["error"] > 0


def test_fuzz_in_subprocess_never_crashes(tmp_path):
    """A native crash would kill pytest; run a fuzz loop in a child process and require a clean exit."""
    script = tmp_path / "fuzz.py"
    script.write_text(
        textwrap.dedent("""
        import warnings
        import numpy as np
        import maasfin as mf
        from maasfin.layers import Dense, Input, Concatenate
        from maasfin.models import Model, Sequential
        warnings.simplefilter("ignore")
        r = np.random.default_rng(99)
        a, b = Input(shape=(2,)), Input(shape=(3,))
        two = Model([a, b], Dense(1)(Concatenate()([a, b])))
        two.compile(optimizer="sgd", loss="mse")
        count = 0
        for i in range(300):
            shapes = [tuple(int(s) for s in r.integers(0, 5, size=int(r.integers(1, 4)))) for _ in range(2)]
            xs = [r.normal(size=s).astype(r.choice(["float32", "float64", "int32"])) for s in shapes]
            if r.random() < 0.3:
                xs = xs[:1]
            ys = r.normal(size=(int(r.integers(0, 5)),))
            for call in (lambda: two.predict(xs, verbose=0), lambda: two.fit(xs, ys, verbose=0),
                         lambda: two.evaluate(xs, ys, verbose=0)):
                try:
                    call()
                except (ValueError, TypeError, RuntimeError):
                    count += 1
        print("survived", count)
    """)
    )
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert re.search(r"survived \d+", proc.stdout)


def test_records_to_rows_orders_strict_records_by_feature_name():
    from maasfin import data

    names = ("income", "age")
    assert data.records_to_rows([{"age": 2, "income": 1}, {"income": 3, "age": 4}], names, "x") == [(1, 2), (3, 4)]
    assert data.records_to_rows([{"income": 5}], ("income",), "x") == [(5,)]
    with pytest.raises(
        ValueError,
        match=re.escape(
            "x[1] is missing feature(s) ['age'] and has unknown feature(s) "
            "['zip']; the model's features are ['income', 'age']"
        ),
    ):
        data.records_to_rows([{"income": 1, "age": 2}, {"income": 1, "zip": 2}], names, "x")
    with pytest.raises(ValueError, match=re.escape("x has unknown feature(s) ['zip']")):
        data.records_to_rows([{"income": 1, "age": 2, "zip": 3}], names, "x", single=True)
    with pytest.raises(TypeError, match=re.escape("x[1] is an array, but x[0] is a record")):
        data.records_to_rows([{"income": 1, "age": 2}, [1, 2]], names, "x")
    data.check_names({"age": [1], "income": [2]}, names, "cols")
    with pytest.raises(ValueError, match=re.escape("cols is missing feature(s) ['age']")):
        data.check_names({"income": [2]}, names, "cols")
    assert [data.kind_of(v) for v in (None, True, 1.5, "s", [1], {})] == [
        "null",
        "a boolean",
        "a number",
        "a string",
        "an array",
        "an object",
    ]
