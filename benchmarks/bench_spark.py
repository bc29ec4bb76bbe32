"""maasfin.spark.predict vs a plain pandas UDF that loads the model per batch, on PySpark local[2].

Scores `--rows` rows of 30 features (Spark's seeded randn, generated in the job) with the wide MLP
(30-256-128-1) and writes to Spark's "noop" sink, so the time is generation + scoring. The
baseline is what a user writes without maasfin.spark: a scalar pandas UDF whose body loads the
model from the same .maas bytes for every Arrow batch and calls model.predict. Median of
`--repeats` alternating runs after a warm-up of each.

    python benchmarks/bench_spark.py [--rows 1000000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np
import pandas as pd

import maasfin
import maasfin.spark as msp

COLUMNS = [f"f{j}" for j in range(30)]


def model():
    maasfin.utils.set_random_seed(0)
    m = maasfin.Sequential(
        [
            maasfin.Input(shape=(30,)),
            maasfin.layers.Dense(256, activation="relu"),
            maasfin.layers.Dense(128, activation="relu"),
            maasfin.layers.Dense(1, activation="sigmoid"),
        ]
    )
    m.compile(optimizer="adam", loss="binary_crossentropy")
    x = pd.DataFrame(np.random.default_rng(0).standard_normal((2048, 30), dtype=np.float32), columns=COLUMNS)
    m.fit(x, (x.f0 > 0).astype(np.float32), epochs=1, verbose=0)
    return m


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    os.environ["PYSPARK_PYTHON"] = sys.executable
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.memory", "2g")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    m = model()
    raw = m.to_bytes(include_optimizer=False)
    frame = spark.range(0, args.rows, numPartitions=8).select(
        "id", *[F.randn(seed=j).cast("float").alias(c) for j, c in enumerate(COLUMNS)]
    )

    @F.pandas_udf("float")
    def per_batch(*cols):
        loaded = maasfin.from_bytes(raw)  # what a plain UDF does: load for every Arrow batch
        return pd.Series(loaded.predict(pd.concat(cols, axis=1, keys=COLUMNS))[:, 0])

    runs = {
        "maasfin.spark.predict (model broadcast once, cached per worker)": lambda: msp.predict(m, frame),
        "pandas UDF loading the model per batch": lambda: frame.withColumn("score", per_batch(*COLUMNS)),
        "generation only (no scoring)": lambda: frame,
    }
    for make in runs.values():
        make().write.format("noop").mode("overwrite").save()
    times = {k: [] for k in runs}
    for _ in range(args.repeats):
        for k, make in runs.items():
            t = time.perf_counter()
            make().write.format("noop").mode("overwrite").save()
            times[k].append(time.perf_counter() - t)
    print(
        f"# PySpark local[2], wide MLP 30-256-128-1, {args.rows:,} rows, median of {args.repeats}, "
        f"load {os.getloadavg()[0]:.2f}"
    )
    print("| scoring | rows/s |")
    print("|---|---:|")
    for k, ts in times.items():
        print(f"| {k} | {args.rows / statistics.median(ts):,.0f} |")
    spark.stop()


if __name__ == "__main__":
    main()
