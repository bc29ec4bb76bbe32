"""Named inputs (dicts, DataFrames, records) and FeatureSpace models on raw tabular data."""

import threading

import numpy as np
import pandas as pd
import pytest

import maasfin as mf
from maasfin.layers import Concatenate, Dense, Imputation, Input, Normalization, StringLookup
from maasfin.models import Model, load_model
from maasfin.utils import FeatureSpace


@pytest.fixture
def credit():
    df = mf.datasets.load_credit().iloc[:600].reset_index(drop=True)
    return df.drop(columns="Status"), (df["Status"] == "bad").to_numpy(np.float32)


def _fs_model(x):
    fs = FeatureSpace.from_dataframe(x)
    fs.adapt(x)
    out = Dense(1, activation="sigmoid")(Dense(8, activation="relu")(fs.get_encoded_features()))
    model = Model(fs.get_inputs(), out)
    model.compile("adam", "binary_crossentropy", metrics=["auc"])
    return fs, model


def _small_model():
    age = Input(shape=(1,), name="age", dtype="float32")
    home = Input(shape=(1,), name="home", dtype="string")
    lookup = StringLookup(vocabulary=["rent", "owner"], output_mode="one_hot", name="home_lookup")
    imp = Imputation(strategy="constant", fill_value=40.0, add_indicator=True, name="age_imp")
    x = Concatenate()([Normalization(mean=40.0, variance=100.0, name="age_norm")(imp(age)), lookup(home)])
    model = Model({"age": age, "home": home}, Dense(1, name="out")(x))
    model.compile("sgd", "mse")
    model.build()
    return model


def test_from_dataframe_recipe(credit):
    x, _ = credit
    fs = FeatureSpace.from_dataframe(x, features={"Time": "integer_categorical"})
    kinds = {c: f.kind for c, f in fs.features.items()}
    assert kinds["Home"] == "string_categorical" and kinds["Income"] == "float_normalized"
    assert kinds["Time"] == "integer_categorical" and len(kinds) == 13
    with pytest.raises(ValueError, match=r"column\(s\) \['Nope'\] are not in the DataFrame"):
        FeatureSpace.from_dataframe(x, target="Nope")
    fs.adapt(x)
    inputs = fs.get_inputs()
    assert inputs["Home"].dtype == "string" and inputs["Income"].dtype == "float32"
    # Income has missing values: imputed with the median, plus an indicator, then normalised.
    assert fs._layers["Income"][0].add_indicator and not fs._layers["Age"][0].add_indicator
    assert fs.get_encoded_features().shape[1] == sum(
        (2 if fs._layers[c][0].add_indicator else 1)
        if f.kind == "float_normalized"
        else fs._layers[c][0].vocabulary_size()
        for c, f in fs.features.items()
    )


def test_featurespace_model_learns_and_predicts_raw_records(credit):
    x, y = credit
    mf.utils.set_random_seed(3)
    _, model = _fs_model(x)
    with pytest.warns(UserWarning, match=r"ignoring DataFrame field\(s\) \['Status'\]"):
        model.fit(x.assign(Status="?"), y, epochs=15, batch_size=32, verbose=0)
    model.predict(x.assign(Status="?"))  # warned once per model only: no second warning (warnings are errors)
    assert model.evaluate(x, y, verbose=0)[1] > 0.8  # training AUC
    rows = x.iloc[:40]
    records = rows.astype(object).where(rows.notna(), None).to_dict("records")
    assert any(r["Income"] is None for r in records)
    assert np.array_equal(model.predict(records), model.predict(rows))
    shuffled = rows[list(reversed(rows.columns))]
    assert np.array_equal(model.predict(shuffled), model.predict(rows))
    # Unseen categories and missing values never crash: OOV index / imputation.
    odd = dict(records[0], Home="castle", Job=None, Income=None, Assets=float("nan"))
    assert np.isfinite(model.predict([odd])).all()
    # Dict of columns, and absent keys in a record are missing values.
    assert np.array_equal(model.predict({c: rows[c].to_numpy() for c in rows.columns}), model.predict(rows))
    partial = [records[2], {k: v for k, v in records[1].items() if k != "Debt"}]
    full = [records[2], dict(records[1], Debt=None)]
    assert np.array_equal(model.predict(partial), model.predict(full))


