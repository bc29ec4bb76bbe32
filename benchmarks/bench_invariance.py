"""Batch-invariant inference: its cost, and default-argument predict against explicit batch sizes and
ONNX Runtime, on the wide MLP (30-256-128-1, relu, sigmoid output).

    python benchmarks/bench_invariance.py [--rows 65536] [--threads 2] [--markdown]

Measured in one run, alternating: one-row predict latency (median of many calls) and batch throughput
with the batch-invariant kernels (the default) and with the training kernels (`set_batch_invariant(False)`,
oneDNN above its size threshold); `model.predict(X)` with default arguments (the automatic tile) against
its best explicit batch size; ONNX Runtime on maasfin's own ONNX export, same threads.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _timing import median_us, print_table  # noqa: E402

import maasfin as mf  # noqa: E402
from maasfin import _testing  # noqa: E402
from maasfin.layers import Dense, Input  # noqa: E402
from maasfin.models import Sequential  # noqa: E402


def wide_mlp():
    mf.utils.set_random_seed(0)
    model = Sequential(
        [Input((30,)), Dense(256, activation="relu"), Dense(128, activation="relu"), Dense(1, activation="sigmoid")]
    )
    model.build()
    return model


def best_seconds(fn, repeats: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=65536)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    mf.config.set_num_threads(args.threads)
    model = wide_mlp()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.rows, 30)).astype(np.float32)
    one = x[:1].copy()
    b4096 = x[:4096].copy()

    rows = []
    for invariant in (True, False, True, False):  # alternating, to cancel drift of the machine's load
        _testing.set_batch_invariant(invariant)
        lat = median_us(lambda: model.predict(one), 20000, 2000)
        thr = 4096 / best_seconds(lambda: model.predict(b4096, batch_size=4096), args.repeats)
        rows.append(("batch-invariant" if invariant else "training kernels", lat, thr))
    _testing.set_batch_invariant(True)
    table = []
    for name in ("batch-invariant", "training kernels"):
        lats = [r[1] for r in rows if r[0] == name]
        thrs = [r[2] for r in rows if r[0] == name]
        table.append([name, f"{min(lats):.2f}", f"{max(thrs) / 1e6:.2f}"])
    print(f"wide MLP 30-256-128-1, {args.threads} threads")
    print_table(["inference kernels", "one-row predict (us, median)", "batch 4,096 (M rows/s)"], table, args.markdown)

    default = args.rows / best_seconds(lambda: model.predict(x), args.repeats)
    explicit = {
        bs: args.rows / best_seconds(lambda: model.predict(x, batch_size=bs), args.repeats)
        for bs in (32, 256, 1024, 4096, 16384)
    }
    best_bs = max(explicit, key=explicit.get)
    print()
    out = [["model.predict(X) (default arguments)", f"{default / 1e6:.2f}"]]
    out += [[f"model.predict(X, batch_size={bs})", f"{v / 1e6:.2f}"] for bs, v in explicit.items()]
    try:
        import onnxruntime as ort

        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "wide.onnx")
            model.export(path, format="onnx")
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = args.threads
            opts.inter_op_num_threads = 1
            sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
            name = sess.get_inputs()[0].name
            ort_rows = args.rows / best_seconds(lambda: sess.run(None, {name: x}), args.repeats)
            ort_one = median_us(lambda: sess.run(None, {name: one}), 20000, 2000)
        out.append(["ONNX Runtime, same export, all rows in one run", f"{ort_rows / 1e6:.2f}"])
    except ImportError:
        ort_rows = ort_one = None
    print_table([f"{args.rows:,} rows", "M rows/s"], out, args.markdown)
    print()
    print(f"default / best explicit (batch_size={best_bs}): {default / explicit[best_bs]:.2f}x")
    if ort_rows:
        print(f"default / ONNX Runtime: {default / ort_rows:.2f}x")
        ours = min(r[1] for r in rows if r[0] == "batch-invariant")
        print(f"one-row predict: maasfin {ours:.2f} us, ONNX Runtime {ort_one:.2f} us")


if __name__ == "__main__":
    main()
