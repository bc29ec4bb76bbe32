"""Preprocessing layers against Keras semantics. Expected values marked "Keras doc" are the
examples of the Keras 3 API docs / docstrings (keras/src/layers/preprocessing/*.py), which a wrong
index layout, tie order, OOV hash or quantile summary would fail; the rest are NumPy references."""

import numpy as np
import pandas as pd
import pytest

import maasfin as mf
from maasfin import _core
from maasfin.layers import (
    CategoryEncoding,
    Dense,
    Discretization,
    Embedding,
    Flatten,
    Hashing,
    Imputation,
    Input,
    IntegerLookup,
    Normalization,
    StringLookup,
)
from maasfin.models import Model

VOCAB = ["a", "b", "c", "d"]


# -- StringLookup -----------------------------------------------------------------------------------
def test_string_lookup_keras_doc_examples():
    assert StringLookup(vocabulary=VOCAB)([["a", "c", "d"], ["d", "z", "b"]]).tolist() == [[1, 3, 4], [4, 0, 2]]
    # Two OOV buckets: FarmHash Fingerprint64 puts "m" in 0 and "z" in 1, as TensorFlow does.
    assert StringLookup(vocabulary=VOCAB, num_oov_indices=2)([["a", "c", "d"], ["m", "z", "b"]]).tolist() == [
        [2, 4, 5],
        [0, 1, 3],
    ]
    masked = StringLookup(vocabulary=VOCAB, mask_token="")
    assert masked([["a", "c", "d"], ["d", "", "b"]]).tolist() == [[2, 4, 5], [5, 0, 3]]
    assert masked.get_vocabulary() == ["", "[UNK]", "a", "b", "c", "d"]
    assert masked.vocabulary_size() == 6


def test_string_lookup_adapt_orders_by_count_then_token_descending():
    layer = StringLookup()
    layer.adapt([["a", "c", "d"], ["d", "z", "b"]])
    assert layer.get_vocabulary() == ["[UNK]", "d", "z", "c", "b", "a"]  # Keras doc
    # max_tokens counts the OOV index; the mask and OOV tokens never enter the vocabulary.
    layer = StringLookup(max_tokens=3, mask_token="[MASK]", output_mode="one_hot")
    layer.adapt(pd.Series(["x", "y", "y", "[MASK]", "[MASK]", "[MASK]", "[UNK]", "w", "w", None]))
    assert layer.get_vocabulary() == ["[UNK]", "y", "w"]


def test_string_lookup_output_modes_keras_doc():
    assert (
        StringLookup(vocabulary=VOCAB, output_mode="one_hot")(["a", "b", "c", "d", "z"]).tolist()
        == np.roll(np.eye(5), 1, axis=1).tolist()
    )
    data = [["a", "c", "d", "d"], ["d", "z", "b", "z"]]
    assert StringLookup(vocabulary=VOCAB, output_mode="multi_hot")(data).tolist() == [[0, 1, 0, 1, 1], [1, 0, 1, 0, 1]]
    assert StringLookup(vocabulary=VOCAB, output_mode="count")(data).tolist() == [[0, 1, 0, 1, 2], [2, 0, 1, 0, 1]]


def test_string_lookup_missing_values_and_mask_outside_int_mode():
    # No mask token: None/NaN go to the OOV index. With one: to the mask index ("int") or nowhere.
    assert StringLookup(vocabulary=VOCAB)(np.array(["b", None, np.nan], dtype=object)).tolist() == [2, 0, 0]
    assert StringLookup(vocabulary=VOCAB, mask_token="")(["b", None]).tolist() == [3, 0]
    hot = StringLookup(vocabulary=VOCAB, mask_token="", output_mode="multi_hot")
    assert hot.vocabulary_size() == 5  # Keras: no mask slot outside "int" mode
    assert hot([["a", ""], [None, "q"]]).tolist() == [[0, 1, 0, 0, 0], [1, 0, 0, 0, 0]]


