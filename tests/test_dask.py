"""maasfin.dask on a real 2-worker distributed.LocalCluster: scoring, explanations, fit and searches."""

import os
import signal
import sys
import time

import numpy as np
import pytest

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")
pd = pytest.importorskip("pandas")
joblib = pytest.importorskip("joblib")

import cloudpickle  # noqa: E402
from sklearn.model_selection import GridSearchCV, StratifiedKFold  # noqa: E402

import maasfin  # noqa: E402
import maasfin.dask as mdask  # noqa: E402
from maasfin.datasets import CREDIT_NUMERIC_COLUMNS, load_credit  # noqa: E402
from maasfin.wrappers import SKLearnClassifier  # noqa: E402

# The builders below travel to the workers by value (the workers need not import this file).
cloudpickle.register_pickle_by_value(sys.modules[__name__])

FEATURES = [f"c{i}" for i in range(8)]
# Uneven partitions (none a multiple of 32 rows) adding up to 1,000,000 rows.
SIZES = [150_001, 99_999, 125_000, 125_000, 100_003, 149_997, 125_000, 125_000]


def make_part(i):
    rng = np.random.default_rng(100 + i)
    start = sum(SIZES[:i])
    frame = pd.DataFrame(rng.standard_normal((SIZES[i], 8), dtype=np.float32), columns=FEATURES)
    frame.index = pd.RangeIndex(start, start + SIZES[i])
    return frame


@pytest.fixture(scope="module")
def client():
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c


@pytest.fixture(scope="module")
def frame():
    return pd.concat([make_part(i) for i in range(len(SIZES))])


@pytest.fixture(scope="module")
def model(frame):
    maasfin.utils.set_random_seed(0)
    m = maasfin.Sequential(
        [
            maasfin.Input(shape=(8,)),
            maasfin.layers.Dense(32, activation="tanh"),
            maasfin.layers.Dense(1, activation="sigmoid"),
        ]
    )
    m.compile(optimizer="adam", loss="binary_crossentropy")
    head = frame.iloc[:5000]
    m.fit(head, (head.c0 + head.c1 > 0).astype(np.float32), epochs=2, verbose=0)
    return m


def ddf_of_parts():
    meta = make_part(0).iloc[:0]
    return dd.from_map(make_part, range(len(SIZES)), meta=meta, divisions=None)


def test_predict_a_million_rows_bit_identical_to_model_predict(client, frame, model):
    scores = mdask.predict(model, ddf_of_parts()).compute()
    assert len(scores) == 1_000_000 and list(scores.columns) == ["score"]
    assert scores.index.equals(frame.index)  # every row once, in order
    np.testing.assert_array_equal(scores["score"].to_numpy(), model.predict(frame)[:, 0])


def test_a_worker_killed_mid_run_changes_nothing(client, frame, model):
    parts = mdask.predict(model, ddf_of_parts().repartition(npartitions=40)).to_delayed()
    futures = client.compute(parts)
    pids = client.run(os.getpid)
    deadline = time.time() + 60
    while sum(f.done() for f in futures) < 2 and time.time() < deadline:
        time.sleep(0.01)
    assert sum(f.done() for f in futures) < len(futures)  # killed while partitions remain
    victim = sorted(pids)[0]
    os.kill(pids[victim], signal.SIGKILL)
    result = pd.concat(client.gather(futures))
    assert result.index.equals(frame.index)  # no row lost, none scored twice
    np.testing.assert_array_equal(result["score"].to_numpy(), model.predict(frame)[:, 0])
    client.wait_for_workers(2, timeout=60)  # the nanny restarted the killed worker


def test_explain_matches_model_explain(client, frame, model):
    small = frame.iloc[:600]
    got = mdask.explain(model, dd.from_pandas(small, npartitions=3), steps=16).compute()
    expected = model.explain(small, steps=16)
    assert list(got.columns) == FEATURES and got.index.equals(small.index)
    # explain integrates in blocks of rows, whose last-bit rounding depends on the block's size
    np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), rtol=0, atol=1e-6)
    assert np.abs(expected.to_numpy()).max() > 0.1


def test_fit_streams_partitions_to_the_in_memory_weights(client, frame):
    data = frame.iloc[:20_000].copy()
    data["target"] = (data.c0 - data.c2 > 0).astype(np.float32)
    ddf = dd.from_pandas(data, npartitions=5)

    def fresh():
        maasfin.utils.set_random_seed(4)
        m = maasfin.Sequential(
            [
                maasfin.Input(shape=(8,)),
                maasfin.layers.Dense(8, activation="relu"),
                maasfin.layers.Dense(1, activation="sigmoid"),
            ]
        )
        m.compile(optimizer="adam", loss="binary_crossentropy")
        return m

    ref = fresh()
    ref.fit(data[FEATURES], data.target, batch_size=64, epochs=2, shuffle=False, verbose=0)
    m = fresh()
    history = mdask.fit(m, ddf, label="target", batch_size=64, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2
    for a, b in zip(ref.get_weights(), m.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert m.feature_names == FEATURES


def _exploding(i):
    raise RuntimeError("a partition was computed")


def test_schema_mismatch_is_refused_before_any_task_runs(client, model):
    meta = pd.DataFrame({c: np.zeros(0, np.float32) for c in FEATURES[:7] + ["other"]})
    ddf = dd.from_map(_exploding, range(3), meta=meta)
    with pytest.raises(ValueError, match=r"has no column\(s\) \['c7'\] that model .* needs"):
        mdask.predict(model, ddf)
    with pytest.raises(ValueError, match=r"has no column\(s\) \['c7'\]"):
        mdask.explain(model, ddf)
    with pytest.raises(ValueError, match=r"has no column\(s\) \['target'\]"):
        mdask.fit(model, ddf, label="target")
    text = meta.assign(c7=np.zeros(0, object).astype(str))
    with pytest.raises(ValueError, match="column 'c7' of the Dask DataFrame is"):
        mdask.predict(model, dd.from_map(_exploding, range(2), meta=text))
    with pytest.raises(ValueError, match="output_columns must be 1 distinct names"):
        mdask.predict(
            model, dd.from_map(_exploding, range(2), meta=meta.assign(c7=np.float32())), output_columns=["a", "b"]
        )


def build_credit(X, y, units=8):
    maasfin.utils.set_random_seed(0)
    model = maasfin.Sequential(
        [
            maasfin.Input(shape=(X.shape[1],)),
            maasfin.layers.Dense(units, activation="relu"),
            maasfin.layers.Dense(y.shape[1], activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    return model


def test_grid_search_under_joblib_dask_backend_finds_the_local_best(client):
    credit = load_credit().dropna()
    X = credit[CREDIT_NUMERIC_COLUMNS].to_numpy(np.float32)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    y = (credit["Status"] == "bad").astype(int).to_numpy()
    grid = {"model_kwargs": [{"units": 2}, {"units": 16}], "fit_kwargs": [{"epochs": 1}, {"epochs": 8}]}
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    local = GridSearchCV(SKLearnClassifier(build_credit), grid, cv=cv, scoring="roc_auc", n_jobs=1).fit(X, y)
    with joblib.parallel_backend("dask"):
        remote = GridSearchCV(SKLearnClassifier(build_credit), grid, cv=cv, scoring="roc_auc", n_jobs=-1).fit(X, y)
    assert remote.best_params_ == local.best_params_
    np.testing.assert_allclose(remote.cv_results_["mean_test_score"], local.cv_results_["mean_test_score"])
