"""maasfin.dask.predict throughput on a distributed.LocalCluster with 1 and 2 workers.

Scores `--rows` rows of 30 features with the wide MLP (30-256-128-1) from a Dask DataFrame whose
partitions are generated on the workers (dd.from_map), so the measurement is scoring plus
returning the scores, not shipping the input from the client. Each worker has one thread, and the
core uses that one thread. Reports the median of `--repeats` runs after a warm-up run (which loads
the model on every worker), next to model.predict in this process (one thread).

    python benchmarks/bench_dask.py [--rows 2000000] [--partitions 16] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import dask.dataframe as dd
import distributed
import numpy as np
import pandas as pd

import maasfin
import maasfin.dask as mdask

COLUMNS = [f"f{j}" for j in range(30)]


def make_part(args):
    i, n = args
    rng = np.random.default_rng(i)
    return pd.DataFrame(rng.standard_normal((n, 30), dtype=np.float32), columns=COLUMNS)


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
    x = make_part((99, 2048))
    m.fit(x, (x.f0 > 0).astype(np.float32), epochs=1, verbose=0)
    return m


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--partitions", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    m = model()
    sizes = [len(a) for a in np.array_split(np.arange(args.rows), args.partitions)]
    parts = list(enumerate(sizes))
    meta = make_part((0, 0))
    rows = []
    for workers in (1, 2):
        with (
            distributed.LocalCluster(
                n_workers=workers, threads_per_worker=1, dashboard_address=None, silence_logs=40
            ) as cluster,
            distributed.Client(cluster),
        ):
            ddf = dd.from_map(make_part, parts, meta=meta)
            mdask.predict(m, ddf).compute()  # warm-up: workers import maasfin and load the model
            times = []
            for _ in range(args.repeats):
                t = time.perf_counter()
                mdask.predict(m, ddf).compute()
                times.append(time.perf_counter() - t)
            rows.append((f"maasfin.dask.predict, {workers} worker(s) x 1 thread", args.rows / statistics.median(times)))
    maasfin.config.set_num_threads(1)
    x = pd.concat([make_part(p) for p in parts], ignore_index=True)
    t = time.perf_counter()
    m.predict(x)
    rows.append(("model.predict in-process, 1 thread (data already in memory)", args.rows / (time.perf_counter() - t)))
    print(f"# wide MLP 30-256-128-1, {args.rows:,} rows, {args.partitions} partitions, load {os.getloadavg()[0]:.2f}")
    print("| scoring | rows/s |")
    print("|---|---:|")
    for name, r in rows:
        print(f"| {name} | {r:,.0f} |")


if __name__ == "__main__":
    main()
