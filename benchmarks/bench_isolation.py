"""One-row latency of `maasfin serve` while another client sends 1,000,000-row requests.

    python benchmarks/bench_isolation.py [--seconds 20] [--rows 1000000] [--markdown]

A credit-style MLP (5 features, 64-32-1) is served by `maasfin serve` (1 worker, in its own
process, with `--threads` predict and oneDNN threads: default 1, a worker per core). A one-row
client (this process) sends `/v1/predict` requests one after another on a keep-alive connection
and records each latency, for `--seconds`:

1. alone;
2. while a second process sends 1,000,000-row requests back to back (Open Inference Protocol v2,
   binary FP32 tensors in and out: 20 MB in, 4 MB out), with the default `--chunk-rows 4096`;
3. the same, with `--chunk-rows` set beyond the request size, so each large request runs as one
   predict call (what the server did before large requests were chunked).

Reports the one-row p50 / p99 / max latency and the large requests' rows per second. On a 2-core
machine the three processes (server, one-row client, large client) share the cores.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np
from _timing import print_table

HERE = os.path.dirname(os.path.abspath(__file__))
FEATURES = 5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _make_repo(root: str) -> str:
    import maasfin as mf
    from maasfin.layers import Dense
    from maasfin.models import Sequential

    mf.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2048, FEATURES)).astype(np.float32)
    y = (x[:, 0] - x[:, 1] > 0).astype(np.float32)
    model = Sequential(
        [Dense(64, activation="relu", input_dim=FEATURES), Dense(32, activation="relu"), Dense(1, activation="sigmoid")]
    )
    model.compile(optimizer="adam", loss="binary_crossentropy")
    model.fit(x, y, epochs=1, batch_size=64, verbose=0)
    path = os.path.join(root, "credit", "1")
    os.makedirs(path)
    model.save(os.path.join(path, "model.maas"))
    return root


def _large_body(rows: int) -> tuple[bytes, str]:
    x = np.random.default_rng(1).normal(size=(rows, FEATURES)).astype("<f4")
    head = json.dumps(
        {
            "inputs": [
                {
                    "name": "input_layer",
                    "shape": [rows, FEATURES],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": x.nbytes},
                }
            ],
            "parameters": {"binary_data_output": True},
        }
    ).encode()
    return head + x.tobytes(), str(len(head))


def large_client(port: int, rows: int, seconds: float) -> None:
    """Sends `rows`-row requests back to back for `seconds`; prints the rows predicted."""
    body, head_len = _large_body(rows)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    done, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        conn.request(
            "POST", "/v2/models/credit/infer", body=body, headers={"Inference-Header-Content-Length": head_len}
        )
        r = conn.getresponse()
        r.read()
        if r.status != 200:
            raise SystemExit(f"large request failed with {r.status}")
        done += rows
    print(done, flush=True)


def _one_row_latencies(port: int, seconds: float) -> list[float]:
    body = json.dumps({"model_name": "credit", "input_data": [[0.5, -0.2, 0.1, 0.3, 0.0]]}).encode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.connect()
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    out, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        t = time.perf_counter()
        conn.request("POST", "/v1/predict", body=body, headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        r.read()
        out.append((time.perf_counter() - t) * 1000.0)
        if r.status != 200:
            raise SystemExit(f"one-row request failed with {r.status}")
    return sorted(out)


def _serve(repo: str, port: int, chunk_rows: int, threads: int) -> subprocess.Popen:
    argv = [sys.executable, "-m", "maasfin", "serve", repo, "--port", str(port), "--poll-seconds", "0"]
    argv += ["--predict-threads", str(threads), "--threads", str(threads)]
    argv += ["--max-body-bytes", str(64 << 20), "--request-timeout", "600", "--body-timeout", "600"]
    argv += ["--chunk-rows", str(chunk_rows), "--log-level", "warning"]
    proc = subprocess.Popen(argv)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            c.request("GET", "/v2/health/ready")
            if c.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("maasfin serve did not start")


def _measure(repo: str, rows: int, seconds: float, chunk_rows: int | None, threads: int) -> tuple[list[float], float]:
    port = _free_port()
    proc = _serve(repo, port, chunk_rows or 4096, threads)
    try:
        _one_row_latencies(port, 1.0)  # warm-up
        if chunk_rows is None:
            return _one_row_latencies(port, seconds), 0.0
        large = subprocess.Popen(
            [sys.executable, __file__, "--large-client", str(port), "--rows", str(rows), "--seconds", str(seconds + 2)],
            stdout=subprocess.PIPE,
        )
        time.sleep(2.0)  # the first large request is on its way
        lat = _one_row_latencies(port, seconds)
        done = int(large.communicate(timeout=900)[0])
        return lat, done / (seconds + 2)
    finally:
        proc.terminate()
        proc.wait(60)


def _pct(xs: list[float], q: float) -> float:
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="the server's predict and oneDNN threads (default 1: a worker per core, as --workers 2 on 2 cores)",
    )
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--large-client", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.large_client:
        large_client(args.large_client, args.rows, args.seconds)
        return
    no_chunks = -(-(args.rows + 1) // 32) * 32
    with tempfile.TemporaryDirectory() as root:
        repo = _make_repo(root)
        rows = []
        for label, chunk in [
            ("one-row requests alone", None),
            (f"beside {args.rows:,}-row requests, chunks of 4,096 rows", 4096),
            (f"beside {args.rows:,}-row requests, one predict call each", no_chunks),
        ]:
            lat, rate = _measure(repo, args.rows, args.seconds, chunk, args.threads)
            rows.append(
                [
                    label,
                    str(len(lat)),
                    f"{_pct(lat, 0.5):.2f}",
                    f"{_pct(lat, 0.99):.2f}",
                    f"{lat[-1]:.2f}",
                    f"{rate / 1e6:.2f}" if rate else "-",
                ]
            )
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} cores, server with {args.threads} predict thread(s), "
        f"{args.seconds:g} s per row"
    )
    header = ["one-row client", "requests", "p50 ms", "p99 ms", "max ms", "large: M rows/s"]
    print_table(header, rows, args.markdown)


if __name__ == "__main__":
    main()
