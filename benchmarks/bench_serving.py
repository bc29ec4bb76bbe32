"""Serving throughput and latency: `maasfin serve` against the common deployment pattern, a plain
Flask app that calls model.predict per request, in the same run, on loopback.

    python benchmarks/bench_serving.py [--seconds 5] [--markdown]
    python benchmarks/bench_serving.py --alternate 4 --seconds 3   # the concurrency-16 ratios only

Needs `pip install ".[bench]"`: torch, Flask, gunicorn and Keras 3 (the bench extra's peers, never
maasfin dependencies; or `pip install keras` into an environment that has the rest). The script
runs Keras on the torch backend (KERAS_BACKEND=torch); without Keras the Keras columns are left out
and the script says so.

Workloads (JSON records keyed by feature name, the same bytes to every server):
- one-row predictions at concurrency 1, 16 and 64: requests/s, p50 and p99 latency;
- 1,000-row requests at concurrency 4: rows/s;
- one-row requests in an open loop at 500 requests/s: latency without coordinated omission;
- maasfin only: the same 1,000 rows as Open Inference Protocol v2 binary tensors (no JSON numbers).

Servers (each its own process; the load generator is a third process, so on a 2-core machine the
numbers include the contention of client and server for the cores):
- maasfin serve, 1 worker and 2 workers;
- Flask + Keras model.predict per request: the pattern in production today. The same 20-64-32-1
  architecture with the same weights as the maasfin model, as a Keras 3 model (torch backend)
  saved to model.keras and loaded once at start-up; the view builds a DataFrame from the records
  and calls `model.predict(x, verbose=0)`;
- Flask + maasfin predict per request: the same Flask view calling maasfin's model.predict (the
  like-for-like baseline: only the serving layer differs).
Each Flask app runs on gunicorn (gthread, 16 threads per worker) if installed, else Werkzeug's
threaded server: 1 worker and (gunicorn only) 2 workers.

The load generator is a small asyncio HTTP/1.1 keep-alive client on raw sockets (hand-written:
a Python HTTP library would spend more CPU per request than the servers under test).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time

import numpy as np

N_FEATURES = 20

FLASK_APP = textwrap.dedent("""
    import os
    import pandas as pd
    from flask import Flask, jsonify, request
    import maasfin as mf

    model = mf.models.load_model(os.environ["BENCH_MODEL"], compile=False)
    app = Flask(__name__)

    @app.post("/predict")
    def predict():
        data = request.get_json()
        records = data["input_data"]
        x = pd.DataFrame(records if isinstance(records, list) else [records])
        return jsonify({"predictions": model.predict(x).tolist()})
""")

KERAS_APP = textwrap.dedent("""
    import os
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras
    import pandas as pd
    from flask import Flask, jsonify, request

    model = keras.saving.load_model(os.environ["BENCH_KERAS_MODEL"])
    app = Flask(__name__)

    @app.post("/predict")
    def predict():
        data = request.get_json()
        records = data["input_data"]
        x = pd.DataFrame(records if isinstance(records, list) else [records])
        return jsonify({"predictions": model.predict(x.to_numpy(dtype="float32"), verbose=0).tolist()})
""")

# Run in a subprocess (KERAS_BACKEND=torch): the maasfin model's weights into the same Keras
# architecture, saved as model.keras, and the largest difference of their predictions.
KERAS_EXPORT = textwrap.dedent("""
    import os, sys
    os.environ["KERAS_BACKEND"] = "torch"
    import numpy as np
    import keras
    weights, out = sys.argv[1], sys.argv[2]
    w = np.load(weights)
    model = keras.Sequential([keras.Input(shape=(w["x"].shape[1],)), keras.layers.Dense(64, activation="relu"),
                              keras.layers.Dense(32, activation="relu"), keras.layers.Dense(1, activation="sigmoid")])
    model.set_weights([w[f"w{i}"] for i in range(6)])
    model.save(out)
    y = keras.saving.load_model(out).predict(w["x"], verbose=0)
    print(float(np.abs(y - w["y"]).max()))
