"""maasfin vs PyTorch eager on the MLPs credit teams train, in one run on one machine.

Measures, on 100,000 synthetic rows:
  - fit samples/s (one epoch of Adam + binary cross-entropy, shuffled) at batch 32 and 256,
  - one-row predict latency from Python (median and p99 over 10,000 calls),
  - batch predict rows/s,
for the tiny credit MLP (3 -> 32 -> 1) and a wide MLP (30 -> 256 -> 128 -> 1), and prints the
ratios (maasfin / PyTorch; >1 means maasfin is faster). Timings on a shared machine are noisy:
compare the ratios, not the absolute numbers.

    python benchmarks/bench_mlp.py [--rows 100000] [--calls 10000] [--threads N] [--markdown]

Needs torch (pip install torch==2.13.0 or ".[bench]").
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np
from _timing import call_times_us, print_table

MODELS = {"tiny 3-32-1": [3, 32, 1], "wide 30-256-128-1": [30, 256, 128, 1]}


def make_data(rows: int, d: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, d)).astype(np.float32)
    w = rng.standard_normal(d).astype(np.float32)
    y = (x @ w + 0.5 * rng.standard_normal(rows) > 0).astype(np.float32).reshape(-1, 1)
    return x, y


def maasfin_model(sizes, optimizer="adam"):
    import maasfin as mf
    from maasfin.layers import Dense

    layers = [Dense(sizes[1], activation="relu", input_dim=sizes[0])]
    layers += [Dense(u, activation="relu") for u in sizes[2:-1]]
    layers += [Dense(sizes[-1], activation="sigmoid")]
    m = mf.Sequential(layers)
    m.compile(optimizer=optimizer, loss="binary_crossentropy")
    m.build()
    return m


def torch_model(sizes):
    import torch

    mods = []
    for i in range(len(sizes) - 2):
        mods += [torch.nn.Linear(sizes[i], sizes[i + 1]), torch.nn.ReLU()]
    mods += [torch.nn.Linear(sizes[-2], sizes[-1]), torch.nn.Sigmoid()]
    return torch.nn.Sequential(*mods)


def fit_maasfin(sizes, x, y, batch, optimizer="adam"):
    m = maasfin_model(sizes, optimizer)
    m.fit(x[:2048], y[:2048], batch_size=batch, epochs=1, verbose=0)  # warm-up
    t = time.perf_counter()
    m.fit(x, y, batch_size=batch, epochs=1, verbose=0)
    return len(x) / (time.perf_counter() - t)


def fit_torch(sizes, x, y, batch, scheduled=False):
    import torch

    model = torch_model(sizes)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.96 ** (1 / 1000)) if scheduled else None
    loss_fn = torch.nn.BCELoss()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def epoch(n):
        perm = torch.randperm(n)
        for s in range(0, n, batch):
            idx = perm[s : s + batch]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xt[idx]), yt[idx])
            loss.backward()
            if scheduled:
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            if sched is not None:
                sched.step()

    epoch(2048)
    t = time.perf_counter()
    epoch(len(x))
    return len(x) / (time.perf_counter() - t)


def latency(fn, calls):
    times = call_times_us(fn, calls, warmup=1000)
    return statistics.median(times), times[int(0.99 * (len(times) - 1))]


def predict_latency(sizes, x, calls):
    import torch

    m = maasfin_model(sizes)
    row = np.ascontiguousarray(x[:1])
    ours = latency(lambda: m.predict(row), calls)
    tm = torch_model(sizes).eval()

    def torch_call():
        with torch.inference_mode():
            return tm(torch.from_numpy(row)).numpy()

    theirs = latency(torch_call, calls)
    return ours, theirs


def batch_predict(sizes, x, batch=4096, repeats=3):
    import torch

    m = maasfin_model(sizes)
    tm = torch_model(sizes).eval()
    m.predict(x[:batch], batch_size=batch)

    def ours():
        return m.predict(x, batch_size=batch)

    def theirs():
        with torch.inference_mode():
            xt = torch.from_numpy(x)
            return torch.cat([tm(xt[s : s + batch]) for s in range(0, len(x), batch)]).numpy()

    best = {}
    for name, fn in (("maasfin", ours), ("torch", theirs)):
        fn()
        ts = []
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t)
        best[name] = len(x) / min(ts)
    return best["maasfin"], best["torch"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--calls", type=int, default=10_000)
    ap.add_argument("--threads", type=int, default=0, help="threads for both libraries (0: their defaults)")
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()

    import torch

    import maasfin as mf

    if args.threads:
        torch.set_num_threads(args.threads)
        mf.config.set_num_threads(args.threads)
    mf.utils.set_random_seed(0)
    torch.manual_seed(0)
    rows = []
    for name, sizes in MODELS.items():
        x, y = make_data(args.rows, sizes[0])
        for batch in (32, 256):
            a, b = fit_maasfin(sizes, x, y, batch), fit_torch(sizes, x, y, batch)
            rows.append((name, f"fit samples/s, batch {batch}", f"{a:,.0f}", f"{b:,.0f}", f"{a / b:.2f}x"))
        (om, op), (tm_, tp) = predict_latency(sizes, x, args.calls)
        rows.append((name, "predict 1 row, median µs", f"{om:.2f}", f"{tm_:.2f}", f"{tm_ / om:.2f}x"))
        rows.append((name, "predict 1 row, p99 µs", f"{op:.2f}", f"{tp:.2f}", f"{tp / op:.2f}x"))
        a, b = batch_predict(sizes, x)
        rows.append((name, "batch predict rows/s (batch 4096)", f"{a:,.0f}", f"{b:,.0f}", f"{a / b:.2f}x"))
        if len(sizes) > 3:
            # The training-toolkit overhead: a per-step schedule and gradient clipping.
            sched = mf.optimizers.Adam(
                learning_rate=mf.optimizers.schedules.ExponentialDecay(1e-3, 1000, 0.96), global_clipnorm=1.0
            )
            plain = fit_maasfin(sizes, x, y, 256)
            a, b = fit_maasfin(sizes, x, y, 256, sched), fit_torch(sizes, x, y, 256, scheduled=True)
            rows.append(
                (
                    name,
                    "fit samples/s, batch 256, Adam + schedule + clipping",
                    f"{a:,.0f}",
                    f"{b:,.0f}",
                    f"{a / b:.2f}x",
                )
            )
            rows.append(
                (
                    name,
                    "  cost of schedule + clipping vs plain Adam (maasfin)",
                    f"{100 * (plain / a - 1):+.1f}%",
                    "",
                    "",
                )
            )

    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), maasfin {mf.__version__} (oneDNN {mf.config.onednn_version()}, "
        f"{mf.config.get_num_threads()} threads), rows={args.rows}, calls={args.calls}"
    )
    header = ("model", "measure", "maasfin", "PyTorch eager", "speed-up")
    print_table(header, rows, args.markdown)


if __name__ == "__main__":
    main()
