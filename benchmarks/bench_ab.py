"""maasfin alone, for A/B runs between two builds: one-row predict latency and one-epoch fit throughput.

Run it with each build's Python in alternation, so a change in the machine's load hits both alike:

    for i in 1 2 3; do old/bin/python benchmarks/bench_ab.py old; .venv/bin/python benchmarks/bench_ab.py new; done
"""

import sys
import time

import numpy as np

from maasfin.layers import Dense
from maasfin.models import Sequential


def _mlp(dims):
    hidden = [Dense(d, activation="relu") for d in dims[2:-1]]
    m = Sequential([Dense(dims[1], activation="relu", input_dim=dims[0]), *hidden, Dense(1, activation="sigmoid")])
    m.build((None, dims[0]))
    return m


def predict_median_us(dims, calls=20000) -> float:
    m, x = _mlp(dims), np.ones((1, dims[0]), np.float32)
    for _ in range(2000):
        m.predict(x)
    times = []
    for _ in range(calls):
        t = time.perf_counter_ns()
        m.predict(x)
        times.append(time.perf_counter_ns() - t)
    return float(np.median(times)) / 1000


def fit_samples_per_s(dims, batch_size, rows=100_000) -> float:
    rng = np.random.default_rng(0)
    x = rng.random((rows, dims[0]), dtype=np.float32)
    y = (x[:, :1] > 0.5).astype(np.float32)
    m = _mlp(dims)
    m.compile(optimizer="adam", loss="binary_crossentropy")
    m.fit(x, y, batch_size=batch_size, epochs=1, verbose=0)
    best = min(_timed(lambda: m.fit(x, y, batch_size=batch_size, epochs=1, verbose=0)) for _ in range(3))
    return rows / best


def _timed(f) -> float:
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


if __name__ == "__main__":
    label = sys.argv[1] if len(sys.argv) > 1 else "maasfin"
    tiny, wide = [3, 32, 1], [30, 256, 128, 1]
    print(
        f"{label}: one-row predict median µs tiny {predict_median_us(tiny):.2f}, wide {predict_median_us(wide):.2f}; "
        f"fit samples/s tiny b32 {fit_samples_per_s(tiny, 32):,.0f}, wide b256 {fit_samples_per_s(wide, 256):,.0f}, "
        f"wide b32 {fit_samples_per_s(wide, 32):,.0f}"
    )
