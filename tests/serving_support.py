"""Helpers for the serving tests: small models in a repository, and a real uvicorn server on a free
loopback port, run in a thread of the test process and stopped by the test."""

from __future__ import annotations

import json
import os
import socket
import threading
import time

import numpy as np
import pandas as pd
import uvicorn
from werkzeug.serving import make_server

import maasfin as mf
from maasfin.layers import Concatenate, Dense, Input
from maasfin.models import Model, Sequential

FEATURES = ["income", "debt_ratio", "age", "utilisation", "late_payments"]


def credit_frame(n: int = 64, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.normal(size=(n, len(FEATURES))).astype(np.float32), columns=FEATURES)


def credit_model(seed: int, epochs: int = 1):
    """A credit-style MLP trained on a DataFrame (so it has feature names)."""
    mf.utils.set_random_seed(seed)
    df = credit_frame(256, seed=seed)
    y = ((df["income"] - df["debt_ratio"]) > 0).astype("float32")
    model = Sequential(
        [
            Dense(16, activation="relu", input_dim=len(FEATURES), name="hidden"),
            Dense(1, activation="sigmoid", name="pd"),
        ]
    )
    model.compile(optimizer="adam", loss="binary_crossentropy")
    model.fit(df, y, epochs=epochs, batch_size=32, verbose=0)
    return model


def plain_model(seed: int, d: int = 3, units: int = 8):
    """A model trained on an array: no feature names."""
    mf.utils.set_random_seed(seed)
    model = Sequential(
        [Dense(units, activation="tanh", input_dim=d, name="hidden"), Dense(2, activation="softmax", name="probs")]
    )
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    model.build((None, d))
    return model


def two_input_model(seed: int):
    mf.utils.set_random_seed(seed)
    a = Input(shape=(3,), name="applicant")
    b = Input(shape=(2,), name="bureau")
    h = Concatenate()([Dense(4, activation="relu", name="a_dense")(a), Dense(4, activation="relu", name="b_dense")(b)])
    out = Dense(1, activation="sigmoid", name="pd")(h)
    return Model(inputs=[a, b], outputs=out)


def put(repo, name: str, version: int, model) -> str:
    path = os.path.join(repo, name, str(version))
    os.makedirs(path, exist_ok=True)
    model.save(os.path.join(path, "model.maas"))
    return path


def put_labels(repo, name: str, labels: dict) -> None:
    with open(os.path.join(repo, name, "labels.json"), "w") as f:
        json.dump(labels, f)


def free_socket() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    return s


class ServerThread:
    """uvicorn serving `app` on 127.0.0.1:<free port> in a background thread."""

    def __init__(self, app, **config):
        self.app = app
        self.sock = free_socket()
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        cfg = uvicorn.Config(
            app,
            log_level="warning",
            lifespan="on",
            timeout_keep_alive=30,
            http="maasfin.serving.transport:NoDelayHTTPProtocol",
            **config,
        )
        self.server = uvicorn.Server(cfg)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self):
        self.threads_before = mf.config.get_num_threads()  # the app sets maasfin's threads per worker
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the server thread died during start-up")
            if time.monotonic() > deadline:
                raise TimeoutError("the server did not start within 30 s")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()
        mf.config.set_num_threads(self.threads_before)
        assert not self.thread.is_alive(), "the server did not stop"


class FlaskThread:
    """A WSGI app (a Flask app) served by werkzeug on 127.0.0.1:<free port> in a background thread."""

    def __init__(self, app):
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(30)


def run_threads(n: int, target, timeout: float = 60.0) -> None:
    """Runs target(i) in n threads, re-raising the first failure."""
    errors = []

    def wrapped(i):
        try:
            target(i)
        except BaseException as e:  # noqa: BLE001 - re-raised in the test thread
            errors.append(e)

    threads = [threading.Thread(target=wrapped, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads), "a client thread hung"
    if errors:
        raise errors[0]
