"""maasfin vs PyTorch eager: one training step (forward, loss, backward, Adam) at batch 64 for
  - the classic CNN on 28x28x1 images: Conv2D(32, 3x3, relu) -> MaxPooling2D(2) -> Flatten ->
    Dense(10, softmax), categorical cross-entropy;
  - LSTM(128) on sequences of 30 steps x 8 features -> Dense(1), mean squared error;
  - a 2-head self-attention block on sequences of 64 steps x 32 features: MultiHeadAttention
    (num_heads=2, key_dim=16) -> GlobalAveragePooling1D -> Dense(1), mean squared error (PyTorch:
    nn.MultiheadAttention(32, 2), the same weights' shapes and math);
in the same run on the same machine. Prints ms per step (median of --repeats epochs of --steps
steps each) and the ratio PyTorch / maasfin (>1 means maasfin is faster). PyTorch gets its native
NCHW layout for the CNN. Timings on a shared machine are noisy: compare ratios, not absolute numbers.

    python benchmarks/bench_sequence.py [--steps 50] [--repeats 5] [--threads N] [--models cnn,lstm,attention]
                                        [--markdown]

Needs torch (pip install torch==2.13.0 or ".[bench]").
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np
from _timing import print_table

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


def attention_data(n, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 64, 32)).astype(np.float32)
    y = x[:, :32, 0].mean(1, keepdims=True) - x[:, 32:, 1].mean(1, keepdims=True)
    return x, y.astype(np.float32)


def maasfin_step_ms(kind, x, y, repeats):
    import maasfin as mf
    from maasfin.layers import (
        LSTM,
        Conv2D,
        Dense,
        Flatten,
        GlobalAveragePooling1D,
        Input,
        MaxPooling2D,
        MultiHeadAttention,
    )

    if kind == "attention":
        inp = Input(shape=(64, 32))
        h = MultiHeadAttention(num_heads=2, key_dim=16)(inp, inp)
        m = mf.Model(inp, Dense(1)(GlobalAveragePooling1D()(h)))
        m.compile(optimizer="adam", loss="mse")
    elif kind == "cnn":
        m = mf.Sequential(
            [
                Input(shape=(28, 28, 1)),
                Conv2D(32, (3, 3), activation="relu"),
                MaxPooling2D((2, 2)),
                Flatten(),
                Dense(10, activation="softmax"),
            ]
        )
        m.compile(optimizer="adam", loss="categorical_crossentropy")
    else:
        m = mf.Sequential([Input(shape=(30, 8)), LSTM(128), Dense(1)])
        m.compile(optimizer="adam", loss="mse")
    m.fit(x[: 4 * BATCH], y[: 4 * BATCH], batch_size=BATCH, epochs=1, verbose=0, shuffle=False)  # warm-up

    # Epochs are timed from inside one fit call: what fit does once per call (input checks, and
    # recording the explanation baseline and drift deciles of every input feature after the last
    # epoch) is not part of a training step.
    class EpochTimer(mf.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.times = []

        def on_epoch_begin(self, epoch, logs=None):
            self.t = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.times.append((time.perf_counter() - self.t) * 1e3 / (len(x) // BATCH))

    timer = EpochTimer()
    m.fit(x, y, batch_size=BATCH, epochs=repeats, verbose=0, shuffle=False, callbacks=[timer])
    return statistics.median(timer.times)


def torch_step_ms(kind, x, y, repeats):
    import torch

    if kind == "cnn":
        model = torch.nn.Sequential(
            torch.nn.Conv2d(1, 32, 3),
            torch.nn.ReLU(),
            torch.nn.MaxPool2d(2),
            torch.nn.Flatten(),
            torch.nn.Linear(13 * 13 * 32, 10),
        )
        xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
        yt = torch.from_numpy(y.argmax(1))
        loss_fn = torch.nn.CrossEntropyLoss()  # softmax + categorical cross-entropy, as the maasfin model
    elif kind == "attention":

        class Attn(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.mha = torch.nn.MultiheadAttention(32, 2, batch_first=True)
                self.head = torch.nn.Linear(32, 1)

            def forward(self, v):
                out, _ = self.mha(v, v, v, need_weights=False)
                return self.head(out.mean(1))

        model = Attn()
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        loss_fn = torch.nn.MSELoss()
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
            loss = loss_fn(model(xt[s : s + BATCH]), yt[s : s + BATCH])
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
    ap.add_argument("--models", default="cnn,lstm,attention", help="comma-separated subset of cnn,lstm,attention")
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
    models = (
        ("cnn", "CNN 28x28x1 (Conv2D 32 3x3, MaxPool 2, Dense 10)", cnn_data),
        ("lstm", "LSTM(128), 30 steps x 8 features, Dense 1", lstm_data),
        ("attention", "MultiHeadAttention(2 heads, key_dim 16), 64 steps x 32, pool, Dense 1", attention_data),
    )
    wanted = args.models.split(",")
    for kind, name, data in models:
        if kind not in wanted:
            continue
        x, y = data(n)
        ours, theirs = maasfin_step_ms(kind, x, y, args.repeats), torch_step_ms(kind, x, y, args.repeats)
        rows.append((name, f"{ours:.2f}", f"{theirs:.2f}", f"{theirs / ours:.2f}x"))

    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), maasfin {mf.__version__} (oneDNN {mf.config.onednn_version()}, "
        f"{mf.config.get_num_threads()} threads), batch {BATCH}, {args.steps} steps x {args.repeats} repeats, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    header = ("model (train step, batch 64)", "maasfin ms/step", "PyTorch eager ms/step", "speed-up")
    print_table(header, rows, args.markdown)


if __name__ == "__main__":
    main()
