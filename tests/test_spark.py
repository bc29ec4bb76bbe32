"""maasfin.spark on PySpark local[2]: scores bit-identical to model.predict, explanations, fit, schema checks."""

import os
import sys

import numpy as np
import pytest

pyspark = pytest.importorskip("pyspark")
pytest.importorskip("pyarrow")

import maasfin  # noqa: E402
import maasfin.spark as msp  # noqa: E402

# PySpark 4.x warns about pandas 3 and calls a pandas API deprecated in 3.0; neither is maasfin's.
pytestmark = [
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]
FEATURES = [f"c{i}" for i in range(8)]


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    os.environ["PYSPARK_PYTHON"] = sys.executable  # the executors' Python workers run this interpreter
    session = (
        SparkSession.builder.master("local[2]")
        .appName("maasfin-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.driver.memory", "1g")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def portfolio(spark):
    """1,000,000 accounts: an id, 8 features (Spark's seeded rand: deterministic) and a segment."""
    from pyspark.sql import functions as F

    frame = spark.range(0, 1_000_000, numPartitions=6).select(
        F.col("id"),
        *[(F.randn(seed=10 + i) * (i + 1)).cast("float").alias(c) for i, c in enumerate(FEATURES)],
        (F.col("id") % 7).cast("string").alias("segment"),
    )
    return frame  # seeded rand: every recomputation gives the same values


@pytest.fixture(scope="module")
def model(portfolio):
    head = portfolio.limit(4000).toPandas()
    maasfin.utils.set_random_seed(0)
    m = maasfin.Sequential(
        [
            maasfin.Input(shape=(8,)),
            maasfin.layers.Dense(32, activation="tanh"),
            maasfin.layers.Dense(1, activation="sigmoid"),
        ]
    )
    m.compile(optimizer="adam", loss="binary_crossentropy")
    m.fit(head[FEATURES], (head.c0 + head.c1 > 0).astype(np.float32), epochs=2, verbose=0)
    return m


def test_predict_a_million_rows_equals_model_predict(portfolio, model):
    scored = msp.predict(model, portfolio)
    assert scored.columns == portfolio.columns + ["score"]  # every other column kept
    got = scored.select("id", "segment", "score").toPandas().sort_values("id")
    local = portfolio.select("id", *FEATURES).toPandas().sort_values("id")
    assert len(got) == 1_000_000 and got["id"].is_unique
    np.testing.assert_array_equal(got["id"].to_numpy(), local["id"].to_numpy())
    np.testing.assert_array_equal(got["segment"].to_numpy(), (local["id"] % 7).astype(str).to_numpy())
    np.testing.assert_array_equal(got["score"].to_numpy(), model.predict(local[FEATURES])[:, 0])


def test_explain_adds_attribution_and_reason_code_columns(spark, portfolio, model):
    small = portfolio.limit(300)
    model.set_reason_codes({"c0": ("R00", "first feature"), "c1": ("R01", "second feature")})
    got = msp.explain(model, small, steps=16, reason_codes=2).toPandas().sort_values("id")
    expected = model.explain(got[FEATURES], steps=16)
    assert got.columns.tolist() == small.columns + [f"attr_{c}" for c in FEATURES] + ["reason_1", "reason_2"]
    np.testing.assert_allclose(got[[f"attr_{c}" for c in FEATURES]].to_numpy(), expected.to_numpy(), rtol=0, atol=1e-6)
    reasons = model.reasons(got[FEATURES], top_k=2, steps=16)
    for row, (r1, r2) in zip(reasons, got[["reason_1", "reason_2"]].itertuples(index=False)):
        want = [r["code"] or r["feature"] for r in row] + [None] * (2 - len(row))
        assert [r1, r2] == want
    assert {"R00", "R01"} & set(got["reason_1"])


def test_fit_streams_partitions_to_the_in_memory_weights(spark, portfolio):
    from pyspark.sql import functions as F

    data = portfolio.limit(30_000).withColumn("target", (F.col("c0") - F.col("c2") > 0).cast("float")).cache()
    local = data.toPandas()  # the partitions' order is the order of toPandas and of the stream

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
    ref.fit(local[FEATURES], local.target, batch_size=64, epochs=2, shuffle=False, verbose=0)
    m = fresh()
    history = msp.fit(m, data, label="target", columns=FEATURES, batch_size=64, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2
    for a, b in zip(ref.get_weights(), m.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert m.feature_names == FEATURES


def test_schema_mismatch_is_refused_before_any_job_runs(spark, portfolio, model):
    sc = spark.sparkContext
    sc.setJobGroup("maasfin-schema-check", "must stay empty")
    try:
        with pytest.raises(ValueError, match=r"has no column\(s\) \['c7'\] that model .* needs"):
            msp.predict(model, portfolio.drop("c7"))
        with pytest.raises(ValueError, match="column 'c3' of the Spark DataFrame is string, not numeric"):
            msp.predict(model, portfolio.withColumn("c3", portfolio["c3"].cast("string")))
        with pytest.raises(ValueError, match=r"already has column\(s\) \['segment'\]"):
            msp.predict(model, portfolio, output_columns="segment")
        with pytest.raises(ValueError, match=r"has no column\(s\) \['target'\]"):
            msp.fit(model, portfolio, label="target")
        assert list(sc.statusTracker().getJobIdsForGroup("maasfin-schema-check")) == []
    finally:
        sc.setJobGroup("", "")


def test_several_outputs_become_named_columns(spark, portfolio):
    head = portfolio.limit(2000).toPandas()
    maasfin.utils.set_random_seed(1)
    m = maasfin.Sequential([maasfin.Input(shape=(8,)), maasfin.layers.Dense(3, activation="softmax")])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    m.fit(head[FEATURES], (head.id % 3).to_numpy(), epochs=1, verbose=0)
    got = msp.predict(m, portfolio.limit(2000), output_columns=["p_a", "p_b", "p_c"]).toPandas().sort_values("id")
    assert list(got.columns) == portfolio.columns + ["p_a", "p_b", "p_c"]
    np.testing.assert_array_equal(got[["p_a", "p_b", "p_c"]].to_numpy(), m.predict(got[FEATURES]))
