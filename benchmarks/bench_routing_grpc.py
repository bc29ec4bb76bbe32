"""Shadow overhead and gRPC vs REST: one-row p50/p99 with and without a shadow version, and
requests/s of the Open Inference Protocol over gRPC (tritonclient.grpc) and over REST
(tritonclient.http, binary tensors) for 1-row and 1,000-row requests.

    PYTHONPATH=python python benchmarks/bench_routing_grpc.py [--seconds 5]

Each server is `maasfin serve` (one worker, one thread) in a subprocess; the client is one
sequential connection, so the numbers are latency-bound, not a saturation test. The two shadow
configurations alternate over rounds (the machine's load drifts) and the best round's p99 of each
is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np
import requests

import maasfin as mf
from maasfin.layers import Dense
from maasfin.models import Sequential


def _port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def _save(model, path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    model.save(path)


def _model(seed: int, d: int = 16):
    mf.utils.set_random_seed(seed)
    m = Sequential([Dense(64, activation="relu", input_dim=d), Dense(1, activation="sigmoid")])
    m.build((None, d))
    return m


class Server:
    def __init__(self, repo: str, *extra):
        self.port, self.grpc_port = _port(), _port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [sys.executable, "-m", "maasfin", "serve", repo, "--port", str(self.port), "--threads", "1"]
        self.argv = argv + ["--poll-seconds", "0", "--grpc-port", str(self.grpc_port), *extra]

    def __enter__(self):
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + "/v2/health/ready", timeout=1).status_code == 200:
                    return self
            except requests.ConnectionError:
                time.sleep(0.1)
        raise TimeoutError("server did not start")

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(30)


def _one_row_latencies(url: str, seconds: float) -> np.ndarray:
    body = json.dumps({"model_name": "m", "input_data": [[0.1] * 16]})
    out = []
    with requests.Session() as s:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            t0 = time.perf_counter()
            r = s.post(url + "/v1/predict", data=body, headers={"X-Routing-Key": str(len(out))})
            out.append(time.perf_counter() - t0)
            assert r.status_code == 200, r.text
    return np.asarray(out[20:])


def shadow_overhead(work: str, seconds: float, rounds: int = 3) -> None:
    repo = os.path.join(work, "repo")
    for v in (1, 2):
        _save(_model(v), os.path.join(repo, "m", str(v), "model.maas"))
    labels = os.path.join(repo, "m", "labels.json")
    best = {}
    for _ in range(rounds):
        for name, policy in (("no shadow", {"split": {"1": 100}}), ("shadow", {"split": {"1": 100}, "shadow": [2]})):
            with open(labels, "w") as f:
                json.dump({"routing": policy}, f)
            with Server(repo) as srv:
                lat = _one_row_latencies(srv.url, seconds)
            p50, p99 = np.percentile(lat, 50) * 1e3, np.percentile(lat, 99) * 1e3
            if name not in best or p99 < best[name][1]:
                best[name] = (p50, p99, len(lat))
    for name, (p50, p99, n) in best.items():
        print(f"one-row {name:9s}: p50 {p50:.3f} ms  p99 {p99:.3f} ms  ({n} requests, best of {rounds})")
    print(f"shadow p99 increase: {100 * (best['shadow'][1] / best['no shadow'][1] - 1):+.1f}%")


def grpc_vs_rest(work: str, seconds: float) -> None:
    import tritonclient.grpc as tg
    import tritonclient.http as th

    repo = os.path.join(work, "repo2")
    _save(_model(3), os.path.join(repo, "m", "1", "model.maas"))
    with Server(repo) as srv:
        clients = {
            "gRPC": (tg, tg.InferenceServerClient(f"127.0.0.1:{srv.grpc_port}")),
            "REST": (th, th.InferenceServerClient(f"127.0.0.1:{srv.port}")),
        }
        name = clients["REST"][1].get_model_metadata("m")["inputs"][0]["name"]
        for rows in (1, 1000):
            x = np.random.default_rng(0).standard_normal((rows, 16)).astype(np.float32)
            for proto, (mod, client) in clients.items():
                inp = mod.InferInput(name, list(x.shape), "FP32")
                if proto == "REST":
                    inp.set_data_from_numpy(x, binary_data=True)
                else:
                    inp.set_data_from_numpy(x)
                n, end = 0, time.perf_counter() + seconds
                t0 = time.perf_counter()
                while time.perf_counter() < end:
                    client.infer("m", [inp])
                    n += 1
                dt = time.perf_counter() - t0
                print(f"{proto:4s} {rows:5d}-row requests: {n / dt:8.1f} req/s  {n * rows / dt:10.0f} rows/s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as work:
        shadow_overhead(work, args.seconds)
        grpc_vs_rest(work, args.seconds)


if __name__ == "__main__":
    main()
