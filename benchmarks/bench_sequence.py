"""maasfin vs PyTorch eager: one training step (forward, loss, backward, Adam) at batch 64 for
  - the classic CNN on 28x28x1 images: Conv2D(32, 3x3, relu) -> MaxPooling2D(2) -> Flatten ->
    Dense(10, softmax), categorical cross-entropy;
  - LSTM(128) on sequences of 30 steps x 8 features -> Dense(1), mean squared error;
in the same run on the same machine. Prints ms per step (median of --repeats epochs of --steps
steps each) and the ratio PyTorch / maasfin (>1 means maasfin is faster). PyTorch gets its native
NCHW layout for the CNN. Timings on a shared machine are noisy: compare ratios, not absolute numbers.

    python benchmarks/bench_sequence.py [--steps 50] [--repeats 5] [--threads N] [--markdown]

Needs torch (pip install torch==2.13.0 or ".[bench]").
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np

BATCH = 64


def cnn_data(n, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 28, 28, 1), dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, n)]
    return x, y


def lstm_data(n, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 30, 8)).astype(np.float32)
    y = x[:, :, 0].sum(1, keepdims=True).astype(np.float32) / 5
    return x, y


def maasfin_step_ms(kind, x, y, repeats):
    import maasfin as mf
    from maasfin.layers import LSTM, Conv2D, Dense, Flatten, Input, MaxPooling2D

    if kind == "cnn":
        m = mf.Sequential([Input(shape=(28, 28, 1)), Conv2D(32, (3, 3), activation="relu"), MaxPooling2D((2, 2)),
                           Flatten(), Dense(10, activation="softmax")])
        m.compile(optimizer="adam", loss="categorical_crossentropy")
    else:
        m = mf.Sequential([Input(shape=(30, 8)), LSTM(128), Dense(1)])
        m.compile(optimizer="adam", loss="mse")
    m.fit(x[:4 * BATCH], y[:4 * BATCH], batch_size=BATCH, epochs=1, verbose=0, shuffle=False)  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        m.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, shuffle=False)
        times.append((time.perf_counter() - t) * 1e3 / (len(x) // BATCH))
    return statistics.median(times)


def torch_step_ms(kind, x, y, repeats):
    import torch

    if kind == "cnn":
        model = torch.nn.Sequential(torch.nn.Conv2d(1, 32, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                                    torch.nn.Flatten(), torch.nn.Linear(13 * 13 * 32, 10))
        xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
        yt = torch.from_numpy(y.argmax(1))
        loss_fn = torch.nn.CrossEntropyLoss()  # softmax + categorical cross-entropy, as the maasfin model
    else:
        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.lstm = torch.nn.LSTM(8, 128, batch_first=True)
                self.head = torch.nn.Linear(128, 1)

            def forward(self, v):
                out, _ = self.lstm(v)
                return self.head(out[:, -1])

        model = Net()
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        loss_fn = torch.nn.MSELoss()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)

    def epoch(n):
        for s in range(0, n - BATCH + 1, BATCH):
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xt[s:s + BATCH]), yt[s:s + BATCH])
            loss.backward()
            opt.step()

    epoch(4 * BATCH)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        epoch(len(x))
        times.append((time.perf_counter() - t) * 1e3 / (len(x) // BATCH))
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=50, help="training steps per timed epoch")
    ap.add_argument("--repeats", type=int, default=5)
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
    n = args.steps * BATCH
    rows = []
    for kind, name, data in (("cnn", "CNN 28x28x1 (Conv2D 32 3x3, MaxPool 2, Dense 10)", cnn_data),
                             ("lstm", "LSTM(128), 30 steps x 8 features, Dense 1", lstm_data)):
        x, y = data(n)
        ours, theirs = maasfin_step_ms(kind, x, y, args.repeats), torch_step_ms(kind, x, y, args.repeats)
        rows.append((name, f"{ours:.2f}", f"{theirs:.2f}", f"{theirs / ours:.2f}x"))

    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), maasfin {mf.__version__} (oneDNN {mf.config.onednn_version()}, "
          f"{mf.config.get_num_threads()} threads), batch {BATCH}, {args.steps} steps x {args.repeats} repeats, "
          f"load average {os.getloadavg()[0]:.2f}")
    header = ("model (train step, batch 64)", "maasfin ms/step", "PyTorch eager ms/step", "speed-up")
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for r in rows:
            print("| " + " | ".join(r) + " |")
    else:
        widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
        for r in [header] + rows:
            print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)))


if __name__ == "__main__":
    main()
