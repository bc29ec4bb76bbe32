"""Streaming input: PyDataset, generators and ParquetDataset train exactly like the same rows in memory."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import maasfin
from maasfin.callbacks import Callback
from maasfin.utils import PyDataset

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
from maasfin.data import ParquetDataset  # noqa: E402

RNG = np.random.default_rng(0)
X = RNG.normal(size=(1000, 5)).astype(np.float32)
Y = (X[:, 0] - X[:, 1] > 0).astype(np.float32)


def make_model(seed=1, dropout=False):
    maasfin.utils.set_random_seed(seed)
    layers = [maasfin.Input(shape=(5,)), maasfin.layers.Dense(8, activation="relu")]
    if dropout:
        layers.append(maasfin.layers.Dropout(0.3))
    model = maasfin.Sequential(layers + [maasfin.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return model


class Batches(PyDataset):
    """Rows [i*bs, (i+1)*bs) of X, Y; counts its epochs."""

    def __init__(self, bs=32, weights=None, **kwargs):
        super().__init__(**kwargs)
        self.bs, self.weights, self.epochs_ended = bs, weights, 0

    def __len__(self):
        return -(-len(X) // self.bs)

    def __getitem__(self, i):
        s = slice(i * self.bs, (i + 1) * self.bs)
        return (X[s], Y[s]) if self.weights is None else (X[s], Y[s], self.weights[s])

    def on_epoch_end(self):
        self.epochs_ended += 1


def assert_same_weights(a, b):
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)


@pytest.mark.parametrize("workers", [1, 3])
def test_pydataset_fit_equals_in_memory_fit(workers):
    ref = make_model(dropout=True)
    h_ref = ref.fit(X, Y, batch_size=32, epochs=3, shuffle=False, verbose=0)
    ds = Batches(32, workers=workers, max_queue_size=4)
    model = make_model(dropout=True)
    h = model.fit(ds, epochs=3, verbose=0)
    assert_same_weights(ref, model)  # the same batches, step seeds (dropout) and updates
    assert h.history == h_ref.history
    assert ds.epochs_ended == 3 and ds.num_batches == 32


def test_sample_weights_from_batches_and_per_batch_callbacks():
    w = np.linspace(0.1, 2.0, len(X)).astype(np.float32)
    ref = make_model()
    ref.fit(X, Y, sample_weight=w, batch_size=50, epochs=2, shuffle=False, verbose=0)

    class Count(Callback):
        def __init__(self):
            super().__init__()
            self.seen = []

        def on_train_batch_end(self, batch, logs=None):
            self.seen.append(batch)

    count = Count()
    model = make_model()
    model.fit(Batches(50, weights=w), epochs=2, verbose=0, callbacks=[count])
    assert_same_weights(ref, model)
    assert count.seen == list(range(20)) * 2


def test_generator_with_steps_per_epoch_equals_in_memory_fit():
    def forever():
        while True:
            for i in range(0, len(X), 40):
                yield X[i : i + 40], Y[i : i + 40]

    ref = make_model()
    ref.fit(X, Y, batch_size=40, epochs=3, shuffle=False, verbose=0)
    model = make_model()
    model.fit(forever(), steps_per_epoch=25, epochs=3, verbose=0)
    assert_same_weights(ref, model)


def test_generator_that_runs_out_stops_training_with_a_warning():
    gen = ((X[i : i + 100], Y[i : i + 100]) for i in range(0, len(X), 100))
    model = make_model()
    with pytest.warns(UserWarning, match="ran out of data"):
        history = model.fit(gen, epochs=3, verbose=0)
    assert len(history.history["loss"]) == 1


def test_evaluate_and_predict_on_streams_match_in_memory():
    model = make_model()
    model.fit(X, Y, epochs=2, verbose=0)
    np.testing.assert_array_equal(model.predict(Batches(32)), model.predict(X, batch_size=32))
    np.testing.assert_array_equal(model.predict(X[i : i + 32] for i in range(0, 1000, 32)), model.predict(X))
    loss, acc = model.evaluate(X, Y, batch_size=32, verbose=0)
    s_loss, s_acc = model.evaluate(Batches(32), verbose=0)
    assert s_loss == pytest.approx(loss, rel=1e-6) and s_acc == pytest.approx(acc)
    assert model.evaluate(Batches(32), steps=2, verbose=0)[0] == pytest.approx(
        model.evaluate(X[:64], Y[:64], batch_size=32, verbose=0)[0], rel=1e-6
    )


def test_validation_data_as_a_stream():
    model = make_model()
    history = model.fit(Batches(32), validation_data=Batches(100), epochs=2, verbose=0)
    ref = make_model()
    ref_history = ref.fit(
        X, Y, batch_size=32, shuffle=False, validation_data=(X, Y), validation_batch_size=100, epochs=2, verbose=0
    )
    np.testing.assert_allclose(history.history["val_loss"], ref_history.history["val_loss"], rtol=1e-6)


def test_inconsistent_batches_are_refused_naming_the_batch_and_both_shapes():
    def shapes():
        yield X[:32], Y[:32]
        yield X[32:64], Y[32:64]
        yield X[64:96, :4], Y[64:96]

    with pytest.raises(ValueError, match=r"batch 2 has x of \(32, 4\) .* but batch 0 had \(32, 5\)"):
        make_model().fit(shapes(), verbose=0)

    def dtypes():
        yield X[:32], Y[:32]
        yield X[:32].astype(str), Y[:32]

    with pytest.raises(
        ValueError, match=r"batch 1 has x of \(32, 5\) of dtype kind 'U' but batch 0 had \(32, 5\) of dtype kind 'f'"
    ):
        make_model().fit(dtypes(), verbose=0)

    def rows():
        yield X[:32], Y[:31]

    with pytest.raises(ValueError, match="batch 0 has 32 rows of x but 31 rows of y"):
        make_model().fit(rows(), verbose=0)
    with pytest.raises(ValueError, match="batch_size, y must not be given"):
        make_model().fit(Batches(), y=Y, batch_size=8)
    with pytest.raises(ValueError, match="workers must be a positive integer"):
        Batches(workers=0)


def write_parquet(directory, n_files, rows_per_file, row_group_size, seed=0, cols=5, regression=False):
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for f in range(n_files):
        x = rng.standard_normal(size=(cols, rows_per_file), dtype=np.float32)  # column-major: cheap columns
        y = x[:3].sum(axis=0) if regression else (x[0] - x[1] > 0).astype(np.float32)
        table = pa.table({**{f"f{j}": x[j] for j in range(cols)}, "target": y})
        pq.write_table(
            table,
            os.path.join(directory, f"part{f:02d}.parquet"),
            row_group_size=row_group_size,
            compression="none",
            use_dictionary=False,
            write_statistics=False,
        )
        xs.append(x.T)
        ys.append(y)
    return np.concatenate(xs), np.concatenate(ys)


def test_parquet_dataset_batches_cross_row_groups_and_files(tmp_path):
    Xp, Yp = write_parquet(tmp_path, 3, 333, 100)
    ds = ParquetDataset(tmp_path, label="target", batch_size=64)
    assert len(ds) == 16 and ds.num_rows == 999 and ds.feature_names == [f"f{j}" for j in range(5)]
    for i in (0, 5, 15, -1):  # random access, across groups (batch 5: rows 320..383 span 3 groups and 2 files)
        x, y = ds[i]
        rows = np.arange(999)[i * 64 : (i + 1) * 64] if i >= 0 else np.arange(960, 999)
        np.testing.assert_array_equal(x, Xp[rows])
        np.testing.assert_array_equal(y, Yp[rows])
    seq = list(ds.iter_epoch())
    assert len(seq) == 16
    np.testing.assert_array_equal(np.concatenate([b[0] for b in seq]), Xp)
    ref = make_model()
    ref.fit(Xp, Yp, batch_size=64, epochs=2, shuffle=False, verbose=0)
    model = make_model()
    model.fit(ds, epochs=2, verbose=0)
    assert_same_weights(ref, model)
    assert model.feature_names == ds.feature_names
    np.testing.assert_array_equal(
        model.predict(ParquetDataset(tmp_path, columns=ds.columns, batch_size=32)), model.predict(Xp)
    )


def test_parquet_dataset_in_worker_processes(tmp_path):
    Xp, _ = write_parquet(tmp_path, 2, 200, 50)
    ds = ParquetDataset(tmp_path, label="target", batch_size=30, workers=2, use_multiprocessing=True)
    got = np.concatenate([b[0] for b in ds.iter_epoch()])
    np.testing.assert_array_equal(got, Xp)


def test_parquet_schema_problems_are_named(tmp_path):
    write_parquet(tmp_path, 1, 50, 50)
    other = tmp_path / "other"
    other.mkdir()
    pq.write_table(pa.table({"f0": np.arange(5, dtype=np.int64), "target": np.zeros(5)}), other / "a.parquet")
    with pytest.raises(ValueError, match=r"has no column\(s\) \['f1', 'f2', 'f3', 'f4'\]"):
        ParquetDataset([tmp_path / "part00.parquet", other / "a.parquet"], label="target")
    with pytest.raises(ValueError, match=r"column 'f0' is int64 in .*a.parquet' but float in"):
        ParquetDataset([tmp_path / "part00.parquet", other / "a.parquet"], columns=["f0"], label="target")
    pq.write_table(pa.table({"f0": ["a", "b"], "target": [0.0, 1.0]}), other / "b.parquet")
    with pytest.raises(ValueError, match="column 'f0' of .*b.parquet' is string, not a number"):
        ParquetDataset(other / "b.parquet", label="target")
    with pytest.raises(ValueError, match="neither a file nor a directory"):
        ParquetDataset(tmp_path / "missing.parquet")
    model = make_model()
    model.fit(ParquetDataset(tmp_path, label="target", batch_size=10), verbose=0)
    with pytest.raises(
        ValueError, match=r"trained on features \['f0', 'f1', 'f2', 'f3', 'f4'\] but the dataset has columns"
    ):
        model.predict(ParquetDataset(tmp_path, columns=["f4", "f3", "f2", "f1", "f0"]))


CHILD = textwrap.dedent(
    """
    import os, sys, threading, time
    import numpy as np
    import maasfin
    from maasfin.data import ParquetDataset

    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    ds = ParquetDataset(sys.argv[1], label="target", batch_size=64)
    maasfin.utils.set_random_seed(7)
    model = maasfin.Sequential([maasfin.Input(shape=(len(ds.columns),)), maasfin.layers.Dense(16, activation="relu"),
                                maasfin.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    ds[0]  # pyarrow loaded, the model built: the baseline is the process before any data streams
    base = peak = rss()
    stop = threading.Event()

    def watch():
        global peak
        while not stop.is_set():
            peak = max(peak, rss())
            time.sleep(0.002)

    watcher = threading.Thread(target=watch)
    watcher.start()
    model.fit(ds, epochs=1, verbose=0)
    stop.set()
    watcher.join()
    np.savez(sys.argv[2], *model.get_weights())
    print(peak - base)
    """
)


def test_parquet_training_larger_than_the_memory_cap(tmp_path):
    cap = 32_000_000  # bytes of RSS growth while streaming
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    rows, cols = 1_000_000, 32
    Xp, yp = write_parquet(data_dir, 4, rows // 4, 10_000, seed=3, cols=cols, regression=True)
    assert Xp.nbytes >= 4 * cap  # the features alone are 4x the cap
    out = tmp_path / "weights.npz"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(data_dir), str(out)], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr
    growth = int(done.stdout.split()[-1])
    assert growth < cap, f"RSS grew by {growth / 2**20:.1f} MB while streaming {Xp.nbytes / 2**20:.0f} MB"
    maasfin.utils.set_random_seed(7)
    ref = maasfin.Sequential(
        [maasfin.Input(shape=(cols,)), maasfin.layers.Dense(16, activation="relu"), maasfin.layers.Dense(1)]
    )
    ref.compile(optimizer="adam", loss="mse")
    ref.fit(Xp, yp, batch_size=64, epochs=1, shuffle=False, verbose=0)
    streamed = np.load(out)
    for k, w in enumerate(ref.get_weights()):
        np.testing.assert_array_equal(streamed[f"arr_{k}"], w)