def test_string_lookup_rejects_bad_vocabularies_and_values():
    with pytest.raises(ValueError, match="repeats"):
        StringLookup(vocabulary=["a", "b", "a"])
    with pytest.raises(ValueError, match="mask token"):
        StringLookup(vocabulary=["a", ""], mask_token="")
    with pytest.raises(ValueError, match="more than max_tokens=3"):
        StringLookup(vocabulary=["a", "b", "c"], max_tokens=3)
    with pytest.raises(ValueError, match=r"is a string feature but row 1 holds 5 \(int\)"):
        StringLookup(vocabulary=VOCAB)(np.array(["a", 5], dtype=object))
    with pytest.raises(ValueError, match="'q' is not in the vocabulary and num_oov_indices=0"):
        StringLookup(vocabulary=VOCAB, num_oov_indices=0)(["q"])
    with pytest.raises(ValueError, match="all missing"):
        StringLookup().adapt([None, np.nan])
    # Special tokens at the start of a vocabulary are recognised and stripped, as Keras.
    assert StringLookup(vocabulary=["[UNK]", "a", "b"]).get_vocabulary() == ["[UNK]", "a", "b"]


# -- IntegerLookup ----------------------------------------------------------------------------------
def test_integer_lookup_keras_doc_examples():
    vocab = [12, 36, 1138, 42]
    assert IntegerLookup(vocabulary=vocab)([[12, 1138, 42], [42, 1000, 36]]).tolist() == [[1, 3, 4], [4, 0, 2]]
    layer = IntegerLookup()
    layer.adapt(np.array([[12, 1138, 42], [42, 1000, 36]]))
    assert layer.get_vocabulary() == [-1, 42, 1138, 1000, 36, 12]
    assert IntegerLookup(vocabulary=vocab, num_oov_indices=2)([[12, 1138, 42], [37, 1000, 36]]).tolist() == [
        [2, 4, 5],
        [1, 0, 3],
    ]  # OOV bucket = token mod 2
    assert IntegerLookup(vocabulary=vocab, mask_token=0)([[12, 1138, 42], [42, 0, 36]]).tolist() == [
        [2, 4, 5],
        [5, 0, 3],
    ]
    assert (
        IntegerLookup(vocabulary=vocab, output_mode="one_hot")([12, 36, 1138, 42, 7]).tolist()
        == np.roll(np.eye(5), 1, axis=1).tolist()
    )


def test_integer_lookup_missing_and_non_integers():
    layer = IntegerLookup(vocabulary=[3, 5])
    assert layer([3.0, np.nan, 2.5, 5]).tolist() == [1, 0, 0, 2]
    assert IntegerLookup(vocabulary=[3, 5], mask_token=0)([np.nan, 0, 3]).tolist() == [0, 0, 2]
    with pytest.raises(ValueError, match="non-integer"):
        IntegerLookup().adapt([1.0, 2.5])
    adapted = IntegerLookup(max_tokens=3)
    adapted.adapt(pd.DataFrame({"k": [7, 7, 7, 1, 1, 2, None]}))
    assert adapted.get_vocabulary() == [-1, 7, 1]


# -- Hashing ----------------------------------------------------------------------------------------
def test_hashing_matches_keras_farmhash():
    assert Hashing(num_bins=3)([["A"], ["B"], ["C"], ["D"], ["E"]]).ravel().tolist() == [1, 0, 1, 1, 2]  # Keras doc
    assert Hashing(num_bins=3, mask_value="")([["A"], ["B"], [""], ["C"], ["D"]]).ravel().tolist() == [1, 1, 0, 2, 2]
    assert _core.fingerprint64(b"") == 0x9AE16A3B2F90404F  # FarmHash's k2 for the empty string
    # Long strings (the > 64-byte loop) hash deterministically and differently by content.
    long_a, long_b = "x" * 200, "x" * 199 + "y"
    assert _core.fingerprint64(long_a.encode()) == _core.fingerprint64(long_a.encode())
    assert _core.fingerprint64(long_a.encode()) != _core.fingerprint64(long_b.encode())


