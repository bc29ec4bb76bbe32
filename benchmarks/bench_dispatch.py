"""Where oneDNN starts to beat the reference (Eigen) kernels: times dense forward+backward for
a grid of (N, D_in, D_out) on both backends and prints the ratio. The automatic dispatch
threshold (`_core.onednn_min_macs()`, in multiply-adds N*D_in*D_out) should sit near the crossover.

    python benchmarks/bench_dispatch.py
"""

from __future__ import annotations

import time

import numpy as np

from maasfin import _core, _testing

SHAPES = [
    (1, 3, 32),
    (32, 3, 32),
    (1, 30, 256),
    (32, 30, 256),
    (64, 32, 64),
    (128, 32, 64),
    (256, 30, 64),
    (256, 30, 256),
    (256, 256, 128),
    (1024, 256, 128),
]


def bench(fn, reps):
    fn()
    t = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t) / reps * 1e6


def main():
    rng = np.random.default_rng(0)
    print(
        f"oneDNN {_core.onednn_version()}, threads {_core.num_threads()}, "
        f"automatic threshold {_core.onednn_min_macs():,} MACs"
    )
    print(
        f"{'N x D_in x D_out':>18} {'MACs':>10} {'ref fwd µs':>11} {'dnnl fwd µs':>12} {'ref bwd µs':>11} "
        f"{'dnnl bwd µs':>12} {'auto picks':>10}"
    )
    for n, k, d in SHAPES:
        x = rng.standard_normal((n, k), dtype=np.float32)
        w = rng.standard_normal((k, d), dtype=np.float32)
        b = rng.standard_normal(d, dtype=np.float32)
        dy = rng.standard_normal((n, d), dtype=np.float32)
        reps = max(20, min(20000, int(2e8 / (n * k * d + 1000))))
        row = []
        for backend in (_core.Backend.reference, _core.Backend.onednn):
            _core.set_backend(backend)
            row.append(bench(lambda: _testing.dense_fwd(x, w, b, "relu"), reps))
            row.append(bench(lambda: _testing.dense_bwd(x, w, dy), reps))
        _core.set_backend(_core.Backend.automatic)
        macs = n * k * d
        pick = "oneDNN" if macs >= _core.onednn_min_macs() else "reference"
        shape = f"{n}x{k}x{d}"
        print(f"{shape:>18} {macs:>10,} {row[0]:>11.2f} {row[2]:>12.2f} {row[1]:>11.2f} {row[3]:>12.2f} {pick:>10}")


if __name__ == "__main__":
    main()