def test_featurespace_model_saves_and_loads(credit, tmp_path):
    x, y = credit
    _, model = _fs_model(x)
    model.fit(x, y, epochs=2, verbose=0)
    path = tmp_path / "credit.maas"
    model.save(path)
    loaded = load_model(path)
    assert np.array_equal(loaded.predict(x), model.predict(x))
    assert loaded.get_layer("Home_lookup").get_vocabulary() == model.get_layer("Home_lookup").get_vocabulary()
    cfg_clone = Model.from_config(model.get_config())
    cfg_clone.set_weights(model.get_weights())
    assert np.array_equal(cfg_clone.predict(x.iloc[:50]), model.predict(x.iloc[:50]))


def test_named_inputs_values_by_hand():
    model = _small_model()
    w, b = model.get_layer("out").get_weights()
    got = model.predict([{"age": 50, "home": "owner"}, {"age": None, "home": "boat"}, {"age": 30.0, "home": None}])
    feats = np.array([[1.0, -4.0, 0, 0, 1], [0.0, -3.9, 1, 0, 0], [-1.0, -4.0, 1, 0, 0]], dtype=np.float32)
    # Normalization sees [value, indicator]: (50-40)/10 = 1, (0-40)/10 = -4; None -> 40 with indicator 1;
    # lookup layout [OOV, rent, owner]: "boat" and None go to OOV.
    assert np.allclose(got, feats @ w + b, atol=1e-5)


def test_named_input_errors_name_the_feature():
    model = _small_model()
    ok = {"age": np.array([30.0, 40.0]), "home": np.array(["rent", "owner"])}
    assert model.predict(ok).shape == (2, 1)
    with pytest.raises(ValueError, match=r"missing input\(s\) \['home'\]"):
        model.predict({"age": [1.0]})
    with pytest.raises(ValueError, match=r"unknown input name\(s\) \['salary'\]"):
        model.predict({**ok, "salary": [1.0, 2.0]})
    with pytest.raises(ValueError, match=r"x\['age'\] is a numeric input but row 1 holds the string 'old'"):
        model.predict({"age": [30, "old"], "home": ["rent", "rent"]})
    with pytest.raises(ValueError, match=r"x\['home'\] is a string feature but row 0 holds 3 \(int\)"):
        model.predict({"age": [30, 31], "home": [3, "rent"]})
    with pytest.raises(ValueError, match=r"x\['age'\] must hold one value per row .* got the scalar 30"):
        model.predict({"age": 30, "home": "rent"})
    with pytest.raises(ValueError, match=r"x\['age'\] has shape \(2, 2\) but model .* expects input shape \(None, 1\)"):
        model.predict({"age": np.zeros((2, 2)), "home": ["rent", "rent"]})
    with pytest.raises(ValueError, match="cardinality"):
        model.predict({"age": [1.0, 2.0, 3.0], "home": ["rent"]})
    with pytest.raises(ValueError, match="empty DataFrame"):
        model.predict(pd.DataFrame({"age": [], "home": []}))
    with pytest.raises(ValueError, match=r"missing input\(s\) \['age'\]"):
        model.predict([{"home": "rent"}])
    with pytest.raises(ValueError, match=r"x\['age'\] contains infinity"):
        model.predict({"age": [np.inf], "home": ["rent"]})


def test_nan_only_allowed_where_a_layer_handles_it():
    inp = Input(shape=(1,), name="income")
    model = Model({"income": inp}, Dense(1)(inp))
    with pytest.raises(ValueError, match=r"x\['income'\] contains NaN at row 1"):
        model.predict({"income": [1.0, None]})


def test_string_inputs_are_checked_when_the_model_is_made():
    home = Input(shape=(1,), name="home", dtype="string")
    with pytest.raises(TypeError, match=r"Dense 'd' cannot take the string input 'home'"):
        Dense(2, name="d")(home)
    num = Input(shape=(1,), name="n")
    with pytest.raises(TypeError, match="must be applied to a string Input"):
        StringLookup(vocabulary=["a"])(num)
    h2 = Input(shape=(1,), name="h2", dtype="string")
    a, b = StringLookup(vocabulary=["a"])(h2), StringLookup(vocabulary=["b"])(h2)
    with pytest.raises(ValueError, match="the string input 'h2' feeds 2 layers"):
        Model(h2, Concatenate()([a, b]))