def test_hashing_integers_hash_their_decimal_strings():
    ints = np.array([[0], [7], [-12], [16777216]])  # integers travel as float32: exact to 2**24
    strings = np.array([[str(v) for v in row] for row in ints], dtype=object)
    assert np.array_equal(Hashing(num_bins=11)(ints), Hashing(num_bins=11)(strings))
    masked = Hashing(num_bins=5, mask_value=7)(np.array([[7.0], [np.nan], [3.0]]))
    assert masked[0, 0] == 0 and masked[1, 0] == 0 and masked[2, 0] >= 1
    with pytest.raises(ValueError, match="not an integer"):
        Hashing(num_bins=5)(np.array([[1.5]]))
    counts = Hashing(num_bins=4, output_mode="count")(np.array([["a", "a", "b"]], dtype=object))
    assert counts.sum() == 3 and counts.max() >= 2


# -- CategoryEncoding -------------------------------------------------------------------------------
def test_category_encoding_keras_doc_examples():
    assert (
        CategoryEncoding(num_tokens=4, output_mode="one_hot")([3, 2, 0, 1]).tolist() == np.eye(4)[[3, 2, 0, 1]].tolist()
    )
    data = [[0, 1], [0, 0], [1, 2], [3, 1]]
    assert CategoryEncoding(num_tokens=4, output_mode="multi_hot")(data).tolist() == [
        [1, 1, 0, 0],
        [1, 0, 0, 0],
        [0, 1, 1, 0],
        [0, 1, 0, 1],
    ]
    assert CategoryEncoding(num_tokens=4, output_mode="count")(data).tolist() == [
        [1, 1, 0, 0],
        [2, 0, 0, 0],
        [0, 1, 1, 0],
        [0, 1, 0, 1],
    ]
    assert CategoryEncoding(num_tokens=3, output_mode="one_hot")([[0, 2]]).shape == (1, 2, 3)


def test_category_encoding_out_of_range_names_layer_and_row():
    with pytest.raises(ValueError, match=r"CategoryEncoding 'ce': row 1 holds 4, not a category index in \[0, 4\)"):
        CategoryEncoding(num_tokens=4, name="ce")([1, 4])
    with pytest.raises(ValueError, match="row 0 holds 1.5"):
        CategoryEncoding(num_tokens=4)([1.5])


# -- Discretization ---------------------------------------------------------------------------------
DISC_INPUT = np.array([[-1.5, 1.0, 3.4, 0.5], [0.0, 3.0, 1.3, 0.0]])


def test_discretization_keras_doc_examples():
    assert Discretization(bin_boundaries=[0.0, 1.0, 2.0])(DISC_INPUT).tolist() == [[0, 2, 3, 1], [1, 3, 2, 1]]
    layer = Discretization(num_bins=4, epsilon=0.01)
    layer.adapt(DISC_INPUT)
    assert layer(DISC_INPUT).tolist() == [[0, 2, 3, 2], [1, 3, 3, 1]]


def test_discretization_quantiles_on_large_data_and_batches(rng):
    x = rng.normal(size=20_000)
    layer = Discretization(num_bins=4)
    layer.adapt(x)
    assert np.allclose(layer.bin_boundaries, np.quantile(x, [0.25, 0.5, 0.75]), atol=0.03)
    batched = Discretization(num_bins=4)
    batched.adapt(np.array_split(x, 7))  # approximate summaries merged per batch, as Keras
    assert np.allclose(batched.bin_boundaries, np.quantile(x, [0.25, 0.5, 0.75]), atol=0.06)
    assert batched.bin_boundaries != layer.bin_boundaries
    assert np.array_equal(layer(x[:50]).ravel(), np.digitize(x[:50], layer.bin_boundaries))
    one_hot = Discretization(bin_boundaries=[0.0], output_mode="one_hot")([[-1.0], [2.0]])
    assert one_hot.tolist() == [[1, 0], [0, 1]]


