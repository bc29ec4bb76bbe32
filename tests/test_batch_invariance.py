"""Batch-invariant inference: a row's outputs are bit-identical whatever else is in its batch."""

import threading

import numpy as np
import pytest
import requests
from serving_support import ServerThread, put, run_threads

import maasfin as mf
from maasfin import _core, _testing
from maasfin.layers import (
    GRU,
    LSTM,
    BatchNormalization,
    Conv1D,
    Dense,
    Dropout,
    Embedding,
    Flatten,
    GlobalAveragePooling1D,
    Input,
    LayerNormalization,
    MultiHeadAttention,
)
from maasfin.models import Model, Sequential
from maasfin.serving import create_app

RNG = np.random.default_rng(20261206)


@pytest.fixture
def backend():
    """Sets a backend for the test and restores automatic dispatch after it."""
    yield lambda b: _core.set_backend(b)
    _core.set_backend(_core.Backend.automatic)


@pytest.fixture
def threads():
    before = mf.config.get_num_threads()
    yield mf.config.set_num_threads
    mf.config.set_num_threads(before)


# -- the kernel and its twin -----------------------------------------------------------------------

# (N, K, M): both schemes (M < 8: dot), full and partial 16/32-column panels, every row-block
# remainder, K with and without a K % 8 tail, N below and above the packing threshold, and a
# product large enough to run on several threads.
SHAPES = [(1, 30, 256), (5, 17, 33), (23, 8, 16), (24, 9, 40), (61, 30, 7), (100, 128, 1), (13, 3, 2), (700, 64, 48)]