def test_adapt_on_all_missing_columns_names_the_feature():
    df = pd.DataFrame({"a": [1.0, 2.0], "b": [np.nan, np.nan], "c": ["x", None]})
    fs = FeatureSpace({"a": "float_normalized", "b": "float_normalized", "c": "string_categorical"})
    with pytest.raises(ValueError, match=r"feature 'b' has no values in the adapt data \(all missing\)"):
        fs.adapt(df)
    fs = FeatureSpace({"c": "string_categorical"})
    with pytest.raises(ValueError, match="StringLookup 'c_lookup': adapt data has no values"):
        fs.adapt(pd.DataFrame({"c": [None, None]}))
    with pytest.raises(ValueError, match=r"no column\(s\) \['zz'\]"):
        FeatureSpace({"zz": "float"}).adapt(df)


def test_embedding_and_discretized_features(credit):
    x, y = credit
    fs = FeatureSpace(
        {
            "Home": FeatureSpace.string_categorical(output_mode="embedding", embedding_dim=3),
            "Age": FeatureSpace.float_discretized(num_bins=5),
            "Time": FeatureSpace.integer_categorical(),
            "Job": FeatureSpace.string_hashed(num_bins=8),
        }
    )
    fs.adapt(x)
    enc = fs.get_encoded_features()
    vocab = fs._layers["Time"][0].vocabulary_size()
    assert enc.shape == (None, 3 + 5 + vocab + 8)
    model = Model(fs.get_inputs(), Dense(1, activation="sigmoid")(enc))
    model.compile("adam", "binary_crossentropy")
    x = x[list(fs.features)]
    model.fit(x, y, epochs=2, verbose=0)
    assert np.array_equal(model.predict(x.iloc[:5]), model.predict(x.iloc[:5].to_dict("records")))


def test_thread_safe_predict_with_string_inputs(credit):
    x, y = credit
    _, model = _fs_model(x)
    model.fit(x, y, epochs=1, verbose=0)
    records = x.astype(object).where(x.notna(), None).to_dict("records")
    # Serial answers for exactly the calls the threads make (a row's result may differ by an ulp
    # with its position in a batch, so compare like with like).
    expected = {i: model.predict(records[i * 50 : (i + 1) * 50]) for i in range(1, 8, 2)}
    expected[0] = model.predict(x)
    results, errors = [None] * 8, []

    def work(i):
        try:
            for _ in range(5):
                got = model.predict(records[i * 50 : (i + 1) * 50]) if i % 2 else model.predict(x)
                want = expected[i if i % 2 else 0]
                if not np.array_equal(got, want):
                    raise AssertionError(f"thread {i} differs")
            results[i] = True
        except Exception as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and all(results)