def test_discretization_config_keeps_learned_boundaries():
    layer = Discretization(num_bins=4)
    layer.adapt(DISC_INPUT)
    cfg = layer.get_config()
    assert cfg["num_bins"] == 4 and cfg["bin_boundaries"] == layer.bin_boundaries
    again = Discretization.from_config(cfg)
    assert np.array_equal(again(DISC_INPUT), layer(DISC_INPUT))
    with pytest.raises(ValueError, match="no bin boundaries yet"):
        Discretization(num_bins=3)._make_core()


# -- Normalization ----------------------------------------------------------------------------------
def test_normalization_adapt_matches_numpy_for_arrays_frames_and_batches(rng):
    x = rng.normal(loc=[3.0, -2.0, 100.0], scale=[1.0, 0.1, 20.0], size=(500, 3))
    expect = (x - x.mean(0)) / x.std(0)
    for data in (x, pd.DataFrame(x, columns=["p", "q", "r"]), iter(np.array_split(x, 9)), list(np.array_split(x, 3))):
        layer = Normalization()
        layer.adapt(data)
        assert np.allclose(layer(x), expect, atol=1e-4)
    doc = Normalization()
    doc.adapt(np.array([[0.0, 7.0, 4.0], [2.0, 9.0, 6.0], [0.0, 7.0, 4.0], [2.0, 9.0, 6.0]]))
    assert np.allclose(doc([[0.0, 7.0, 4.0]]), [[-1, -1, -1]])  # Keras doc


def test_normalization_given_statistics_and_invert():
    x = np.array([[1.0], [2.0], [3.0]])
    assert np.allclose(Normalization(mean=3.0, variance=2.0)(x), (x - 3) / np.sqrt(2), atol=1e-6)
    assert np.allclose(Normalization(mean=3.0, variance=2.0, invert=True)(x), 3 + x * np.sqrt(2), atol=1e-6)
    assert np.allclose(Normalization(mean=[1.0, 2.0], variance=[0.0, 4.0])([[1.0, 4.0]]), [[0.0, 1.0]])
    with pytest.raises(ValueError, match=r"\(NaN\) in feature 1"):
        Normalization().adapt(np.array([[1.0, np.nan], [2.0, 3.0]]))


# -- Imputation -------------------------------------------------------------------------------------
def test_imputation_strategies_match_numpy(rng):
    x = rng.normal(size=(200, 3))
    x[rng.random(x.shape) < 0.2] = np.nan
    x[:3, 2] = 5.0
    for strategy, fill in (("median", np.nanmedian(x, 0)), ("mean", np.nanmean(x, 0))):
        layer = Imputation(strategy=strategy, add_indicator=True)
        layer.adapt(x)
        out = layer(x)
        assert out.shape == (200, 6)
        assert np.allclose(out[:, :3], np.where(np.isnan(x), fill, x), atol=1e-6)
        assert np.array_equal(out[:, 3:], np.isnan(x).astype(np.float32))
    frequent = Imputation(strategy="most_frequent")
    frequent.adapt(x)
    assert frequent([[np.nan, np.nan, np.nan]])[0, 2] == 5.0
    assert Imputation(strategy="constant", fill_value=-9)([[np.nan, 1.0]]).tolist() == [[-9, 1]]


def test_imputation_all_missing_feature_is_an_error():
    with pytest.raises(ValueError, match=r"Imputation 'imp': adapt data feature\(s\) \[1\] are entirely missing"):
        Imputation(name="imp").adapt(np.array([[1.0, np.nan], [2.0, np.nan]]))


