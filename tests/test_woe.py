"""WoEEncoding: optimal binning against optbinning on the bundled credit data, trends, string features,
special and missing values, the core's encoding, saving, export refusals and bad input."""

import warnings

import numpy as np
import optbinning
import pandas as pd
import pytest

import maasfin as mf
from maasfin.layers import Input, WoEEncoding
from maasfin.models import Model, from_bytes

NUMERIC = mf.datasets.CREDIT_NUMERIC_COLUMNS
CATEGORICAL = mf.datasets.CREDIT_CATEGORICAL_COLUMNS


@pytest.fixture(scope="module")
def credit():
    df = mf.datasets.load_credit()
    return df, (df["Status"] == "bad").to_numpy(np.float64)


def _reference_iv(x, y, dtype="numerical", **kw):
    ob = optbinning.OptimalBinning(name="x", dtype=dtype, **kw).fit(x, y)
    table = ob.binning_table
    with warnings.catch_warnings():  # optbinning's own pandas deprecation warnings
        warnings.simplefilter("ignore")
        table.build()
    return table.iv


@pytest.mark.parametrize("feature", NUMERIC)
def test_iv_matches_optbinning_auto_trend(credit, feature):
    df, y = credit
    layer = WoEEncoding(name="w")
    layer.adapt(df[feature], y)
    # "auto" is the better of ascending and descending by IV (optbinning's "auto_asc_desc" decides
    # with a heuristic instead), so the reference is optbinning's best of the two.
    refs = {t: _reference_iv(df[feature].to_numpy(float), y, monotonic_trend=t) for t in ("ascending", "descending")}
    assert layer.iv == pytest.approx(max(refs.values()), rel=0.05)
    assert refs[layer.binning["trend"]] == pytest.approx(max(refs.values()), rel=0.05)


@pytest.mark.parametrize(
    "feature, trend, max_n_bins, min_bin_size",
    [
        ("Income", "descending", 4, 0.05),
        ("Seniority", "peak", None, 0.05),
        ("Amount", "valley", None, 0.1),
        ("Price", None, 3, 0.05),
        ("Assets", "descending", None, 0.15),
        ("Age", "ascending", None, 0.05),
    ],
)
def test_iv_matches_optbinning_with_constraints_and_trend_holds(credit, feature, trend, max_n_bins, min_bin_size):
    df, y = credit
    layer = WoEEncoding(monotonic_trend=trend, max_n_bins=max_n_bins, min_bin_size=min_bin_size, name="w")
    layer.adapt(df[feature], y)
    ref = _reference_iv(
        df[feature].to_numpy(float), y, monotonic_trend=trend, max_n_bins=max_n_bins, min_bin_size=min_bin_size
    )
    assert layer.iv == pytest.approx(ref, rel=0.05, abs=1e-9)
    table = layer.binning_table()
    bins = table.iloc[:-3]  # without Special, Missing, Totals
    rate = bins["Event rate"].to_numpy()
    assert (bins["Count"] >= np.ceil(min_bin_size * len(df)) - 1e-9).all()
    if max_n_bins is not None:
        assert len(bins) <= max_n_bins
    d = np.diff(rate)
    if trend == "ascending":
        assert (d >= -1e-12).all()
    elif trend == "descending":
        assert (d <= 1e-12).all()
    elif trend in ("peak", "valley"):
        s = d if trend == "peak" else -d
        turn = int(np.argmax(s < -1e-12)) if (s < -1e-12).any() else len(s)
        assert (s[:turn] >= -1e-12).all() and (s[turn:] <= 1e-12).all()
    # the table's totals and optbinning's formulas
    assert table.loc["Totals", "Count"] == len(df)
    assert table.loc["Totals", "IV"] == pytest.approx(layer.iv)


@pytest.mark.parametrize("feature", CATEGORICAL)
def test_string_features_match_optbinning(credit, feature):
    df, y = credit
    layer = WoEEncoding(name="w")
    layer.adapt(df[feature], y)
    x = df[feature].to_numpy(dtype=object)
    ref = _reference_iv(x, y, dtype="categorical")
    assert layer.iv == pytest.approx(ref, rel=0.05)
    assert layer.monotonic_direction() is None
    # encoding: each category gets its bin's WoE, missing the Missing row's, unseen 0
    woe = layer.woe()
    cats = layer.binning["categories"]
    values = [g[0] for g in cats] + [None, "never-seen"]
    out = layer(np.array(values, dtype=object)).reshape(-1)
    np.testing.assert_array_equal(out, np.append(woe[: len(cats)], [woe[-1], 0.0]).astype(np.float32))