@pytest.mark.parametrize("n, k, m", SHAPES)
@pytest.mark.parametrize("act", ["linear", "relu", "sigmoid", "tanh", "softmax"])
def test_kernel_equals_its_twin_and_rows_alone(backend, n, k, m, act):
    x = RNG.standard_normal((n, k)).astype(np.float32)
    w = RNG.standard_normal((k, m)).astype(np.float32)
    b = RNG.standard_normal(m).astype(np.float32)
    y = _testing.dense_fwd(x, w, b, act, invariant=True)
    alone = np.concatenate([_testing.dense_fwd(x[i : i + 1], w, b, act, invariant=True) for i in range(n)])
    np.testing.assert_array_equal(y, alone)
    backend(_core.Backend.reference)  # the scalar twin: one std::fma chain per output
    np.testing.assert_array_equal(_testing.dense_fwd(x, w, b, act, invariant=True), y)
    # and it is the same product as the training kernels, up to rounding
    backend(_core.Backend.automatic)
    np.testing.assert_allclose(y, _testing.dense_fwd(x, w, b, act), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("n", [1, 40])
def test_fused_relu_matches_the_twin_on_nan_and_signed_zero(backend, n):
    x = RNG.standard_normal((n, 20)).astype(np.float32)
    x[0, 3] = np.nan  # a NaN pre-activation: relu gives +0 in both
    w = RNG.standard_normal((20, 70)).astype(np.float32)
    w[:, 5] = 0.0  # exact zeros
    b = np.zeros(70, np.float32)
    b[6] = -0.0
    y = _testing.dense_fwd(x, w, b, "relu", invariant=True)
    backend(_core.Backend.reference)
    twin = _testing.dense_fwd(x, w, b, "relu", invariant=True)
    np.testing.assert_array_equal(y.view(np.uint32), twin.view(np.uint32))  # bits, signs of zeros included


def test_twin_is_the_documented_fma_chain():
    """The column scheme is the fma chain over k from 0, then + bias, computed here in float64 with
    float32 rounding after every step (an fma rounds once: exact product, one rounding)."""
    x = RNG.standard_normal((3, 11)).astype(np.float32)
    w = RNG.standard_normal((11, 9)).astype(np.float32)
    b = RNG.standard_normal(9).astype(np.float32)
    want = np.zeros((3, 9), np.float32)
    for n in range(3):
        for m in range(9):
            acc = np.float32(0)
            for k in range(11):  # float32 * float32 is exact in float64; one rounding to float32
                acc = np.float32(np.float64(x[n, k]) * np.float64(w[k, m]) + np.float64(acc))
            want[n, m] = np.float32(acc + b[m])
    np.testing.assert_array_equal(_testing.dense_fwd(x, w, b, "linear", invariant=True), want)


@pytest.mark.parametrize("a_t, b_t", [(False, False), (True, False), (False, True), (True, True)])
def test_batch_matmul_rows_alone(a_t, b_t):
    a = RNG.standard_normal((6, 5, 9) if not a_t else (6, 9, 5)).astype(np.float32)
    b = RNG.standard_normal((6, 9, 20) if not b_t else (6, 20, 9)).astype(np.float32)
    y = _testing.batch_matmul(a, a_t, b, b_t, invariant=True)
    for i in range(6):
        np.testing.assert_array_equal(
            _testing.batch_matmul(a[i : i + 1], a_t, b[i : i + 1], b_t, invariant=True)[0], y[i]
        )
    np.testing.assert_allclose(y, _testing.batch_matmul(a, a_t, b, b_t), rtol=1e-4, atol=1e-4)


# -- models -----------------------------------------------------------------------------------------


def wide_mlp():
    mf.utils.set_random_seed(1)
    return Sequential(
        [
            Input((30,)),
            Dense(256, activation="relu"),
            Dense(128, activation="relu"),
            Dropout(0.2),
            Dense(1, activation="sigmoid"),
        ]
    )


def norm_model():
    mf.utils.set_random_seed(2)
    return Sequential(
        [Input((30,)), Dense(64, activation="tanh"), BatchNormalization(), LayerNormalization(), Dense(5, "softmax")]
    )


def lstm_model():
    mf.utils.set_random_seed(3)
    return Sequential([Input((12, 6)), LSTM(32), Dense(1)])


def gru_model():
    mf.utils.set_random_seed(4)
    return Sequential([Input((12, 6)), GRU(16, return_sequences=True), GRU(8), Dense(1)])


def conv_model():
    mf.utils.set_random_seed(5)
    return Sequential([Input((12, 6)), Conv1D(8, 3, activation="relu"), GlobalAveragePooling1D(), Dense(1)])


def attention_model():
    mf.utils.set_random_seed(6)
    i = Input((12, 6))
    return Model(i, Dense(1)(Flatten()(MultiHeadAttention(2, 8)(i, i))))


def embedding_model():
    mf.utils.set_random_seed(7)
    i = Input((4,))
    return Model(i, Dense(1, activation="sigmoid")(Flatten()(Embedding(50, 8)(i))))


MODELS = {
    "wide_mlp": (wide_mlp, lambda n: RNG.standard_normal((n, 30)).astype(np.float32)),
    "normalization": (norm_model, lambda n: RNG.standard_normal((n, 30)).astype(np.float32)),
    "lstm": (lstm_model, lambda n: RNG.standard_normal((n, 12, 6)).astype(np.float32)),
    "gru": (gru_model, lambda n: RNG.standard_normal((n, 12, 6)).astype(np.float32)),
    "conv": (conv_model, lambda n: RNG.standard_normal((n, 12, 6)).astype(np.float32)),
    "attention": (attention_model, lambda n: RNG.standard_normal((n, 12, 6)).astype(np.float32)),
    "embedding": (embedding_model, lambda n: RNG.integers(0, 50, (n, 4)).astype(np.float32)),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_predict_is_batch_invariant(name, backend, threads):
    make, data = MODELS[name]
    model = make()
    n = 2000 if name in ("wide_mlp", "normalization", "embedding") else 400
    x = data(n)
    ref = model.predict(x)
    # alone, one row at a time
    alone = np.concatenate([model.predict(x[i : i + 1]) for i in range(n)])
    np.testing.assert_array_equal(alone, ref)
    # random batches, shuffled
    perm = RNG.permutation(n)
    for bs in (3, 97, 4096):
        shuffled = np.empty_like(ref)
        shuffled[perm] = model.predict(x[perm], batch_size=bs)
        np.testing.assert_array_equal(shuffled, ref)
    # in batches of varied sizes cut at random places
    cuts = np.sort(RNG.choice(np.arange(1, n), size=12, replace=False))
    parts = [model.predict(p) for p in np.split(x, cuts)]
    np.testing.assert_array_equal(np.concatenate(parts), ref)
    # one thread and two
    threads(1)
    np.testing.assert_array_equal(model.predict(x, batch_size=1000), ref)
    threads(2)
    np.testing.assert_array_equal(model.predict(x, batch_size=1000), ref)
    # every backend selection
    for b in (_core.Backend.reference, _core.Backend.onednn):
        backend(b)
        np.testing.assert_array_equal(model.predict(x), ref)


def test_default_predict_tiles_by_itself():
    model = wide_mlp()
    x = RNG.standard_normal((10_000, 30)).astype(np.float32)
    np.testing.assert_array_equal(model.predict(x), model.predict(x, batch_size=32))
    # as many rows as keep every layer's outputs (30 + 256 + 128 + 128 + 1 floats a row) within 2 MiB
    assert model._graph.auto_tile == 2 * 2**20 // (4 * 543)
    # a very wide model gets smaller tiles, never fewer than 32 rows
    mf.utils.set_random_seed(0)
    wide = Sequential([Input((4000,)), Dense(4000), Dense(1)])
    wide.build()
    assert wide._graph.auto_tile == 2 * 2**20 // (4 * 8001)
    huge = Sequential([Input((30_000,)), Dense(1)])
    huge.build()
    assert huge._graph.auto_tile == 32


def test_predict_with_callbacks_keeps_kerass_batches():
    class Count(mf.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.batches = 0

        def on_predict_batch_end(self, batch, logs=None):
            self.batches += 1

    model = wide_mlp()
    x = RNG.standard_normal((100, 30)).astype(np.float32)
    cb = Count()
    y = model.predict(x, callbacks=[cb])
    assert cb.batches == 4  # ceil(100 / 32)
    np.testing.assert_array_equal(y, model.predict(x))


def test_served_scores_do_not_depend_on_other_clients(tmp_path):
    """Concurrent requests of random sizes, merged by the server's batching in any way: every row's
    score equals model.predict's bit for bit."""
    model = wide_mlp()
    put(tmp_path, "wide", 1, model)
    x = RNG.standard_normal((600, 30)).astype(np.float32)
    want = model.predict(x)
    cuts = np.sort(RNG.choice(np.arange(1, 600), size=39, replace=False))
    pieces = list(zip(np.split(np.arange(600), cuts), np.split(x, cuts)))
    got = np.full((600, 1), np.nan, np.float32)
    lock = threading.Lock()
    with ServerThread(create_app(tmp_path, poll_seconds=0, max_latency_ms=20.0, predict_threads=2)) as server:

        def client(i):
            for rows, part in pieces[i::8]:
                r = requests.post(
                    server.url + "/v1/predict", json={"model_name": "wide", "input_data": part.tolist()}, timeout=30
                )
                assert r.status_code == 200, r.text
                with lock:
                    got[rows] = np.asarray(r.json()["predictions"], np.float32).reshape(-1, 1)

        for _ in range(2):
            run_threads(8, client)
            np.testing.assert_array_equal(got, want)


# -- explanations ----------------------------------------------------------------------------------


def explained(model, x, **kw):
    out = model.explain(x, baseline=kw.pop("baseline", "zeros"), **kw)
    return np.asarray(out, dtype=np.float32)


@pytest.mark.parametrize("name", ["wide_mlp", "normalization", "lstm"])
@pytest.mark.parametrize("tolerance", [None, 1e-4])
def test_explain_is_batch_invariant(name, tolerance, backend):
    make, data = MODELS[name]
    model = make()
    n = 40 if name != "lstm" else 12
    x = data(n)
    steps = 16 if name == "lstm" else 64
    ref = explained(model, x, steps=steps, tolerance=tolerance)
    alone = np.concatenate([explained(model, x[i : i + 1], steps=steps, tolerance=tolerance) for i in range(n)])
    np.testing.assert_array_equal(alone, ref)
    perm = RNG.permutation(n)
    shuffled = np.empty_like(ref)
    shuffled[perm] = explained(model, x[perm], steps=steps, tolerance=tolerance)
    np.testing.assert_array_equal(shuffled, ref)
    backend(_core.Backend.onednn)
    np.testing.assert_array_equal(explained(model, x, steps=steps, tolerance=tolerance), ref)


def test_explain_of_a_featurespace_model_is_batch_invariant():
    df = mf.datasets.load_credit().head(300)
    y = (df.pop("Status") == "bad").astype("float32").to_numpy()
    mf.utils.set_random_seed(11)
    fs = mf.utils.FeatureSpace.from_dataframe(df)
    fs.adapt(df)
    model = Model(fs.get_inputs(), Dense(1, activation="sigmoid")(Dense(16, "relu")(fs.get_encoded_features())))
    model.compile("adam", "binary_crossentropy")
    model.fit(df, y, epochs=1, verbose=0)
    rows = df.head(30)
    ref = explained(model, rows)
    alone = np.concatenate([explained(model, rows.iloc[i : i + 1]) for i in range(len(rows))])
    np.testing.assert_array_equal(alone, ref)
    np.testing.assert_array_equal(
        model.predict(rows)[:5], np.concatenate([model.predict(rows.iloc[i : i + 1]) for i in range(5)])
    )