# -- Embedding and Flatten --------------------------------------------------------------------------
def test_embedding_lookup_gradient_and_initializer(rng):
    inp = Input(shape=(3,), name="ids")
    emb = Embedding(input_dim=5, output_dim=2, name="emb")
    model = Model(inp, Dense(1, name="out")(Flatten()(emb(inp))))
    model.compile("sgd", "mse")
    model.build()
    table = emb.get_weights()[0]
    assert table.shape == (5, 2) and np.all(np.abs(table) <= 0.05) and table.std() > 0.01  # Keras "uniform"
    ids = np.array([[0, 4, 4], [2, 0, 1]], dtype=np.float32)
    y = np.array([[1.0], [-1.0]], dtype=np.float32)
    # Analytic gradient of the embedding table vs central finite differences of the loss.
    trainer = model._get_trainer(y.shape)
    trainer.compute_gradients([ids], y, None, False, 0)
    _, _, off = emb._param_specs()[0]
    analytic = model._graph.grads[off : off + 10].copy()
    params, eps, numeric = model._graph.params, 1e-2, np.zeros(10)
    for i in range(10):
        old = params[off + i]
        params[off + i] = old + eps
        up = trainer.compute_gradients([ids], y, None, False, 0)
        params[off + i] = old - eps
        down = trainer.compute_gradients([ids], y, None, False, 0)
        params[off + i] = old
        numeric[i] = (up - down) / (2 * eps)
    assert np.allclose(analytic, numeric, rtol=2e-2, atol=5e-4)
    assert np.all(analytic[6:8] == 0)  # index 3 is never looked up
    out = model.predict(ids)
    w, b = model.get_layer("out").get_weights()
    assert np.allclose(out, table[ids.astype(int)].reshape(2, 6) @ w + b, atol=1e-6)
    with pytest.raises(ValueError, match=r"Embedding 'emb' \(input_dim=5\): row 1 holds 5"):
        model.predict(np.array([[0, 1, 2], [5, 0, 0]], dtype=np.float32))


def test_embedding_learns(rng):
    ids = rng.integers(0, 4, size=(256, 1)).astype(np.float32)
    y = (ids[:, 0] % 2).reshape(-1, 1).astype(np.float32)
    inp = Input(shape=(1,))
    model = Model(inp, Dense(1, activation="sigmoid")(Flatten()(Embedding(4, 3)(inp))))
    model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    model.fit(ids, y, epochs=60, batch_size=32, verbose=0)
    assert model.evaluate(ids, y, verbose=0)[1] == 1.0


# -- state in the arena, configs and weights --------------------------------------------------------
def test_adapted_state_lives_in_the_arena_and_round_trips(rng):
    x = rng.normal(loc=5.0, scale=2.0, size=(100, 2))
    x[::7, 1] = np.nan
    inp = Input(shape=(2,), name="num")
    imp = Imputation(strategy="median", name="imp")
    norm = Normalization(name="norm")
    imp.adapt(x)
    norm.adapt(imp(x))
    model = Model(inp, Dense(1, name="d")(norm(imp(inp))))
    model.compile("adam", "mse")
    model.build()
    assert np.allclose(imp.get_weights()[0], np.nanmedian(x, 0))
    assert np.allclose(norm.get_weights()[0], imp(x).mean(0)) and np.allclose(norm.get_weights()[1], imp(x).var(0))
    assert model.count_params() == 2 + 4 + 3 and sum(l.count_trainable_params() for l in model.layers) == 3
    model.fit(x, rng.normal(size=(100, 1)), epochs=3, verbose=0)
    assert np.allclose(imp.get_weights()[0], np.nanmedian(x, 0))  # state is never trained
    clone = Model.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    assert np.array_equal(clone.predict(x), model.predict(x))
    loaded = mf.models.from_bytes(model.to_bytes())
    assert np.array_equal(loaded.predict(x), model.predict(x))
    # adapt after build rewrites the arena state in place
    imp.adapt(x + 10.0)
    assert np.allclose(imp.get_weights()[0], np.nanmedian(x, 0) + 10.0)
