"""One-sample predict latency of the sequence/image models of bench_sequence.py (the same shapes),
maasfin `model.predict(x)` against PyTorch eager `model(torch.from_numpy(x))` under
inference_mode, median over repeated calls from Python, in one run.

    python benchmarks/bench_sequence_predict.py [--calls 2000] [--markdown]
"""

from __future__ import annotations

import argparse

import numpy as np
from _timing import median_us


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()

    import torch

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

    mf.utils.set_random_seed(0)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)

    cnn = mf.Sequential(
        [
            Input(shape=(28, 28, 1)),
            Conv2D(32, (3, 3), activation="relu"),
            MaxPooling2D((2, 2)),
            Flatten(),
            Dense(10, activation="softmax"),
        ]
    )
    lstm = mf.Sequential([Input(shape=(30, 8)), LSTM(128), Dense(1)])
    q = Input(shape=(64, 32))
    attn = mf.Model(q, Dense(1)(GlobalAveragePooling1D()(MultiHeadAttention(num_heads=2, key_dim=16)(q, q))))

    class TorchLSTM(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm, self.head = torch.nn.LSTM(8, 128, batch_first=True), torch.nn.Linear(128, 1)

        def forward(self, v):
            return self.head(self.lstm(v)[0][:, -1])

    class TorchAttn(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.mha, self.head = torch.nn.MultiheadAttention(32, 2, batch_first=True), torch.nn.Linear(32, 1)

        def forward(self, v):
            return self.head(self.mha(v, v, v, need_weights=False)[0].mean(1))

    torch_cnn = torch.nn.Sequential(
        torch.nn.Conv2d(1, 32, 3),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(13 * 13 * 32, 10),
        torch.nn.Softmax(-1),
    )
    cases = [
        ("CNN 28x28x1", cnn, torch_cnn, rng.normal(size=(1, 28, 28, 1)).astype(np.float32), (0, 3, 1, 2)),
        ("LSTM(128), 30 x 8", lstm, TorchLSTM(), rng.normal(size=(1, 30, 8)).astype(np.float32), None),
        ("MultiHeadAttention, 64 x 32", attn, TorchAttn(), rng.normal(size=(1, 64, 32)).astype(np.float32), None),
    ]
    rows = []
    for name, ours, theirs, x, perm in cases:
        theirs.eval()
        xt = np.ascontiguousarray(x.transpose(perm)) if perm else x

        def torch_call(model=theirs, xt=xt):
            with torch.inference_mode():
                return model(torch.from_numpy(xt)).numpy()

        a, b = median_us(lambda: ours.predict(x), args.calls), median_us(torch_call, args.calls)
        rows.append((name, f"{a:.1f}", f"{b:.1f}", f"{b / a:.2f}x"))
    print(
        f"# one-sample predict, median µs over {args.calls} calls; torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), maasfin {mf.__version__} ({mf.config.get_num_threads()} threads)"
    )
    print("| model | maasfin µs | PyTorch eager µs | speed-up |\n|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