def test_numeric_encoding_in_a_model_special_and_missing():
    rng = np.random.default_rng(0)
    n = 4000
    x = rng.normal(size=n)
    p = 1 / (1 + np.exp(-2 * x))
    y = (rng.random(n) < p).astype(float)
    x[:300] = -999.0  # a special code with its own risk
    y[:300] = (rng.random(300) < 0.9).astype(float)
    x[300:500] = np.nan
    layer = WoEEncoding(special_values=[-999], monotonic_trend="ascending", name="woe_x")
    layer.adapt(x, y)
    table = layer.binning_table()
    assert table.loc[table["Bin"] == "Special", "Count"].item() == 300
    assert table.loc[table["Bin"] == "Missing", "Count"].item() == 200
    assert layer.monotonic_direction() == -1  # event rate rises with x: WoE falls
    # the core's values: numpy.digitize over the splits, special and missing rows
    inp = Input(shape=(1,), name="x")
    model = Model(inp, layer(inp))
    probe = np.array([-999.0, np.nan, -3.0, 0.0, 0.3, 3.0] + list(layer.binning["splits"]), dtype=np.float32)
    got = model.predict(probe.reshape(-1, 1), verbose=0).reshape(-1)
    woe = layer.woe()
    splits = np.asarray(layer.binning["splits"], dtype=np.float32)
    expect = [woe[-2], woe[-1]] + [woe[np.searchsorted(splits, v, side="right")] for v in probe[2:]]
    np.testing.assert_array_equal(got, np.asarray(expect, dtype=np.float32))
    # the counts of the table are the rows the core puts in each bin
    enc = layer(x.astype(np.float32)).reshape(-1)
    for i, w in enumerate(woe[:-2]):
        assert np.count_nonzero((enc == w) & ~np.isnan(x) & (x != -999)) == table["Count"].iloc[i]
    # descending trend flips the direction
    down = WoEEncoding(monotonic_trend="descending", name="d").adapt(-np.nan_to_num(x[500:]), y[500:])
    assert down.monotonic_direction() == 1


def test_saving_round_trips_bit_for_bit(credit, tmp_path):
    df, y = credit
    num = WoEEncoding(special_values=[0], name="woe_Assets").adapt(df["Assets"], y)
    cat = WoEEncoding(name="woe_Home").adapt(df["Home"], y)
    a, h = Input(shape=(1,), name="Assets"), Input(shape=(1,), name="Home", dtype="string")
    model = Model([a, h], mf.layers.Concatenate()([num(a), cat(h)]))
    x = df[["Assets", "Home"]].iloc[:300]
    before = model.predict(x, verbose=0)
    path = tmp_path / "woe.maas"
    model.save(str(path))
    loaded = mf.load_model(str(path))
    after = loaded.predict(x, verbose=0)
    assert before.tobytes() == after.tobytes()
    assert from_bytes(model.to_bytes()).predict(x, verbose=0).tobytes() == before.tobytes()
    lw = loaded.get_layer("woe_Home")
    pd.testing.assert_frame_equal(lw.binning_table(), cat.binning_table())
    assert loaded.get_layer("woe_Assets").iv == num.iv


def test_onnx_export_of_numeric_features_and_refusals(credit, tmp_path):
    import onnx
    import onnxruntime as ort

    df, y = credit
    inc = WoEEncoding(name="woe_Income", special_values=[0]).adapt(df["Income"], y)
    age = WoEEncoding(name="woe_Age", max_n_bins=1).adapt(df["Age"], y)  # one bin: no boundaries
    a, b = Input(shape=(1,), name="Income"), Input(shape=(1,), name="Age")
    model = Model([a, b], mf.layers.Dense(1, activation="sigmoid")(mf.layers.Concatenate()([inc(a), age(b)])))
    model.build()
    model.layers[-1].set_weights([np.array([[0.7], [-0.3]], np.float32), np.array([0.1], np.float32)])
    path = tmp_path / "m.onnx"
    model.export(str(path), format="onnx")
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    rows = df[["Income", "Age"]].iloc[:500].to_numpy(np.float32)
    rows[:5, 0] = 0.0  # the special value
    rows[5:10, 0] = np.asarray(inc.binning["splits"][:5], np.float32)  # on the boundaries
    assert np.isnan(rows[:, 0]).any()
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"Income": rows[:, :1], "Age": rows[:, 1:]})[0]
    expect = model.predict([rows[:, :1], rows[:, 1:]], verbose=0)
    np.testing.assert_allclose(got, expect, rtol=0, atol=1e-6)
    # string features are encoded outside the graph: refused by name; Keras has no such layer
    cat = WoEEncoding(name="woe_Home").adapt(df["Home"], y)
    h = Input(shape=(1,), name="Home", dtype="string")
    with pytest.raises(ValueError, match="WoEEncoding 'woe_Home'"):
        Model(h, cat(h)).export(str(tmp_path / "s.onnx"), format="onnx")
    with pytest.raises((ValueError, TypeError, NotImplementedError), match="WoEEncoding"):
        model.save(str(tmp_path / "m.keras"))


