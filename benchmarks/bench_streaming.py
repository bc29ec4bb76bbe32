"""Streaming fit throughput vs in-memory fit on the wide MLP (30-256-128-1).

Measures rows/s of one epoch (Adam, MSE, no shuffling) from: the in-memory array, a PyDataset
slicing that array, a generator of the same batches, and a ParquetDataset of the same rows
(files written once to a temporary directory, uncompressed and snappy). Alternates the sources
over `--repeats` rounds and reports the median, with the ratio to in-memory fit.

    python benchmarks/bench_streaming.py [--rows 200000] [--batch 256] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import maasfin
from maasfin.data import ParquetDataset
from maasfin.utils import PyDataset


def model():
    maasfin.utils.set_random_seed(0)
    m = maasfin.Sequential(
        [
            maasfin.Input(shape=(30,)),
            maasfin.layers.Dense(256, activation="relu"),
            maasfin.layers.Dense(128, activation="relu"),
            maasfin.layers.Dense(1),
        ]
    )
    m.compile(optimizer="adam", loss="mse")
    return m


class Slices(PyDataset):
    def __init__(self, x, y, batch):
        super().__init__()
        self.x, self.y, self.batch = x, y, batch

    def __len__(self):
        return -(-len(self.x) // self.batch)

    def __getitem__(self, i):
        s = slice(i * self.batch, (i + 1) * self.batch)
        return self.x[s], self.y[s]


def timed(fit_once) -> float:
    m = model()
    t = time.perf_counter()
    fit_once(m)
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.rows, 30), dtype=np.float32)
    y = x[:, :3].sum(axis=1).astype(np.float32)
    b = args.batch
    with tempfile.TemporaryDirectory() as tmp:
        for codec in ("none", "snappy"):
            os.mkdir(os.path.join(tmp, codec))
            table = pa.table({**{f"f{j}": x[:, j].copy() for j in range(30)}, "target": y})
            for f, part in enumerate(np.array_split(np.arange(args.rows), 4)):
                pq.write_table(
                    table.slice(part[0], len(part)),
                    os.path.join(tmp, codec, f"p{f}.parquet"),
                    row_group_size=50_000,
                    compression=codec,
                )

        def gen():
            for s in range(0, args.rows, b):
                yield x[s : s + b], y[s : s + b]

        sources = {
            "in-memory arrays": lambda m: m.fit(x, y, batch_size=b, shuffle=False, epochs=1, verbose=0),
            "PyDataset (slices)": lambda m: m.fit(Slices(x, y, b), epochs=1, verbose=0),
            "generator": lambda m: m.fit(gen(), epochs=1, verbose=0),
            "ParquetDataset (uncompressed)": lambda m: m.fit(
                ParquetDataset(os.path.join(tmp, "none"), label="target", batch_size=b), epochs=1, verbose=0
            ),
            "ParquetDataset (snappy)": lambda m: m.fit(
                ParquetDataset(os.path.join(tmp, "snappy"), label="target", batch_size=b), epochs=1, verbose=0
            ),
        }
        for fit_once in sources.values():  # warm-up: primitive caches, page cache
            timed(fit_once)
        times = {k: [] for k in sources}
        for _ in range(args.repeats):
            for k, fit_once in sources.items():
                times[k].append(timed(fit_once))
    base = args.rows / statistics.median(times["in-memory arrays"])
    print(
        f"# wide MLP 30-256-128-1, {args.rows:,} rows, batch {b}, median of {args.repeats}, "
        f"load {os.getloadavg()[0]:.2f}"
    )
    print("| source | rows/s | vs in-memory |")
    print("|---|---:|---:|")
    for k, ts in times.items():
        r = args.rows / statistics.median(ts)
        print(f"| {k} | {r:,.0f} | {r / base:.2f} |")


if __name__ == "__main__":
    main()
