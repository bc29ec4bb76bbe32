"""`python -m maasfin serve` as a subprocess on loopback: one worker, and two workers sharing a
port with per-worker audit files and metrics summed over workers."""

import glob
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import requests
from serving_support import credit_frame, credit_model, free_socket, put

import maasfin as mf

TIMEOUT = 10


def _free_port() -> int:
    s = free_socket()
    port = s.getsockname()[1]
    s.close()
    return port


class Serve:
    def __init__(self, *args, env=None):
        self.env = None if env is None else {**os.environ, **env}
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = [sys.executable, "-m", "maasfin", "serve", *map(str, args), "--port", str(self.port)]

    def __enter__(self):
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=self.env)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"maasfin serve exited: {self.proc.stdout.read().decode()}")
            try:
                if requests.get(self.url + "/v2/health/ready", timeout=1).status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("maasfin serve did not become ready in 60 s")
            time.sleep(0.1)

    def __exit__(self, *exc):
        self.proc.terminate()
        try:
            self.output = self.proc.communicate(timeout=30)[0].decode()
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            raise


def test_serve_one_worker(tmp_path):
    repo = tmp_path / "repo"
    put(repo, "credit", 1, credit_model(seed=91))
    df = credit_frame(32, seed=400)
    expected = mf.models.load_model(repo / "credit/1/model.maas", compile=False).predict(df)
    with Serve(
        repo,
        "--max-batch-size",
        64,
        "--max-latency-ms",
        1,
        "--poll-seconds",
        0.2,
        "--audit-log",
        tmp_path / "audit.jsonl",
    ) as srv:
        r = requests.post(
            srv.url + "/v1/predict",
            json={"model_name": "credit", "input_data": df.to_numpy().tolist()},
            timeout=TIMEOUT,
        )
        assert r.status_code == 200
        assert np.array_equal(np.asarray(r.json()["predictions"]).astype(np.float32), expected)
        put(repo, "credit", 2, credit_model(seed=92))  # picked up by polling, no restart
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            r = requests.post(
                srv.url + "/v1/predict", json={"model_name": "credit", "input_data": [[0] * 5]}, timeout=TIMEOUT
            )
            if r.json()["model_version"] == 2:
                break
            time.sleep(0.1)
        assert r.json()["model_version"] == 2
    # a graceful shutdown on SIGTERM (uvicorn then re-raises the signal, as process managers expect)
    assert srv.proc.returncode == -signal.SIGTERM
    assert "Application shutdown complete." in srv.output and "Traceback" not in srv.output
    assert len((tmp_path / "audit.jsonl").read_text().splitlines()) >= 2


def test_serve_two_workers(tmp_path):
    repo = tmp_path / "repo"
    put(repo, "credit", 1, credit_model(seed=93))
    audit = tmp_path / "audit.jsonl"
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    with Serve(
        repo,
        "--workers",
        2,
        "--threads",
        1,
        "--audit-log",
        audit,
        "--log-level",
        "warning",
        env={"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)},
    ) as srv:
        for i in range(20):
            with requests.Session() as s:  # a new connection each time, so both workers get some
                r = s.post(
                    srv.url + "/v1/predict",
                    json={"model_name": "credit", "input_data": [[i, 0, 0, 0, 0]]},
                    timeout=TIMEOUT,
                )
                assert r.status_code == 200
        with requests.Session() as s:  # keep-alive: answers are not held back by Nagle + delayed ACK (~40 ms each)
            t0 = time.monotonic()
            for i in range(20):
                assert s.get(srv.url + "/v2/health/live", timeout=TIMEOUT).status_code == 200
            assert time.monotonic() - t0 < 0.4
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            text = requests.get(srv.url + "/metrics", timeout=TIMEOUT).text
            line = [x for x in text.splitlines() if x.startswith("maasfin_requests_total{")]
            if line and float(line[0].split()[-1]) == 20.0:
                break
            time.sleep(0.2)
        assert line == ['maasfin_requests_total{code="200",model="credit",protocol="simple",version="1"} 20.0']
    files = glob.glob(str(audit) + ".*")
    assert 1 <= len(files) <= 2 and all(f.rsplit(".", 1)[1].isdigit() for f in files)
    records = [json.loads(x) for f in files for x in Path(f).read_text().splitlines()]
    records = [r for r in records if r.get("event") != "drift_band"]  # /metrics scrapes evaluate drift
    reads = [r for r in records if r["method"] == "GET"]  # read routes are audited too
    assert sum(r["path"] == "/v2/health/live" for r in reads) == 20 and {r["status"] for r in reads} == {200}
    records = [r for r in records if r["method"] == "POST"]
    assert len(records) == 20 and {r["status"] for r in records} == {200}


def test_two_workers_merge_their_drift_windows(tmp_path):
    """Each worker serves part of the traffic; a drift report from either covers all of it."""
    from maasfin.explain import monitoring

    repo = tmp_path / "repo"
    put(repo, "credit", 1, credit_model(seed=94, epochs=2))
    model = mf.models.load_model(repo / "credit/1/model.maas", compile=False)
    audit = tmp_path / "audit.jsonl"
    df = credit_frame(2000, seed=401)
    with Serve(
        repo,
        "--workers",
        2,
        "--threads",
        1,
        "--audit-log",
        audit,
        "--drift-window",
        5000,
        "--log-level",
        "warning",
        env={"PROMETHEUS_MULTIPROC_DIR": ""},
    ) as srv:

        def served():  # prediction requests per worker so far, from their audit files
            return {
                f: sum('"request_id"' in line for line in Path(f).read_text().splitlines())
                for f in glob.glob(str(audit) + ".*")
            }

        sent = 0
        # a new connection each time, so both workers get some; a loaded machine may let one worker
        # accept for a while, so keep going (cycling over the rows) until both have served or 90 s
        deadline = time.monotonic() + 90
        rows_sent = []
        while sent < 100 or (sum(n > 0 for n in served().values()) < 2 and time.monotonic() < deadline and sent < 5000):
            start = sent % len(df)
            rows_sent.append(df.iloc[start : start + 10].to_numpy(dtype=np.float32))
            with requests.Session() as s:
                r = s.post(
                    srv.url + "/v1/predict",
                    timeout=TIMEOUT,
                    json={"model_name": "credit", "input_data": df.iloc[start : start + 10].to_numpy().tolist()},
                )
                assert r.status_code == 200
            sent += 10
        workers = served()
        assert len(workers) == 2 and all(n > 0 for n in workers.values()), workers  # both served rows
        reports = []
        for _ in range(6):
            with requests.Session() as s:
                reports.append(s.get(srv.url + "/v1/models/credit/drift", timeout=TIMEOUT).json())
        text = requests.get(srv.url + "/metrics", timeout=TIMEOUT).text
    assert all(r == reports[0] for r in reports)
    report = reports[0]
    assert report["window"] == {"rows": sent, "capacity": 5000}
    ref = model._drift_reference
    x = np.concatenate(rows_sent)
    for j, f in enumerate(report["features"]):
        assert f["psi"] == monitoring.psi_from_reference(ref["features"][j], x[:, j].astype(np.float64)), f
    gauges = [line for line in text.splitlines() if line.startswith("maasfin_drift_psi{")]
    assert len(gauges) == 6 and all("pid=" not in g for g in gauges)  # one series per feature, not per worker
    income = [g for g in gauges if 'feature="income"' in g]
    assert float(income[0].split()[-1]) == report["features"][0]["psi"]
