"""One-row served throughput of saved estimators: `maasfin serve` vs MLServer 1.7 with its sklearn runtime
on the same fitted estimators (a HistGradientBoosting classifier and a logistic-regression pipeline,
credit data, 9 numeric features), the same load generator (bench_serving.py's) and the same machine.

    python benchmarks/bench_estimators_serving.py [--seconds 5] [--markdown] [--mlserver PATH/TO/mlserver]

MLServer runs from its own environment (it pins its own FastAPI/uvicorn): pass its `mlserver`
executable with --mlserver (e.g. a venv with `pip install "mlserver==1.7.*" "mlserver-sklearn==1.7.*"`
and the same scikit-learn); without it only maasfin's rows are measured. MLServer loads the
estimators from joblib files written here (that is its format; maasfin never reads them).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from bench_serving import Server, _free_port, _run_load, _wait_ready  # noqa: E402

import maasfin as mf  # noqa: E402
from maasfin.saving import save_estimator  # noqa: E402


def _models():
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    df = mf.datasets.load_credit()
    y = (df.pop("Status") == "bad").astype(int).to_numpy()
    x = df[mf.datasets.CREDIT_NUMERIC_COLUMNS].astype(np.float32)
    hgb = HistGradientBoostingClassifier(max_iter=100, random_state=0).fit(x, y)
    lr = Pipeline(
        [("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler()), ("clf", LogisticRegression())]
    ).fit(x, y)
    return x, {"hgb": hgb, "logistic": lr}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--mlserver", default=None, help="the mlserver executable of an MLServer 1.7 environment")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    args = parser.parse_args()
    x, models = _models()
    row = x.iloc[:1]
    record = {k: float(v) for k, v in row.iloc[0].items()}
    rows = []
    with tempfile.TemporaryDirectory() as work:
        repo = os.path.join(work, "repo")
        for name, est in models.items():
            os.makedirs(os.path.join(repo, name, "1"))
            save_estimator(est, os.path.join(repo, name, "1", "model.maas"), x)
        mls = os.path.join(work, "mlserver")
        if args.mlserver:
            import joblib

            for name, est in models.items():
                os.makedirs(os.path.join(mls, name))
                joblib.dump(est, os.path.join(mls, name, "model.joblib"))
                settings = {
                    "name": name,
                    "implementation": "mlserver_sklearn.SKLearnModel",
                    "parameters": {"uri": "./model.joblib", "version": "v1"},
                }
                with open(os.path.join(mls, name, "model-settings.json"), "w") as f:
                    json.dump(settings, f)
            with open(os.path.join(mls, "settings.json"), "w") as f:
                json.dump({"debug": False, "metrics_endpoint": None}, f)
        bodies = {}
        for name in models:
            bodies[("maasfin", name)] = json.dumps({"model_name": name, "input_data": [record]}).encode()
            bodies[("mlserver", name)] = json.dumps(
                {
                    "inputs": [
                        {
                            "name": "x",
                            "shape": [1, x.shape[1]],
                            "datatype": "FP32",
                            "data": row.to_numpy().ravel().tolist(),
                        }
                    ],
                    "outputs": [{"name": "predict_proba"}],
                }
            ).encode()
        servers = []
        port = _free_port()
        servers.append(("maasfin serve (1 worker)", ["maasfin", "serve", repo, "--port", str(port)], port, None))
        if args.mlserver:
            p2 = _free_port()
            env = {
                "MLSERVER_HTTP_PORT": str(p2),
                "MLSERVER_GRPC_PORT": str(_free_port()),
                "MLSERVER_PARALLEL_WORKERS": "0",
            }
            servers.append(("MLServer 1.7 sklearn runtime", [args.mlserver, "start", mls], p2, env))
        for label, argv, port, env in servers:
            kind = "maasfin" if label.startswith("maasfin") else "mlserver"
            for name in models:
                path = "/v1/predict" if kind == "maasfin" else f"/v2/models/{name}/infer"
                with Server(label, argv, port, path, env) as srv:
                    _wait_ready(srv, bodies[(kind, name)], timeout=120)
                    body_file = os.path.join(work, f"{kind}-{name}.json")
                    with open(body_file, "wb") as f:
                        f.write(bodies[(kind, name)])
                    for c in args.concurrency:
                        r = _run_load(port, path, body_file, c, args.seconds)
                        rows.append(
                            [
                                label,
                                name,
                                str(c),
                                f"{r['rps']:.0f}",
                                f"{r['p50_ms']:.2f}",
                                f"{r['p99_ms']:.2f}",
                                str(r["errors"]),
                            ]
                        )
    header = ["server", "model", "concurrency", "requests/s", "p50 ms", "p99 ms", "errors"]
    if args.markdown:
        print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
        for r in rows:
            print("| " + " | ".join(r) + " |")
    else:
        for r in [header, *rows]:
            print("  ".join(f"{c:>28}" if i == 0 else f"{c:>12}" for i, c in enumerate(r)))


if __name__ == "__main__":
    main()
