"""Cost of the recurrent layers' Keras features against the plain layer, in the same run: one
training step (forward + backward through Trainer.compute_gradients, no optimizer) and one
predict, batch 64, 30 steps x 8 features, 64 units, for LSTM and GRU with
  - plain: no mask, no dropout (the path a fused kernel may replace);
  - mask: Masking in front, 20% of the steps padded (trailing);
  - dropout: dropout=0.2 (one input mask per batch);
  - recurrent_dropout: dropout=0.2, recurrent_dropout=0.2 (one mask per gate, Keras's implementation 1);
  - reset_before: GRU(reset_after=False) only.
Variants are timed in interleaved rounds; each round keeps the fastest of --calls calls (the
machine is shared, so the minimum is the stable estimate) and the table shows the median over
--repeats rounds, with the ratio to plain (>1 = slower).

    python benchmarks/bench_recurrent_features.py [--calls 20] [--repeats 5] [--markdown]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import call_times_us  # noqa: E402

import maasfin as mf  # noqa: E402
from maasfin.layers import GRU, LSTM, Dense, Input, Masking  # noqa: E402

VARIANTS = {
    "plain": ({}, False),
    "mask": ({}, True),
    "dropout": ({"dropout": 0.2}, False),
    "recurrent_dropout": ({"dropout": 0.2, "recurrent_dropout": 0.2}, False),
    "reset_before": ({"reset_after": False}, False),
}


def model(cls, kwargs, masked):
    layers = [Input(shape=(30, 8))] + ([Masking()] if masked else []) + [cls(64, **kwargs), Dense(1)]
    m = mf.Sequential(layers)
    m.compile("sgd", "mse")
    m.build()
    return m


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 30, 8)).astype(np.float32)
    x[:, 24:] = 0  # trailing padding (masked only where a Masking layer reads it)
    y = rng.standard_normal((64, 1)).astype(np.float32)
    cases = [(cls, name) for cls in (LSTM, GRU) for name in VARIANTS if name != "reset_before" or cls is GRU]
    runs = {}
    for cls, name in cases:
        kwargs, masked = VARIANTS[name]
        m = model(cls, kwargs, masked)
        t = m._get_trainer(y.shape)
        runs[(cls, name)] = (
            lambda t=t: t.compute_gradients([x], y, None, True, 1),
            lambda m=m: m.predict(x, verbose=0),
        )
    times = {c: ([], []) for c in cases}
    for _ in range(args.repeats):
        for c in cases:
            for k, fn in enumerate(runs[c]):
                times[c][k].append(call_times_us(fn, args.calls, 3)[0] / 1e3)
    rows = []
    for cls, name in cases:
        step, pred = (statistics.median(v) for v in times[(cls, name)])
        b_step, b_pred = (statistics.median(v) for v in times[(cls, "plain")])
        rows.append((cls.__name__, name, step, step / b_step, pred, pred / b_pred))
    if args.markdown:
        print("| layer | variant | train step ms | vs plain | predict ms | vs plain |")
        print("|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r[0]}(64) | {r[1]} | {r[2]:.2f} | {r[3]:.2f}x | {r[4]:.2f} | {r[5]:.2f}x |")
    else:
        for r in rows:
            print(f"{r[0]:5s} {r[1]:18s} train step {r[2]:7.2f} ms ({r[3]:.2f}x)  predict {r[4]:6.2f} ms ({r[5]:.2f}x)")


if __name__ == "__main__":
    main()