""")


# -- the load generator (runs in its own process) --------------------------------------------------
async def _response(reader) -> tuple[int, bool]:
    """Reads one response: (status, whether the server closes the connection after it)."""
    head = await reader.readuntil(b"\r\n\r\n")
    length, close = None, False
    for line in head.split(b"\r\n"):
        name = line[:15].lower()
        if name == b"content-length:":
            length = int(line[15:])
        elif name[:11] == b"connection:" and line[11:].strip().lower() == b"close":
            close = True
    if length is None:
        raise RuntimeError("response without Content-Length")
    await reader.readexactly(length)
    return int(head[9:12]), close


async def _connection(host, port, request: bytes, deadline: float, latencies: list, errors: list):
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            writer.write(request)
            status, close = await _response(reader)
            if close:  # a server without keep-alive (Werkzeug's): a new connection per request
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
            latencies.append(time.perf_counter() - t0)
            if status != 200:
                errors.append(status)
    finally:
        writer.close()


async def _paced_connection(
    host, port, request: bytes, start: float, interval: float, count: int, latencies: list, errors: list
):
    """Open loop: request k is due at start + k * interval; its latency counts from that due time,
    so a slow server is charged for the queueing it causes (no coordinated omission)."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for k in range(count):
            due = start + k * interval
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            writer.write(request)
            status, close = await _response(reader)
            if close:
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
            latencies.append(time.perf_counter() - due)
            if status != 200:
                errors.append(status)
    finally:
        writer.close()


async def _paced_load(host, port, request: bytes, rate: float, seconds: float, connections: int = 16):
    latencies, errors = [], []
    per_conn = rate / connections
    count = int(per_conn * seconds)
    start = time.perf_counter() + 0.05
    t0 = time.perf_counter()
    await asyncio.gather(
        *[
            _paced_connection(host, port, request, start + i / rate, 1.0 / per_conn, count, latencies, errors)
            for i in range(connections)
        ]
    )
    elapsed = time.perf_counter() - t0
    lat = np.array(latencies)
    return {
        "requests": len(latencies),
        "errors": len(errors),
        "rps": len(latencies) / elapsed,
        "p50_ms": float(np.percentile(lat, 50) * 1e3),
        "p99_ms": float(np.percentile(lat, 99) * 1e3),
    }


async def _load(host, port, request: bytes, concurrency: int, seconds: float):
    latencies, errors = [], []
    deadline = time.perf_counter() + seconds
    t0 = time.perf_counter()
    await asyncio.gather(*[_connection(host, port, request, deadline, latencies, errors) for _ in range(concurrency)])
    elapsed = time.perf_counter() - t0
    lat = np.array(latencies)
    return {
        "requests": len(latencies),
        "errors": len(errors),
        "rps": len(latencies) / elapsed,
        "p50_ms": float(np.percentile(lat, 50) * 1e3),
        "p99_ms": float(np.percentile(lat, 99) * 1e3),
    }


