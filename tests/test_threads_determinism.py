"""Thread-safe predict, the GIL released during fit/predict, and bit-identical seeded runs."""

import threading
import time

import numpy as np
import pandas as pd
import pytest

import maasfin as mf
from maasfin import _core, callbacks, optimizers
from maasfin.layers import Dense, Dropout
from maasfin.models import Sequential


@pytest.fixture
def restore_num_threads():
    n = mf.config.get_num_threads()
    yield
    mf.config.set_num_threads(n)


def _wide_model(seed=0, dropout=0.0):
    mf.utils.set_random_seed(seed)
    layers = [Dense(256, activation="relu", input_dim=30)]
    if dropout:
        layers.append(Dropout(dropout))
    layers += [Dense(128, activation="relu"), Dense(1, activation="sigmoid")]
    model = Sequential(layers)
    model.compile(optimizer=optimizers.Adam(learning_rate=0.01), loss="binary_crossentropy", metrics=["accuracy"])
    return model


def _data(rng, n=512, d=30):
    x = rng.normal(size=(n, d)).astype(np.float32)
    y = ((x[:, 0] + x[:, 1] * x[:, 2]) > 0).astype(np.float32)
    return x, y


def _run_threads(n_threads, target):
    errors = []
    barrier = threading.Barrier(n_threads)

    def wrapped(i):
        try:
            barrier.wait()
            target(i)
        except BaseException as e:  # noqa: BLE001 - reported in the main thread
            errors.append(e)

    threads = [threading.Thread(target=wrapped, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a predict thread hung"
    if errors:
        raise errors[0]


# -- concurrent predict --------------------------------------------------------------------------------
def test_concurrent_predict_matches_single_thread(rng):
    x, y = _data(rng)
    model = _wide_model(seed=1)
    model.fit(x, y, epochs=1, batch_size=64, verbose=0)
    # (rows, batch_size): one-row calls, small reference-kernel batches and oneDNN-sized batches
    configs = [(1, None), (7, 3), (100, 32), (512, 512), (512, None), (300, 128), (512, 200), (33, 1)]
    inputs = {c: np.ascontiguousarray(x[: c[0]]) for c in configs}
    expected = {c: model.predict(inputs[c], batch_size=c[1], verbose=0) for c in configs}
    for c in configs:  # sequential calls are repeatable
        assert np.array_equal(model.predict(inputs[c], batch_size=c[1], verbose=0), expected[c])
    assert expected[(512, 512)].shape == (512, 1)
    mismatches = []
    calls = [0] * 8

    def work(i):
        for k in range(24):
            c = configs[(i + k) % len(configs)]
            got = model.predict(inputs[c], batch_size=c[1], verbose=0)
            calls[i] += 1
            if not np.array_equal(got, expected[c]):
                mismatches.append((i, k, c))

    _run_threads(8, work)
    assert sum(calls) == 8 * 24
    assert mismatches == []


def test_concurrent_predict_reference_kernels_and_dataframes(rng):
    """The Python boundary (DataFrame column matching) and the graph are safe to share between
    threads; the reference kernels keep every product on the calling thread."""
    x, y = _data(rng, n=128)
    cols = [f"f{i}" for i in range(30)]
    df = pd.DataFrame(x, columns=cols)
    model = _wide_model(seed=2)
    model.fit(df, y, epochs=1, verbose=0)
    reordered = df[cols[::-1]]
    _core.set_backend(_core.Backend.reference)  # reset to automatic by conftest
    configs = [("array", 32), ("array", 7), ("array", 128), ("frame", 32), ("frame", 100)]
    inputs = {"array": x, "frame": reordered}
    expected = {c: model.predict(inputs[c[0]], batch_size=c[1], verbose=0) for c in configs}
    np.testing.assert_array_equal(expected[("array", 32)], expected[("frame", 32)])
    bad = []

    def work(i):
        for k in range(10):
            c = configs[(i + k) % len(configs)]
            if not np.array_equal(model.predict(inputs[c[0]], batch_size=c[1], verbose=0), expected[c]):
                bad.append((i, k, c))

    _run_threads(8, work)
    assert bad == []


def test_concurrent_first_predict_builds_once(rng):
    """Eight threads race to predict on an unbuilt model: it is built once and all agree."""
    mf.utils.set_random_seed(3)
    model = Sequential([Dense(64, activation="relu"), Dense(4, activation="softmax")])
    x = rng.normal(size=(50, 12)).astype(np.float32)
    results = [None] * 8

    def work(i):
        results[i] = model.predict(x, verbose=0)

    _run_threads(8, work)
    assert model.built and model.get_weights()[0].shape == (12, 64)
    for r in results:
        assert np.array_equal(r, results[0])
    assert np.array_equal(model.predict(x, verbose=0), results[0])


def test_predict_errors_in_threads_are_clean(rng):
    mf.utils.set_random_seed(4)
    model = Sequential([Dense(8, activation="relu", input_dim=30), Dense(1, activation="sigmoid")])
    good = rng.normal(size=(64, 30)).astype(np.float32)
    expected = model.predict(good, verbose=0)
    bad_nan = good.copy()
    bad_nan[5, 7] = np.nan
    outcomes = []

    def work(i):
        for k in range(20):
            if (i + k) % 3 == 0:
                with pytest.raises(ValueError, match="row 5, column 7"):
                    model.predict(bad_nan, verbose=0)
            elif (i + k) % 3 == 1:
                with pytest.raises(ValueError, match="expected, got 29"):
                    model.predict(good[:, :29], verbose=0)
            else:
                outcomes.append(np.array_equal(model.predict(good, verbose=0), expected))

    _run_threads(8, work)
    assert outcomes and all(outcomes)


# -- the GIL is released ------------------------------------------------------------------------------
class _Spinner:
    """A Python thread that counts as fast as it can until stopped."""

    def __init__(self):
        self.count = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.count += 1

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def rate(self, seconds=0.2):
        c0, t0 = self.count, time.perf_counter()
        time.sleep(seconds)
        return (self.count - c0) / (time.perf_counter() - t0)


def test_fit_releases_the_gil(rng, restore_num_threads):
    mf.config.set_num_threads(1)  # one core for fit, the other for the spinner: no oversubscription
    x = rng.normal(size=(16384, 64)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.float32)
    mf.utils.set_random_seed(5)
    model = Sequential(
        [Dense(512, activation="relu", input_dim=64), Dense(512, activation="relu"), Dense(1, activation="sigmoid")]
    )
    model.compile(optimizer="adam", loss="binary_crossentropy")

    class TimeBudget(callbacks.Callback):
        """Few, long epochs: with the GIL held the spinner could run only between epochs."""

        def on_train_begin(self, logs=None):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            if time.perf_counter() - self.t0 > 1.0:
                self.model.stop_training = True

    with _Spinner() as spinner:
        solo_rate = spinner.rate()
        c0, t0 = spinner.count, time.perf_counter()
        hist = model.fit(x, y, epochs=200, batch_size=256, verbose=0, callbacks=[TimeBudget()])
        elapsed = time.perf_counter() - t0
        during = spinner.count - c0
    epochs = len(hist.history["loss"])
    assert elapsed > 1.0 and epochs < 200
    # Seconds of spinner progress during fit. Holding the GIL would allow at most a switch interval
    # (5 ms) per epoch boundary, i.e. a few percent of `elapsed`.
    effective = during / solo_rate
    assert effective > max(0.15 * elapsed, 10 * epochs * 0.005), (effective, elapsed, epochs)


def test_predict_releases_the_gil(rng, restore_num_threads):
    mf.config.set_num_threads(1)
    mf.utils.set_random_seed(6)
    model = Sequential([Dense(512, activation="relu", input_dim=64), Dense(512, activation="relu"), Dense(1)])
    x = rng.normal(size=(4096, 64)).astype(np.float32)
    model.predict(x[:10], verbose=0)
    with _Spinner() as spinner:
        solo_rate = spinner.rate()
        c0, t0 = spinner.count, time.perf_counter()
        calls = 0
        while time.perf_counter() - t0 < 0.6:
            # one long native call per iteration
            model.predict(np.concatenate([x] * 8), batch_size=4096, verbose=0)
            calls += 1
        elapsed = time.perf_counter() - t0
        during = spinner.count - c0
    assert during / solo_rate > 0.15 * elapsed, (during / solo_rate, elapsed, calls)


# -- determinism --------------------------------------------------------------------------------------
def _seeded_run(seed, x, y, wide):
    mf.utils.set_random_seed(seed)
    if wide:
        model = Sequential(
            [
                Dense(256, activation="relu", input_dim=x.shape[1]),
                Dropout(0.3),
                Dense(128, activation="relu"),
                Dropout(0.2),
                Dense(1, activation="sigmoid"),
            ]
        )
        batch_size = 256  # large enough for oneDNN
    else:
        model = Sequential(
            [Dense(16, activation="tanh", input_dim=x.shape[1]), Dropout(0.5), Dense(1, activation="sigmoid")]
        )
        batch_size = 16
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    hist = model.fit(x, y, epochs=3, batch_size=batch_size, shuffle=True, validation_split=0.1, verbose=0)
    return model.get_weights(), model.predict(x, verbose=0), hist.history


def _same(a, b):
    wa, pa, ha = a
    wb, pb, hb = b
    return (
        len(wa) == len(wb) and all(np.array_equal(u, v) for u, v in zip(wa, wb)) and np.array_equal(pa, pb) and ha == hb
    )


@pytest.mark.parametrize("wide", [False, True], ids=["reference", "onednn"])
def test_same_seed_is_bit_identical_and_other_seed_differs(rng, wide):
    x, y = _data(rng, n=1024 if wide else 200)
    a = _seeded_run(7, x, y, wide)
    b = _seeded_run(7, x, y, wide)
    assert _same(a, b)
    c = _seeded_run(8, x, y, wide)
    assert not any(np.array_equal(u, v) for u, v in zip(a[0][::2], c[0][::2]))  # every kernel differs
    assert not np.array_equal(a[1], c[1])
    assert a[2]["loss"] != c[2]["loss"]


def test_fit_randomness_comes_from_the_seed(rng):
    """From identical starting weights, the seed set before fit decides dropout masks and the
    shuffle order: the same seed gives identical weights, another seed different ones."""
    x, y = _data(rng, n=200)

    def fit_from(w0, seed, dropout=True, shuffle=True):
        layers = [Dense(16, activation="tanh", input_dim=30)]
        layers += [Dropout(0.5, seed=42)] if dropout else []
        model = Sequential(layers + [Dense(1, activation="sigmoid")])
        model.compile(optimizer="sgd", loss="binary_crossentropy")
        model.set_weights(w0)
        mf.utils.set_random_seed(seed)
        model.fit(x, y, epochs=2, batch_size=20, shuffle=shuffle, verbose=0)
        return model.get_weights()

    mf.utils.set_random_seed(9)
    w0 = Sequential([Dense(16, activation="tanh", input_dim=30), Dense(1)]).get_weights()
    same = lambda a, b: all(np.array_equal(u, v) for u, v in zip(a, b))  # noqa: E731
    assert same(fit_from(w0, 100), fit_from(w0, 100))
    assert not same(fit_from(w0, 100), fit_from(w0, 101))
    # dropout alone (no shuffling) still depends on the seed
    assert not same(fit_from(w0, 100, shuffle=False), fit_from(w0, 101, shuffle=False))
    # shuffling alone (no dropout) too
    assert not same(fit_from(w0, 100, dropout=False), fit_from(w0, 101, dropout=False))
    # with neither, training is a pure function of the weights and the data
    assert same(fit_from(w0, 100, dropout=False, shuffle=False), fit_from(w0, 101, dropout=False, shuffle=False))


def test_results_do_not_depend_on_thread_count(rng, restore_num_threads):
    x, y = _data(rng, n=1024)
    mf.config.set_num_threads(1)
    one = _seeded_run(11, x, y, wide=True)
    mf.config.set_num_threads(2)
    two = _seeded_run(11, x, y, wide=True)
    assert _same(one, two)
    model = _wide_model(seed=12)
    p2 = model.predict(x, batch_size=512, verbose=0)
    mf.config.set_num_threads(1)
    assert np.array_equal(model.predict(x, batch_size=512, verbose=0), p2)


def test_predict_rows_do_not_depend_on_batch_composition(rng):
    """A row's prediction does not depend on the other rows of its batch."""
    model = _wide_model(seed=13)
    x = rng.normal(size=(600, 30)).astype(np.float32)
    full = model.predict(x, batch_size=600, verbose=0)
    for bs in (1, 2, 32, 599):
        np.testing.assert_allclose(model.predict(x, batch_size=bs, verbose=0), full, rtol=1e-5, atol=1e-6)
    for i in (0, 17, 599):
        np.testing.assert_allclose(model.predict(x[i : i + 1], verbose=0)[0], full[i], rtol=1e-5, atol=1e-6)
