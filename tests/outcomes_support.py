"""Shared by the outcome-store tests: the bundled credit data as a served model, a replay of its
labelled rows through a server, and a PostgreSQL server started from Debian's binaries."""

import datetime
import glob
import os
import shutil
import subprocess
import tempfile
import time

import numpy as np
import pandas as pd
import requests
from serving_support import free_socket

import maasfin as mf
from maasfin.datasets import load_credit
from maasfin.layers import Dense
from maasfin.models import Sequential

NUMERIC = ["Seniority", "Time", "Age", "Expenses", "Income", "Assets", "Debt", "Amount", "Price"]
TIMEOUT = 30


def credit_rows(n: int = 5000) -> tuple[pd.DataFrame, np.ndarray]:
    """`n` labelled rows of the bundled credit data (wrapping around its 4,454), standardised numeric
    features with NaN as 0, and labels (1: "bad", a default)."""
    df = load_credit()
    x = df[NUMERIC].astype("float64")
    x = ((x - x.mean()) / x.std()).fillna(0.0).astype("float32")
    y = (df["Status"] == "bad").to_numpy().astype(np.int64)
    idx = np.arange(n) % len(df)
    return x.iloc[idx].reset_index(drop=True), y[idx]


def credit_pd_model(x: pd.DataFrame, y: np.ndarray, seed: int = 3):
    mf.utils.set_random_seed(seed)
    model = Sequential([Dense(8, activation="relu", input_dim=x.shape[1]), Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    model.fit(x, y.astype("float32"), epochs=2, batch_size=128, verbose=0)
    return model


def replay(url: str, x: pd.DataFrame, chunk: int = 125) -> tuple[list[str], np.ndarray, list[int]]:
    """Predicts `x` in requests of `chunk` rows (a new connection each, so that every worker
    serves some): (request id per row, predicted PD per row, version per row)."""
    rows = x.to_numpy().tolist()
    ids: list[str] = []
    scores: list[float] = []
    versions: list[int] = []
    for lo in range(0, len(rows), chunk):
        r = requests.post(
            url + "/v1/predict",
            json={"model_name": "credit", "input_data": rows[lo : lo + chunk]},
            headers={"Connection": "close"},
            timeout=TIMEOUT,
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["request_id"] == r.headers["x-request-id"]
        ids.extend([body["request_id"]] * len(body["predictions"]))
        scores.extend(p[0] for p in body["predictions"])
        versions.extend([body["model_version"]] * len(body["predictions"]))
    return ids, np.asarray(scores, dtype=np.float64), versions


def outcomes_body(ids, y, lo: int, hi: int) -> dict:
    """The POST /v1/outcomes body of replayed rows lo..hi (row = index within its request)."""
    items = []
    now = datetime.datetime.now(datetime.timezone.utc).isoformat()
    for i in range(lo, hi):
        row = i - next(j for j in range(i, -1, -1) if j == 0 or ids[j - 1] != ids[i])
        items.append({"request_id": ids[i], "row": row, "label": int(y[i]), "observed_at": now})
    return {"outcomes": items}


class Postgres:
    """A throw-away PostgreSQL server (initdb + pg_ctl from /usr/lib/postgresql/*/bin) on a free port."""

    def __init__(self):
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
        if not bins:
            raise RuntimeError(
                "PostgreSQL is not installed (apt-get install -y postgresql); "
                "set MAASFIN_SKIP_POSTGRES=1 to skip these tests locally"
            )
        self.bin = os.path.dirname(bins[-1])
        self.dir = tempfile.mkdtemp(prefix="maasfin-pg-")
        s = free_socket()
        self.port = s.getsockname()[1]
        s.close()
        self.url = f"postgresql://maasfin@127.0.0.1:{self.port}/postgres"

    def _run(self, *args):
        cmd = list(args)
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root: the unprivileged 'postgres' user
            shutil.chown(self.dir, "postgres")
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)

    def __enter__(self):
        data = os.path.join(self.dir, "data")
        self._run(os.path.join(self.bin, "initdb"), "-D", data, "-U", "maasfin", "--auth=trust", "-E", "UTF8")
        self.start()
        return self

    def start(self):
        data = os.path.join(self.dir, "data")
        self._run(
            os.path.join(self.bin, "pg_ctl"),
            "-D",
            data,
            "-l",
            os.path.join(self.dir, "log"),
            "-o",
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off",
            "-w",
            "start",
        )

    def stop(self):
        self._run(os.path.join(self.bin, "pg_ctl"), "-D", os.path.join(self.dir, "data"), "-m", "fast", "-w", "stop")

    def __exit__(self, *exc):
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def wait_for(predicate, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False