def loadgen_main(args) -> None:
    body = open(args.body, "rb").read()
    extra = f"Inference-Header-Content-Length: {args.header_length}\r\n" if args.header_length else ""
    request = (
        f"POST {args.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{extra}"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    if args.rate:
        print(json.dumps(asyncio.run(_paced_load("127.0.0.1", args.port, request, args.rate, args.seconds))))
    else:
        print(json.dumps(asyncio.run(_load("127.0.0.1", args.port, request, args.concurrency, args.seconds))))


# -- servers ---------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(srv: Server, body: bytes, timeout: float = 60) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if srv.proc.poll() is not None:
            srv.output.seek(0)
            raise RuntimeError(f"server exited: {srv.output.read().decode()[-2000:]}")
        try:
            req = urllib.request.Request(
                f"http://127.0.0.1:{srv.port}{srv.path}", data=body, headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(req, timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.2)
    raise TimeoutError("server did not become ready")


class Server:
    def __init__(self, label: str, argv: list[str], port: int, path: str, env=None):
        self.label, self.argv, self.port, self.path, self.env = label, argv, port, path, env

    def __enter__(self):
        # A file, not a pipe: a server that logs every request (Werkzeug) would block once a pipe
        # that nobody reads during the measurements is full.
        self.output = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            self.argv, stdout=self.output, stderr=subprocess.STDOUT, env={**os.environ, **(self.env or {})}
        )
        return self

    def __exit__(self, *exc):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.output.close()


def _run_load(port, path, body_file, concurrency, seconds, header_length=0, rate=0.0) -> dict:
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--loadgen",
            "--port",
            str(port),
            "--path",
            path,
            "--body",
            body_file,
            "--concurrency",
            str(concurrency),
            "--seconds",
            str(seconds),
            "--header-length",
            str(header_length),
            "--rate",
            str(rate),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each measurement")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument(
        "--alternate",
        type=int,
        default=0,
        metavar="ROUNDS",
        help="instead of the table: one-row requests at concurrency 16 with every server up at "
        "once, measured in rotation ROUNDS times (so a change in the machine's load hits "
        "all alike); prints each server's median and the ratios",
    )
    parser.add_argument("--loadgen", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--body", help=argparse.SUPPRESS)
    parser.add_argument("--concurrency", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--header-length", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--rate", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.loadgen:
        loadgen_main(args)
        return

    import pandas as pd

    import maasfin as mf
    from maasfin.layers import Dense
    from maasfin.models import Sequential

    work = tempfile.mkdtemp(prefix="maasfin-bench-")
    try:
        mf.utils.set_random_seed(0)
        rng = np.random.default_rng(0)
        cols = [f"f{i}" for i in range(N_FEATURES)]
        df = pd.DataFrame(rng.normal(size=(4096, N_FEATURES)).astype(np.float32), columns=cols)
        y = (df["f0"] + df["f1"] * df["f2"] > 0).astype("float32")
        model = Sequential(
            [
                Dense(64, activation="relu", input_dim=N_FEATURES),
                Dense(32, activation="relu"),
                Dense(1, activation="sigmoid"),
            ]
        )
        model.compile(optimizer="adam", loss="binary_crossentropy")
        model.fit(df, y, epochs=1, verbose=0)
        os.makedirs(f"{work}/repo/credit/1")
        model_path = f"{work}/repo/credit/1/model.maas"
        model.save(model_path)
        with open(f"{work}/flask_app.py", "w") as f:
            f.write(FLASK_APP)
        bodies = {}
        for rows in (1, 1000):
            body = json.dumps({"model_name": "credit", "input_data": df.iloc[:rows].to_dict(orient="records")}).encode()
            bodies[rows] = f"{work}/body{rows}.json"
            with open(bodies[rows], "wb") as f:
                f.write(body)
        x = df.iloc[:1000].to_numpy(dtype="<f4")
        head = json.dumps(
            {
                "inputs": [
                    {
                        "name": "input_layer",
                        "shape": list(x.shape),
                        "datatype": "FP32",
                        "parameters": {"binary_data_size": x.nbytes},
                    }
                ],
                "parameters": {"binary_data_output": True},
            }
        ).encode()
        bodies["v2"] = f"{work}/body_v2.bin"
        with open(bodies["v2"], "wb") as f:
            f.write(head + x.tobytes())
        v2_header = len(head)

        servers = []
        for workers in (1, 2):
            port = _free_port()
            servers.append(
                Server(
                    f"maasfin serve, {workers} worker{'s' if workers > 1 else ''}",
                    [
                        sys.executable,
                        "-m",
                        "maasfin",
                        "serve",
                        f"{work}/repo",
                        "--port",
                        str(port),
                        "--workers",
                        str(workers),
                        "--log-level",
                        "warning",
                    ],
                    port,
                    "/v1/predict",
                )
            )
        flask_env = {"BENCH_MODEL": model_path, "PYTHONPATH": work}
        apps = [("maasfin predict", "flask_app", flask_env)]
        keras_note = _export_keras(model, df, work)
        if keras_note is not None:
            apps.insert(
                0,
                (
                    "Keras predict",
                    "keras_app",
                    {"BENCH_KERAS_MODEL": f"{work}/model.keras", "KERAS_BACKEND": "torch", "PYTHONPATH": work},
                ),
            )
            with open(f"{work}/keras_app.py", "w") as f:
                f.write(KERAS_APP)
        gunicorn = shutil.which("gunicorn") or _has_module("gunicorn")
        for what, module, env in apps:
            for workers in (1, 2) if gunicorn else (1,):
                port = _free_port()
                if gunicorn:
                    servers.append(
                        Server(
                            f"Flask + {what}, gunicorn gthread {workers}x16",
                            [
                                sys.executable,
                                "-m",
                                "gunicorn",
                                "-k",
                                "gthread",
                                "-w",
                                str(workers),
                                "--threads",
                                "16",
                                "-b",
                                f"127.0.0.1:{port}",
                                "--log-level",
                                "warning",
                                f"{module}:app",
                            ],
                            port,
                            "/predict",
                            env,
                        )
                    )
                else:
                    servers.append(
                        Server(
                            f"Flask + {what}, Werkzeug threaded",
                            [sys.executable, "-c", f"import {module}; {module}.app.run(port={port}, threaded=True)"],
                            port,
                            "/predict",
                            env,
                        )
                    )
        if args.alternate:
            _alternate(servers, bodies[1], args.alternate, args.seconds)
            return
        workloads = [(1, 1), (1, 16), (1, 64), (1000, 4)]
        results = {}
        for srv in servers:
            with srv:
                _wait_ready(srv, open(bodies[1], "rb").read())
                _run_load(srv.port, srv.path, bodies[1], 4, 1.0)  # warm-up
                for rows, conc in workloads:
                    results[(srv.label, rows, conc)] = _run_load(srv.port, srv.path, bodies[rows], conc, args.seconds)
                    r = results[(srv.label, rows, conc)]
                    print(f"# {srv.label}: rows={rows} c={conc}: {r}", file=sys.stderr)
                # Open loop at a fixed 500 requests/s (16 connections): the latency a steady load sees.
                results[(srv.label, 1, "500/s")] = _run_load(
                    srv.port, srv.path, bodies[1], 16, args.seconds, rate=500.0
                )
                print(f"# {srv.label}: 500/s: {results[(srv.label, 1, '500/s')]}", file=sys.stderr)
                if srv.path == "/v1/predict":  # bulk scoring the fast way: v2 binary tensors
                    results[(srv.label, "v2", 4)] = _run_load(
                        srv.port, "/v2/models/credit/infer", bodies["v2"], 4, args.seconds, v2_header
                    )
                    print(f"# {srv.label}: v2 binary: {results[(srv.label, 'v2', 4)]}", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(
        f"# {platform.machine()}, {os.cpu_count()} cores, maasfin {mf.__version__}, model {N_FEATURES}-64-32-1, "
        f"{args.seconds:g} s per measurement, load generator in a separate process on the same machine"
    )
    labels = [s.label for s in servers]
    print("| workload | measure | " + " | ".join(labels) + " |")
    print("|---|---|" + "---|" * len(labels))
    for rows, conc in workloads:
        rs = [results[(lab, rows, conc)] for lab in labels]
        name = f"1 row, concurrency {conc}" if rows == 1 else f"{rows:,} rows, concurrency {conc}"
        if rows == 1:
            print(f"| {name} | requests/s | " + " | ".join(f"{r['rps']:,.0f}" for r in rs) + " |")
            print(f"| {name} | p50 ms | " + " | ".join(f"{r['p50_ms']:.2f}" for r in rs) + " |")
            print(f"| {name} | p99 ms | " + " | ".join(f"{r['p99_ms']:.2f}" for r in rs) + " |")
        else:
            print(f"| {name} | rows/s | " + " | ".join(f"{r['rps'] * rows:,.0f}" for r in rs) + " |")
            print(f"| {name} | p50 ms | " + " | ".join(f"{r['p50_ms']:.1f}" for r in rs) + " |")
        errs = sum(r["errors"] for r in rs)
        if errs:
            print(f"| {name} | non-200 responses | " + " | ".join(str(r["errors"]) for r in rs) + " |")
    paced = [results[(lab, 1, "500/s")] for lab in labels]
    name = "1 row, open loop at 500 requests/s"
    print(f"| {name} | achieved requests/s | " + " | ".join(f"{r['rps']:,.0f}" for r in paced) + " |")
    print(f"| {name} | p50 ms | " + " | ".join(f"{r['p50_ms']:.2f}" for r in paced) + " |")
    print(f"| {name} | p99 ms | " + " | ".join(f"{r['p99_ms']:.2f}" for r in paced) + " |")
    if any(r["errors"] for r in paced):
        print(f"| {name} | non-200 responses | " + " | ".join(str(r["errors"]) for r in paced) + " |")
    v2 = [results.get((lab, "v2", 4)) for lab in labels]
    print(
        "| 1,000 rows as v2 binary tensors, concurrency 4 | rows/s | "
        + " | ".join("—" if r is None else f"{r['rps'] * 1000:,.0f}" for r in v2)
        + " |"
    )
    print(
        "| 1,000 rows as v2 binary tensors, concurrency 4 | p50 ms | "
        + " | ".join("—" if r is None else f"{r['p50_ms']:.1f}" for r in v2)
        + " |"
    )
    if any(r is not None and r["errors"] for r in v2):
        print(
            "| v2 binary | non-200 responses | " + " | ".join("—" if r is None else str(r["errors"]) for r in v2) + " |"
        )
    print()
    for workers in (1, 2):
        mine = next((lab for lab in labels if lab.startswith("maasfin") and f"{workers} worker" in lab), None)
        for base in [lab for lab in labels if lab.startswith("Flask") and f"{workers}x16" in lab]:
            if mine is not None:
                ratio = results[(mine, 1, 16)]["rps"] / results[(base, 1, 16)]["rps"]
                print(f"- 1 row, concurrency 16: {mine} / {base} = {ratio:.1f}x")


def _alternate(servers: list, body_file: str, rounds: int, seconds: float) -> None:
    import contextlib

    rps = {s.label: [] for s in servers}
    with contextlib.ExitStack() as stack:
        for srv in servers:
            stack.enter_context(srv)
            _wait_ready(srv, open(body_file, "rb").read())
            _run_load(srv.port, srv.path, body_file, 4, 1.0)  # warm-up
        for k in range(rounds):
            for srv in servers:
                rps[srv.label].append(_run_load(srv.port, srv.path, body_file, 16, seconds)["rps"])
            print(f"# round {k + 1}: " + ", ".join(f"{lab} {v[-1]:,.0f}" for lab, v in rps.items()), file=sys.stderr)
    print(f"# 1 row, concurrency 16, {rounds} rounds of {seconds:g} s in rotation, every server up at once")
    print("| server | requests/s (median) | rounds |")
    print("|---|---|---|")
    med = {lab: float(np.median(v)) for lab, v in rps.items()}
    for lab, v in rps.items():
        print(f"| {lab} | {med[lab]:,.0f} | " + ", ".join(f"{x:,.0f}" for x in v) + " |")
    print()
    for mine in [lab for lab in med if lab.startswith("maasfin")]:
        for base in [lab for lab in med if lab.startswith("Flask")]:
            print(f"- {mine} / {base} = {med[mine] / med[base]:.1f}x")


def _export_keras(model, df, work: str):
    """The maasfin model as model.keras (Keras 3, torch backend) with the same weights, or None if
    Keras is not installed. Returns the largest |difference| of the two models' predictions."""
    if not _has_module("keras"):
        print("# keras is not installed (pip install keras): no Flask + Keras baseline", file=sys.stderr)
        return None
    x = df.iloc[:256].to_numpy(dtype=np.float32)
    np.savez(f"{work}/weights.npz", x=x, y=model.predict(x), **{f"w{i}": w for i, w in enumerate(model.get_weights())})
    with open(f"{work}/keras_export.py", "w") as f:
        f.write(KERAS_EXPORT)
    out = subprocess.run(
        [sys.executable, f"{work}/keras_export.py", f"{work}/weights.npz", f"{work}/model.keras"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "KERAS_BACKEND": "torch"},
    )
    diff = float(out.stdout.strip().splitlines()[-1])
    if not diff < 1e-4:
        raise RuntimeError(f"the Keras copy of the model predicts differently (max |diff| {diff})")
    print(f"# Keras copy of the model: max |prediction difference| {diff:.2e}", file=sys.stderr)
    return diff


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


if __name__ == "__main__":
    main()
