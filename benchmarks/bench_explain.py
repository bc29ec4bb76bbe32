"""Cost of explaining one prediction: integrated gradients (64 steps) on the credit MLP,
against one prediction, and against the same algorithm written with PyTorch autograd on the same
weights (what captum's IntegratedGradients does: one batched forward/backward over the path);
then the same for a FeatureSpace model explained per raw column from a raw record.

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
    rows = [
        ("maasfin predict, 1 row", predict_us, 1.0),
        ("maasfin integrated gradients, 64 steps (core)", core_us, core_us / predict_us),
        ("maasfin model.explain(row) (DataFrame out)", api_us, api_us / predict_us),
    ]
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

        np.testing.assert_allclose(
            torch_ig().detach().numpy(),
            _core.integrated_gradients(model._graph, row, base, 0, 64),
            rtol=1e-3,
            atol=1e-6,
        )
        torch_us = median_us(torch_ig, args.calls)
        rows.append(("PyTorch autograd integrated gradients, 64 steps", torch_us, torch_us / predict_us))
    print("| measure | median µs | × one maasfin prediction |\n|---|---|---|")
    for name, us, ratio in rows:
        print(f"| {name} | {us:.1f} | {ratio:.1f}× |")
    featurespace(args.calls)


def featurespace(calls: int):
    """The same question for a FeatureSpace model on the raw columns (13 inputs, one-hot lookups,
    imputation): integrated gradients in the encoded space, summed per raw column."""
    import maasfin as mf
    from maasfin import _core
    from maasfin.layers import Dense
    from maasfin.utils import FeatureSpace

    mf.utils.set_random_seed(0)
    raw = mf.datasets.load_credit()
    y = (raw.pop("Status") == "bad").to_numpy(np.float32)
    fs = FeatureSpace.from_dataframe(raw)
    fs.adapt(raw)
    model = mf.Model(
        fs.get_inputs(), Dense(1, activation="sigmoid")(Dense(32, activation="relu")(fs.get_encoded_features()))
    )
    model.compile("adam", "binary_crossentropy")
    model.fit(raw, y, epochs=3, verbose=0)
    record = [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in raw.iloc[0].items()}]
    xs = model._prepare_x(record)
    g = model._graph
    z = _core.encode(g, xs)
    base = np.asarray([model._explain_baseline], np.float32)
    core_predict = median_us(lambda: g.predict(xs, 32), calls)
    api_predict = median_us(lambda: model.predict(record), calls // 4)
    core_ig = median_us(lambda: _core.integrated_gradients_encoded(g, _core.encode(g, xs), base, 0, 64), calls)
    api_ig = median_us(lambda: model.explain(record), calls // 4)
    print(f"\nFeatureSpace credit model ({len(xs)} raw inputs, {z.shape[1]} encoded values), one raw record:\n")
    print("| measure | median µs | × one core prediction |\n|---|---|---|")
    for name, us in [
        ("core predict (encoded arrays)", core_predict),
        ("model.predict(record) (record conversion included)", api_predict),
        ("integrated gradients, 64 steps, encoded space (core)", core_ig),
        ("model.explain(record) (DataFrame per raw column)", api_ig),
    ]:
        print(f"| {name} | {us:.1f} | {us / core_predict:.1f}× |")


if __name__ == "__main__":
    main()