def test_cross_of_string_features_trains_and_predicts_raw_records(credit, tmp_path):
    x, y = credit
    mf.utils.set_random_seed(5)
    fs = FeatureSpace.from_dataframe(
        x, crosses=[FeatureSpace.cross(feature_names=("Home", "Marital"), crossing_dim=32, output_mode="one_hot")]
    )
    fs.adapt(x)
    enc = fs.get_encoded_features()
    widths = {
        c: (2 if fs._layers[c][0].add_indicator else 1)
        if f.kind == "float_normalized"
        else fs._layers[c][0].vocabulary_size()
        for c, f in fs.features.items()
    }
    assert enc.shape == (None, sum(widths.values()) + 32)
    # The crossed features' lookups give indices, re-encoded one-hot; the cross sees the indices.
    assert fs._layers["Home"][0].output_mode == "int" and fs._layers["Home"][1].output_mode == "one_hot"
    assert fs._layers["Job"][0].output_mode == "one_hot" and len(fs._layers["Job"]) == 1
    model = Model(fs.get_inputs(), Dense(1, activation="sigmoid")(Dense(8, activation="relu")(enc)))
    model.compile("adam", "binary_crossentropy", metrics=["auc"])
    model.fit(x, y, epochs=10, batch_size=32, verbose=0)
    assert model.evaluate(x, y, verbose=0)[1] > 0.8
    rows = x.iloc[:60]
    records = rows.astype(object).where(rows.notna(), None).to_dict("records")
    assert np.array_equal(model.predict(records), model.predict(rows))
    # The cross's bins are HashedCrossing of the two lookup indices.
    small = FeatureSpace(
        {"Home": "string_categorical", "Marital": "string_categorical"},
        output_mode="dict",
        crosses=[FeatureSpace.cross(("Home", "Marital"), 32)],
    )
    small.adapt(x)
    sub = Model(small.get_inputs(), small.get_encoded_features()["Home_X_Marital"])
    idx = [small._layers[c][0](rows[c].to_numpy(dtype=object)) for c in ("Home", "Marital")]
    want = mf.layers.HashedCrossing(num_bins=32, output_mode="one_hot")(idx)
    assert np.array_equal(sub.predict(rows[["Home", "Marital"]]), want) and want.sum() == len(rows)
    # Unseen and missing categories cross through the OOV index.
    assert np.isfinite(model.predict([dict(records[0], Home="castle", Marital=None)])).all()
    path = tmp_path / "cross.maas"
    model.save(path)
    assert np.array_equal(load_model(path).predict(records), model.predict(rows))


def test_cross_output_matches_uncrossed_encoding_and_other_kinds(credit):
    x, _ = credit
    feats = {
        "Home": "string_categorical",
        "Time": FeatureSpace.integer_categorical(),
        "Age": FeatureSpace.float_discretized(num_bins=4),
        "Job": FeatureSpace.string_hashed(num_bins=8),
        "Income": "float_normalized",
    }
    plain = FeatureSpace(dict(feats))
    crossed = FeatureSpace(
        dict(feats),
        output_mode="dict",
        crosses=[
            FeatureSpace.cross(("Home", "Time", "Age"), 16, output_mode="int"),
            {"feature_names": ["Job", "Home"], "crossing_dim": 5},
        ],
    )
    plain.adapt(x)
    crossed.adapt(x)
    m_plain = Model(plain.get_inputs(), plain.get_encoded_features())
    out = crossed.get_encoded_features()
    assert set(out) == set(feats) | {"Home_X_Time_X_Age", "Job_X_Home"}
    assert out["Home_X_Time_X_Age"].shape == (None, 1) and out["Job_X_Home"].shape == (None, 5)
    m_crossed = Model(crossed.get_inputs(), Concatenate()([out[c] for c in feats] + [out["Home_X_Time_X_Age"]]))
    cols = x[list(feats)]
    got = m_crossed.predict(cols)
    parts, bins = got[:, :-1], got[:, -1]
    assert np.array_equal(parts, m_plain.predict(cols))  # the same feature encodings
    assert bins.min() >= 0 and bins.max() < 16 and np.array_equal(bins, np.round(bins))
    assert len(np.unique(bins)) > 4


def test_cross_declaration_errors():
    with pytest.raises(ValueError, match=r"cross 'a_X_zz' names feature\(s\) \['zz'\]"):
        FeatureSpace({"a": "string_categorical"}, crosses=[FeatureSpace.cross(("a", "zz"), 8)])
    with pytest.raises(ValueError, match=r"float_normalized feature 'b'; only categorical"):
        FeatureSpace({"a": "string_categorical", "b": "float_normalized"}, crosses=[FeatureSpace.cross(("a", "b"), 8)])
    with pytest.raises(ValueError, match=r"2 or more distinct features"):
        FeatureSpace.cross(("a",), 8)
    with pytest.raises(ValueError, match=r"crossing_dim must be an integer >= 1"):
        FeatureSpace.cross(("a", "b"), 0)
    with pytest.raises(ValueError, match=r"output_mode must be 'one_hot' or 'int'"):
        FeatureSpace.cross(("a", "b"), 4, output_mode="count")
    with pytest.raises(TypeError, match=r"crosses must be FeatureSpace.cross"):
        FeatureSpace({"a": "string_categorical"}, crosses=["a"])
