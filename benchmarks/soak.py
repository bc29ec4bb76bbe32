"""Soak test of `maasfin serve`: mixed traffic for minutes, hot swaps, corrupt versions, a killed worker.

Starts `maasfin serve` (2 workers by default) on a fresh repository, then for `--minutes`:
- client threads send valid requests over the three protocols (simple, TF Serving, OIP v2) and a
  share of bad ones (wrong shapes, unknown features, bad JSON), each expecting its documented status;
- a swapper thread writes a new version of the model every `--swap-seconds`, every third one corrupt
  (the good version must keep serving), and removes old versions;
- half-way through, one worker is killed with SIGKILL (uvicorn's supervisor must start another).
At the end it reports: requests by outcome, failed requests (5xx or no response) outside the
killed worker's in-flight window, worker restarts, RSS growth of the server's processes, and audit
completeness (every answered prediction request has exactly one audit line with its request id).

    python benchmarks/soak.py --minutes 10
    python benchmarks/soak.py --minutes 1 --workers 2 --clients 4     # a quick run

Exit status 0 when every check holds. Needs `pip install ".[serve]"` (and requests).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import requests

FEATURES = ["income", "debt_ratio", "age", "utilisation", "late_payments"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _model(seed: int):
    import pandas as pd

    from maasfin.layers import Dense
    from maasfin.models import Sequential
    from maasfin.utils import set_random_seed

    set_random_seed(seed)
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(rng.random((256, len(FEATURES))).astype("float32"), columns=FEATURES)
    y = (df["debt_ratio"] + 0.3 * df["late_payments"] > 0.7).astype("float32").to_numpy()
    m = Sequential([Dense(16, activation="relu", input_dim=len(FEATURES)), Dense(1, activation="sigmoid")])
    m.compile(optimizer="adam", loss="binary_crossentropy")
    m.fit(df, y, epochs=2, verbose=0)
    return m


def _children(pid: int) -> list[int]:
    out = []
    for task in pathlib.Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def _workers(pid: int) -> set[int]:
    """The server's live worker processes (spawned children; not the resource tracker)."""
    out = set()
    for c in _children(pid):
        try:
            cmd = pathlib.Path(f"/proc/{c}/cmdline").read_bytes().replace(b"\0", b" ")
            state = [ln for ln in pathlib.Path(f"/proc/{c}/status").read_text().splitlines() if ln.startswith("State:")]
        except OSError:
            continue
        if b"resource_tracker" not in cmd and not (state and "Z" in state[0].split()[1]):
            out.add(c)
    return out


def _tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        todo += _children(p)
    return pids


def _rss_mb(pids) -> float:
    total = 0
    for p in pids:
        try:
            for line in pathlib.Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts: dict[str, int] = {}
        self.failures: list[tuple[float, str]] = []
        self.request_ids: list[str] = []

    def add(self, key: str, request_id: str | None = None):
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + 1
            if request_id:
                self.request_ids.append(request_id)

    def fail(self, what: str):
        with self.lock:
            self.failures.append((time.monotonic(), what))


def _requests(base: str, rng: random.Random):
    """(name, method, url, kwargs, expected statuses) of one client step."""
    row = [round(rng.random(), 4) for _ in FEATURES]
    record = dict(zip(FEATURES, row))
    pick = rng.random()
    if pick < 0.35:
        return "simple", "post", f"{base}/v1/predict", {"json": {"model_name": "credit", "input_data": [record]}}, {200}
    if pick < 0.55:
        body = {"instances": [row]}
        return "tfserving", "post", f"{base}/v1/models/credit:predict", {"json": body}, {200}
    if pick < 0.75:
        body = {"inputs": [{"name": "input_layer", "shape": [1, len(FEATURES)], "datatype": "FP32", "data": row}]}
        return "v2", "post", f"{base}/v2/models/credit/infer", {"json": body}, {200}
    if pick < 0.85:
        bad = {"model_name": "credit", "input_data": [row + [1.0]]}  # one value too many
        return "bad_shape", "post", f"{base}/v1/predict", {"json": bad}, {400}
    if pick < 0.92:
        return "bad_json", "post", f"{base}/v1/predict", {"data": b'{"model_name": "credit", '}, {400}
    if pick < 0.96:
        bad = {"model_name": "credit", "input_data": [{**record, "zip": 1.0}]}
        return "unknown_feature", "post", f"{base}/v1/predict", {"json": bad}, {400}
    return "metadata", "get", f"{base}/v1/models/credit/metadata", {}, {200}


def _client(base: str, stop: threading.Event, stats: Stats, seed: int):
    rng = random.Random(seed)
    session = requests.Session()
    while not stop.is_set():
        name, method, url, kwargs, expected = _requests(base, rng)
        try:
            r = getattr(session, method)(url, timeout=30, **kwargs)
        except requests.RequestException as e:
            stats.fail(f"{name}: {type(e).__name__}")
            session = requests.Session()
            continue
        predict = method == "post"
        rid = r.headers.get("X-Request-ID") if predict else None
        if r.status_code >= 500:
            stats.fail(f"{name}: {r.status_code} {r.text[:200]}")
            stats.add(f"{name} {r.status_code}", rid)
        elif r.status_code not in expected:
            stats.add(f"{name} unexpected {r.status_code}", rid)
        else:
            stats.add(f"{name} {r.status_code}", rid)