def test_bad_input_is_named(credit):
    df, y = credit
    with pytest.raises(ValueError, match="'woe_c'.*constant"):
        WoEEncoding(name="woe_c").adapt(np.full(100, 3.0), np.r_[np.zeros(50), np.ones(50)])
    with pytest.raises(ValueError, match="'woe_s'.*constant"):
        WoEEncoding(name="woe_s").adapt(["a"] * 100, np.r_[np.zeros(50), np.ones(50)])
    with pytest.raises(ValueError, match="'woe_y'.*one class"):
        WoEEncoding(name="woe_y").adapt(df["Income"], np.zeros(len(df)))
    with pytest.raises(ValueError, match="'woe_n'.*NaN"):
        WoEEncoding(name="woe_n").adapt(df["Income"], np.r_[y[:-1], np.nan])
    with pytest.raises(ValueError, match="'woe_m'.*min_bin_size cannot be met"):
        x = np.r_[np.arange(30.0), np.full(70, np.nan)]
        WoEEncoding(name="woe_m", min_bin_size=0.5).adapt(x, np.r_[np.zeros(50), np.ones(50)])
    with pytest.raises(ValueError, match="min_bin_size"):
        WoEEncoding(min_bin_size=0.7)
    with pytest.raises(ValueError, match="monotonic_trend"):
        WoEEncoding(monotonic_trend="up")
    with pytest.raises(ValueError, match="'woe_h'.*categorical.*monotonic_trend"):
        WoEEncoding(name="woe_h", monotonic_trend="peak").adapt(df["Home"], y)
    with pytest.raises(ValueError, match="no bins yet"):
        WoEEncoding(name="u").binning_table()
    num = WoEEncoding(name="woe_num").adapt(df["Income"], y)
    with pytest.raises(TypeError, match="'woe_num'.*numeric feature"):
        num(Input(shape=(1,), name="Income", dtype="string"))


def test_training_through_the_layer_leaves_its_state(credit):
    df, y = credit
    cat = WoEEncoding(name="woe_Job").adapt(df["Job"], y)
    num = WoEEncoding(name="woe_Income").adapt(df["Income"], y)
    j, i = Input(shape=(1,), name="Job", dtype="string"), Input(shape=(1,), name="Income")
    model = Model([j, i], mf.layers.Dense(1, activation="sigmoid")(mf.layers.Concatenate()([cat(j), num(i)])))
    model.compile(mf.optimizers.Adam(0.05), "binary_crossentropy")
    state = [w.copy() for w in cat.get_weights() + num.get_weights()]
    assert not any(w.trainable for w in cat.weights + num.weights)
    hist = model.fit(df[["Job", "Income"]], y, epochs=3, batch_size=256, verbose=0)
    assert hist.history["loss"][-1] < hist.history["loss"][0]
    assert all(np.array_equal(a, b) for a, b in zip(state, cat.get_weights() + num.get_weights()))
    # the Dense weights moved towards the logistic solution: negative on both WoE columns
    assert (model.layers[-1].get_weights()[0] < 0).all()


def test_string_special_values_have_their_own_bin():
    rng = np.random.default_rng(1)
    cats = np.array(["a", "b", "c", "n/a"], dtype=object)
    x = cats[rng.integers(0, 4, size=2000)]
    rate = {"a": 0.1, "b": 0.3, "c": 0.5, "n/a": 0.8}
    y = (rng.random(2000) < np.array([rate[v] for v in x])).astype(float)
    x[:100] = None
    layer = WoEEncoding(special_values=["n/a"], name="woe_s").adapt(pd.Series(x), y)
    table = layer.binning_table()
    special = table[table["Bin"] == "Special"].iloc[0]
    assert special["Count"] == int(np.sum(x[100:] == "n/a"))
    assert special["Event"] == int(y[100:][x[100:] == "n/a"].sum())
    woe = layer.woe()
    out = layer(np.array(["n/a", None, "a"], dtype=object)).reshape(-1)
    assert out[0] == woe[-2] and out[1] == woe[-1] and out[2] == woe[0]
    assert all("n/a" not in g for g in layer.binning["categories"])
