"""Cost of explaining one prediction: integrated gradients (64 steps) on the credit MLP,
against one prediction, and against the same algorithm written with PyTorch autograd on the same
weights (what captum's IntegratedGradients does: one batched forward/backward over the path).

    python benchmarks/bench_explain.py [--calls 2000]
"""
from __future__ import annotations

import argparse

import numpy as np
from _timing import median_us


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=2000)
    args = ap.parse_args()

    import maasfin as mf
    from maasfin import _core
    from maasfin.demo import build_credit_model, prepare_credit

    mf.utils.set_random_seed(0)
    x_train, x_test, y_train, _, _ = prepare_credit()
    model = build_credit_model(x_train.shape[1])
    model.fit(x_train, y_train, epochs=3, verbose=0)
    row = np.ascontiguousarray(x_test.to_numpy(np.float32)[:1])
    base = np.asarray([model._explain_baseline], np.float32)
    predict_us = median_us(lambda: model.predict(row), args.calls)
    core_us = median_us(lambda: _core.integrated_gradients(model._graph, row, base, 0, 64), args.calls)
    api_us = median_us(lambda: model.explain(row), args.calls // 4)
    rows = [("maasfin predict, 1 row", predict_us, 1.0),
            ("maasfin integrated gradients, 64 steps (core)", core_us, core_us / predict_us),
            ("maasfin model.explain(row) (DataFrame out)", api_us, api_us / predict_us)]
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        torch.set_num_threads(mf.config.get_num_threads())
        w1, b1, w2, b2 = (torch.from_numpy(a) for a in model.get_weights())

        def f(x):
            return torch.sigmoid(torch.relu(x @ w1 + b1) @ w2 + b2)

        t, w = (torch.tensor(a, dtype=torch.float32) for a in _core.gauss_legendre(64))
        xt, bt = torch.from_numpy(row), torch.from_numpy(base)

        def torch_ig():
            path = (bt + t[:, None] * (xt - bt)).requires_grad_(True)
            (g,) = torch.autograd.grad(f(path).sum(), path)
            return (xt - bt) * (w[:, None] * g).sum(0)

        np.testing.assert_allclose(torch_ig().detach().numpy(),
                                   _core.integrated_gradients(model._graph, row, base, 0, 64), rtol=1e-3, atol=1e-6)
        torch_us = median_us(torch_ig, args.calls)
        rows.append(("PyTorch autograd integrated gradients, 64 steps", torch_us, torch_us / predict_us))
    print(f"| measure | median µs | × one maasfin prediction |\n|---|---|---|")
    for name, us, ratio in rows:
        print(f"| {name} | {us:.1f} | {ratio:.1f}× |")


if __name__ == "__main__":
    main()