def _swapper(repo: pathlib.Path, stop: threading.Event, every: float, log: list):
    version = 1
    while not stop.wait(every):
        version += 1
        target = repo / "credit" / str(version)
        target.mkdir(parents=True)
        if version % 3 == 0:  # a corrupt version: the previous good one must keep serving
            tmp = target / "model.maas.tmp"
            tmp.write_bytes(b"PK\x03\x04" + os.urandom(2048))
            tmp.rename(target / "model.maas")
            log.append((time.monotonic(), version, "corrupt"))
        else:
            _model(version).save(target / "model.maas")
            log.append((time.monotonic(), version, "good"))
        for old in sorted(int(p.name) for p in (repo / "credit").iterdir() if p.name.isdigit())[:-4]:
            shutil.rmtree(repo / "credit" / str(old), ignore_errors=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--swap-seconds", type=float, default=5.0)
    ap.add_argument("--kill-window", type=float, default=2.0, help="seconds after the kill whose failures are excused")
    args = ap.parse_args(argv)

    work = pathlib.Path(tempfile.mkdtemp(prefix="maasfin-soak-"))
    repo, audit = work / "repo", work / "audit.jsonl"
    (repo / "credit" / "1").mkdir(parents=True)
    _model(1).save(repo / "credit" / "1" / "model.maas")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [
        sys.executable,
        "-m",
        "maasfin",
        "serve",
        str(repo),
        "--port",
        str(port),
        "--workers",
        str(args.workers),
        "--poll-seconds",
        "1",
        "--audit-log",
        str(audit),
        # every answered request must have its line here: refused requests' lines are not
        # rate-limited (that limit is tested in tests/test_serving_audit_all.py)
        "--audit-refused-rate",
        "1000000",
        "--audit-refused-burst",
        "1000000",
        "--log-level",
        "warning",
    ]
    server = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=open(work / "server.log", "w"), start_new_session=True
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{base}/v2/health/ready", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        else:
            print("server did not become ready; log:", (work / "server.log").read_text()[-3000:])
            return 1
        time.sleep(1.0)
        workers0 = _workers(server.pid)
        rss0 = _rss_mb(_tree(server.pid))
        stats, stop, swaps = Stats(), threading.Event(), []
        threads = [
            threading.Thread(target=_client, args=(base, stop, stats, i), daemon=True) for i in range(args.clients)
        ]
        threads.append(threading.Thread(target=_swapper, args=(repo, stop, args.swap_seconds, swaps), daemon=True))
        for t in threads:
            t.start()
        duration = args.minutes * 60
        t0 = time.monotonic()
        time.sleep(duration / 2)
        victim = sorted(workers0)[0] if workers0 else None
        killed_at = time.monotonic()
        if victim:
            os.kill(victim, signal.SIGKILL)
        rss_samples = [rss0]
        while time.monotonic() - t0 < duration:
            time.sleep(min(5.0, duration / 10))
            rss_samples.append(_rss_mb(_tree(server.pid)))
        stop.set()
        for t in threads:
            t.join(timeout=60)
        time.sleep(1.5)  # the last audit lines
        workers1 = _workers(server.pid)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)

    excused = [f for f in stats.failures if victim and killed_at <= f[0] <= killed_at + args.kill_window]
    failed = [f for f in stats.failures if f not in excused]
    lines = []
    for p in sorted(work.glob("audit.jsonl*")):
        lines += [json.loads(x) for x in p.read_text().splitlines() if x.strip()]
    audited = {}
    for line in lines:  # request lines (drift lines have no request id)
        if "request_id" in line:
            audited[line["request_id"]] = audited.get(line["request_id"], 0) + 1
    missing = [rid for rid in stats.request_ids if audited.get(rid, 0) != 1]
    restarted = victim is not None and len(workers1 - workers0) >= 1 and victim not in workers1
    growth = rss_samples[-1] - rss_samples[1] if len(rss_samples) > 2 else 0.0

    print(
        f"# soak: {args.minutes} min, {args.workers} workers, {args.clients} clients, swap every "
        f"{args.swap_seconds} s ({sum(1 for s in swaps if s[2] == 'good')} good, "
        f"{sum(1 for s in swaps if s[2] == 'corrupt')} corrupt versions)"
    )
    print("| outcome | requests |\n|---|---|")
    for k, v in sorted(stats.counts.items()):
        print(f"| {k} | {v:,} |")
    print(
        f"\nfailed requests outside the killed worker's window: {len(failed)}"
        f" (excused in the {args.kill_window} s after the kill: {len(excused)})"
    )
    for f in failed[:10]:
        print("  ", f[1])
    print(
        f"worker killed: {victim}; restarted: {restarted} (workers before {sorted(workers0)}, after {sorted(workers1)})"
    )
    print(
        f"server RSS: start {rss0:.0f} MB, after warm-up {rss_samples[1]:.0f} MB, end {rss_samples[-1]:.0f} MB "
        f"(growth after warm-up {growth:+.0f} MB)"
    )
    print(
        f"audit: {len(audited):,} request lines; answered prediction requests without exactly one line: {len(missing)}"
    )
    unexpected = sum(v for k, v in stats.counts.items() if "unexpected" in k)
    ok = not failed and (restarted or victim is None) and not missing and unexpected == 0 and growth < 200
    print("result:", "PASS" if ok else "FAIL")
    shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
